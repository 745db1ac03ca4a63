package runner_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func seq(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

// lines is an NDJSON body of records from..to-1.
func lines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "{\"id\": %d, \"pad\": \"%s\"}\n", i, strings.Repeat("x", i%7))
	}
	return b.String()
}

// checkpointsOf decodes the page checkpoints of a stream.
func checkpointsOf(out *stateful, stream string) []map[string]any {
	var cps []map[string]any
	for _, cp := range out.cps {
		if cp.Stream == stream {
			var m map[string]any
			json.Unmarshal(cp.Value, &m)
			cps = append(cps, m)
		}
	}
	return cps
}

const partsSpec = `
version: 1
name: parts
config:
  url: {required: true}
http: {base_url: "${ config.url }"}
streams:
  events:
    request: {path: /events}
    response: {format: ndjson}
tables:
  events: {from: events, mode: append}
`

// A streamed page is committed in parts of 1,000 values: the sink never
// holds more than one part's rows. A run that stops after a part resumes
// the page after it, re-reading (not writing) the committed part: every
// record is written once, even into an append table.
func TestStreamedPageCommittedInParts(t *testing.T) {
	body := lines(0, 2500)
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		io.WriteString(w, body)
	}))
	defer srv.Close()
	f := mustSpec(t, partsSpec)
	cfg := map[string]any{"url": srv.URL}
	out := newStateful()
	if _, err := runWith(t, f, runOpts{cfg: cfg}, out); err != nil {
		t.Fatal(err)
	}
	cps := checkpointsOf(out, "events")
	if len(cps) != 3 {
		t.Fatalf("checkpoints = %v, want parts 1000 and 2000, then the page", cps)
	}
	for i, want := range []float64{1000, 2000} {
		if cps[i]["part"] != want || cps[i]["pages"] != 0.0 || cps[i]["digest"] == nil {
			t.Errorf("checkpoint %d = %v, want part %v of page 1 with a digest", i, cps[i], want)
		}
	}
	if cps[2]["pages"] != 1.0 || cps[2]["done"] != true || cps[2]["part"] != nil {
		t.Errorf("last checkpoint = %v, want page 1 done", cps[2])
	}

	// Stop after the first part: its rows are committed, and the next run
	// goes on from there.
	first := newStateful()
	first.rows["events"] = append(first.rows["events"], out.rows["events"][:1000]...)
	first.state["events"] = map[string]json.RawMessage{"": out.cps[0].Value}
	resumed := newStateful()
	if _, err := runWith(t, f, runOpts{cfg: cfg, state: first.state}, resumed); err != nil {
		t.Fatal(err)
	}
	all := append(first.field("events", "id"), resumed.field("events", "id")...)
	if d := cmp.Diff(seq(0, 2500), all); d != "" {
		t.Errorf("rows of both runs (-want +got):\n%s", d)
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("requests = %d, want 2 (the page asked again)", n)
	}
}

// A page that changed since an earlier run committed its first part
// cannot be resumed after it: the chain fails, the checkpoint goes back to
// the page's start, and the next run reads the whole page.
func TestStreamedPageChangedSinceThePart(t *testing.T) {
	var body atomic.Value
	body.Store(lines(0, 2500))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body.Load().(string))
	}))
	defer srv.Close()
	f := mustSpec(t, partsSpec)
	cfg := map[string]any{"url": srv.URL}
	out := newStateful()
	if _, err := runWith(t, f, runOpts{cfg: cfg}, out); err != nil {
		t.Fatal(err)
	}
	state := map[string]map[string]json.RawMessage{"events": {"": out.cps[0].Value}}
	body.Store(lines(0, 1) + lines(0, 2500)) // a record more at the top
	second := newStateful()
	_, err := runWith(t, f, runOpts{cfg: cfg, state: state}, second)
	if err == nil || !strings.Contains(err.Error(), "page 1: the answer changed since an interrupted run committed its first 1000 values") {
		t.Fatalf("second run: %v, want the page-changed failure", err)
	}
	if n := len(second.rows["events"]); n != 0 {
		t.Errorf("second run committed %d rows", n)
	}
	cp := checkpointsOf(second, "events")
	if len(cp) != 1 || cp[0]["part"] != nil || cp[0]["pages"] != 0.0 {
		t.Fatalf("second run's checkpoints = %v, want one back at the start of page 1", cp)
	}
	third := newStateful()
	if _, err := runWith(t, f, runOpts{cfg: cfg, state: second.state}, third); err != nil {
		t.Fatal(err)
	}
	if n := len(third.rows["events"]); n != 2501 {
		t.Errorf("third run: %d rows, want the whole page (2501)", n)
	}
}

