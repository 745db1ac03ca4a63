package engine_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// serveList serves all at path, paged by the query parameters page (with
// per_page) or offset (with limit), whichever the request carries, with at
// most max elements a page. wrap puts the page's elements into the body.
func (fx *fixture) serveList(path string, all []any, max int, wrap func(items []any, more bool, r *http.Request) any) {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	fx.routes[path] = func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		num := func(k string, d int) int {
			if n, err := strconv.Atoi(q.Get(k)); err == nil {
				return n
			}
			return d
		}
		var lo, n int
		if q.Has("page") {
			n = min(num("per_page", 30), max)
			lo = (num("page", 1) - 1) * n
		} else {
			n = min(num("limit", 25), max)
			lo = num("offset", 0)
		}
		lo = min(lo, len(all))
		hi := min(lo+n, len(all))
		json.NewEncoder(w).Encode(wrap(all[lo:hi], hi < len(all), r))
	}
}

// issuesAndPulls is GitHub's issues list: pull requests are issues too,
// and a page may hold nothing but pull requests.
func issuesAndPulls() (all []any, issues []string) {
	for i := 1; i <= 8; i++ {
		it := map[string]any{"id": i}
		if i == 3 || i == 4 || i == 7 {
			it["pull_request"] = map[string]any{"url": "…"}
		} else {
			issues = append(issues, strconv.Itoa(i))
		}
		all = append(all, it)
	}
	return all, issues
}

