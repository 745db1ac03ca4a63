package apitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// call is one request a walker sends.
type call struct {
	method, url string
	body        any
	header      map[string]string
}

// walker drives one pagination kind the way a client would: step reads a
// reply to prev and returns the ids on the page and the next call (nil at
// the end).
type walker struct {
	first func(base string) call
	step  func(t *testing.T, base string, prev call, r response) ([]string, *call)
}

func (w walker) walk(t *testing.T, s *Server, maxPages int) [][]string {
	t.Helper()
	var pages [][]string
	next := w.first(s.URL())
	for c := &next; c != nil; {
		if len(pages) == maxPages {
			t.Fatalf("walk: still paging after %d pages", maxPages)
		}
		req := newReq(t, c.method, c.url, c.body)
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		r := do(t, s.Client(), req)
		if r.status != http.StatusOK {
			t.Fatalf("%s %s: status %d: %s", c.method, c.url, r.status, r.body)
		}
		var got []string
		got, c = w.step(t, s.URL(), *c, r)
		pages = append(pages, got)
	}
	return pages
}

func q(kv ...string) string {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

// bump returns rawURL with the integer query parameter param increased by.
func bump(t *testing.T, rawURL, param string, by int) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	qs := u.Query()
	n, err := strconv.Atoi(qs.Get(param))
	if err != nil {
		t.Fatalf("bump %s in %s: %v", param, rawURL, err)
	}
	qs.Set(param, strconv.Itoa(n+by))
	u.RawQuery = qs.Encode()
	return u.String()
}

