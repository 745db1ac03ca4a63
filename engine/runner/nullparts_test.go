package runner_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-etl/ferry/engine/apitest"
)

// The null-query rule holds for every ${ } part of a request, not only a
// query value that is one: a part that only reads the parent's record, a
// lookup or the batch and is null would send "project_id:" (the API
// answers for every project), /apps//posts, or a body filter with
// nothing in it, and the answer is written under this parent with exit
// 0. The chain fails, naming the part; `?? nil` and config inputs render
// as before (nothing in their place).
func TestNullRecordReadInRequestPartFails(t *testing.T) {
	s := nullSpacesAPI(t)
	for _, tc := range []struct {
		name, request, fails string
		sent                 string // what the s2 request carried, when it goes out
	}{
		{"query text", `path: /posts, query: {filter: "project_id:${ parent.key }"}`, "request query filter: parent.key is null", ""},
		{"query list", `path: /posts, query: {k: ["x", "${ parent.key }"]}`, "request query k: [1]: parent.key is null", ""},
		{"query lookup in text", `path: /posts, query: {filter: "org:${ lookups.org[parent.uid] }"}`, "request query filter: lookups.org[parent.uid] is null", ""},
		{"path", `path: "/apps/${ parent.key }/posts"`, "request path /apps/${ parent.key }/posts: ${ parent.key } is null: it would leave an empty path segment", ""},
		{"url", `url: "${ config.url }/apps/${ parent.key }/posts"`, "parent.key is null", ""},
		{"body field text", `method: POST, path: /posts, body: {filter: "project:${ parent.key }"}`, "request body: filter: parent.key is null", ""},
		{"body field", `method: POST, path: /posts, body: {key: "${ parent.key }"}`, "request body: key: parent.key is null", ""},
		{"body nested", `method: POST, path: /posts, body: {q: {and: [{key: "${ parent.key }"}]}}`, "parent.key is null", ""},
		{"text body", `method: POST, path: /posts, body_format: text, body: "key = ${ parent.key }"`, "request body: parent.key is null", ""},
		{"header", `path: /posts, headers: {X-Space: "${ parent.key }"}`, "request header X-Space: parent.key is null", ""},
		{"header text", `path: /posts, headers: {X-Filter: "space=${ parent.key }"}`, "request header X-Filter: parent.key is null", ""},
		{"null on purpose", `path: /posts, query: {filter: "project_id:${ parent.key ?? nil }"}`, "", "project_id:"},
		{"config input", `path: /posts, query: {filter: "since:${ config.since }", s: "${ parent.id }"}`, "", "since:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.Requests())
			_, err := runWith(t, mustSpec(t, nullSpacesSpec(tc.request)), runOpts{cfg: map[string]any{"url": s.URL()}}, newStateful())
			if tc.fails != "" {
				if err == nil || !strings.Contains(err.Error(), tc.fails) || !strings.Contains(err.Error(), "s2") || !strings.Contains(err.Error(), "posts") {
					t.Fatalf("err = %v, want the posts chain under s2 failed with %q", err, tc.fails)
				}
				if !strings.Contains(err.Error(), "?? nil") && tc.name != "path" {
					t.Errorf("err = %v, want it to say how to send it without on purpose", err)
				}
			} else if err != nil {
				t.Fatalf("run: %v", err)
			}
			var s2 []apitest.Recorded
			for _, r := range s.Requests()[before:] {
				if r.Path == "/spaces" || r.Path == "/users" {
					continue
				}
				if !strings.Contains(r.RawPath+r.Path+r.Query.Encode()+string(r.Body)+r.Header.Get("X-Space")+r.Header.Get("X-Filter"), "K1") && !strings.Contains(r.Query.Encode(), "o1") && r.Query.Get("s") != "s1" {
					s2 = append(s2, r)
				}
			}
			switch {
			case tc.sent == "" && len(s2) > 0:
				t.Errorf("the s2 request went out: %s %s?%s %s", s2[0].Method, s2[0].RawPath, s2[0].Query.Encode(), s2[0].Body)
			case tc.sent != "" && (len(s2) != 1 || s2[0].Query.Get("filter") != tc.sent):
				t.Errorf("s2 requests %v, want one with filter %q", s2, tc.sent)
			}
		})
	}
}

