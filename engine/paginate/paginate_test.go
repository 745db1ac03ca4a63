package paginate_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine/paginate"
	"github.com/ferry-etl/ferry/engine/spec"
)

// wire is a Request as it goes out: what the table asserts.
type wire struct {
	URL    string
	Query  string // encoded, so sorted
	Header http.Header
	Body   string // JSON, so "2" and 2 differ
}

func wireOf(t *testing.T, r paginate.Request) wire {
	t.Helper()
	w := wire{URL: r.URL, Query: r.Query.Encode()}
	if len(r.Header) > 0 {
		w.Header = r.Header
	}
	if r.Body != nil {
		b, err := json.Marshal(r.Body)
		if err != nil {
			t.Fatalf("body: %v", err)
		}
		w.Body = string(b)
	}
	return w
}

// hdr builds a header from name, value pairs.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// step is one response of a chain and what the pager must make of it.
type step struct {
	body    string      // JSON response body ("" for none)
	header  http.Header // response headers
	url     string      // URL that was requested (default https://api.test/x)
	records int         // records the page yielded
	more    bool
	next    wire   // the exact next request, when more
	err     error  // sentinel the error must wrap
	errHas  string // text the error must contain
}

// chainCase is a first request template, the request Init makes of it, and
// the pages that follow.
type chainCase struct {
	name     string
	paginate string // the paginate block, as YAML flow mapping
	query    url.Values
	header   http.Header
	body     string // JSON request body template
	start    wire
	steps    []step
	// noResume: the chain repeats a position older than the last one,
	// which a resumed chain (that remembers only the last) cannot see.
	noResume bool
}

