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
				first: func(base string) call {
					return call{method: "POST", url: base + "/query", body: map[string]any{"filter": "f"}}
				},
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

func TestPageSizeCap(t *testing.T) {
	kinds := []struct {
		name   string
		paging Paging
		method string
		target string // with %d for the size
		body   string // with %d for the size; POST only
		header string // header carrying the size, instead of target or body
		items  string // envelope path, "" for a bare array
	}{
		{name: "cursor", paging: Paging{Type: PageCursor, Param: "cursor", SizeParam: "limit", TokenPath: "next", Envelope: "data"}, method: "GET", target: "/c?limit=%d", items: "data"},
		{name: "cursor body", paging: Paging{Type: PageCursor, BodyField: "cursor", SizeParam: "size", TokenPath: "next", Envelope: "data"}, method: "POST", target: "/c", body: `{"size":%d}`, items: "data"},
		{name: "next_url", paging: Paging{Type: PageNext, SizeParam: "limit", NextPath: "next", Envelope: "data"}, method: "GET", target: "/c?limit=%d", items: "data"},
		{name: "link", paging: Paging{Type: PageLink, SizeParam: "per_page"}, method: "GET", target: "/c?per_page=%d"},
		{name: "page", paging: Paging{Type: PageNumber, SizeParam: "pageSize"}, method: "GET", target: "/c?page=0&pageSize=%d"},
		{name: "offset", paging: Paging{Type: PageOffset}, method: "GET", target: "/c?offset=0&limit=%d"},
		{name: "offset body", paging: Paging{Type: PageOffset, BodyField: "offset"}, method: "POST", target: "/c", body: `{"offset":0,"limit":%d}`},
		{name: "offset header", paging: Paging{Type: PageOffset, Header: "X-Offset", SizeParam: "X-Limit"}, method: "GET", target: "/c", header: "X-Limit"},
	}
	sizeParam := func(p Paging) string { return p.sizeParam() }
	for _, k := range kinds {
		for _, tc := range []struct {
			size       int
			clamp      bool
			wantStatus int
			wantItems  int
			wantMsg    string
		}{
			{size: 20, wantStatus: 200, wantItems: 20},
			{size: 21, wantStatus: 400, wantMsg: sizeParam(k.paging) + " must be at most 20"},
			{size: 0, wantStatus: 400, wantMsg: sizeParam(k.paging) + " must be a positive integer"},
			{size: 500, clamp: true, wantStatus: 200, wantItems: 20},
		} {
			name := fmt.Sprintf("%s/size=%d/clamp=%v", k.name, tc.size, tc.clamp)
			t.Run(name, func(t *testing.T) {
				p := k.paging
				p.PageSize, p.MaxSize, p.Clamp = 5, 20, tc.clamp
				s := startT(t, Fixture{Routes: []Route{{Method: k.method, Path: "/c", Items: numbered(50), Paginate: &p}}})
				var req *http.Request
				switch {
				case k.body != "":
					req = newReq(t, k.method, s.URL()+k.target, json.RawMessage(fmt.Sprintf(k.body, tc.size)))
				case k.header != "":
					req = newReq(t, k.method, s.URL()+k.target, nil)
					req.Header.Set(k.header, fmt.Sprint(tc.size))
				default:
					req = newReq(t, k.method, s.URL()+fmt.Sprintf(k.target, tc.size), nil)
				}
				r := do(t, s.Client(), req)
				if r.status != tc.wantStatus {
					t.Fatalf("status = %d, want %d: %s", r.status, tc.wantStatus, r.body)
				}
				doc := decode(t, r.body)
				if tc.wantStatus != 200 {
					if got := dig(doc, "message"); got != tc.wantMsg {
						t.Errorf("message = %v, want %q", got, tc.wantMsg)
					}
					return
				}
				if k.items != "" {
					doc = dig(doc, k.items)
				}
				if got := ids(t, doc); len(got) != tc.wantItems {
					t.Errorf("items = %d, want %d", len(got), tc.wantItems)
				}
			})
		}
	}
}

