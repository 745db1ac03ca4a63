package runner

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ferry-etl/ferry/engine/decode"
	"github.com/ferry-etl/ferry/engine/spec"
)

// Which JSON streams read their answers as a stream: records of a shape
// decode.Split knows, with pagination reading only what lies beside the
// array; anything else reads the document whole.
func TestPlanBody(t *testing.T) {
	tests := []struct {
		name, stream string
		streams      bool
		path         []string
		capture      [][]string
	}{
		{"default records", `{request: {path: /x}}`, true, nil, nil},
		{"a path", `{request: {path: /x}, records: '.data.items[]'}`, true, []string{"data", "items"}, nil},
		{"a path and a filter", `{request: {path: /x}, records: '.data[] | select(.ok)'}`, true, []string{"data"}, nil},
		{"the whole body", `{request: {path: /x}, records: '.'}`, false, nil, nil},
		{"a computed list", `{request: {path: /x}, records: '[.a[], .b[]] | .[]'}`, false, nil, nil},
		{"a cursor beside the list", `{request: {path: /x}, records: '.data[]', paginate: {type: cursor, token: .links.next, param: p}}`, true, []string{"data"}, [][]string{{"links", "next"}}},
		{"a cursor read from the list", `{request: {path: /x}, records: '.data[]', paginate: {type: cursor, token: '.data[-1].id', param: p}}`, false, nil, nil},
		{"a cursor under the list's key", `{request: {path: /x}, records: '.data[]', paginate: {type: cursor, token: .data.next, param: p}}`, false, nil, nil},
		{"a cursor inside the list's parent", `{request: {path: /x}, records: '.r.items[]', paginate: {type: cursor, token: .r.next, param: p}}`, true, []string{"r", "items"}, [][]string{{"r", "next"}}},
		{"a cursor on a top-level list", `{request: {path: /x}, paginate: {type: cursor, token: .next, param: p}}`, false, nil, nil},
		{"a header cursor", `{request: {path: /x}, paginate: {type: cursor, token_header: X-Next, param: p}}`, true, []string{}, nil},
		{"link headers", `{request: {path: /x}, records: '.data[]', paginate: {type: link_header}}`, true, []string{"data"}, nil},
		{"a total", `{request: {path: /x}, records: '.data[]', paginate: {type: offset, param: o, total: .meta.total}}`, true, []string{"data"}, [][]string{{"meta", "total"}}},
		{"stop_when on the page", `{request: {path: /x}, records: '.data[]', paginate: {type: page, param: p, stop_when: page > 3}}`, true, []string{"data"}, nil},
		{"stop_when on the body", `{request: {path: /x}, records: '.data[]', paginate: {type: page, param: p, stop_when: response.meta.last}}`, true, []string{"data"}, [][]string{{"meta", "last"}}},
		{"stop_when on the list", `{request: {path: /x}, records: '.data[]', paginate: {type: page, param: p, stop_when: len(response.data) == 0}}`, false, nil, nil},
		{"stop_when on all of it", `{request: {path: /x}, records: '.data[]', paginate: {type: page, param: p, stop_when: response == nil}}`, false, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := spec.Parse("spec.yaml", []byte(fmt.Sprintf("version: 1\nname: t\nhttp: {base_url: \"https://x\"}\nstreams:\n  s: %s\n", tc.stream)), nil)
			if err != nil {
				t.Fatal(err)
			}
			p := planBody(f.Stream("s"))
			if p.stream != tc.streams {
				t.Fatalf("streams = %v, want %v", p.stream, tc.streams)
			}
			if !tc.streams {
				if p.maxBytes != 32<<20 {
					t.Errorf("limit of a body read whole = %d, want 32 MiB", p.maxBytes)
				}
				return
			}
			if d := cmp.Diff(tc.path, p.path, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("path (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.capture, p.capture); d != "" {
				t.Errorf("capture (-want +got):\n%s", d)
			}
			if p.maxBytes != 16<<30 {
				t.Errorf("limit of a streamed body = %d, want 16 GiB", p.maxBytes)
			}
		})
	}
}

// The other formats: CSV options reach the decoder, and the records
// program applies to each line or row (none by default).
func TestPlanBodyFormats(t *testing.T) {
	f, err := spec.Parse("spec.yaml", []byte(`version: 1
name: t
http: {base_url: "https://x"}
streams:
  c:
    request: {path: /c}
    response:
      format: csv
      compression: gzip
      csv: {header: false, columns: [a, b], delimiter: ";", quote: ""}
  n:
    request: {path: /n}
    response: {format: ndjson}
    records: select(.ok)
  x:
    request: {path: /x}
    response: {format: xml, max_bytes: 1000}
    records: .a.b
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := planBody(f.Stream("c"))
	want := decode.CSVOptions{NoHeader: true, Columns: []string{"a", "b"}, Delimiter: ';', NoQuote: true}
	if d := cmp.Diff(want, c.csv); d != "" || !c.stream || c.each != nil || c.compression != "gzip" || c.accept != "text/csv, */*;q=0.8" {
		t.Errorf("csv plan = %+v (-want +got csv):\n%s", c, d)
	}
	if n := planBody(f.Stream("n")); !n.stream || n.each == nil || n.each.Source() != "select(.ok)" {
		t.Errorf("ndjson plan = %+v", n)
	}
	if x := planBody(f.Stream("x")); x.stream || x.maxBytes != 1000 || x.each.Source() != ".a.b" {
		t.Errorf("xml plan = %+v", x)
	}
}