func chainCases() []chainCase {
	return []chainCase{
		// cursor
		{
			name:     "cursor in query, size in query",
			paginate: `{type: cursor, token: .next, param: cursor, size: 50, size_param: limit}`,
			query:    url.Values{"kind": {"a"}},
			start:    wire{Query: "kind=a&limit=50"},
			steps: []step{
				{body: `{"next":"abc"}`, records: 50, more: true, next: wire{Query: "cursor=abc&kind=a&limit=50"}},
				{body: `{"next":"a+b/c="}`, records: 50, more: true, next: wire{Query: "cursor=a%2Bb%2Fc%3D&kind=a&limit=50"}},
				{body: `{"next":null}`, records: 50},
			},
		},
		{
			name:     "cursor in body: numbers stay numbers, false ends",
			paginate: `{type: cursor, token: .meta.next, param: page.after, in: body, size: 2, size_param: page.size}`,
			body:     `{"q":"x","page":{"keep":true}}`,
			start:    wire{Body: `{"page":{"keep":true,"size":2},"q":"x"}`},
			steps: []step{
				{body: `{"meta":{"next":2}}`, records: 2, more: true, next: wire{Body: `{"page":{"after":2,"keep":true,"size":2},"q":"x"}`}},
				{body: `{"meta":{"next":"t3"}}`, records: 2, more: true, next: wire{Body: `{"page":{"after":"t3","keep":true,"size":2},"q":"x"}`}},
				{body: `{"meta":{"next":12345678901234567890}}`, records: 2, more: true, next: wire{Body: `{"page":{"after":12345678901234567890,"keep":true,"size":2},"q":"x"}`}},
				{body: `{"meta":{"next":false}}`, records: 2},
			},
		},
		{
			name:     "cursor in header, size in header",
			paginate: `{type: cursor, token: .next, param: X-Cursor, in: header, size: 25, size_param: X-Limit}`,
			header:   hdr("X-Team", "t"),
			start:    wire{Header: hdr("X-Team", "t", "X-Limit", "25")},
			steps: []step{
				{body: `{"next":7}`, records: 25, more: true, next: wire{Header: hdr("X-Team", "t", "X-Limit", "25", "X-Cursor", "7")}},
				{body: `{"next":""}`, records: 25},
			},
		},
		{
			name:     "cursor missing from the body ends",
			paginate: `{type: cursor, token: .next, param: c}`,
			steps:    []step{{body: `{}`, records: 3}},
		},
		{
			name:     "cursor that repeats the last one",
			paginate: `{type: cursor, token: .next, param: c}`,
			steps: []step{
				{body: `{"next":"a"}`, records: 1, more: true, next: wire{Query: "c=a"}},
				{body: `{"next":"b"}`, records: 1, more: true, next: wire{Query: "c=b"}},
				{body: `{"next":"b"}`, records: 1, err: paginate.ErrNoProgress},
			},
		},
		{
			name:     "cursor that repeats an older one",
			paginate: `{type: cursor, token: .next, param: c}`,
			noResume: true,
			steps: []step{
				{body: `{"next":"a"}`, records: 1, more: true, next: wire{Query: "c=a"}},
				{body: `{"next":"b"}`, records: 1, more: true, next: wire{Query: "c=b"}},
				{body: `{"next":"a"}`, records: 1, err: paginate.ErrNoProgress},
			},
		},
		{
			name:     "cursor of another type is an error, not an end",
			paginate: `{type: cursor, token: .next, param: c}`,
			steps:    []step{{body: `{"next":{"id":1}}`, records: 1, errHas: "paginate.token: got object, want a string or a number"}},
		},
		{
			name:     "cursor true is an error, not a token",
			paginate: `{type: cursor, token: .more, param: c}`,
			steps:    []step{{body: `{"more":true}`, records: 1, errHas: "paginate.token: got boolean"}},
		},

		{
			name:     "cursor from a response header (GitLab's X-Next-Page): an empty header ends",
			paginate: `{type: cursor, token_header: X-Next-Page, param: page, size: 20, size_param: per_page}`,
			query:    url.Values{"state": {"opened"}},
			start:    wire{Query: "per_page=20&state=opened"},
			steps: []step{
				{header: hdr("X-Next-Page", "2", "X-Page", "1"), body: `{"next_page":"9"}`, records: 20, more: true, next: wire{Query: "page=2&per_page=20&state=opened"}},
				{header: hdr("X-Next-Page", " 3 "), records: 20, more: true, next: wire{Query: "page=3&per_page=20&state=opened"}},
				{header: hdr("X-Next-Page", "", "X-Page", "3"), records: 4},
			},
		},
		{
			name:     "cursor from a header that is missing ends",
			paginate: `{type: cursor, token_header: X-Next-Page, param: page}`,
			steps:    []step{{header: hdr("X-Page", "1"), body: `{"X-Next-Page":"2"}`, records: 3}},
		},
		{
			name:     "cursor header that repeats",
			paginate: `{type: cursor, token_header: X-Next-Page, param: page}`,
			steps: []step{
				{header: hdr("X-Next-Page", "2"), records: 1, more: true, next: wire{Query: "page=2"}},
				{header: hdr("X-Next-Page", "2"), records: 1, err: paginate.ErrNoProgress},
			},
		},
		{
			name:     "token that is the path (Confluence's _links.next): its query replaces the spec's, headers and body stay",
			paginate: `{type: cursor, token: ._links.next, in: path}`,
			query:    url.Values{"limit": {"25"}, "expand": {"body"}},
			header:   hdr("X-Team", "t"),
			start:    wire{Query: "expand=body&limit=25", Header: hdr("X-Team", "t")},
			steps: []step{
				{body: `{"_links":{"next":"/rest/api/content?limit=25&start=25&expand=body"}}`, records: 25, more: true,
					next: wire{URL: "/rest/api/content?limit=25&start=25&expand=body", Header: hdr("X-Team", "t")}},
				{body: `{"_links":{"next":"/rest/api/content?limit=25&start=50&expand=body"}}`, records: 25, more: true,
					next: wire{URL: "/rest/api/content?limit=25&start=50&expand=body", Header: hdr("X-Team", "t")}},
				{body: `{"_links":{}}`, records: 3},
			},
		},
		{
			name:     "token that is a path without a query keeps the spec's query",
			paginate: `{type: cursor, token: .next, in: path}`,
			query:    url.Values{"per_page": {"50"}},
			start:    wire{Query: "per_page=50"},
			steps: []step{
				{body: `{"next":"/events/page/2"}`, records: 50, more: true, next: wire{URL: "/events/page/2", Query: "per_page=50"}},
				{body: `{"next":"/events/page/2"}`, records: 50, err: paginate.ErrNoProgress},
			},
		},
		{
			name:     "a path token that is a number is an error",
			paginate: `{type: cursor, token: .next, in: path}`,
			steps:    []step{{body: `{"next":3}`, records: 1, errHas: "paginate.token: got the number 3, want a path"}},
		},

		// next_url
		{
			name:     "next_url: the spec's query is not sent again; headers and body stay",
			paginate: `{type: next_url, url: .links.next}`,
			query:    url.Values{"kind": {"a"}},
			header:   hdr("X-Team", "t"),
			body:     `{"filter":"f"}`,
			start:    wire{Query: "kind=a", Header: hdr("X-Team", "t"), Body: `{"filter":"f"}`},
			steps: []step{
				{url: "https://api.test/x?kind=a", body: `{"links":{"next":"https://api.test/x?kind=a&cursor=2"}}`, records: 10, more: true,
					next: wire{URL: "https://api.test/x?kind=a&cursor=2", Header: hdr("X-Team", "t"), Body: `{"filter":"f"}`}},
				{url: "https://api.test/x?kind=a&cursor=2", body: `{"links":{"next":"/x?kind=a&cursor=3"}}`, records: 10, more: true,
					next: wire{URL: "https://api.test/x?kind=a&cursor=3", Header: hdr("X-Team", "t"), Body: `{"filter":"f"}`}},
				{url: "https://api.test/x?kind=a&cursor=3", body: `{"links":{"next":"?cursor=4"}}`, records: 10, more: true,
					next: wire{URL: "https://api.test/x?cursor=4", Header: hdr("X-Team", "t"), Body: `{"filter":"f"}`}},
				{url: "https://api.test/x?cursor=4", body: `{"links":{"next":null}}`, records: 10},
			},
		},
		{
			name:     "next_url that repeats, relative or not",
			paginate: `{type: next_url, url: .next}`,
			steps: []step{
				{url: "https://api.test/x", body: `{"next":"https://api.test/x?p=2"}`, records: 1, more: true, next: wire{URL: "https://api.test/x?p=2"}},
				{url: "https://api.test/x?p=2", body: `{"next":"/x?p=2"}`, records: 1, err: paginate.ErrNoProgress},
			},
		},
		{
			name:     "next_url that is a number is an error",
			paginate: `{type: next_url, url: .next}`,
			steps:    []step{{body: `{"next":2}`, records: 1, errHas: "paginate.url: got the number 2"}},
		},

		// link_header
		{
			name:     "link_header follows rel=next only, without the spec's query",
			paginate: `{type: link_header, size: 10, size_param: per_page}`,
			query:    url.Values{"kind": {"a"}},
			start:    wire{Query: "kind=a&per_page=10"},
			steps: []step{
				{url: "https://api.test/x?kind=a&per_page=10", header: hdr("Link", `<https://api.test/x?page=2&per_page=10>; rel="next", <https://api.test/x?page=9&per_page=10>; rel="last"`), records: 10, more: true,
					next: wire{URL: "https://api.test/x?page=2&per_page=10"}},
				{url: "https://api.test/x?page=2&per_page=10", header: hdr("Link", `</x?page=1&per_page=10>; rel="prev", </x?page=3&per_page=10>; rel="next"`), records: 10, more: true,
					next: wire{URL: "https://api.test/x?page=3&per_page=10"}},
				{url: "https://api.test/x?page=3&per_page=10", header: hdr("Link", `</x?page=2&per_page=10>; rel="prev", </x?page=1&per_page=10>; rel="first"`), records: 10},
			},
		},
		{
			name:     "link_header that repeats",
			paginate: `{type: link_header}`,
			steps: []step{
				{header: hdr("Link", `</x?page=2>; rel="next"`), records: 1, more: true, next: wire{URL: "https://api.test/x?page=2"}},
				{url: "https://api.test/x?page=2", header: hdr("Link", `</x?page=2>; rel="next"`), records: 1, err: paginate.ErrNoProgress},
			},
		},
		{
			// Sentry: rel="next" is always sent; results="false" on it
			// says the page it points to is empty, so the chain ends here.
			name:     "link_header stop_params end on a next link that says there is nothing more",
			paginate: `{type: link_header, stop_params: {results: "false"}}`,
			steps: []step{
				{header: hdr("Link", `</x?cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1", </x?cursor=0:100:0>; rel="next"; results="true"; cursor="0:100:0"`), records: 100, more: true,
					next: wire{URL: "https://api.test/x?cursor=0:100:0"}},
				{url: "https://api.test/x?cursor=0:100:0", header: hdr("Link", `</x?cursor=0:0:1>; rel="previous"; results="true"; cursor="0:0:1", </x?cursor=0:200:0>; rel="next"; results="false"; cursor="0:200:0"`), records: 40},
			},
		},
		{
			// Only the next link's parameters count (previous says false
			// on the first page), names are case-insensitive, and a next
			// link without the parameter is followed (reading on is safe;
			// stopping early would lose records).
			name:     "link_header stop_params read only the next link",
			paginate: `{type: link_header, stop_params: {results: "false"}}`,
			steps: []step{
				{header: hdr("Link", `</x?c=1>; rel="previous"; results="false", </x?c=2>; rel="next"; RESULTS=true`), records: 1, more: true,
					next: wire{URL: "https://api.test/x?c=2"}},
				{url: "https://api.test/x?c=2", header: hdr("Link", `</x?c=3>; rel="next"`), records: 1, more: true,
					next: wire{URL: "https://api.test/x?c=3"}},
				{url: "https://api.test/x?c=3", header: hdr("Link", `</x?c=4>; Results="false"; rel="next"`), records: 1},
			},
		},
		{
			name:     "link_header stop_params must all match",
			paginate: `{type: link_header, stop_params: {results: "false", scope: "all"}}`,
			steps: []step{
				{header: hdr("Link", `</x?c=2>; rel="next"; results="false"; scope="page"`), records: 1, more: true,
					next: wire{URL: "https://api.test/x?c=2"}},
				{url: "https://api.test/x?c=2", header: hdr("Link", `</x?c=3>; rel="next"; results="false"; scope="all"`), records: 1},
			},
		},
		{
			// A quoted value is read whole: results=false inside a title
			// is no parameter of the link, which is followed.
			name:     "link_header stop_params are not read inside quoted values",
			paginate: `{type: link_header, stop_params: {results: "false"}}`,
			steps: []step{
				{header: hdr("Link", `</x?c=2>; rel="next"; title="page 2; results=false"`), records: 1, more: true,
					next: wire{URL: "https://api.test/x?c=2"}},
				{url: "https://api.test/x?c=2", header: hdr("Link", `</x?c=3>; rel="next"; title="a, b"; results="false"`), records: 1},
			},
		},

		// page
		{
			name:     "page in query from 1 until total_pages",
			paginate: `{type: page, param: page, size: 10, size_param: per_page, total_pages: .meta.pages}`,
			start:    wire{Query: "page=1&per_page=10"},
			steps: []step{
				{body: `{"meta":{"pages":3}}`, records: 10, more: true, next: wire{Query: "page=2&per_page=10"}},
				{body: `{"meta":{"pages":"3"}}`, records: 10, more: true, next: wire{Query: "page=3&per_page=10"}},
				{body: `{"meta":{"pages":3}}`, records: 5},
			},
		},
		{
			name:     "page in body from 0: numbers stay numbers, a short page goes on, an empty page ends",
			paginate: `{type: page, param: paging.page, in: body, start: 0, size: 10, size_param: paging.size}`,
			body:     `{"ou_ids":[1]}`,
			start:    wire{Body: `{"ou_ids":[1],"paging":{"page":0,"size":10}}`},
			steps: []step{
				{body: `{}`, records: 10, more: true, next: wire{Body: `{"ou_ids":[1],"paging":{"page":1,"size":10}}`}},
				{body: `{}`, records: 3, more: true, next: wire{Body: `{"ou_ids":[1],"paging":{"page":2,"size":10}}`}},
				{body: `{}`, records: 0},
			},
		},
		{
			name:     "page with a server token, dropped when absent",
			paginate: `{type: page, param: pageIndex, start: 0, token: .data.pageToken, token_param: pageToken, total_pages: .data.totalPages}`,
			start:    wire{Query: "pageIndex=0"},
			steps: []step{
				{body: `{"data":{"pageToken":"t1","totalPages":4}}`, records: 10, more: true, next: wire{Query: "pageIndex=1&pageToken=t1"}},
				{body: `{"data":{"pageToken":null,"totalPages":4}}`, records: 10, more: true, next: wire{Query: "pageIndex=2"}},
				{body: `{"data":{"pageToken":"t3","totalPages":4}}`, records: 10, more: true, next: wire{Query: "pageIndex=3&pageToken=t3"}},
				{body: `{"data":{"pageToken":"t4","totalPages":4}}`, records: 10},
			},
		},
		{
			name:     "page token that repeats",
			paginate: `{type: page, param: p, token: .t, token_param: pt}`,
			start:    wire{Query: "p=1"},
			steps: []step{
				{body: `{"t":"t1"}`, records: 1, more: true, next: wire{Query: "p=2&pt=t1"}},
				{body: `{"t":"t1"}`, records: 1, err: paginate.ErrNoProgress},
			},
		},
		{
			name:     "page total_pages of another type is an error",
			paginate: `{type: page, param: p, total_pages: .pages}`,
			start:    wire{Query: "p=1"},
			steps:    []step{{body: `{"pages":"many"}`, records: 1, errHas: `paginate.total_pages: got string "many", want a whole number`}},
		},

		// offset
		{
			name:     "offset in body advances by records received (Jira caps 100 to 50) until total",
			paginate: `{type: offset, param: startAt, in: body, size: 100, size_param: maxResults, total: .total}`,
			body:     `{"jql":"project = X"}`,
			start:    wire{Body: `{"jql":"project = X","maxResults":100,"startAt":0}`},
			steps: []step{
				{body: `{"total":120}`, records: 50, more: true, next: wire{Body: `{"jql":"project = X","maxResults":100,"startAt":50}`}},
				{body: `{"total":120}`, records: 50, more: true, next: wire{Body: `{"jql":"project = X","maxResults":100,"startAt":100}`}},
				{body: `{"total":120}`, records: 20},
			},
		},
		{
			name:     "offset without total: a short page ends",
			paginate: `{type: offset, param: offset, size: 10, size_param: limit}`,
			start:    wire{Query: "limit=10&offset=0"},
			steps: []step{
				{records: 10, more: true, next: wire{Query: "limit=10&offset=10"}},
				{records: 7},
			},
		},
		{
			name:     "offset without size: only an empty page ends",
			paginate: `{type: offset, param: offset}`,
			query:    url.Values{"limit": {"100"}},
			start:    wire{Query: "limit=100&offset=0"},
			steps: []step{
				{records: 50, more: true, next: wire{Query: "limit=100&offset=50"}},
				{records: 30, more: true, next: wire{Query: "limit=100&offset=80"}},
				{records: 0},
			},
		},
		{
			name:     "offset with total: a short page is no end, nor is a missing total",
			paginate: `{type: offset, param: offset, size: 100, size_param: limit, total: .total}`,
			start:    wire{Query: "limit=100&offset=0"},
			steps: []step{
				{body: `{"total":"300"}`, records: 50, more: true, next: wire{Query: "limit=100&offset=50"}},
				{body: `{}`, records: 50, more: true, next: wire{Query: "limit=100&offset=100"}},
				{body: `{"total":null}`, records: 50, more: true, next: wire{Query: "limit=100&offset=150"}},
				{body: `{"total":300}`, records: 10, more: true, next: wire{Query: "limit=100&offset=160"}},
				{body: `{"total":160}`, records: 0}, // items were deleted as it was read
			},
		},
		{
			name:     "offset: an empty page before the total is a server that stopped early",
			paginate: `{type: offset, param: offset, total: .total}`,
			start:    wire{Query: "offset=0"},
			steps: []step{
				{body: `{"total":300}`, records: 100, more: true, next: wire{Query: "offset=100"}},
				{body: `{"total":300}`, records: 100, more: true, next: wire{Query: "offset=200"}},
				{body: `{"total":300}`, records: 0, errHas: "paging ended after 200 items, but page 1 said the list holds 300 (paginate.total): the server stopped early, with at least 100 not read"},
			},
		},
		{
			name:     "cursor with total: the last token before the total is a server that stopped early",
			paginate: `{type: cursor, token: .next, param: c, total: .count}`,
			steps: []step{
				{body: `{"next":"b","count":5}`, records: 2, more: true, next: wire{Query: "c=b"}},
				{body: `{"count":5}`, records: 2, errHas: "paging ended after 4 items, but page 1 said the list holds 5"},
			},
		},
		{
			name:     "cursor with total: a list that grew or shrank as it was read is compared with its smallest total",
			paginate: `{type: cursor, token: .next, param: c, total: .count}`,
			steps: []step{
				{body: `{"next":"b","count":5}`, records: 2, more: true, next: wire{Query: "c=b"}},
				{body: `{"next":"c","count":3}`, records: 1, more: true, next: wire{Query: "c=c"}},
				{body: `{"count":9}`, records: 0},
			},
		},
		{
			name:     "next_url with total_header: stopped early, and a missing header is unknown",
			paginate: `{type: next_url, url: .next, total_header: X-Total-Count}`,
			steps: []step{
				{body: `{"next":"https://api.test/x?p=2"}`, header: hdr("X-Total-Count", "7"), records: 3, more: true, next: wire{URL: "https://api.test/x?p=2"}},
				{body: `{"next":"https://api.test/x?p=3"}`, records: 3, more: true, next: wire{URL: "https://api.test/x?p=3"}},
				{body: `{}`, header: hdr("X-Total-Count", "8"), records: 0, errHas: "paging ended after 6 items, but page 1 said the list holds 7"},
			},
		},
		{
			// Its checkpoint after page 1 has listed nothing yet: the
			// resumed chain must still know it counted, or it ends short
			// unchecked (exit 0, 2 of 3).
			name:     "cursor with total: an empty first page, then a chain that stops early",
			paginate: `{type: cursor, token: .next, param: c, total: .count}`,
			steps: []step{
				{body: `{"next":"b","count":3}`, records: 0, more: true, next: wire{Query: "c=b"}},
				{body: `{"next":"c","count":3}`, records: 1, more: true, next: wire{Query: "c=c"}},
				{body: `{"count":3}`, records: 1, errHas: "paging ended after 2 items, but page 1 said the list holds 3"},
			},
		},
		{
			// A negative total kept as the smallest would pass every
			// chain, the later pages' real totals unchecked.
			name:     "a negative total is an error, not a check passed",
			paginate: `{type: cursor, token: .next, param: c, total: .count}`,
			steps: []step{
				{body: `{"next":"b","count":-1}`, records: 2, errHas: "paginate.total: got -1, want a whole number"},
			},
		},
		{
			// Taken as a count, it would end paging after page 1.
			name:     "a negative total_pages is an error, not the end",
			paginate: `{type: page, param: p, total_pages: .pages}`,
			start:    wire{Query: "p=1"},
			steps: []step{
				{body: `{"pages":-1}`, records: 2, errHas: "paginate.total_pages: got -1, want a whole number"},
			},
		},
		{
			name:     "link_header with total_header: all read",
			paginate: `{type: link_header, total_header: X-Total-Count}`,
			steps: []step{
				{header: hdr("Link", `<https://api.test/x?p=2>; rel="next"`, "X-Total-Count", "4"), records: 2, more: true, next: wire{URL: "https://api.test/x?p=2"}},
				{header: hdr("X-Total-Count", "4"), records: 2},
			},
		},
		{
			name:     "total_header that is no number is an error",
			paginate: `{type: link_header, total_header: X-Total-Count}`,
			steps:    []step{{header: hdr("X-Total-Count", "many"), records: 2, errHas: `paginate.total_header: X-Total-Count is "many", want a whole number`}},
		},
		{
			name:     "page with total: stop_when ending before the total is stopping early",
			paginate: `{type: page, param: p, total: .total, stop_when: response.last == true}`,
			start:    wire{Query: "p=1"},
			steps: []step{
				{body: `{"total":4,"last":false}`, records: 2, more: true, next: wire{Query: "p=2"}},
				{body: `{"total":4,"last":true}`, records: 1, errHas: "paging ended after 3 items, but page 1 said the list holds 4"},
			},
		},
		{
			name:     "offset reaches total on a full page",
			paginate: `{type: offset, param: offset, size: 10, size_param: limit, total: .total}`,
			start:    wire{Query: "limit=10&offset=0"},
			steps: []step{
				{body: `{"total":20}`, records: 10, more: true, next: wire{Query: "limit=10&offset=10"}},
				{body: `{"total":20}`, records: 10},
			},
		},
		{
			name:     "offset in header, size in header",
			paginate: `{type: offset, param: X-Offset, in: header, size: 10, size_param: X-Limit}`,
			start:    wire{Header: hdr("X-Offset", "0", "X-Limit", "10")},
			steps: []step{
				{records: 10, more: true, next: wire{Header: hdr("X-Offset", "10", "X-Limit", "10")}},
				{records: 10, more: true, next: wire{Header: hdr("X-Offset", "20", "X-Limit", "10")}},
				{records: 2},
			},
		},
		{
			// Jenkins takes a range inside tree: allBuilds[…]{M,N}, the
			// position written into a larger value.
			name:     "offset written by param_value inside a larger value (Jenkins' tree ranges)",
			paginate: `{type: offset, param: tree, param_value: '"allBuilds[number]{\(.),\(. + 3)}"', stop_when: 'records < 3'}`,
			start:    wire{Query: "tree=allBuilds%5Bnumber%5D%7B0%2C3%7D"},
			steps: []step{
				{records: 3, more: true, next: wire{Query: "tree=allBuilds%5Bnumber%5D%7B3%2C6%7D"}},
				{records: 3, more: true, next: wire{Query: "tree=allBuilds%5Bnumber%5D%7B6%2C9%7D"}},
				{records: 1},
			},
		},
		{
			name:     "page number written by param_value, a number stays a number in a body",
			paginate: `{type: page, param: p.n, in: body, param_value: '. * 10', total_pages: .pages}`,
			body:     `{"p":{}}`,
			start:    wire{Body: `{"p":{"n":10}}`},
			steps: []step{
				{body: `{"pages":2}`, records: 1, more: true, next: wire{Body: `{"p":{"n":20}}`}},
				{body: `{"pages":2}`, records: 1},
			},
		},
		{
			name:     "offset total of another type is an error",
			paginate: `{type: offset, param: offset, total: .total}`,
			start:    wire{Query: "offset=0"},
			steps:    []step{{body: `{"total":{"n":3}}`, records: 1, errHas: "paginate.total: got object, want a whole number"}},
		},

		// guards and stop_when, shared by every kind
		{
			name:     "max_pages: a chain of exactly max_pages pages completes",
			paginate: `{type: cursor, token: .next, param: c, max_pages: 2}`,
			steps: []step{
				{body: `{"next":"a"}`, records: 1, more: true, next: wire{Query: "c=a"}},
				{body: `{"next":null}`, records: 1},
			},
		},
		{
			name:     "max_pages: a chain with one page more fails",
			paginate: `{type: offset, param: o, max_pages: 2}`,
			start:    wire{Query: "o=0"},
			steps: []step{
				{records: 1, more: true, next: wire{Query: "o=1"}},
				{records: 1, err: paginate.ErrPageCap},
			},
		},
		{
			name:     "stop_when sees the page's position in the chain",
			paginate: `{type: page, param: p, stop_when: "page == 2"}`,
			start:    wire{Query: "p=1"},
			steps: []step{
				{records: 10, more: true, next: wire{Query: "p=2"}},
				{records: 10},
			},
		},
		{
			name:     "stop_when sees the page's records",
			paginate: `{type: page, param: p, stop_when: "records < 10"}`,
			start:    wire{Query: "p=1"},
			steps: []step{
				{records: 10, more: true, next: wire{Query: "p=2"}},
				{records: 4},
			},
		},
		{
			name:     "stop_when sees the response body",
			paginate: `{type: cursor, token: .next, param: c, stop_when: "response.last"}`,
			steps: []step{
				{body: `{"last":false,"next":"n1"}`, records: 1, more: true, next: wire{Query: "c=n1"}},
				{body: `{"last":true,"next":"n2"}`, records: 1},
			},
		},
		{
			name:     "stop_when that is not a boolean is an error, not an end",
			paginate: `{type: cursor, token: .next, param: c, stop_when: "response.last"}`,
			steps:    []step{{body: `{"last":"yes","next":"n1"}`, records: 1, errHas: "paginate.stop_when"}},
		},
	}
}

