package decode

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine/internal/jsonv"
)

// chunks gives at most n bytes a Read.
type chunks struct {
	r io.Reader
	n int
}

func (c *chunks) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// TestReplacedCounted: Replaced counts the strings read as U+FFFD once
// each, however the body is read: a list value by value (in place from
// NewBytes, or from a reader in pieces, where an element tried in place
// may be found cut after a replaced string, and read again: still counted
// once), the members of an object iterated by .[], captured paths, a
// document read whole and NDJSON lines.
func TestReplacedCounted(t *testing.T) {
	bad := "\"a\xffb\""
	list := "[" + bad + `, "ok", {"k": "\ud800"}, [1, ` + bad + `]]`
	for _, tc := range []struct {
		name, body string
		opts       Options
		want       int
	}{
		{"list", list, Options{Stream: true, Default: true}, 3},
		{"list at a path, captured", `{"next": ` + bad + `, "data": ` + list + `}`, Options{Stream: true, Path: []string{"data"}, Capture: [][]string{{"next"}}}, 4},
		{"object iterated", `{"a": ` + bad + `, "b": "\udfff", ` + "\"c\xfe\": 1}", Options{Stream: true}, 3},
		{"document", `{"data": ` + list + `}`, Options{}, 3},
		{"ndjson", bad + "\n\"ok\"\n{\"k\\udc00\": 1}\n", Options{Format: NDJSON}, 2},
	} {
		for n := range 17 {
			var d *Decoder
			var err error
			how := "NewBytes"
			if n == 0 {
				d, err = NewBytes([]byte(tc.body), tc.opts)
			} else {
				how = fmt.Sprintf("%d bytes a read", n)
				d, err = New(&chunks{strings.NewReader(tc.body), n}, tc.opts)
			}
			if err != nil {
				t.Fatal(err)
			}
			for err == nil {
				_, err = d.Next()
			}
			if err != io.EOF {
				t.Fatalf("%s, %s: %v", tc.name, how, err)
			}
			if d.Replaced() != tc.want {
				t.Errorf("%s, %s: Replaced = %d, want %d", tc.name, how, d.Replaced(), tc.want)
			}
		}
	}
}

// TestKeysMergedFail: two keys of one object that differ in the body but
// read alike once U+FFFD replaced something fail the value, with its
// line and a *jsonv.KeyError the runner tells from a malformed body, in
// every way a body is read; a key repeated alike keeps its last value.
func TestKeysMergedFail(t *testing.T) {
	obj := "{\"id\": 1,\n \"k\xe9\": 1, \"k\xe8\": 2}"
	for _, tc := range []struct {
		name, body string
		opts       Options
		line       string // the value's, or for a document the key's
	}{
		{"list", "[{\"id\": 0},\n" + obj + "]", Options{Stream: true, Default: true}, "line 2"},
		{"object iterated", `{"x": ` + obj + `}`, Options{Stream: true}, "line 2"},
		{"captured", `{"next": ` + obj + `, "data": []}`, Options{Stream: true, Path: []string{"data"}, Capture: [][]string{{"next"}}}, "line 2"},
		{"document", "{\"data\": [\n" + obj + "]}", Options{}, "line 3"},
		{"ndjson", "{\"id\": 0}\n" + strings.ReplaceAll(obj, "\n", "") + "\n", Options{Format: NDJSON}, "line 2"},
	} {
		d, err := NewBytes([]byte(tc.body), tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		for err == nil {
			_, err = d.Next()
		}
		var ke *jsonv.KeyError
		if !errors.As(err, &ke) || !strings.Contains(err.Error(), `"k\ufffd" appears twice`) || !strings.Contains(err.Error(), tc.line+":") {
			t.Errorf("%s: error = %v, want a KeyError for \"k\\ufffd\" on %s", tc.name, err, tc.line)
		}
		if strings.Contains(err.Error(), "invalid JSON") {
			t.Errorf("%s: %v: the body is valid JSON", tc.name, err)
		}
	}
	v, err := allFrom(t, bytes.NewReader([]byte("[{\"k\xe9\": 1, \"k\xe9\": 2}]")), Options{Stream: true, Default: true})
	if err != nil || len(v) != 1 || v[0].(map[string]any)["k\uFFFD"] == nil || v[0].(map[string]any)["k\uFFFD"].(interface{ String() string }).String() != "2" {
		t.Errorf("a key repeated alike: %#v, %v; want its last value", v, err)
	}
}
