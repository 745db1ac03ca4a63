package decode

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// all reads every value of body, or the first error; and holds NewBytes
// (the body read in place) to what New gives, value by value, with each
// value's raw text and line, and to the same error.
func all(t *testing.T, body []byte, opts Options) ([]any, error) {
	t.Helper()
	orig := bytes.Clone(body)
	want, wantErr := readAll(New(bytes.NewReader(body), opts))
	got, gotErr := readAll(NewBytes(body, opts))
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !cmp.Equal(got, want) {
		t.Errorf("NewBytes read %d values (%v), New %d (%v): they differ", len(got), gotErr, len(want), wantErr)
	}
	if !bytes.Equal(body, orig) {
		t.Error("NewBytes changed the body it read")
	}
	return allFrom(t, bytes.NewReader(body), opts)
}

// read is a value as a Decoder gives it, with its raw text and line.
type read struct {
	V    any
	Raw  string
	Line int
}

func readAll(d *Decoder, err error) ([]read, error) {
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var out []read
	for {
		v, err := d.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, read{v, string(d.Raw()), d.Line()})
	}
}

// allFrom is all, read from r (a reader that splits its bytes, say).
func allFrom(t *testing.T, r io.Reader, opts Options) ([]any, error) {
	t.Helper()
	d, err := New(r, opts)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var out []any
	for {
		v, err := d.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
}

func gz(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestNDJSON(t *testing.T) {
	long := strings.Repeat("y", 2*bufSize)
	body := "{\"id\": 1}\r\n\n  \n{\"id\": 12345678901234567890, \"s\": \"" + long + "\"}\n[1,2]\nnull\n\"last\""
	got, err := all(t, []byte(body), Options{Format: NDJSON})
	if err != nil {
		t.Fatal(err)
	}
	want := []any{map[string]any{"id": json.Number("1")}, map[string]any{"id": json.Number("12345678901234567890"), "s": long}, []any{json.Number("1"), json.Number("2")}, nil, "last"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if got, err := all(t, nil, Options{Format: NDJSON}); err != nil || len(got) != 0 {
		t.Errorf("empty body: %v, %v; want no values", got, err)
	}
}

// A malformed line fails with its line number, after the lines before it.
func TestNDJSONErrors(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"malformed", "{\"id\": 1}\n{\"id\": 2\n{\"id\": 3}\n", "line 2: invalid JSON"},
		{"two values on a line", "{\"id\": 1}\n\n{\"id\": 2} {\"id\": 3}\n", "line 3: invalid JSON: trailing data after the JSON value"},
		{"trailing garbage", "1\n2 x\n", "line 2"},
		{"cut mid-line", "{\"id\": 1}\n{\"id\": ", "line 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := all(t, []byte(tc.body), Options{Format: NDJSON})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
			if len(got) != 1 {
				t.Errorf("values before the error = %d, want 1", len(got))
			}
		})
	}
}

