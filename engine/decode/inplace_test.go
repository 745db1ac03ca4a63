package decode

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
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
// line's raw text is the body's own bytes, not a copy in a buffer of the
// decoder's), which is what it is for; a gzip body cannot be, and is read
// as New reads it. A streamed JSON element is decoded where it lies in
// one pass, its raw text the body's bytes too. (CSV rows record their
// text as they read it: a copy either way.)
func TestNewBytesInPlace(t *testing.T) {
	cases := []struct {
		name string
		body string
		opts Options
	}{
		{"ndjson", "{\"a\":1}\n{\"a\":2}\n", Options{Format: NDJSON}},
		{"json", "[{\"a\":1},\n2 ]", Options{Stream: true, Default: true}},
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

// TestStreamOnePassMatchesScan reads documents whose elements the one-pass
// decoding of a buffered element takes, and those it must leave to the
// scan (a number or literal that a buffer's end cuts, one followed by no
// delimiter, a malformed element), from memory, from a reader, and a byte
// at a time: every value, raw text, line and error must be alike.
func TestStreamOnePassMatchesScan(t *testing.T) {
	docs := []string{
		"[{\"a\": [1, 2]},\n\"x\" , 3.5e2, true,null\n,-0,{}, [], \"\\u00e9\\\"\"]",
		`[1]`, `[12, 345]`, `[tru]`, `[1x]`, `[01]`, `[1 2]`, `[{"a":1}x]`, `[{"a":1,}]`, `["a` + "\u0001" + `"]`, `[1.]`, `[-]`,
		"[\n{\"id\": 1},\n{\"id\": 2,}]", `{"data": [{"id": 1}, {"id": 2}], "next": "abc"}`,
	}
	read := func(d *Decoder, err error) (out []string) {
		if err != nil {
			return []string{err.Error()}
		}
		defer d.Close()
		for {
			v, err := d.Next()
			if err != nil {
				return append(out, err.Error())
			}
			out = append(out, fmt.Sprintf("%v %q line %d", v, d.Raw(), d.Line()))
		}
	}
	for _, doc := range docs {
		for _, opts := range []Options{{Stream: true, Default: true}, {Stream: true, Path: []string{"data"}}} {
			want := read(New(iotest.OneByteReader(strings.NewReader(doc)), opts))
			if got := read(NewBytes([]byte(doc), opts)); !slices.Equal(got, want) {
				t.Errorf("%q from memory:\n got %q\nwant %q (a byte at a time)", doc, got, want)
			}
			if got := read(New(strings.NewReader(doc), opts)); !slices.Equal(got, want) {
				t.Errorf("%q from a reader:\n got %q\nwant %q (a byte at a time)", doc, got, want)
			}
		}
	}
}