// paginateOf parses a one-stream spec around a paginate block.
func paginateOf(t *testing.T, block string) *spec.Paginate {
	t.Helper()
	src := "version: 1\nname: t\nstreams:\n  x:\n    request: {method: POST, url: \"https://api.example.com/x\"}\n    paginate: " + block + "\n"
	f, err := spec.Parse("spec.yaml", []byte(src), nil)
	if err != nil {
		t.Fatalf("spec: %v", err)
	}
	return f.Stream("x").Paginate
}

// vars are the jq variable values of a root stream: $config.
var vars = []any{map[string]any{}}

func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	if s == "" {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

// firstRequest is the request a runner builds before Init: the case's
// template, whose body object is shared, so mutating it in place shows.
func (tc chainCase) firstRequest(body any) paginate.Request {
	req := paginate.Request{Query: url.Values{}, Header: http.Header{}, Body: body}
	for k, v := range tc.query {
		req.Query[k] = append([]string(nil), v...)
	}
	for k, v := range tc.header {
		req.Header[k] = append([]string(nil), v...)
	}
	return req
}

func (s step) page(t *testing.T, number int) paginate.Page {
	t.Helper()
	u := s.url
	if u == "" {
		u = "https://api.test/x"
	}
	return paginate.Page{Number: number, Body: decodeJSON(t, s.body), Header: s.header, URL: u, Records: s.records}
}

// play feeds steps (the chain's pages from number first on) to p and
// checks each decision and next request.
func play(t *testing.T, p *paginate.Pager, req *paginate.Request, steps []step, first int) {
	t.Helper()
	for i, s := range steps {
		n := first + i
		prevBody := req.Body
		prevJSON := wireOf(t, *req).Body
		more, err := p.Next(t.Context(), s.page(t, n), req)
		switch {
		case s.err != nil || s.errHas != "":
			if err == nil {
				t.Fatalf("page %d: Next = %v, nil; want an error", n, more)
			}
			if s.err != nil && !errors.Is(err, s.err) {
				t.Errorf("page %d: err = %v, want %v", n, err, s.err)
			}
			if !strings.Contains(err.Error(), s.errHas) {
				t.Errorf("page %d: err = %v, want it to contain %q", n, err, s.errHas)
			}
			return
		case err != nil:
			t.Fatalf("page %d: Next: %v", n, err)
		}
		if more != s.more {
			t.Fatalf("page %d: more = %v, want %v", n, more, s.more)
		}
		if !more {
			if i != len(steps)-1 {
				t.Fatalf("page %d: chain ended, %d steps left", n, len(steps)-1-i)
			}
			return
		}
		if diff := cmp.Diff(s.next, wireOf(t, *req)); diff != "" {
			t.Errorf("page %d: next request (-want +got):\n%s", n, diff)
		}
		if prevBody != nil && wireOf(t, paginate.Request{Body: prevBody}).Body != prevJSON {
			t.Errorf("page %d: the previous request's body was changed in place", n)
		}
	}
	t.Fatalf("chain still going after %d steps", len(steps))
}

// TestChains asserts, for every kind, the first request and the exact next
// request (URL, query, headers, JSON body) or the end after each page.
func TestChains(t *testing.T) {
	for _, tc := range chainCases() {
		t.Run(tc.name, func(t *testing.T) {
			cfg := paginateOf(t, tc.paginate)
			tmpl := decodeJSON(t, tc.body)
			req := tc.firstRequest(tmpl)
			p := paginate.New(cfg, vars, nil)
			if err := p.Init(t.Context(), &req); err != nil {
				t.Fatalf("Init: %v", err)
			}
			if diff := cmp.Diff(tc.start, wireOf(t, req)); diff != "" {
				t.Errorf("first request (-want +got):\n%s", diff)
			}
			play(t, p, &req, tc.steps, 1)
			if got := wireOf(t, paginate.Request{Body: tmpl}).Body; got != wireOf(t, paginate.Request{Body: decodeJSON(t, tc.body)}).Body {
				t.Errorf("the request template was changed in place: %s", got)
			}
		})
	}
}

// TestResume: after every page, a chain restored from its saved State (as
// JSON, the checkpoint) sends exactly the request the live chain sends, and
// then goes on exactly as the live chain does.
func TestResume(t *testing.T) {
	for _, tc := range chainCases() {
		if tc.noResume {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			cfg := paginateOf(t, tc.paginate)
			live := paginate.New(cfg, vars, nil)
			req := tc.firstRequest(decodeJSON(t, tc.body))
			if err := live.Init(t.Context(), &req); err != nil {
				t.Fatalf("Init: %v", err)
			}
			for i, s := range tc.steps {
				more, err := live.Next(t.Context(), s.page(t, i+1), &req)
				if err != nil || !more {
					return
				}
				saved, err := json.Marshal(live.State())
				if err != nil {
					t.Fatal(err)
				}
				var st paginate.State
				if err := json.Unmarshal(saved, &st); err != nil {
					t.Fatal(err)
				}
				resumed := paginate.New(cfg, vars, nil)
				rreq := tc.firstRequest(decodeJSON(t, tc.body))
				if err := resumed.Init(t.Context(), &rreq); err != nil {
					t.Fatalf("Init: %v", err)
				}
				if err := resumed.Restore(t.Context(), st, &rreq); err != nil {
					t.Fatalf("after page %d: Restore(%s): %v", i+1, saved, err)
				}
				if diff := cmp.Diff(wireOf(t, req), wireOf(t, rreq)); diff != "" {
					t.Fatalf("after page %d: resumed from %s, request (-live +resumed):\n%s", i+1, saved, diff)
				}
				t.Run(fmt.Sprintf("from page %d", i+1), func(t *testing.T) {
					play(t, resumed, &rreq, tc.steps[i+1:], i+2)
				})
			}
		})
	}
}