// nullSpacesAPI serves two spaces, s1 with a key and a user whose org a
// lookup finds, s2 with neither, and their posts at every route the
// null-part tests send them to.
func nullSpacesAPI(t *testing.T) *apitest.Server {
	t.Helper()
	s, err := apitest.Start(apitest.Fixture{Routes: []apitest.Route{
		{Path: "/spaces", Body: []any{
			map[string]any{"id": "s1", "key": "K1", "uid": "u1"},
			map[string]any{"id": "s2", "uid": "u2"}, // no key; u2 has no org
		}},
		{Path: "/users", Body: []any{map[string]any{"id": "u1", "org": "o1"}}},
		{Path: "/posts", Body: []any{map[string]any{"id": "p1"}}},
		{Method: "POST", Path: "/posts", Body: []any{map[string]any{"id": "p1"}}},
		{Path: "/apps/{k}/posts", Body: []any{map[string]any{"id": "p1"}}},
		{Path: "/apps/posts", Body: []any{map[string]any{"id": "p1"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// nullSpacesSpec is a spec over nullSpacesAPI whose posts stream, one
// chain a space, sends request (a flow mapping's inside).
func nullSpacesSpec(request string) string {
	return `
version: 1
name: t
config:
  url: {required: true}
  since: {}
http:
  base_url: ${ config.url }
  retry: {attempts: 1}
streams:
  users:
    request: {path: /users}
  spaces:
    request: {path: /spaces}
  posts:
    for_each: spaces
    request: {` + request + `}
lookups:
  org: {from: users, key: .id, value: .org}
tables:
  posts: {from: posts, primary_key: [space, id], row: '{id, space: $parent.id}'}
`
}

// TestNullRecordReadInDownloadHeaderFails: an export job's download
// header that only reads the parent and is null fails the chain, as a
// request header does: X-Space sent empty may answer for every space.
func TestNullRecordReadInDownloadHeaderFails(t *testing.T) {
	var mu sync.Mutex
	var sent []string // X-Space of each file request
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/spaces":
			w.Write([]byte(`[{"id": "s1", "key": "K1"}, {"id": "s2"}]`))
		case r.Method == http.MethodPost:
			fmt.Fprintf(w, `{"id": "j-%s"}`, strings.TrimPrefix(strings.TrimSuffix(r.URL.Path, "/exports"), "/spaces/"))
		case strings.HasPrefix(r.URL.Path, "/exports/"):
			fmt.Fprintf(w, `{"status": "done", "files": ["/files/%s"]}`, strings.TrimPrefix(r.URL.Path, "/exports/"))
		case strings.HasPrefix(r.URL.Path, "/files/"):
			mu.Lock()
			sent = append(sent, r.Header.Get("X-Space"))
			mu.Unlock()
			w.Write([]byte(`{"id": "c1"}` + "\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer s.Close()
	f := mustSpec(t, `
version: 1
name: t
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  retry: {attempts: 1}
streams:
  spaces:
    request: {path: /spaces}
  exports:
    for_each: spaces
    async:
      create: {path: "/spaces/${ parent.id }/exports", id: .id}
      poll: {path: "/exports/${ job.id }", every: 1ms, done: .status == "done"}
      download: {urls: .files, headers: {X-Space: "${ parent.key }"}}
    response: {format: ndjson}
tables:
  children: {from: exports, primary_key: [space, id], row: '{id, space: $parent.id}'}
`)
	_, err := runWith(t, f, runOpts{cfg: map[string]any{"url": s.URL}}, newStateful())
	if err == nil || !strings.Contains(err.Error(), "X-Space") || !strings.Contains(err.Error(), "parent.key is null") || !strings.Contains(err.Error(), "s2") {
		t.Fatalf("err = %v, want the exports chain under s2 failed naming X-Space and parent.key", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if slices.Contains(sent, "") {
		t.Errorf("file requests' X-Space %q: s2's went out empty", sent)
	}
}
