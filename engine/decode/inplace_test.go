package decode

import (
	"bytes"
	"compress/gzip"
	"testing"
	"unsafe"
)

// within reports whether part lies inside whole's memory.
func within(part, whole []byte) bool {
	if len(part) == 0 || len(whole) == 0 {
		return false
	}
	p, w := uintptr(unsafe.Pointer(unsafe.SliceData(part))), uintptr(unsafe.Pointer(unsafe.SliceData(whole)))
	return p >= w && p+uintptr(len(part)) <= w+uintptr(len(whole))
}

// TestNewBytesInPlace: NewBytes reads the body where it lies (an NDJSON
// line's or a streamed JSON element's raw text is the body's own bytes,
// not a copy in a buffer of the decoder's), which is what it is for; a
// gzip body cannot be, and is read as New reads it. (CSV rows record their
// text as they read it: a copy either way.)
func TestNewBytesInPlace(t *testing.T) {
	cases := []struct {
		name string
		body string
		opts Options
	}{
		{"ndjson", "{\"a\":1}\n{\"a\":2}\n", Options{Format: NDJSON}},
		{"json list", `{"items": [{"a":1}, 2], "next": null}`, Options{Stream: true, Path: []string{"items"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := []byte(tc.body)
			d, err := NewBytes(b, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			n := 0
			for {
				if _, err := d.Next(); err != nil {
					break
				}
				n++
				if !within(d.Raw(), b) {
					t.Errorf("value %d: raw text %q is a copy, not the body's bytes", n, d.Raw())
				}
			}
			if n != 2 {
				t.Errorf("%d values, want 2", n)
			}
		})
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write([]byte("{\"a\":1}\n"))
	zw.Close()
	b := zb.Bytes()
	d, err := NewBytes(b, Options{Format: NDJSON})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if v, err := d.Next(); err != nil || string(d.Raw()) != `{"a":1}` {
		t.Errorf("gzip body: %v, %v, raw %q: want the line, decompressed", v, err, d.Raw())
	}
}
