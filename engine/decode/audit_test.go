package decode

import (
	"bytes"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// A CSV whose records end with a lone \r (classic Mac line endings) must
// not read as a header holding every record and no rows: zero records and
// no error would lose the whole body silently.
func TestCSVLoneCarriageReturn(t *testing.T) {
	for _, body := range []string{"a,b\r1,2\r3,4\r", "a,b\n1,x\ry\n", "a\r1\r2\r"} {
		got, err := all(t, []byte(body), Options{Format: CSV})
		if err == nil || !strings.Contains(err.Error(), "carriage return") {
			t.Errorf("%q: %v, %v; want a carriage return error", body, got, err)
		}
	}
	// A \r ending the body ends its last record, as a \r\n would.
	got, err := all(t, []byte("a,b\r\n1,2\r"), Options{Format: CSV})
	if want := []any{map[string]any{"a": "1", "b": "2"}}; err != nil || !cmp.Equal(want, got) {
		t.Errorf("trailing \\r: %v, %v; want %v", got, err, want)
	}
}

// A byte order mark goes before the header's first field, even a quoted
// one, and before the first row of a body without a header.
func TestCSVByteOrderMark(t *testing.T) {
	tests := []struct {
		body string
		opts CSVOptions
		want []any
	}{
		{"\xEF\xBB\xBF\"id\",name\n1,x\n", CSVOptions{}, []any{map[string]any{"id": "1", "name": "x"}}},
		{"\xEF\xBB\xBF\"a,b\",c\n1,2\n", CSVOptions{}, []any{map[string]any{"a,b": "1", "c": "2"}}},
		{"\xEF\xBB\xBF1,2\n", CSVOptions{NoHeader: true}, []any{[]any{"1", "2"}}},
	}
	for _, tc := range tests {
		got, err := all(t, []byte(tc.body), Options{Format: CSV, CSV: tc.opts})
		if err != nil {
			t.Errorf("%q: %v", tc.body, err)
			continue
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%q (-want +got):\n%s", tc.body, d)
		}
	}
}

// A \r\n split between two reads (as a gzip or network body splits it) is
// one line break: not a stray \r after a closing quote, nor a blank line
// read as a row.
func TestCSVLineBreakAcrossReads(t *testing.T) {
	tests := []struct {
		body string
		want []any
	}{
		{"a,b\r\n1,2\r\n\r\n3,4\r\n", []any{map[string]any{"a": "1", "b": "2"}, map[string]any{"a": "3", "b": "4"}}},
		{"a,b\r\n\"1\",\"2\"\r\n\"3\",4\r\n", []any{map[string]any{"a": "1", "b": "2"}, map[string]any{"a": "3", "b": "4"}}},
		{"a\r\n1\r\n\r\n2\r\n", []any{map[string]any{"a": "1"}, map[string]any{"a": "2"}}},
	}
	for _, tc := range tests {
		got, err := allFrom(t, iotest.OneByteReader(bytes.NewReader([]byte(tc.body))), Options{Format: CSV})
		if err != nil {
			t.Fatalf("%q: %v", tc.body, err)
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%q (-want +got):\n%s", tc.body, d)
		}
	}
}

// Attributes whose names differ only by namespace would be one key once
// prefixes are dropped: one value would be lost silently.
func TestXMLAttributesCollide(t *testing.T) {
	body := `<r xmlns:a="u1" xmlns:b="u2"><e a:id="1" b:id="2">x</e></r>`
	got, err := all(t, []byte(body), Options{Format: XML})
	if err == nil || !strings.Contains(err.Error(), `"id"`) {
		t.Fatalf("%v, %v; want an error naming the attribute", got, err)
	}
}

// TestJSONByteOrderMark: a UTF-8 byte order mark before a JSON document,
// streamed or whole, or before NDJSON lines is skipped: every record is
// read.
func TestJSONByteOrderMark(t *testing.T) {
	bom := "\uFEFF"
	for _, tc := range []struct {
		name string
		body string
		opts Options
	}{
		{"streamed list", bom + `[{"id":1},{"id":2}]`, Options{Stream: true, Default: true}},
		{"whole document", bom + `{"items":[{"id":1},{"id":2}]}`, Options{}},
		{"ndjson", bom + "{\"id\":1}\n{\"id\":2}\n", Options{Format: NDJSON}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := all(t, []byte(tc.body), tc.opts)
			if err != nil {
				t.Fatalf("after %d values: %v", len(got), err)
			}
			want := 2
			if !tc.opts.Stream && tc.opts.Format != NDJSON {
				want = 1 // the document
			}
			if len(got) != want {
				t.Fatalf("values = %v, want %d", got, want)
			}
		})
	}
}
