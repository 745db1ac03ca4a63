package runner_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine/apitest"
	"github.com/ferry-etl/ferry/engine/runner"
)

// reposSpec reads repositories, their README (GitHub: 404 when a repo
// has none) and their pull requests (451 when a repo is blocked).
const reposSpec = `
version: 1
name: t
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  rules:
    - status: 451
      action: skip
      message: .message
streams:
  repos:
    request: {path: /repos}
  readme:
    for_each: repos
    http:
      rules:
        - status: 404
          action: empty
    request:
      path: /repos/${ parent.name }/readme
    records: .
  pulls:
    for_each: repos
    request:
      path: /repos/${ parent.name }/pulls
      query:
        per_page: 2
    paginate: {type: link_header}
  reviews:
    for_each: pulls
    request:
      path: /repos/${ parents.repos.name }/pulls/${ parent.number }/reviews
tables:
  readme:
    from: readme
    primary_key: [repo]
    row: '{repo: $parent.name, name}'
  pulls:
    from: pulls
    primary_key: [repo, number]
    row: '{repo: $parent.name, number}'
  reviews:
    from: reviews
    primary_key: [id]
    row: '{id}'
  repos:
    from: repos
    primary_key: [name]
    row: '{name}'
`

func reposServer(t *testing.T) *apitest.Server {
	t.Helper()
	s, err := apitest.Start(apitest.Fixture{Routes: []apitest.Route{
		{Path: "/repos", Items: []any{map[string]any{"name": "api"}, map[string]any{"name": "blocked"}, map[string]any{"name": "empty"}}},
		{Path: "/repos/api/readme", Body: map[string]any{"name": "README.md"}},
		{Path: "/repos/blocked/readme", Body: map[string]any{"name": "README"}},
		{Path: "/repos/blocked/pulls", Status: 451, Body: map[string]any{"message": "Repository access blocked"}},
		{Path: "/repos/{repo}/pulls", Paginate: &apitest.Paging{Type: "link", SizeParam: "per_page"},
			Items: []any{map[string]any{"number": 1}, map[string]any{"number": 2}, map[string]any{"number": 3}}},
		{Path: "/repos/{repo}/pulls/{n}/reviews", Items: []any{map[string]any{"id": "{repo}-{n}"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func snapshot(sum *runner.Summary, stream string) runner.Snapshot {
	for _, s := range sum.Streams {
		if s.Stream == stream {
			return s
		}
	}
	return runner.Snapshot{}
}

// 404 = "no README": the chain ends with no records, complete; a 451 on a
// repository's pull requests skips that request: no failure, counted as
// skipped, and the streams it feeds (pulls and their reviews) are not
// complete, so nothing is reconciled from them.
func TestRulesEmptyAndSkip(t *testing.T) {
	s := reposServer(t)
	out := newCollector()
	sum, err := runSpec(t, mustSpec(t, reposSpec), map[string]any{"url": s.URL()}, out)
	if err != nil {
		t.Fatalf("run: %v (a skipped or empty request is no failure)", err)
	}
	if d := cmp.Diff([]string{"api", "blocked"}, out.field("readme", "repo")); d != "" {
		t.Errorf("readme rows (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"api", "api", "api", "empty", "empty", "empty"}, out.field("pulls", "repo")); d != "" {
		t.Errorf("pull rows (-want +got):\n%s", d)
	}
	if got := snapshot(sum, "readme"); got.Empty != 1 || got.Skipped != 0 || got.Errors != 0 {
		t.Errorf("readme counters = %+v, want one empty answer", got)
	}
	if got := snapshot(sum, "pulls"); got.Skipped != 1 || got.Empty != 0 || got.Errors != 0 {
		t.Errorf("pulls counters = %+v, want one skipped request", got)
	}
	want := map[string]bool{"repos": true, "readme": true, "pulls": false, "reviews": false}
	if d := cmp.Diff(want, sum.Complete); d != "" {
		t.Errorf("complete (-want +got):\n%s", d)
	}
	if d := cmp.Diff(want, sum.Tables); d != "" {
		t.Errorf("tables that may be reconciled (-want +got):\n%s", d)
	}
}

// An empty answer on a later page that ferry counted to (page, offset)
// ends the chain, complete, and keeps the pages before it: some APIs
// answer 404 past their last page. On a later page the server named (a
// cursor, a next link), the server said there was more: "no data" there
// ("cursor expired") fails the chain, the pages before it kept, rather
// than end it complete with the rest unread.
func TestRuleEmptyEndsChain(t *testing.T) {
	s, err := apitest.Start(apitest.Fixture{Routes: []apitest.Route{
		{Path: "/events", Query: map[string]string{"cursor": "p2"}, Status: 404, Body: map[string]any{"message": "cursor expired", "next": "p3"}},
		{Path: "/events", Body: map[string]any{"items": []any{map[string]any{"id": 1}}, "next": "p2"}},
		{Path: "/logs", Query: map[string]string{"page": "2"}, Status: 404, Headers: map[string]string{"Link": `</logs?page=3>; rel="next"`}},
		{Path: "/logs", Items: []any{map[string]any{"id": 1}}, Headers: map[string]string{"Link": `</logs?page=2>; rel="next"`}},
		{Path: "/pages", Query: map[string]string{"page": "2"}, Status: 404},
		{Path: "/pages", Items: []any{map[string]any{"id": 1}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := mustSpec(t, `
version: 1
name: t
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  rules:
    - {status: 404, action: empty}
streams:
  events:
    request: {path: /events}
    records: .items[]
    paginate: {type: cursor, token: .next, param: cursor}
  logs:
    request: {path: /logs}
    paginate: {type: link_header}
  pages:
    request: {path: /pages}
    paginate: {type: page, param: page}
tables:
  events:
    from: events
    primary_key: [id]
`)
	out := newCollector()
	sum, err := runSpec(t, f, map[string]any{"url": s.URL()}, out)
	if err == nil {
		t.Fatal("the run succeeded: want the events and logs chains failed")
	}
	for _, w := range []string{"stream events: page 2", "stream logs: page 2", "404"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "stream pages") {
		t.Errorf("error %q: want the page-numbered chain ended, not failed", err)
	}
	if got := out.field("events", "id"); len(got) != 1 || got[0] != "1" {
		t.Errorf("rows = %v, want the first page's", got)
	}
	for stream, complete := range map[string]bool{"events": false, "logs": false, "pages": true} {
		if n := s.Count("GET", "/"+stream); n != 2 || sum.Complete[stream] != complete {
			t.Errorf("%s: requests = %d, complete = %v; want 2 and complete %v", stream, n, sum.Complete[stream], complete)
		}
	}
}

// A stream's own rules are tried before the top-level ones; a form body
// is sent form encoded.
func TestStreamRulesFirstAndFormBody(t *testing.T) {
	s, err := apitest.Start(apitest.Fixture{Routes: []apitest.Route{
		{Method: "POST", Path: "/search", Status: 404, Echo: false, Body: map[string]any{"ok": false}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := mustSpec(t, `
version: 1
name: t
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  rules:
    - {status: 404, action: fail}
streams:
  hits:
    http:
      rules:
        - {status: 404, action: empty}
    request:
      method: POST
      path: /search
      body_format: form
      body:
        q: a&b
        fields: [id, name]
        limit: 10
`)
	sum, err := runSpec(t, f, map[string]any{"url": s.URL()}, newCollector())
	if err != nil || snapshot(sum, "hits").Empty != 1 {
		t.Fatalf("run = %v, counters %+v; want the stream's empty rule to win", err, snapshot(sum, "hits"))
	}
	req := s.RequestsFor("POST", "/search")[0]
	form, perr := url.ParseQuery(string(req.Body))
	if perr != nil || req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Fatalf("body %q (%s) is not a form", req.Body, req.Header.Get("Content-Type"))
	}
	if d := cmp.Diff(url.Values{"q": {"a&b"}, "fields": {"id", "name"}, "limit": {"10"}}, form); d != "" {
		t.Errorf("form (-want +got):\n%s", d)
	}
}