// TestFilteredPageDoesNotEndPaging: a records program that drops elements
// (GitHub's issues list holds pull requests, which a spec filters out) can
// leave a page without records while the list goes on. The end of paging
// is the server's list running out, not the filter's output: every issue
// is written. (A page emptied by the filter used to end a page or offset
// chain, and one shortened by it an offset chain with a size: exit 0, the
// issues after it never read; and still did for a body read whole whose
// records program iterates the list optionally, .data[]?, or with a
// default, (.data // [])[].)
func TestFilteredPageDoesNotEndPaging(t *testing.T) {
	all, issues := issuesAndPulls()
	bare := func(items []any, _ bool, _ *http.Request) any { return items }
	wrapped := func(items []any, _ bool, _ *http.Request) any {
		return map[string]any{"data": items, "count": len(items)}
	}
	for name, c := range map[string]struct {
		records, paginate string
		wrap              func([]any, bool, *http.Request) any
	}{
		"page, streamed list":    {`.[] | select(.pull_request == null)`, `{type: page, param: page, size: 2, size_param: per_page}`, bare},
		"page, wrapped list":     {`.data[] | select(.pull_request == null)`, `{type: page, param: page, size: 2, size_param: per_page, stop_when: 'response.count == 0'}`, wrapped},
		"page, document whole":   {`.data[] | select(.pull_request == null)`, `{type: page, param: page, size: 2, size_param: per_page, stop_when: 'len(response.data) == 0'}`, wrapped},
		"offset, no size":        {`.[] | select(.pull_request == null)`, `{type: offset, param: offset}`, bare},
		"offset, size":           {`.[] | select(.pull_request == null)`, `{type: offset, param: offset, size: 2, size_param: limit}`, bare},
		"offset, document whole": {`.data[] | select(.pull_request == null)`, `{type: offset, param: offset, size: 2, size_param: limit, stop_when: 'len(response.data) == 0'}`, wrapped},
		"page, optional list":    {`.data[]? | select(.pull_request == null)`, `{type: page, param: page, size: 2, size_param: per_page}`, wrapped},
		"offset, optional list":  {`.data[]? | select(.pull_request == null)`, `{type: offset, param: offset, size: 2, size_param: limit}`, wrapped},
		"offset, default list":   {`(.data // [])[] | select(.pull_request == null)`, `{type: offset, param: offset}`, wrapped},
	} {
		t.Run(name, func(t *testing.T) {
			fx := newFixture(t, specHead+`streams:
  issues:
    request: {path: /issues, query: {limit: 2}}
    records: '`+c.records+`'
    paginate: `+c.paginate+`
tables:
  issues: {from: issues, primary_key: [id]}
`, "")
			fx.serveList("/issues", all, 2, c.wrap)
			if _, err := fx.run(engine.RunOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := fx.query(`SELECT id FROM "nl__issues" ORDER BY id`); !slices.Equal(got, issues) {
				t.Errorf("issues = %v, want %v", got, issues)
			}
		})
	}
}

// TestFilteredXMLPageDoesNotEndPaging: an XML body is read whole, and its
// records program reads one list as a JSON one does: a page whose items
// the filter drops (GitHub-like issues, pull requests among them) is not
// the list's end, for page or offset paging. (An XML page's length was
// always its records: the page of pull requests ended the chain, exit 0,
// the issues after it never read.)
func TestFilteredXMLPageDoesNotEndPaging(t *testing.T) {
	all, issues := issuesAndPulls()
	for name, c := range map[string]struct{ records, paginate string }{
		"page":            {`.issues.issue[]? | select(.pull_request == null)`, `{type: page, param: page, size: 2, size_param: per_page}`},
		"offset":          {`.issues.issue[]? | select(.pull_request == null)`, `{type: offset, param: offset, size: 2, size_param: limit}`},
		"offset, default": {`(.issues.issue // [])[] | select(.pull_request == null)`, `{type: offset, param: offset, size: 2, size_param: limit}`},
	} {
		t.Run(name, func(t *testing.T) {
			if got := xmlIssuesRead(t, c.records, c.paginate, all); !slices.Equal(got, issues) {
				t.Errorf("issues = %v, want %v", got, issues)
			}
		})
	}
}

// xmlIssuesRead runs a stream of issues read as XML with records and
// paginate from serveXMLIssues's list of all, and returns the ids written.
func xmlIssuesRead(t *testing.T, records, paginate string, all []any) []string {
	t.Helper()
	fx := newFixture(t, specHead+`streams:
  issues:
    request: {path: /issues, query: {limit: 2}}
    response: {format: xml}
    records: '`+records+`'
    paginate: `+paginate+`
tables:
  issues: {from: issues, primary_key: [id]}
`, "")
	fx.serveXMLIssues(t, all)
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	return fx.query(`SELECT id FROM "nl__issues" ORDER BY id`)
}

// serveXMLIssues serves all at /issues as serveList does, two a page, as
// XML: <issues><issue><id>1</id>[<pull_request>yes</pull_request>]</issue>...</issues>.
func (fx *fixture) serveXMLIssues(t *testing.T, all []any) {
	fx.serveList("/issues", all, 2, func(items []any, _ bool, _ *http.Request) any { return items })
	fx.mu.Lock()
	defer fx.mu.Unlock()
	list := fx.routes["/issues"]
	fx.routes["/issues"] = func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		list(rec, r)
		var items []map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &items); err != nil {
			t.Error(err)
		}
		var b strings.Builder
		b.WriteString("<issues>")
		for _, it := range items {
			b.WriteString("<issue><id>" + strconv.Itoa(int(it["id"].(float64))) + "</id>")
			if it["pull_request"] != nil {
				b.WriteString("<pull_request>yes</pull_request>")
			}
			b.WriteString("</issue>")
		}
		b.WriteString("</issues>")
		w.Header().Set("Content-Type", "application/xml")
		w.Write([]byte(b.String()))
	}
}

// TestXMLRootIsNoList: an XML document is an object holding its one root
// element, so a records program that iterates the root (.[] | f, or the
// root element's children by name, .issues[] | f) reads no list the
// server pages through: the page's length is its records, as before
// XML's list was known. (Counted as a list of one, every page was one
// item long: a page chain with an empty page never ended, an offset chain
// with a size ended after its first page, exit 0, the rest unread.)
func TestXMLRootIsNoList(t *testing.T) {
	all, _ := issuesAndPulls()
	var ids []string
	for _, it := range all {
		ids = append(ids, strconv.Itoa(it.(map[string]any)["id"].(int)))
	}
	slices.Sort(ids)
	for name, c := range map[string]struct{ records, paginate string }{
		"page, root":            {`.[] | .issue[]?`, `{type: page, param: page, size: 2, size_param: per_page, max_pages: 20}`},
		"offset, root":          {`.[]? | .issue[]?`, `{type: offset, param: offset, size: 2, size_param: limit}`},
		"offset, root element":  {`.issues[]? | .[]`, `{type: offset, param: offset, size: 2, size_param: limit}`},
		"page, root, defaulted": {`(. // [])[] | .issue[]?`, `{type: page, param: page, size: 2, size_param: per_page, max_pages: 20}`},
	} {
		t.Run(name, func(t *testing.T) {
			if got := xmlIssuesRead(t, c.records, c.paginate, all); !slices.Equal(got, ids) {
				t.Errorf("issues = %v, want %v", got, ids)
			}
		})
	}
}

