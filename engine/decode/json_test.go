package decode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine/eval"
	"github.com/ferry-etl/ferry/engine/internal/jsonv"
)

// defaultRecords is spec.DefaultRecords (spec imports eval; decode must not
// import spec), checked against it in the runner's tests.
const defaultRecords = `if type == "array" then .[] elif . == null then empty else error("the response body is \({"object": "an object", "string": "a string", "number": "a number", "boolean": "a boolean", "null": "null"}[type]), not a list: set records to select the records") end`

// whole runs program on the document read whole: what streaming must equal.
func whole(t *testing.T, doc, program string) ([]any, error) {
	t.Helper()
	v, err := jsonv.Decode([]byte(doc))
	if err != nil {
		return nil, err
	}
	q, err := eval.CompileJQ(program, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q.Run(context.Background(), v)
}

// streamed reads doc as a stream under program's shape (or the default
// records when program is "").
func streamed(t *testing.T, doc, program string) ([]any, error) {
	t.Helper()
	opts := Options{Stream: true, Default: program == ""}
	var rest *eval.JQ
	if program != "" {
		path, r, ok, err := Split(program, nil)
		if err != nil || !ok {
			t.Fatalf("Split(%q) = %v, %v: want a streaming shape", program, ok, err)
		}
		opts.Path, rest = path, r
	}
	// A byte at a time, no element is ever whole in the buffer: each is
	// read bounds first, never in place (see jsonStream.inPlace), and
	// NewBytes, which reads them in place, must give the same values, raw
	// texts, lines and errors.
	want, wantErr := readAll(New(iotest.OneByteReader(strings.NewReader(doc)), opts))
	got, gotErr := readAll(NewBytes([]byte(doc), opts))
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !cmp.Equal(got, want) {
		t.Errorf("%q: NewBytes read %d values (%v), New a byte at a time %d (%v): they differ", doc, len(got), gotErr, len(want), wantErr)
	}
	d, err := New(strings.NewReader(doc), opts)
	if err != nil {
		return nil, err
	}
	var out []any
	for {
		v, err := d.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if rest == nil {
			out = append(out, v)
			continue
		}
		vs, err := rest.Run(context.Background(), v)
		if err != nil {
			return nil, err
		}
		out = append(out, vs...)
	}
}

// TestStreamMatchesWholeDocument: for every shape that streams, the
// records of a streamed body are exactly those of the program run on the
// whole document, and a body jq fails on fails streamed too.
func TestStreamMatchesWholeDocument(t *testing.T) {
	docs := []string{
		`[]`, `[1, "two", null, {"id": 12345678901234567890}, [3]]`, `null`, `{"b": 2, "a": 1, "c": {"x": 1}}`, `"s"`, `7`, `true`,
		`{"data": [{"id": 1}, {"id": 2}], "next": "abc"}`,
		`{"next": "abc", "data": [{"id": 1}, {"id": 2}]}`,
		`{"data": {"z": {"id": 26}, "a": {"id": 1}}}`,
		`{"data": null}`, `{"other": 1}`, `{"data": "x"}`, `{"data": 5}`, `{"data": []}`,
		`{"a": {"b": [1, 2, 3], "c": [9]}, "d": {"b": [0]}}`, `{"a": null}`, `{"a": {"x": 1}}`, `{"a": [1]}`, `{"a": "s"}`,
		`[{"a": 1}]`, ` {"a" : { "b" : [ 1 , 2 ] } } `, "{\"data\":\n[\n{\"id\":\n1}\n]\n}",
		`{"data": [{"name": "é\u00e9\"\\"}]}`, `{"a": {"b": {"x": 1, "y": 2}}}`,
		`[{"a": "]}"}, {"b": "\"]"}, "[{", -1.5e3, false]`, `{"data": [[[]], {"k": "v\\"}, "}"]}`,
	}
	programs := []string{"", ".[]", ".data[]", ".a.b[]", `."data"[]`, `.["data"][]`, ".data[] | .id", ".data[] | select(.id > 1) | {id}", ".a.b[] | ., .", ".data[] | error(\"boom\")"}
	for _, program := range programs {
		jq := program
		if jq == "" {
			jq = defaultRecords
		}
		for _, doc := range docs {
			want, werr := whole(t, doc, jq)
			got, gerr := streamed(t, doc, program)
			if (werr != nil) != (gerr != nil) {
				t.Errorf("%q on %s: whole document gives %v (%v), streamed %v (%v)", program, doc, want, werr, got, gerr)
				continue
			}
			if werr == nil {
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("%q on %s (-whole +streamed):\n%s", program, doc, d)
				}
			}
		}
	}
}