// TestRestoreOlderCheckpoint: checkpoints written before token_number
// existed still resume where they meant (their tokens were text).
func TestRestoreOlderCheckpoint(t *testing.T) {
	tests := []struct {
		name, paginate, body, saved string
		want                        wire
	}{
		{"cursor in query", `{type: cursor, token: .next, param: c, size: 5, size_param: n}`, ``, `{"token":"abc"}`, wire{Query: "c=abc&n=5"}},
		{"cursor in body", `{type: cursor, token: .next, param: c, in: body}`, `{}`, `{"token":"42"}`, wire{Body: `{"c":"42"}`}},
		{"page with token", `{type: page, param: p, token: .t, token_param: pt}`, ``, `{"n":3,"token":"t2"}`, wire{Query: "p=3&pt=t2"}},
		{"offset", `{type: offset, param: o, in: body}`, `{"q":1}`, `{"n":50}`, wire{Body: `{"o":50,"q":1}`}},
		{"next_url", `{type: next_url, url: .next}`, ``, `{"url":"https://api.test/x?p=2"}`, wire{URL: "https://api.test/x?p=2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var st paginate.State
			dec := json.NewDecoder(bytes.NewReader([]byte(tc.saved)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&st); err != nil {
				t.Fatal(err)
			}
			p := paginate.New(paginateOf(t, tc.paginate), vars, nil)
			req := chainCase{}.firstRequest(decodeJSON(t, tc.body))
			if err := p.Init(t.Context(), &req); err != nil {
				t.Fatal(err)
			}
			if err := p.Restore(t.Context(), st, &req); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, wireOf(t, req)); diff != "" {
				t.Errorf("resumed request (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOlderCheckpointTotal: a chain resumed from a checkpoint that did not
// save how many items it listed does not know whether it read the total:
// it is not checked (no false "stopped early"); an offset is its count.
func TestOlderCheckpointTotal(t *testing.T) {
	tests := []struct {
		name, paginate, saved string
		last                  paginate.Page
		errHas                string
	}{
		{"cursor", `{type: cursor, token: .next, param: c, total: .count}`, `{"token":"abc"}`,
			paginate.Page{Number: 3, Body: map[string]any{"count": 100}, Records: 2}, ""},
		{"offset", `{type: offset, param: o, total: .count}`, `{"n":50}`,
			paginate.Page{Number: 3, Body: map[string]any{"count": 100}, Records: 0}, "paging ended after 50 items, but page 3 said the list holds 100"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var st paginate.State
			if err := json.Unmarshal([]byte(tc.saved), &st); err != nil {
				t.Fatal(err)
			}
			p := paginate.New(paginateOf(t, tc.paginate), vars, nil)
			req := chainCase{}.firstRequest(nil)
			if err := p.Init(t.Context(), &req); err != nil {
				t.Fatal(err)
			}
			if err := p.Restore(t.Context(), st, &req); err != nil {
				t.Fatal(err)
			}
			more, err := p.Next(t.Context(), tc.last, &req)
			switch {
			case more:
				t.Fatalf("Next = more, want the end")
			case tc.errHas == "" && err != nil:
				t.Errorf("Next: %v; want the end, unchecked", err)
			case tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)):
				t.Errorf("Next: %v; want %q", err, tc.errHas)
			}
		})
	}
}

// TestOlderCheckpointResumedTwice: a chain resumed from a checkpoint that
// did not count, and interrupted again, has counted only the items since:
// its next checkpoint must not pass that off as the chain's count, or the
// run after it fails a whole chain ("stopped early").
func TestOlderCheckpointResumedTwice(t *testing.T) {
	cfg := paginateOf(t, `{type: cursor, token: .next, param: c, total: .count}`)
	st := paginate.State{Token: "abc"} // written before ferry counted
	pages := []paginate.Page{
		{Number: 3, Body: map[string]any{"next": "def", "count": 100}, Records: 2},
		{Number: 4, Body: map[string]any{"count": 100}, Records: 2},
	}
	for i, page := range pages {
		p := paginate.New(cfg, vars, nil)
		req := chainCase{}.firstRequest(nil)
		if err := p.Init(t.Context(), &req); err != nil {
			t.Fatal(err)
		}
		if err := p.Restore(t.Context(), st, &req); err != nil {
			t.Fatal(err)
		}
		more, err := p.Next(t.Context(), page, &req)
		if err != nil || more != (i == 0) {
			t.Fatalf("page %d: Next = %v, %v; want more %v, unchecked", page.Number, more, err, i == 0)
		}
		saved, err := json.Marshal(p.State())
		if err != nil {
			t.Fatal(err)
		}
		st = paginate.State{}
		if err := json.Unmarshal(saved, &st); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBodyNotAnObject: a position that goes in the body needs a JSON
// object there; anything else is an error, not a dropped position.
func TestBodyNotAnObject(t *testing.T) {
	p := paginate.New(paginateOf(t, `{type: offset, param: o, in: body}`), vars, nil)
	req := paginate.Request{Body: []any{1, 2}}
	if err := p.Init(t.Context(), &req); err == nil || !strings.Contains(err.Error(), "not a JSON object") {
		t.Errorf("Init = %v, want an error about the body", err)
	}
}

func TestNilPager(t *testing.T) {
	var p *paginate.Pager = paginate.New(nil, nil, nil)
	if p != nil {
		t.Fatalf("New(nil) = %v, want nil", p)
	}
	req := paginate.Request{}
	if more, err := p.Next(t.Context(), paginate.Page{Records: 10}, &req); more || err != nil {
		t.Errorf("Next = %v, %v; want false, nil: a stream without paginate has one page", more, err)
	}
}

// TestListedItemsMovePaging: where the page's list is known, its length,
// not the records a filter left of it, says whether a page is empty or
// short and how far an offset moves; and a short offset page is no end
// when stop_when says when paging ends.
func TestListedItemsMovePaging(t *testing.T) {
	filtered := paginate.Page{Number: 1, Records: 0, Listed: 2, ListedKnown: true}
	for _, block := range []string{`{type: page, param: p}`, `{type: offset, param: o, size: 2, size_param: l}`} {
		p := paginate.New(paginateOf(t, block), vars, nil)
		req := paginate.Request{}
		if err := p.Init(t.Context(), &req); err != nil {
			t.Fatal(err)
		}
		if more, err := p.Next(t.Context(), filtered, &req); !more || err != nil {
			t.Errorf("%s: Next = %v, %v on a page of 2 items, all filtered; want more", block, more, err)
		}
		if got := req.Query.Get("o"); block[7] == 'o' && got != "2" {
			t.Errorf("%s: next offset %q, want 2 (the items, not the records)", block, got)
		}
	}
	p := paginate.New(paginateOf(t, `{type: offset, param: o, size: 100, size_param: l, stop_when: response.more == false}`), vars, nil)
	req := paginate.Request{}
	if err := p.Init(t.Context(), &req); err != nil {
		t.Fatal(err)
	}
	capped := paginate.Page{Number: 1, Body: map[string]any{"more": true}, Records: 25}
	if more, err := p.Next(t.Context(), capped, &req); !more || err != nil || req.Query.Get("o") != "25" {
		t.Errorf("Next = %v, %v, offset %q on a capped page with more; want more at 25", more, err, req.Query.Get("o"))
	}
	capped.Body = map[string]any{"more": false}
	if more, err := p.Next(t.Context(), capped, &req); more || err != nil {
		t.Errorf("Next = %v, %v when more is false; want the end", more, err)
	}
}

// TestEmptyPageBeforeTotalPages: an empty page the body says is not the
// last (total_pages beyond it) does not end paging; one without a total
// does, and so does the page that reaches the total.
func TestEmptyPageBeforeTotalPages(t *testing.T) {
	p := paginate.New(paginateOf(t, `{type: page, param: p, total_pages: .pages}`), vars, nil)
	req := paginate.Request{}
	if err := p.Init(t.Context(), &req); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		body any
		n    int
		more bool
	}{
		{map[string]any{"pages": 4}, 3, true},
		{map[string]any{"pages": 4}, 0, true}, // empty, but 2 of 4
		{map[string]any{"pages": 4}, 2, true},
		{map[string]any{"pages": 4}, 1, false}, // 4 of 4
	}
	for i, s := range steps {
		more, err := p.Next(t.Context(), paginate.Page{Number: i + 1, Body: s.body, Records: s.n}, &req)
		if err != nil || more != s.more {
			t.Fatalf("page %d: Next = %v, %v; want %v", i+1, more, err, s.more)
		}
	}
	p = paginate.New(paginateOf(t, `{type: page, param: p, total_pages: .pages}`), vars, nil)
	if err := p.Init(t.Context(), &req); err != nil {
		t.Fatal(err)
	}
	if more, err := p.Next(t.Context(), paginate.Page{Number: 1, Body: map[string]any{}, Records: 0}, &req); more || err != nil {
		t.Fatalf("empty page without a total: Next = %v, %v; want the end", more, err)
	}
}

// TestCopiedPage: a page of two items or more whose Sum is the page
// before's is a CopyError naming both pages and the param; a page of one
// item, or one without a Sum, is not; the page after a restore has no page
// before it.
func TestCopiedPage(t *testing.T) {
	start := func() (*paginate.Pager, *paginate.Request) {
		p := paginate.New(paginateOf(t, `{type: page, param: page}`), vars, nil)
		req := &paginate.Request{Query: url.Values{}}
		if err := p.Init(t.Context(), req); err != nil {
			t.Fatal(err)
		}
		return p, req
	}
	p, req := start()
	for i, pg := range []paginate.Page{
		{Number: 1, Records: 1, Sum: 7, Summed: true},
		{Number: 2, Records: 1, Sum: 7, Summed: true}, // one item: a shift by one
		{Number: 3, Records: 2, Sum: 8, Summed: true},
		{Number: 4, Records: 2, Sum: 9}, // no Sum
	} {
		if more, err := p.Next(t.Context(), pg, req); !more || err != nil {
			t.Fatalf("page %d: Next = %v, %v; want more", i+1, more, err)
		}
	}
	if _, err := p.Next(t.Context(), paginate.Page{Number: 5, Records: 2, Sum: 8, Summed: true}, req); err != nil {
		t.Fatalf("page 5, the same as page 3 but not the page before: %v", err)
	}
	_, err := p.Next(t.Context(), paginate.Page{Number: 6, Records: 2, Sum: 8, Summed: true}, req)
	var copied *paginate.CopyError
	if !errors.As(err, &copied) || copied.Page != 6 || !strings.Contains(err.Error(), `page 5's items again`) || !strings.Contains(err.Error(), `paginate.param "page"`) {
		t.Fatalf("page 6, page 5 again: err = %v, want a CopyError naming page 5 and param page", err)
	}
	p, req = start()
	if err := p.Restore(t.Context(), paginate.State{Number: 6}, req); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Next(t.Context(), paginate.Page{Number: 6, Records: 2, Sum: 8, Summed: true}, req); err != nil {
		t.Fatalf("the first page after a restore: %v", err)
	}
}

// TestBodyPathIntoList: a dotted body path names a list's item by its
// index, so a token can go where a search API keeps its filter value
// (filterGroups.0.filters.0.value: keyset paging past a cap on how deep
// its pages go). The body the spec built is not changed, and an index
// past the list's end fails rather than make an object of it.
func TestBodyPathIntoList(t *testing.T) {
	const body = `{"filterGroups":[{"filters":[{"propertyName":"ts","value":"0"},{"propertyName":"x","value":"y"}]}],"limit":2}`
	tests := []struct {
		name, param, want, errHas string
	}{
		{"into a list", "filterGroups.0.filters.0.value",
			`{"filterGroups":[{"filters":[{"propertyName":"ts","value":"42"},{"propertyName":"x","value":"y"}]}],"limit":2}`, ""},
		{"second item", "filterGroups.0.filters.1.value",
			`{"filterGroups":[{"filters":[{"propertyName":"ts","value":"0"},{"propertyName":"x","value":"42"}]}],"limit":2}`, ""},
		{"past the end", "filterGroups.1.filters.0.value", "", "filterGroups has no item 1"},
		{"not an index", "filterGroups.first.value", "", "filterGroups is a list"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := paginate.New(paginateOf(t, `{type: cursor, token: .next, param: `+tc.param+`, in: body}`), vars, nil)
			orig := decodeJSON(t, body)
			req := chainCase{}.firstRequest(orig)
			if err := p.Init(t.Context(), &req); err != nil {
				t.Fatal(err)
			}
			more, err := p.Next(t.Context(), paginate.Page{Number: 1, Body: decodeJSON(t, `{"next":"42"}`), Records: 2}, &req)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("Next: more %v, err %v; want an error with %q", more, err, tc.errHas)
				}
				return
			}
			if err != nil || !more {
				t.Fatalf("Next: more %v, err %v", more, err)
			}
			if got := wireOf(t, req).Body; got != tc.want {
				t.Errorf("next body:\n got %s\nwant %s", got, tc.want)
			}
			if b, _ := json.Marshal(orig); string(b) != body {
				t.Errorf("the spec's body changed: %s", b)
			}
		})
	}
}

// TestParamValueRefused: a param_value that gives no string or number
// fails the chain where it is written, the first request or a later one,
// never sending a request without its position (the first page again).
func TestParamValueRefused(t *testing.T) {
	for _, c := range []struct{ name, program, want string }{
		{"an object", `{at: .}`, "paginate.param_value: got object for 0, want a string or a number"},
		{"null", `null`, "paginate.param_value: got null for 0"},
		{"nothing", `empty`, "paginate.param_value: gave nothing for 0"},
		{"an empty string", `if . == 0 then "a" else "" end`, "paginate.param_value: got an empty string for 2"},
		{"nothing after the first page", `if . == 0 then "a" else empty end`, "paginate.param_value: gave nothing for 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := paginate.New(paginateOf(t, `{type: offset, param: at, param_value: '`+c.program+`'}`), vars, nil)
			req := paginate.Request{Query: url.Values{}}
			err := p.Init(t.Context(), &req)
			if err == nil {
				_, err = p.Next(t.Context(), paginate.Page{Number: 1, Records: 2}, &req)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error saying %q", err, c.want)
			}
		})
	}
}

