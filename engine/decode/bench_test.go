package decode

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"testing"
)

// body makes n records of about 500 bytes, as NDJSON lines or a JSON list.
func body(n int, list bool) []byte {
	var b bytes.Buffer
	if list {
		b.WriteByte('[')
	}
	for i := range n {
		if list && i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"type":"invoice.paid","account":"acct_%06d","amount":"%d.%02d","customer":{"id":"cus_%08d","email":"customer%d@example.com"},"lines":[{"sku":"plan-pro","qty":1,"price":"49.00"},{"sku":"seat","qty":%d}],"note":"generated record number %d, padded to look like a real export line"}`,
			i, i%5000, i%997, i%100, i, i, i%9+1, i)
		if !list {
			b.WriteByte('\n')
		}
	}
	if list {
		b.WriteByte(']')
	}
	return b.Bytes()
}

func drain(b *testing.B, r io.Reader, opts Options, n int) {
	d, err := New(r, opts)
	if err != nil {
		b.Fatal(err)
	}
	got := 0
	for {
		if _, err := d.Next(); err == io.EOF {
			break
		} else if err != nil {
			b.Fatal(err)
		}
		got++
	}
	if got != n {
		b.Fatalf("%d values, want %d", got, n)
	}
}

// Each format against the loop one would write by hand with the standard
// library, on the same bytes: compare MB/s of the pairs.
func BenchmarkDecode(b *testing.B) {
	const n = 20_000
	lines, list := body(n, false), body(n, true)
	b.Run("ndjson", func(b *testing.B) {
		b.SetBytes(int64(len(lines)))
		for range b.N {
			drain(b, bytes.NewReader(lines), Options{Format: NDJSON}, n)
		}
	})
	b.Run("ndjson-baseline-scanner", func(b *testing.B) {
		b.SetBytes(int64(len(lines)))
		for range b.N {
			sc := bufio.NewScanner(bytes.NewReader(lines))
			for sc.Scan() {
				var v map[string]any
				if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("json-list-streamed", func(b *testing.B) {
		b.SetBytes(int64(len(list)))
		for range b.N {
			drain(b, bytes.NewReader(list), Options{Stream: true, Default: true}, n)
		}
	})
	b.Run("json-list-baseline-whole", func(b *testing.B) {
		b.SetBytes(int64(len(list)))
		for range b.N {
			dec := json.NewDecoder(bytes.NewReader(list))
			dec.UseNumber()
			var v []any
			if err := dec.Decode(&v); err != nil || len(v) != n {
				b.Fatal(err)
			}
		}
	})
}