func TestCSV(t *testing.T) {
	body := "\xEF\xBB\xBFid,name,note\r\n" +
		"1,\"Smith, Jane\",\"said \"\"hi\"\"\"\r\n" +
		"2,Bob,\"two\r\nlines\"\n" +
		"\n" +
		"3,,5\" screen\n" +
		"4,\"\",\"\"" // last line without a line break
	got, err := all(t, []byte(body), Options{Format: CSV})
	if err != nil {
		t.Fatal(err)
	}
	want := []any{
		map[string]any{"id": "1", "name": "Smith, Jane", "note": `said "hi"`},
		map[string]any{"id": "2", "name": "Bob", "note": "two\nlines"},
		map[string]any{"id": "3", "name": "", "note": `5" screen`},
		map[string]any{"id": "4", "name": "", "note": ""},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestCSVOptions(t *testing.T) {
	tests := []struct {
		name string
		body string
		opts CSVOptions
		want []any
	}{
		{"semicolons", "a;b\n1;'x;y'\n", CSVOptions{Delimiter: ';', Quote: '\''}, []any{map[string]any{"a": "1", "b": "x;y"}}},
		{"tabs", "a\tb\n1\t2\n", CSVOptions{Delimiter: '\t'}, []any{map[string]any{"a": "1", "b": "2"}}},
		{"no header, columns", "1,2\n3,4\n", CSVOptions{NoHeader: true, Columns: []string{"x", "y"}}, []any{map[string]any{"x": "1", "y": "2"}, map[string]any{"x": "3", "y": "4"}}},
		{"no header, lists", "1,2\n3\n", CSVOptions{NoHeader: true}, []any{[]any{"1", "2"}, []any{"3"}}},
		{"no quoting", "a,b\n\"1,\"2\"\n", CSVOptions{NoQuote: true}, []any{map[string]any{"a": `"1`, "b": `"2"`}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := all(t, []byte(tc.body), Options{Format: CSV, CSV: tc.opts})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestCSVErrors(t *testing.T) {
	tests := []struct {
		name, body string
		opts       CSVOptions
		want       string
	}{
		{"short row", "a,b,c\n1,2,3\n4,5\n", CSVOptions{}, "line 3: 2 fields, but 3 columns"},
		{"long row after a multi-line field", "a,b\n1,\"x\ny\"\n2,3,4\n", CSVOptions{}, "line 4: 3 fields, but 2 columns"},
		{"unclosed quote", "a,b\n1,\"never closed\n2,3\n", CSVOptions{}, "line 2: quoted field not closed"},
		{"text after a closing quote", "a,b\n1,\"x\"y\n", CSVOptions{}, "line 2: \"y\" after the closing quote"},
		{"repeated column", "id,name,id\n1,2,3\n", CSVOptions{}, `line 1: column "id" appears twice`},
		{"repeated given column", "1,2\n", CSVOptions{NoHeader: true, Columns: []string{"a", "a"}}, `column "a" is named twice`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := all(t, []byte(tc.body), Options{Format: CSV, CSV: tc.opts})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

// The text of each row, the part of a page a checkpoint digests, is the
// row as it is in the body.
func TestCSVRaw(t *testing.T) {
	d, err := New(strings.NewReader("a,b\n1,\"x\ny\"\n\n2,3\n"), Options{Format: CSV})
	if err != nil {
		t.Fatal(err)
	}
	var raws []string
	var lines []int
	for {
		if _, err := d.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		raws, lines = append(raws, string(d.Raw())), append(lines, d.Line())
	}
	if d := cmp.Diff([]string{"1,\"x\ny\"\n", "2,3\n"}, raws); d != "" {
		t.Errorf("raw (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]int{2, 5}, lines); d != "" {
		t.Errorf("lines (-want +got):\n%s", d)
	}
}

// An S3 ListObjectsV2 answer in the JSON shape: repeated Contents are a
// list, a single one an object, empty elements null, attributes prefixed,
// namespace declarations dropped.
func TestXML(t *testing.T) {
	body := `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name>
  <Prefix></Prefix>
  <KeyCount>2</KeyCount>
  <IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents>
    <Key>a.csv</Key>
    <Size>10</Size>
    <Owner><ID>o1</ID></Owner>
  </Contents>
  <Contents>
    <Key>b &amp; c.csv</Key>
    <Size>20</Size>
    <Tag kind="x">mixed<b>bold</b></Tag>
  </Contents>
</ListBucketResult>`
	got, err := all(t, []byte(body), Options{Format: XML})
	if err != nil {
		t.Fatal(err)
	}
	want := []any{map[string]any{"ListBucketResult": map[string]any{
		"Name": "bucket", "Prefix": nil, "KeyCount": "2", "IsTruncated": "true",
		"NextContinuationToken": "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=",
		"Contents": []any{
			map[string]any{"Key": "a.csv", "Size": "10", "Owner": map[string]any{"ID": "o1"}},
			map[string]any{"Key": "b & c.csv", "Size": "20", "Tag": map[string]any{"@kind": "x", "b": "bold", "#text": "mixed"}},
		},
	}}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestXMLErrors(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"truncated", "<a>\n<b>1</b>\n<b>2", "invalid XML"},
		{"mismatched", "<a>\n<b>1</c>\n</a>", "line 2: invalid XML"},
		{"two roots", "<a/><b/>", "second root element"},
		{"empty", " \n", "empty body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := all(t, []byte(tc.body), Options{Format: XML})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCompression(t *testing.T) {
	ndjson := "{\"id\": 1}\n{\"id\": 2}\n"
	zipped := gz(t, ndjson)
	tests := []struct {
		name string
		body []byte
		opts Options
		want int // values; -1: an error
	}{
		{"auto by magic bytes", zipped, Options{}, 2},
		{"auto by content type", zipped, Options{ContentType: "application/gzip"}, 2},
		{"auto by content encoding", zipped, Options{ContentEncoding: "gzip"}, 2},
		{"auto plain", []byte(ndjson), Options{}, 2},
		{"gzip", zipped, Options{Compression: Gzip}, 2},
		{"gzip but plain", []byte(ndjson), Options{Compression: Gzip}, -1},
		{"none keeps the bytes", zipped, Options{Compression: None}, -1},
		{"truncated gzip", zipped[:len(zipped)-6], Options{}, -1},
		{"over the limit after decompression", gz(t, ndjson+strings.Repeat(" ", 4096)), Options{MaxBytes: 1024}, -1},
		{"plain, over the limit", []byte(ndjson + strings.Repeat(" ", 4096)), Options{MaxBytes: 1024}, -1},
		{"plain, at the limit", []byte(ndjson), Options{MaxBytes: int64(len(ndjson))}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Format = NDJSON
			got, err := all(t, tc.body, tc.opts)
			if tc.want < 0 {
				if err == nil {
					t.Fatalf("got %d values, want an error", len(got))
				}
				return
			}
			if err != nil || len(got) != tc.want {
				t.Fatalf("got %d values (%v), want %d", len(got), err, tc.want)
			}
		})
	}
	_, err := all(t, gz(t, strings.Repeat("0", 5000)), Options{Format: NDJSON, MaxBytes: 1000})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("gzip bomb: %v, want ErrTooLarge", err)
	}
}

// A JSON body read whole gives the document once; its syntax errors name
// the line.
func TestDocument(t *testing.T) {
	got, err := all(t, []byte(`{"a": [1]}`), Options{})
	if err != nil || len(got) != 1 {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := all(t, []byte("{\"a\":\n [1,]}"), Options{}); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("syntax error = %v, want line 2", err)
	}
	if _, err := all(t, []byte(" "), Options{}); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty = %v, want ErrEmpty", err)
	}
	if _, err := all(t, []byte(`[1] [2]`), Options{}); err == nil {
		t.Error("two documents: no error")
	}
}