// A body cut short, malformed or followed by more data never yields a
// shorter list that looks complete: the stream fails, after the records
// it read.
func TestStreamFailsOnBrokenBodies(t *testing.T) {
	tests := []struct{ name, doc, program, want string }{
		{"cut mid-array", `[{"id": 1}, {"id": 2}, {"id"`, "", "unexpected end of the body"},
		{"cut after an element", `{"data": [{"id": 1}`, ".data[]", "unexpected end of the body"},
		{"cut after the array", `{"data": [{"id": 1}], "next": "a`, ".data[]", "unexpected end of the body"},
		{"cut before the closing brace", `{"data": [{"id": 1}]`, ".data[]", "unexpected end of the body"},
		{"malformed element", "[{\"id\": 1},\n{\"id\": 2,}]", "", "line 2"},
		{"bad literal", `[1, tru]`, "", "line 1: invalid JSON: invalid character ' ' in literal true"},
		{"bad number", `[1, 01]`, "", "line 1: invalid JSON: trailing data after the JSON value"},
		{"control character", "[\"a\u0001\"]", "", "invalid character '\\x01' in string literal"},
		{"bad escape", `["\x"]`, "", "in string escape code"},
		{"malformed value skipped", `{"other": [1,,2], "data": [1]}`, ".data[]", "unexpected \",\""},
		{"data after the document", `[1] [2]`, "", "data after the JSON value"},
		{"data after an object", `{"data": [1]} x`, ".data[]", "data after the JSON value"},
		{"path key twice", `{"data": [1], "data": [2]}`, ".data[]", `key "data" appears twice`},
		{"path key twice first", `{"data": [1], "x": 1, "data": [2]}`, ".data[]", `appears twice`},
		// .[] of an object gives one record a member: jq would see the
		// last of a repeated key only, and a record would vanish.
		{"iterated key twice", `{"data": {"a": {"id": 1}, "b": {"id": 2}, "a": {"id": 3}}}`, ".data[]", `key "a" appears twice in .data`},
		{"iterated key twice at the root", `{"a": 1, "a": 2}`, ".[]", `key "a" appears twice in the response body`},
		{"iterated keys alike once decoded", "{\"k\xe9\": 1, \"k\xe8\": 2}", ".[]", "appears twice"},
		{"empty", "  \n", "", "empty body"},
		{"missing comma", `[1 2]`, "", "expected , or ]"},
		{"unquoted key", `{data: [1]}`, ".data[]", "expected an object key"},
		{"malformed value skipped, control character", "{\"other\": \"a\u0001\", \"data\": [1]}", ".data[]", "control character"},
		{"malformed value skipped, bad escape", `{"other": "\x", "data": [1]}`, ".data[]", "invalid escape"},
		{"malformed value skipped, bad literal", `{"other": tru, "data": [1]}`, ".data[]", "invalid literal"},
		{"mismatched brackets", `[{"a": [1}, 2]`, "", "invalid JSON"},
		{"not JSON", `<html>oops</html>`, "", "invalid JSON"},
		{"not JSON on the path", `<html>oops</html>`, ".data[]", "invalid JSON"},
		{"unterminated string", `"abc`, "", "unexpected end of the body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := streamed(t, tc.doc, tc.program)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// The values a streamed body keeps for pagination: the captured paths,
// wherever they are around the array, and nothing else.
func TestStreamCapture(t *testing.T) {
	doc := `{"links": {"next": "p2", "prev": null}, "data": {"items": [{"id": 1}, {"id": 2}], "cursor": 17}, "meta": {"total": 2}, "noise": [1, 2, 3]}`
	d, err := New(strings.NewReader(doc), Options{Stream: true, Path: []string{"data", "items"}, Capture: [][]string{{"links", "next"}, {"data", "cursor"}, {"meta", "total"}}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 2 {
		t.Errorf("records = %d, want 2", n)
	}
	want := map[string]any{"links": map[string]any{"next": "p2", "prev": nil}, "data": map[string]any{"cursor": json.Number("17")}, "meta": map[string]any{"total": json.Number("2")}}
	if d := cmp.Diff(want, d.Doc()); d != "" {
		t.Errorf("Doc (-want +got):\n%s", d)
	}
}

// The raw text of each element is what was in the body, for digests.
func TestStreamRaw(t *testing.T) {
	d, err := New(strings.NewReader("[ {\"a\": [1, 2]} ,\n\"x\" , 3.5e2 ]"), Options{Stream: true, Default: true})
	if err != nil {
		t.Fatal(err)
	}
	var raws []string
	var lines []int
	for {
		_, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, string(d.Raw()))
		lines = append(lines, d.Line())
	}
	if d := cmp.Diff([]string{`{"a": [1, 2]}`, `"x"`, `3.5e2`}, raws); d != "" {
		t.Errorf("raw (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]int{1, 2, 2}, lines); d != "" {
		t.Errorf("lines (-want +got):\n%s", d)
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		src  string
		path []string
		rest string
		ok   bool
	}{
		{".[]", []string{}, "", true},
		{".data[]", []string{"data"}, "", true},
		{".a.b[]", []string{"a", "b"}, "", true},
		{`."a-b"[]`, []string{"a-b"}, "", true},
		{`.["a b"].c[]`, []string{"a b", "c"}, "", true},
		{".a[] | {id}", []string{"a"}, "{ id }", true},
		{".a[] | select(.x) | .y", []string{"a"}, "select(.x) | .y", true},
		{".", nil, "", false},
		{".a", nil, "", false},
		{".a[]?", nil, "", false},
		{".a[].b", nil, "", false},
		{".a[0][]", nil, "", false},
		{".a[1:][]", nil, "", false},
		{".a[], .b[]", nil, "", false},
		{".a[] as $x | $x", nil, "", false},
		{"def f: .; .a[] | f", nil, "", false},
		{"(.a[])", nil, "", false},
		{`.["\(.k)"][]`, nil, "", false},
		{"[.a[]]", nil, "", false},
		{"first(.a[])", nil, "", false},
	}
	for _, tc := range tests {
		path, rest, ok, err := Split(tc.src, nil)
		if err != nil {
			t.Errorf("Split(%q): %v", tc.src, err)
			continue
		}
		if ok != tc.ok {
			t.Errorf("Split(%q) ok = %v, want %v", tc.src, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		if d := cmp.Diff(tc.path, path); d != "" {
			t.Errorf("Split(%q) path (-want +got):\n%s", tc.src, d)
		}
		got := ""
		if rest != nil {
			got = rest.Source()
		}
		if got != tc.rest {
			t.Errorf("Split(%q) rest = %q, want %q", tc.src, got, tc.rest)
		}
	}
	if _, _, _, err := Split(".a[] | $nope", nil); err == nil {
		t.Error("Split with an undefined variable after the iteration: no error")
	}
	if _, rest, ok, err := Split(".a[] | $config.x", []string{"config"}); err != nil || !ok || rest == nil {
		t.Errorf("Split with a declared variable: %v %v %v", rest, ok, err)
	}
}

func TestPathOf(t *testing.T) {
	tests := []struct {
		src  string
		want []string
	}{
		{".next", []string{"next"}},
		{".links.next", []string{"links", "next"}},
		{`._links."next"`, []string{"_links", "next"}},
		{".", nil}, {".a[]", nil}, {".a[-1].id", nil}, {".a?", nil}, {".a // empty", nil}, {".a | .b", nil}, {"$x", nil}, {"length", nil},
	}
	for _, tc := range tests {
		got, ok := PathOf(tc.src)
		if ok != (tc.want != nil) || !cmp.Equal(got, tc.want) {
			t.Errorf("PathOf(%q) = %v, %v; want %v", tc.src, got, ok, tc.want)
		}
	}
}

func TestMemberPaths(t *testing.T) {
	tests := []struct {
		src   string
		paths [][]string
		ok    bool
	}{
		{"page > 3", nil, true},
		{"response.meta.last == true", [][]string{{"meta", "last"}}, true},
		{`response.a.b && response["c"] != nil`, [][]string{{"a", "b"}, {"c"}}, true},
		{"response?.meta?.done", [][]string{{"meta", "done"}}, true},
		{"len(response.items) == 0", [][]string{{"items"}}, true},
		{"len(response) == 0", nil, false},
		{"response.items[0].id == nil", nil, false},
		{"response == nil", nil, false},
	}
	for _, tc := range tests {
		paths, ok := MemberPaths(tc.src, "response")
		if ok != tc.ok || tc.ok && !cmp.Equal(paths, tc.paths) {
			t.Errorf("MemberPaths(%q) = %v, %v; want %v, %v", tc.src, paths, ok, tc.paths, tc.ok)
		}
	}
}

// An element far larger than the read buffer streams like a small one.
func TestStreamLargeElement(t *testing.T) {
	big := strings.Repeat("x", 3*bufSize+17)
	doc := fmt.Sprintf(`{"data": [{"s": %q}, {"s": "y"}]}`, big)
	got, err := streamed(t, doc, ".data[] | .s | length")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]any{len(big), 1}, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// A read error of the body (a connection cut) is the stream's error.
func TestStreamReadError(t *testing.T) {
	cut := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader(`[{"id": 1}, {"id"`), errReader{cut})
	d, err := New(r, Options{Stream: true, Default: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Next(); err != nil {
		t.Fatalf("first record: %v", err)
	}
	if _, err := d.Next(); !errors.Is(err, cut) {
		t.Fatalf("second: %v, want the read error", err)
	}
	if _, err := d.Next(); !errors.Is(err, cut) {
		t.Fatalf("after the error: %v, want it again", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestListPath: the list a records program reads first, for a body read
// whole, so that paging counts the server's list and not the records a
// filter left of it: Split's shapes, an optional iteration and a default
// for a missing list.
func TestListPath(t *testing.T) {
	tests := []struct {
		src  string
		path []string
		ok   bool
	}{
		{".[]", []string{}, true},
		{".a.b[] | select(.x)", []string{"a", "b"}, true},
		{".[]?", []string{}, true},
		{".data[]?", []string{"data"}, true},
		{".data[]? | select(.pull_request == null)", []string{"data"}, true},
		{"(.data // [])[]", []string{"data"}, true},
		{"(.a.b // [])[]? | {id}", []string{"a", "b"}, true},
		{".", nil, false},
		{".a", nil, false},
		{".a?[]", nil, false},
		{".a[]?.b", nil, false},
		{".a[]??", nil, false},
		{"(.a // [1])[]", nil, false},
		{"(.a // .b)[]", nil, false},
		{"(.a[] // [])[]", nil, false},
		{"(.a // [])", nil, false},
		{".a[], .b[]", nil, false},
		{"[.a[]?]", nil, false},
		{"def f: .; .a[]? | f", nil, false},
	}
	for _, tc := range tests {
		path, ok := ListPath(tc.src)
		if ok != tc.ok || !slices.Equal(path, tc.path) {
			t.Errorf("ListPath(%q) = %q, %v; want %q, %v", tc.src, path, ok, tc.path, tc.ok)
		}
	}
}