// A JSON list streamed element by element: the page fails where the body
// breaks (a body ending mid-array, a malformed element, data after the
// document), the parts before are committed, the rest of the page is not,
// and the run never reports a short page as complete.
func TestStreamedJSONFailures(t *testing.T) {
	elems := func(from, to int) string {
		var parts []string
		for i := from; i < to; i++ {
			parts = append(parts, fmt.Sprintf(`{"id": %d}`, i))
		}
		return strings.Join(parts, ",\n")
	}
	tests := []struct {
		name, body, want string
		committed        int
	}{
		{"cut mid-array", `{"data": [` + elems(0, 1500) + `, {"id": 15`, "unexpected end of the body", 1000},
		{"cut after the array", `{"data": [` + elems(0, 1200) + `], "next": `, "unexpected end of the body", 1000},
		{"malformed element", `{"data": [` + elems(0, 1300) + `, {"id": 1300,}]}`, "line 1300: invalid JSON", 1000},
		{"data after the document", `{"data": [` + elems(0, 10) + `]} {"data": []}`, "data after the JSON value", 0},
		{"an object where the list was", `{"data": {"b": {"id": 2}, "a": {"id": 1}}, "next": null}`, "", 2},
		{"null where the list was", `{"data": null}`, "records: cannot iterate over .data: it is null", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// No Content-Length: the body ends cleanly where it ends, so
				// only the decoder can tell it is cut.
				w.(http.Flusher).Flush()
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			f := mustSpec(t, `
version: 1
name: j
config:
  url: {required: true}
http: {base_url: "${ config.url }"}
streams:
  items:
    request: {path: /items}
    records: .data[]
    paginate: {type: cursor, token: .next, param: after}
tables:
  items: {from: items, mode: append}
`)
			out := newStateful()
			_, err := runWith(t, f, runOpts{cfg: map[string]any{"url": srv.URL}}, out)
			if tc.want == "" {
				// .data[] of an object: its values, as jq gives them.
				if err != nil || len(out.rows["items"]) != tc.committed {
					t.Fatalf("run: %v, %d rows; want %d", err, len(out.rows["items"]), tc.committed)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "stream items: page 1") {
				t.Fatalf("run: %v, want %q", err, tc.want)
			}
			if n := len(out.rows["items"]); n != tc.committed {
				t.Errorf("committed rows = %d, want %d (whole parts only)", n, tc.committed)
			}
		})
	}
}

// Pagination reads what lies beside a streamed array: a cursor after the
// array, a total before it, response.x in stop_when.
func TestStreamedJSONPagination(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		var items []string
		for i := after; i < min(after+700, 2000); i++ {
			items = append(items, fmt.Sprintf(`{"id": %d}`, i))
		}
		next := "null"
		if after+700 < 2000 {
			next = strconv.Itoa(after + 700)
		}
		fmt.Fprintf(w, `{"meta": {"total": 2000, "last": %v}, "result": {"items": [%s], "next": %s}}`, after+700 >= 2000, strings.Join(items, ","), next)
	}))
	defer srv.Close()
	for name, paging := range map[string]string{
		"cursor":              "{type: cursor, token: .result.next, param: after}",
		"offset with a total": "{type: offset, param: after, total: .meta.total}",
		"stop_when":           "{type: offset, param: after, stop_when: response.meta.last}",
	} {
		t.Run(name, func(t *testing.T) {
			f := mustSpec(t, `
version: 1
name: p
config:
  url: {required: true}
http: {base_url: "${ config.url }"}
streams:
  items:
    request: {path: /items}
    records: .result.items[]
    paginate: `+paging+`
tables:
  items: {from: items, primary_key: [id]}
`)
			out := newStateful()
			sum, err := runWith(t, f, runOpts{cfg: map[string]any{"url": srv.URL}}, out)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(seq(0, 2000), out.field("items", "id")); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			if sum.Streams[0].Pages != 3 {
				t.Errorf("pages = %d, want 3", sum.Streams[0].Pages)
			}
		})
	}
}

// A streamed body has its own limit, after decompression; a body over it
// fails its chain and is never cut short.
func TestStreamedBodyLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, lines(0, 3000))
	}))
	defer srv.Close()
	f := mustSpec(t, strings.Replace(partsSpec, "{format: ndjson}", "{format: ndjson, max_bytes: 50000}", 1))
	out := newStateful()
	_, err := runWith(t, f, runOpts{cfg: map[string]any{"url": srv.URL}}, out)
	if err == nil || !strings.Contains(err.Error(), "response body too large: over the limit of 50000 bytes") {
		t.Fatalf("run: %v, want the body limit", err)
	}
	if n := len(out.rows["events"]); n != 0 {
		t.Errorf("%d rows written from a body over the limit", n)
	}
}