// TestRepeatToken walks each kind with a repeat guard, as a careful client
// would: the buggy server must trip it on the second page.
func TestRepeatToken(t *testing.T) {
	tests := []struct {
		name   string
		route  Route
		first  string
		body   any
		marker func(t *testing.T, r response) (marker string, next string) // next: URL path+query or token
		follow func(base, first, next string) (string, any)
		want   [][]string // page ids
	}{
		{
			name:  "cursor",
			route: Route{Path: "/c", Paginate: &Paging{Type: PageCursor, Param: "cursor", PageSize: 10, TokenPath: "next", Envelope: "data", RepeatToken: true}},
			first: "/c",
			marker: func(t *testing.T, r response) (string, string) {
				next := dig(decode(t, r.body), "next").(string)
				return next, next
			},
			follow: func(base, first, next string) (string, any) { return base + "/c?" + q("cursor", next), nil },
			want:   [][]string{seq(0, 10), seq(10, 20)},
		},
		{
			name:  "cursor POST body",
			route: Route{Method: "POST", Path: "/c", Paginate: &Paging{Type: PageCursor, BodyField: "cursor", PageSize: 10, TokenPath: "next", Envelope: "data", RepeatToken: true}},
			first: "/c",
			body:  map[string]any{},
			marker: func(t *testing.T, r response) (string, string) {
				next := dig(decode(t, r.body), "next").(string)
				return next, next
			},
			follow: func(base, first, next string) (string, any) { return base + "/c", map[string]any{"cursor": next} },
			want:   [][]string{seq(0, 10), seq(10, 20)},
		},
		{
			name:  "next_url",
			route: Route{Path: "/c", Paginate: &Paging{Type: PageNext, PageSize: 10, NextPath: "next", Envelope: "data", RepeatToken: true}},
			first: "/c",
			marker: func(t *testing.T, r response) (string, string) {
				next := dig(decode(t, r.body), "next").(string)
				return next, next
			},
			follow: func(base, first, next string) (string, any) { return next, nil },
			want:   [][]string{seq(0, 10), seq(10, 20)},
		},
		{
			name:   "link",
			route:  Route{Path: "/c", Paginate: &Paging{Type: PageLink, PageSize: 10, RepeatToken: true}},
			first:  "/c",
			marker: func(t *testing.T, r response) (string, string) { return nextLink(r.header), nextLink(r.header) },
			follow: func(base, first, next string) (string, any) { return next, nil },
			want:   [][]string{seq(0, 10), seq(10, 20)},
		},
		{
			name:  "page",
			route: Route{Path: "/c", Paginate: &Paging{Type: PageNumber, Start: 1, PageSize: 10, RepeatToken: true}},
			first: "/c?page=1",
			marker: func(t *testing.T, r response) (string, string) {
				return fmt.Sprint(ids(t, decode(t, r.body))), ""
			},
			follow: func(base, first, next string) (string, any) { return base + "/c?page=2", nil },
			want:   [][]string{seq(0, 10), seq(0, 10)},
		},
		{
			name:  "offset",
			route: Route{Path: "/c", Paginate: &Paging{Type: PageOffset, PageSize: 10, RepeatToken: true}},
			first: "/c?offset=0",
			marker: func(t *testing.T, r response) (string, string) {
				return fmt.Sprint(ids(t, decode(t, r.body))), ""
			},
			follow: func(base, first, next string) (string, any) { return base + "/c?offset=10", nil },
			want:   [][]string{seq(0, 10), seq(0, 10)},
		},
		{
			name:  "page with token",
			route: Route{Path: "/c", Paginate: &Paging{Type: PageNumber, PageSize: 10, TokenParam: "pageToken", TokenPath: "next", Envelope: "data", RepeatToken: true}},
			first: "/c",
			marker: func(t *testing.T, r response) (string, string) {
				next := dig(decode(t, r.body), "next").(string)
				return next, next
			},
			follow: func(base, first, next string) (string, any) { return base + "/c?" + q("pageToken", next), nil },
			want:   [][]string{seq(0, 10), seq(0, 10)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			route := tc.route
			route.Items = numbered(25)
			s := startT(t, Fixture{Routes: []Route{route}})
			method := route.Method
			if method == "" {
				method = "GET"
			}
			seen := map[string]bool{}
			var pages [][]string
			target, body := s.URL()+tc.first, tc.body
			for len(pages) < 10 {
				r := do(t, s.Client(), newReq(t, method, target, body))
				if r.status != 200 {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				doc := decode(t, r.body)
				if p := route.Paginate.Envelope; p != "" {
					doc = dig(doc, p)
				}
				pages = append(pages, ids(t, doc))
				marker, next := tc.marker(t, r)
				if marker == "" {
					t.Fatalf("page %d: no next marker, the bug must never end", len(pages))
				}
				if seen[marker] {
					break
				}
				seen[marker] = true
				target, body = tc.follow(s.URL(), tc.first, next)
			}
			if diff := cmp.Diff(tc.want, pages); diff != "" {
				t.Errorf("pages before the guard tripped (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLinkHeaderRelations(t *testing.T) {
	s := startT(t, Fixture{Routes: []Route{{Path: "/p", Items: numbered(25), Paginate: &Paging{Type: PageLink, SizeParam: "per_page"}}}})
	link := func(off int, rel string) string {
		return fmt.Sprintf("<%s/p?%s>; rel=%q", s.URL(), q("page", encodeToken(off), "per_page", "10"), rel)
	}
	tests := []struct {
		name, query, want string
	}{
		{"first page", q("per_page", "10"), link(10, "next") + ", " + link(20, "last")},
		{"middle page", q("page", encodeToken(10), "per_page", "10"), link(0, "prev") + ", " + link(20, "next") + ", " + link(20, "last") + ", " + link(0, "first")},
		{"last page keeps prev and first", q("page", encodeToken(20), "per_page", "10"), link(10, "prev") + ", " + link(0, "first")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, s, "/p?"+tc.query)
			if got := r.header.Get("Link"); got != tc.want {
				t.Errorf("Link =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
	t.Run("one page has no Link", func(t *testing.T) {
		s := startT(t, Fixture{Routes: []Route{{Path: "/p", Items: numbered(3), Paginate: &Paging{Type: PageLink}}}})
		if r := get(t, s, "/p"); r.header.Get("Link") != "" {
			t.Errorf("Link = %q, want none", r.header.Get("Link"))
		}
	})
}

func TestBadPositions(t *testing.T) {
	tests := []struct {
		name   string
		paging Paging
		query  string
	}{
		{"cursor garbage", Paging{Type: PageCursor, Param: "c", TokenPath: "n", Envelope: "d"}, "c=garbage"},
		{"cursor unescaped plus", Paging{Type: PageCursor, Param: "c", TokenPath: "n", Envelope: "d"}, "c=" + encodeToken(10)}, // '+' arrives as ' '
		{"link garbage", Paging{Type: PageLink}, "page=x"},
		{"page below start", Paging{Type: PageNumber, Start: 1}, "page=0"},
		{"page not a number", Paging{Type: PageNumber}, "page=two"},
		{"negative offset", Paging{Type: PageOffset}, "offset=-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.paging
			s := startT(t, Fixture{Routes: []Route{{Path: "/x", Items: numbered(25), Paginate: &p}}})
			if r := get(t, s, "/x?"+tc.query); r.status != http.StatusBadRequest {
				t.Errorf("status = %d, want 400: %s", r.status, r.body)
			}
		})
	}
}

func TestTokenAlwaysNeedsEscaping(t *testing.T) {
	for _, off := range []int{0, 10, 20, 100, 12345} {
		tok := encodeToken(off)
		if url.QueryEscape(tok) == tok {
			t.Errorf("encodeToken(%d) = %q needs no escaping; want '+' or '/' in it", off, tok)
		}
		if got, err := decodeToken(tok); err != nil || got != off {
			t.Errorf("decodeToken(%q) = %d, %v; want %d", tok, got, err, off)
		}
	}
}