// TestOffsetShortPageBeforeStopWhen: PagerDuty pages by offset and limit,
// caps limit at 100 and says whether there is more in `more`; the spec
// says so in stop_when. A page shorter than the size asked for (capped by
// the server) does not end paging before stop_when does: all 250 records
// are written. (It used to end after the first 100, exit 0.)
func TestOffsetShortPageBeforeStopWhen(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  incidents:
    request: {path: /incidents}
    records: .incidents[]
    paginate: {type: offset, param: offset, size: 250, size_param: limit, stop_when: response.more == false}
tables:
  incidents: {from: incidents, primary_key: [id]}
`, "")
	var all []any
	for i := 1; i <= 250; i++ {
		all = append(all, map[string]any{"id": i})
	}
	fx.serveList("/incidents", all, 100, func(items []any, more bool, r *http.Request) any {
		return map[string]any{"incidents": items, "limit": len(items), "offset": r.URL.Query().Get("offset"), "more": more, "total": nil}
	})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := fx.query(`SELECT count(*) FROM "nl__incidents"`); !slices.Equal(got, []string{"250"}) {
		t.Errorf("incidents = %v, want 250", got)
	}
}

// TestEmptyRuleOnLinkedPage: a rule that reads a 404 as no data (right
// for a first page: "this repository has no README") also matches a later
// page the server itself linked to (a next URL, a Link rel="next", a
// cursor) when that link leads nowhere: Confluence v1's _links.next is
// relative to its /wiki base, and resolved against the host it 404s. The
// server said there was more, so the chain fails naming the page, its
// first page's records written, instead of ending complete (exit 0, every
// page after the first lost). Page-number paging computes its next page
// itself, so there a 404 past the end still ends the chain.
func TestEmptyRuleOnLinkedPage(t *testing.T) {
	for name, c := range map[string]struct {
		paginate string
		fails    bool
	}{
		"next_url":    {paginate: `{type: next_url, url: .next}`, fails: true},
		"link_header": {paginate: `{type: link_header}`, fails: true},
		"cursor":      {paginate: `{type: cursor, token: .cursor, param: cursor}`, fails: true},
		"cursor path": {paginate: `{type: cursor, token: .next, in: path}`, fails: true},
		"page":        {paginate: `{type: page, param: page}`},
	} {
		t.Run(name, func(t *testing.T) {
			fx := newFixture(t, specHead+`  rules:
    - {status: 404, action: empty}
streams:
  items:
    request: {path: /items}
    records: .items[]
    paginate: `+c.paginate+`
tables:
  items: {from: items, primary_key: [id]}
`, "")
			fx.mu.Lock()
			fx.routes["/items"] = func(w http.ResponseWriter, r *http.Request) {
				q := r.URL.Query()
				if q.Get("cursor") != "" || q.Get("page") == "2" {
					http.Error(w, "not found", http.StatusNotFound)
					return
				}
				w.Header().Set("Link", `</rest/items?start=2>; rel="next"`)
				json.NewEncoder(w).Encode(map[string]any{"items": []any{map[string]any{"id": 1}, map[string]any{"id": 2}},
					"next": "/rest/items?start=2", "cursor": "c2"})
			}
			fx.mu.Unlock()
			_, err := fx.run(engine.RunOptions{})
			if got := fx.query(`SELECT id FROM "nl__items" ORDER BY id`); !slices.Equal(got, []string{"1", "2"}) {
				t.Errorf("items = %v, want the first page's 1, 2", got)
			}
			if !c.fails {
				if err != nil {
					t.Fatalf("a 404 past the last page number: %v, want the chain ended", err)
				}
				return
			}
			re := runErrorOf(t, err)
			if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Err.Error(), "page 2") || !strings.Contains(re.Failures[0].Err.Error(), "404") {
				t.Errorf("failures %v, want page 2's 404 named", re.Failures)
			}
		})
	}
}

// TestNextLinkToAnotherOrigin: a next link to another origin is followed
// without the credentials (only base_url's origin gets them); when that
// host answers, its records are written, and the run says, once per
// stream, that the list went on elsewhere, naming both hosts, so it is
// no silent change of source.
func TestNextLinkToAnotherOrigin(t *testing.T) {
	var gotAuth []string
	var mu sync.Mutex
	var back string // where the other host links back to
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotAuth = append(gotAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"items": []any{map[string]any{"id": 3}}, "next": back})
	}))
	defer other.Close()
	fx := newFixture(t, specHead+`  auth: {type: bearer, token: tok-SimOnly-123456}
streams:
  items:
    request: {path: /items}
    records: .items[]
    paginate: {type: next_url, url: .next}
tables:
  items: {from: items, primary_key: [id]}
`, "")
	fx.json("/items", map[string]any{"items": []any{map[string]any{"id": 1}, map[string]any{"id": 2}}, "next": other.URL + "/items?page=2"})
	// Back to base_url's origin, another hop: still one warning.
	back = fx.api.URL + "/items3"
	fx.json("/items3", map[string]any{"items": []any{map[string]any{"id": 4}}})
	var logs bytes.Buffer
	if _, err := fx.run(engine.RunOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatal(err)
	}
	if got := fx.query(`SELECT id FROM "nl__items" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4"}) {
		t.Errorf("items = %v, want 1, 2, 3, 4", got)
	}
	if len(gotAuth) != 1 || gotAuth[0] != "" {
		t.Errorf("the other host got Authorization %q, want none", gotAuth)
	}
	host := strings.TrimPrefix(other.URL, "http://")
	if n := strings.Count(logs.String(), "another origin"); n != 1 || !strings.Contains(logs.String(), host) || !strings.Contains(logs.String(), "stream=items") {
		t.Errorf("logs say %d times that the list went on at another origin (want once, naming the stream and %s):\n%s", n, host, logs.String())
	}
}