// TestParamValueNumbers: a number param_value gives is sent as written,
// exactly: a whole one past 2^63 (jq's arbitrary precision integers) is a
// number too, not refused as "got number, want a number"; one that is not
// finite is refused, not sent as "+Inf".
func TestParamValueNumbers(t *testing.T) {
	for _, c := range []struct{ name, program, want, err string }{
		{"whole", `. + 100`, "100", ""},
		{"a fraction", `. + 0.5`, "0.5", ""},
		{"a float written with an exponent", `. + 1.7e9`, "1700000000", ""},
		{"past 2^63", `. + 100000000000000000000`, "100000000000000000000", ""},
		{"a string with spaces", `"a b&c=\(.)"`, "a b&c=0", ""},
		{"infinite", `. + infinite`, "", "paginate.param_value: got a number that is not finite for 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := paginate.New(paginateOf(t, `{type: offset, param: at, param_value: '`+c.program+`'}`), vars, nil)
			req := paginate.Request{Query: url.Values{}}
			err := p.Init(t.Context(), &req)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v (at=%q), want an error saying %q", err, req.Query.Get("at"), c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := req.Query.Get("at"); got != c.want {
				t.Errorf("at = %q, want %q", got, c.want)
			}
		})
	}
}

// TestGrownListShortOfLastTotal: a list read by its position that grows
// past the read position (6 items, then 7) and whose page 2 the server cut
// short by one lists 6 items: the smallest total, but one fewer than the
// last total, which a whole reading of it lists (repeats counted). It
// ends short, live and resumed (the count and the last total are saved
// with the checkpoint: page 3 need not repeat the total). An item added
// behind the read position (page 2 lists page 1's last again) is no
// loss, nor is one a cursor chain never meets; a checkpoint that saved no
// raw count (an older ferry's) is not checked against the last total, but
// an offset's, whose position is that count.
func TestGrownListShortOfLastTotal(t *testing.T) {
	page := func(n, records, repeats int, body map[string]any) paginate.Page {
		return paginate.Page{Number: n, Body: body, Records: records, Repeats: repeats}
	}
	const short = "paging ended after 6 items, but page 3 said the list holds 7"
	tests := []struct {
		name, paginate string
		pages          []paginate.Page
		resumeAfter    int    // resume from the State saved after this page (0: live)
		saved          string // or from this checkpoint, taken for the first page's
		errHas         string
	}{
		{"page cut short", `{type: page, param: p, total_pages: .pages, total: .total}`, []paginate.Page{
			page(1, 3, 0, map[string]any{"total": 6, "pages": 2}),
			page(2, 2, 0, map[string]any{"total": 7, "pages": 3}),
			page(3, 1, 0, map[string]any{"total": 7, "pages": 3}),
		}, 0, "", short},
		{"page cut short, resumed", `{type: page, param: p, total_pages: .pages, total: .total}`, []paginate.Page{
			page(1, 3, 0, map[string]any{"total": 6, "pages": 2}),
			page(2, 2, 0, map[string]any{"total": 7, "pages": 3}),
			page(3, 1, 0, map[string]any{"total": 7, "pages": 3}),
		}, 1, "", short},
		{"page cut short, resumed, no total after", `{type: page, param: p, total_pages: .pages, total: .total}`, []paginate.Page{
			page(1, 3, 0, map[string]any{"total": 6, "pages": 2}),
			page(2, 2, 0, map[string]any{"total": 7, "pages": 3}),
			page(3, 1, 0, map[string]any{"pages": 3}),
		}, 2, "", "paging ended after 6 items, but page 2 said the list holds 7"},
		{"offset cut short", `{type: offset, param: o, size: 3, size_param: n, total: .total}`, []paginate.Page{
			page(1, 3, 0, map[string]any{"total": 6}),
			page(2, 2, 0, map[string]any{"total": 7}),
			page(3, 1, 0, map[string]any{"total": 7}),
			page(4, 0, 0, map[string]any{"total": 7}),
		}, 0, "", "paging ended after 6 items, but page 4 said the list holds 7"},
		{"page shifted, whole", `{type: page, param: p, total_pages: .pages, total: .total}`, []paginate.Page{
			page(1, 3, 0, map[string]any{"total": 6, "pages": 2}),
			page(2, 3, 1, map[string]any{"total": 7, "pages": 3}),
			page(3, 1, 0, map[string]any{"total": 7, "pages": 3}),
		}, 1, "", ""},
		{"page grown ahead, whole", `{type: page, param: p, total_pages: .pages, total: .total}`, []paginate.Page{
			page(1, 3, 0, map[string]any{"total": 6, "pages": 2}),
			page(2, 3, 0, map[string]any{"total": 7, "pages": 3}),
			page(3, 1, 0, map[string]any{"total": 7, "pages": 3}),
		}, 0, "", ""},
		{"cursor grown behind", `{type: cursor, token: .next, param: c, total: .total}`, []paginate.Page{
			page(1, 3, 0, map[string]any{"total": 6, "next": "x"}),
			page(2, 3, 0, map[string]any{"total": 7}),
		}, 0, "", ""},
		{"older checkpoint", `{type: page, param: p, total_pages: .pages, total: .total}`, []paginate.Page{
			{},
			page(2, 2, 0, map[string]any{"total": 7, "pages": 3}),
			page(3, 1, 0, map[string]any{"total": 7, "pages": 3}),
		}, 1, `{"n":2,"listed":3,"total":6,"total_page":1,"pages":2,"pages_at":1}`, ""},
		// An offset's position is its raw count, in checkpoints of any age.
		{"older offset checkpoint", `{type: offset, param: o, size: 3, size_param: n, total: .total}`, []paginate.Page{
			{},
			page(2, 2, 0, map[string]any{"total": 7}),
			page(3, 1, 0, map[string]any{"total": 7}),
			page(4, 0, 0, map[string]any{"total": 7}),
		}, 1, `{"n":3,"listed":3,"total":6,"total_page":1}`, "paging ended after 6 items, but page 4 said the list holds 7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := paginateOf(t, tc.paginate)
			start := func() (*paginate.Pager, paginate.Request) {
				p := paginate.New(cfg, vars, nil)
				req := chainCase{}.firstRequest(nil)
				if err := p.Init(t.Context(), &req); err != nil {
					t.Fatal(err)
				}
				return p, req
			}
			p, req := start()
			for i, pg := range tc.pages {
				if i > 0 && i == tc.resumeAfter {
					saved := []byte(tc.saved)
					if tc.saved == "" {
						var err error
						if saved, err = json.Marshal(p.State()); err != nil {
							t.Fatal(err)
						}
					}
					var st paginate.State
					if err := json.Unmarshal(saved, &st); err != nil {
						t.Fatal(err)
					}
					p, req = start()
					if err := p.Restore(t.Context(), st, &req); err != nil {
						t.Fatal(err)
					}
				}
				if i == 0 && tc.saved != "" {
					continue
				}
				more, err := p.Next(t.Context(), pg, &req)
				if i < len(tc.pages)-1 {
					if err != nil || !more {
						t.Fatalf("page %d: Next = %v, %v; want more", pg.Number, more, err)
					}
					continue
				}
				switch {
				case more:
					t.Fatalf("page %d: Next = more, want the end", pg.Number)
				case tc.errHas == "" && err != nil:
					t.Errorf("Next: %v; want the end", err)
				case tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)):
					t.Errorf("Next: %v; want %q", err, tc.errHas)
				}
			}
		})
	}
}
