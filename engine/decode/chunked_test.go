package decode

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// chunked returns at most a random few bytes per Read: the buffer is
// refilled at every place an element can end or be cut.
type chunked struct {
	r   io.Reader
	rnd *rand.Rand
	max int // 0: 9
}

func (c *chunked) Read(p []byte) (int, error) {
	m := c.max
	if m == 0 {
		m = 9
	}
	n := 1 + c.rnd.IntN(m)
	if n < len(p) {
		p = p[:n]
	}
	return c.r.Read(p)
}

func randElement(rnd *rand.Rand, depth int) string {
	lits := []string{`true`, `false`, `null`, `0`, `-0`, `12`, `-3.5e+2`, `1E-7`, `123456789012345678901234567890`,
		`""`, `"a\"b"`, `"\u00e9\ud83d\ude00"`, `"tab\tx"`, `"é"`, `"\\"`}
	if depth > 3 || rnd.IntN(3) == 0 {
		return lits[rnd.IntN(len(lits))]
	}
	var b strings.Builder
	if rnd.IntN(2) == 0 {
		b.WriteString("[")
		for i := range rnd.IntN(4) {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(randElement(rnd, depth+1))
		}
		b.WriteString("]")
		return b.String()
	}
	keys := []string{`"id"`, `"name"`, `"a\u0062"`, `"ab"`, `"é"`, `"x"`}
	b.WriteString("{")
	for i := range rnd.IntN(5) {
		if i > 0 {
			b.WriteString(",\n ")
		}
		// Repeated keys on purpose: the last one wins.
		b.WriteString(keys[rnd.IntN(len(keys))] + ": " + randElement(rnd, depth+1))
	}
	b.WriteString("}")
	return b.String()
}

func TestStreamChunkedMatchesEncodingJSON(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 9))
	for round := range 420 {
		elems := make([]string, rnd.IntN(30))
		max := 0
		if round >= 405 {
			// Bodies past the buffer's 64 KiB, read in large reads: most
			// elements are decoded in place, some cut by a refill.
			elems, max = make([]string, 2000+rnd.IntN(2000)), 1+rnd.IntN(1<<17)
		}
		for i := range elems {
			elems[i] = randElement(rnd, 0)
		}
		doc := `{"meta": {"n": 1}, "data": [` + strings.Join(elems, ",\n") + "]}"
		for _, gz := range []bool{false, true} {
			body := []byte(doc)
			if gz {
				var buf bytes.Buffer
				w := gzip.NewWriter(&buf)
				w.Write(body)
				w.Close()
				body = buf.Bytes()
			}
			d, err := New(&chunked{bytes.NewReader(body), rnd, max}, Options{Stream: true, Path: []string{"data"}})
			if err != nil {
				t.Fatal(err)
			}
			var got []any
			var raws []string
			for {
				v, err := d.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("round %d gz %v: %v\n%s", round, gz, err, doc)
				}
				got = append(got, v)
				raws = append(raws, string(d.Raw()))
			}
			if len(got) != len(elems) {
				t.Fatalf("round %d: %d elements, want %d", round, len(got), len(elems))
			}
			for i, e := range elems {
				dec := json.NewDecoder(strings.NewReader(e))
				dec.UseNumber()
				var want any
				if err := dec.Decode(&want); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got[i], want) {
					t.Errorf("round %d gz %v element %d: got %s, want %s", round, gz, i, fmt.Sprint(got[i]), fmt.Sprint(want))
				}
				if raws[i] != e {
					t.Errorf("round %d gz %v element %d: raw %q, want %q", round, gz, i, raws[i], e)
				}
			}
		}
	}
}

// NDJSON lines through one reused decoder, some of them bad: a bad line
// fails the body; the lines before it are whole.
func TestNDJSONLinesChunked(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		lines := make([]string, 1+rnd.IntN(20))
		for i := range lines {
			lines[i] = randElement(rnd, 1)
			lines[i] = strings.ReplaceAll(lines[i], "\n", "")
		}
		d, err := New(&chunked{strings.NewReader(strings.Join(lines, "\n") + "\n"), rnd, 0}, Options{Format: NDJSON})
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range lines {
			v, err := d.Next()
			if err != nil {
				t.Fatalf("round %d line %d: %v", round, i, err)
			}
			dec := json.NewDecoder(strings.NewReader(l))
			dec.UseNumber()
			var want any
			dec.Decode(&want)
			if !reflect.DeepEqual(v, want) {
				t.Errorf("round %d line %d: got %v want %v", round, i, v, want)
			}
		}
		if _, err := d.Next(); err != io.EOF {
			t.Fatalf("round %d: after the lines: %v", round, err)
		}
	}
}