func TestPaginationKinds(t *testing.T) {
	tok := encodeToken
	done := func(got []string) ([]string, *call) { return got, nil }
	tests := []struct {
		name     string
		route    Route
		walker   walker
		want     []string // recorded requests
		wantSize []int    // items per page
	}{
		{
			name:  "cursor GET query token",
			route: Route{Path: "/items", Paginate: &Paging{Type: PageCursor, Param: "cursor", SizeParam: "limit", MaxSize: 20, TokenPath: "paging.next", Envelope: "data"}},
			walker: walker{
				first: func(base string) call { return call{method: "GET", url: base + "/items?limit=10"} },
				step: func(t *testing.T, base string, prev call, r response) ([]string, *call) {
					doc := decode(t, r.body)
					got := ids(t, dig(doc, "data"))
					if _, ok := lookupPath(doc, "paging.next"); !ok {
						return done(got) // omitted on the last page
					}
					next := dig(doc, "paging.next").(string)
					return got, &call{method: "GET", url: base + "/items?" + q("cursor", next, "limit", "10")}
				},
			},
			want: []string{
				"GET /items?limit=10",
				"GET /items?" + q("cursor", tok(10), "limit", "10"),
				"GET /items?" + q("cursor", tok(20), "limit", "10"),
			},
			wantSize: []int{10, 10, 5},
		},
		{
			name:  "cursor POST body token",
			route: Route{Method: "POST", Path: "/search", Paginate: &Paging{Type: PageCursor, BodyField: "paging.cursor", SizeParam: "paging.size", MaxSize: 20, TokenPath: "next_cursor", LastToken: "null", Envelope: "results"}},
			walker: walker{
				first: func(base string) call {
					return call{method: "POST", url: base + "/search", body: map[string]any{"q": "x", "paging": map[string]any{"size": 10}}}
				},
				step: func(t *testing.T, base string, prev call, r response) ([]string, *call) {
					doc := decode(t, r.body)
					got := ids(t, dig(doc, "results"))
					v, ok := lookupPath(doc, "next_cursor")
					if !ok {
						t.Fatalf("next_cursor missing, want a token or null: %s", r.body)
					}
					if v == nil {
						return done(got)
					}
					return got, &call{method: "POST", url: prev.url, body: map[string]any{"q": "x", "paging": map[string]any{"size": 10, "cursor": v}}}
				},
			},
			want: []string{
				`POST /search {"paging":{"size":10},"q":"x"}`,
				`POST /search {"paging":{"cursor":"` + tok(10) + `","size":10},"q":"x"}`,
				`POST /search {"paging":{"cursor":"` + tok(20) + `","size":10},"q":"x"}`,
			},
			wantSize: []int{10, 10, 5},
		},
		{
			name:  "cursor GET header token",
			route: Route{Path: "/items", Paginate: &Paging{Type: PageCursor, Header: "X-Page-Token", PageSize: 10, TokenPath: "next", LastToken: "empty", Envelope: "items"}},
			walker: walker{
				first: func(base string) call { return call{method: "GET", url: base + "/items"} },
				step: func(t *testing.T, base string, prev call, r response) ([]string, *call) {
					doc := decode(t, r.body)
					got := ids(t, dig(doc, "items"))
					next, ok := dig(doc, "next").(string)
					if !ok {
						t.Fatalf("next is %v, want a string (empty on the last page)", dig(doc, "next"))
					}
					if next == "" {
						return done(got)
					}
					return got, &call{method: "GET", url: prev.url, header: map[string]string{"X-Page-Token": next}}
				},
			},
			want:     []string{"GET /items", "GET /items", "GET /items"}, // the header carries the token
			wantSize: []int{10, 10, 5},
		},
		{
			name:  "next_url GET",
			route: Route{Path: "/items", Query: map[string]string{"kind": "a"}, Paginate: &Paging{Type: PageNext, SizeParam: "limit", MaxSize: 20, NextPath: "links.next", Envelope: "data"}},
			walker: walker{
				first: func(base string) call { return call{method: "GET", url: base + "/items?kind=a&limit=10"} },
				step: func(t *testing.T, base string, prev call, r response) ([]string, *call) {
					doc := decode(t, r.body)
					got := ids(t, dig(doc, "data"))
					v, ok := lookupPath(doc, "links.next")
					if !ok {
						t.Fatalf("links.next missing, want a URL or null: %s", r.body)
					}
					if v == nil {
						return done(got)
					}
					return got, &call{method: "GET", url: v.(string)}
				},
			},
			want: []string{
				"GET /items?kind=a&limit=10",
				"GET /items?" + q("cursor", tok(10), "kind", "a", "limit", "10"),
				"GET /items?" + q("cursor", tok(20), "kind", "a", "limit", "10"),
			},
			wantSize: []int{10, 10, 5},
		},
		{
			name:  "next_url POST relative",
			route: Route{Method: "POST", Path: "/query", Paginate: &Paging{Type: PageNext, Param: "after", PageSize: 10, NextPath: "next", RelativeURL: true, Envelope: "rows"}},
			walker: walker{
				first: func(base string) call { return call{method: "POST", url: base + "/query", body: map[string]any{"filter": "f"}} },
				step: func(t *testing.T, base string, prev call, r response) ([]string, *call) {
					doc := decode(t, r.body)
					got := ids(t, dig(doc, "rows"))
					next, _ := dig(doc, "next").(string)
					if next == "" {
						return done(got)
					}
					if next[0] != '/' {
						t.Fatalf("next = %q, want a relative URL", next)
					}
					return got, &call{method: "POST", url: base + next, body: prev.body}
				},
			},
			want: []string{
				`POST /query {"filter":"f"}`,
				"POST /query?" + q("after", tok(10)) + ` {"filter":"f"}`,
				"POST /query?" + q("after", tok(20)) + ` {"filter":"f"}`,
			},
			wantSize: []int{10, 10, 5},
		},
		{
			name:  "link GET (Humanitec pipelines)",
			route: Route{Path: "/orgs/acme/pipelines", Paginate: &Paging{Type: PageLink, Param: "page", SizeParam: "per_page", PageSize: 50, MaxSize: 100}},
			walker: walker{
				first: func(base string) call { return call{method: "GET", url: base + "/orgs/acme/pipelines?per_page=10"} },
				step: func(t *testing.T, base string, prev call, r response) ([]string, *call) {
					got := ids(t, decode(t, r.body))
					if next := nextLink(r.header); next != "" {
						return got, &call{method: "GET", url: next}
					}
					return done(got)
				},
			},
			want: []string{
				"GET /orgs/acme/pipelines?per_page=10",
				"GET /orgs/acme/pipelines?" + q("page", tok(10), "per_page", "10"),
				"GET /orgs/acme/pipelines?" + q("page", tok(20), "per_page", "10"),
			},
			wantSize: []int{10, 10, 5},
		},
		{
			name:  "link POST",
			route: Route{Method: "POST", Path: "/list", Paginate: &Paging{Type: PageLink, PageSize: 10}},
			walker: walker{
				first: func(base string) call { return call{method: "POST", url: base + "/list", body: []string{"a", "b"}} },
				step: func(t *testing.T, base string, prev call, r response) ([]string, *call) {
					got := ids(t, decode(t, r.body))
					if next := nextLink(r.header); next != "" {
						return got, &call{method: "POST", url: next, body: prev.body}
					}
					return done(got)
				},
			},
			want: []string{
				`POST /list ["a","b"]`,
				"POST /list?" + q("page", tok(10)) + ` ["a","b"]`,
				"POST /list?" + q("page", tok(20)) + ` ["a","b"]`,
			},
			wantSize: []int{10, 10, 5},
		},
		{
			name:  "page GET total pages",
			route: Route{Path: "/items", Paginate: &Paging{Type: PageNumber, Param: "page", Start: 1, SizeParam: "per_page", MaxSize: 20, Envelope: "results", TotalPagesPath: "meta.total_pages"}},
			walker: walker{
				first: func(base string) call { return call{method: "GET", url: base + "/items?page=1&per_page=10"} },
				step: func(t *testing.T, base string, prev call, r response) ([]string, *call) {
					doc := decode(t, r.body)
					got := ids(t, dig(doc, "results"))
					total, err := dig(doc, "meta.total_pages").(json.Number).Int64()
					if err != nil || total != 3 {
						t.Fatalf("meta.total_pages = %v, want 3", dig(doc, "meta.total_pages"))
					}
					u, _ := url.Parse(prev.url)
					if page, _ := strconv.Atoi(u.Query().Get("page")); page >= int(total) {
						return done(got)
					}
					return got, &call{method: "GET", url: bump(t, prev.url, "page", 1)}
				},
			},
			want: []string{
				"GET /items?page=1&per_page=10",
				"GET /items?page=2&per_page=10",
				"GET /items?page=3&per_page=10",
			},
			wantSize: []int{10, 10, 5},
		},
		{
			name:  "page GET stop on empty",
			route: Route{Path: "/items", Paginate: &Paging{Type: PageNumber, Param: "p", PageSize: 10}},
			walker: walker{
				first: func(base string) call { return call{method: "GET", url: base + "/items?p=0"} },
				step: func(t *testing.T, base string, prev call, r response) ([]string, *call) {
					got := ids(t, decode(t, r.body))
					if len(got) == 0 {
						return done(got)
					}
					return got, &call{method: "GET", url: bump(t, prev.url, "p", 1)}
				},
			},
			want:     []string{"GET /items?p=0", "GET /items?p=1", "GET /items?p=2", "GET /items?p=3"},
			wantSize: []int{10, 10, 5, 0},
		},
		{
			name:  "page POST body (SEI)",
			route: Route{Method: "POST", Path: "/v1/dora/mean-time", Paginate: &Paging{Type: PageNumber, BodyField: "page", SizeParam: "page_size", MaxSize: 20, Envelope: "records", Meta: map[string]string{"_metadata.has_next": "has_next", "_metadata.page": "page", "count": "total_items"}}},
			walker: walker{
				first: func(base string) call {
					return call{method: "POST", url: base + "/v1/dora/mean-time", body: map[string]any{"ou_ids": []int{1}, "page": 0, "page_size": 10}}
				},
				step: func(t *testing.T, base string, prev call, r response) ([]string, *call) {
					doc := decode(t, r.body)
					got := ids(t, dig(doc, "records"))
					if c := fmt.Sprint(dig(doc, "count")); c != "25" {
						t.Fatalf("count = %v, want 25", c)
					}
					if dig(doc, "_metadata.has_next") != true {
						return done(got)
					}
					page, _ := dig(doc, "_metadata.page").(json.Number).Int64()
					return got, &call{method: "POST", url: prev.url, body: map[string]any{"ou_ids": []int{1}, "page": page + 1, "page_size": 10}}
				},
			},
			want: []string{
				`POST /v1/dora/mean-time {"ou_ids":[1],"page":0,"page_size":10}`,
				`POST /v1/dora/mean-time {"ou_ids":[1],"page":1,"page_size":10}`,
				`POST /v1/dora/mean-time {"ou_ids":[1],"page":2,"page_size":10}`,
			},
			wantSize: []int{10, 10, 5},
		},
		{
			name:  "page GET pageIndex or pageToken (Harness projects)",
			route: Route{Path: "/ng/api/projects", Body: map[string]any{"status": "SUCCESS", "data": map[string]any{"empty": false}}, Paginate: &Paging{Type: PageNumber, Param: "pageIndex", SizeParam: "pageSize", PageSize: 50, MaxSize: 100, Envelope: "data.content", TokenParam: "pageToken", TokenPath: "data.pageToken", Meta: map[string]string{"data.totalPages": "total_pages", "data.pageIndex": "page", "data.totalItems": "total_items"}}},
			walker: walker{
				first: func(base string) call { return call{method: "GET", url: base + "/ng/api/projects?pageSize=10"} },
				step: func(t *testing.T, base string, prev call, r response) ([]string, *call) {
					doc := decode(t, r.body)
					if dig(doc, "status") != "SUCCESS" || dig(doc, "data.empty") != false {
						t.Fatalf("envelope template lost: %s", r.body)
					}
					got := ids(t, dig(doc, "data.content"))
					next, _ := dig(doc, "data.pageToken").(string)
					if next == "" {
						return done(got)
					}
					return got, &call{method: "GET", url: base + "/ng/api/projects?" + q("pageSize", "10", "pageToken", next)}
				},
			},
			want: []string{
				"GET /ng/api/projects?pageSize=10",
				"GET /ng/api/projects?" + q("pageSize", "10", "pageToken", tok(10)),
				"GET /ng/api/projects?" + q("pageSize", "10", "pageToken", tok(20)),
			},
			wantSize: []int{10, 10, 5},
		},
		{
			name:  "offset GET stop on short page",
			route: Route{Path: "/items", Paginate: &Paging{Type: PageOffset, MaxSize: 20}},
			walker: walker{
				first: func(base string) call { return call{method: "GET", url: base + "/items?limit=10&offset=0"} },
				step: func(t *testing.T, base string, prev call, r response) ([]string, *call) {
					got := ids(t, decode(t, r.body))
					if len(got) < 10 {
						return done(got)
					}
					return got, &call{method: "GET", url: bump(t, prev.url, "offset", len(got))}
				},
			},
			want:     []string{"GET /items?limit=10&offset=0", "GET /items?limit=10&offset=10", "GET /items?limit=10&offset=20"},
			wantSize: []int{10, 10, 5},
		},
		{
			name:  "offset POST body (Harness budgets v2)",
			route: Route{Method: "POST", Path: "/ccm/api/budgets/v2/list", Body: map[string]any{"status": "SUCCESS"}, Paginate: &Paging{Type: PageOffset, BodyField: "offset", SizeParam: "limit", PageSize: 20, MaxSize: 20, Envelope: "data.budgets", Meta: map[string]string{"data.total": "total_items"}}},
			walker: walker{
				first: func(base string) call {
					return call{method: "POST", url: base + "/ccm/api/budgets/v2/list", body: map[string]any{"filterType": "CCMBudget", "limit": 10, "offset": 0}}
				},
				step: func(t *testing.T, base string, prev call, r response) ([]string, *call) {
					doc := decode(t, r.body)
					got := ids(t, dig(doc, "data.budgets"))
					total, _ := dig(doc, "data.total").(json.Number).Int64()
					off := prev.body.(map[string]any)["offset"].(int) + len(got)
					if off >= int(total) {
						return done(got)
					}
					return got, &call{method: "POST", url: prev.url, body: map[string]any{"filterType": "CCMBudget", "limit": 10, "offset": off}}
				},
			},
			want: []string{
				`POST /ccm/api/budgets/v2/list {"filterType":"CCMBudget","limit":10,"offset":0}`,
				`POST /ccm/api/budgets/v2/list {"filterType":"CCMBudget","limit":10,"offset":10}`,
				`POST /ccm/api/budgets/v2/list {"filterType":"CCMBudget","limit":10,"offset":20}`,
			},
			wantSize: []int{10, 10, 5},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			route := tc.route
			route.Items = numbered(25)
			s := startT(t, Fixture{Routes: []Route{route}})
			pages := tc.walker.walk(t, s, 10)

			var sizes []int
			var union []string
			for _, p := range pages {
				sizes = append(sizes, len(p))
				union = append(union, p...)
			}
			if diff := cmp.Diff(tc.wantSize, sizes); diff != "" {
				t.Errorf("page sizes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(seq(0, 25), union); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, describeAll(s.Requests())); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}