// TestEmptyRuleOnLinkedPageResumes: the run that a rule's "no data" on a
// page the server linked to failed (see TestEmptyRuleOnLinkedPage) is
// resumed at that page, and the resumed run writes what the page holds
// then, to an append table too. Its checkpoint said the page's records
// had gone out (none had): the resumed run asked it again only to learn
// what follows and wrote nothing from it, so an append table lost the
// page's records and the run exited 0.
func TestEmptyRuleOnLinkedPageResumes(t *testing.T) {
	for _, table := range []string{"mode: append", "primary_key: [id]"} {
		t.Run(table, func(t *testing.T) {
			fx := newFixture(t, specHead+`  rules:
    - {status: 404, action: empty}
streams:
  items:
    request: {path: /items}
    records: .items[]
    paginate: {type: cursor, token: .cursor, param: cursor}
tables:
  items: {from: items, `+table+`}
`, "")
			var found atomic.Bool // page 2 is there (a link that led nowhere, fixed)
			fx.mu.Lock()
			fx.routes["/items"] = func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("cursor") == "c2" {
					if !found.Load() {
						http.Error(w, "not found", http.StatusNotFound)
						return
					}
					json.NewEncoder(w).Encode(map[string]any{"items": []any{map[string]any{"id": 3}, map[string]any{"id": 4}}})
					return
				}
				json.NewEncoder(w).Encode(map[string]any{"items": []any{map[string]any{"id": 1}, map[string]any{"id": 2}}, "cursor": "c2"})
			}
			fx.mu.Unlock()
			if _, err := fx.run(engine.RunOptions{}); err == nil {
				t.Fatal("page 2's 404 read as no data: want the run failed")
			}
			found.Store(true)
			if _, err := fx.run(engine.RunOptions{}); err != nil {
				t.Fatalf("the resumed run: %v", err)
			}
			if got := fx.query(`SELECT id FROM "nl__items" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4"}) {
				t.Errorf("items = %v, want 1, 2 once and page 2's 3, 4", got)
			}
		})
	}
}
