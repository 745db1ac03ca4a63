package runner_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
)

// TestSiblingsSharingAKeyResumeTheirOwnChildren: two records of one list
// share an id (ids unique per type, as in namespace listings) and so a key;
// their children's checkpoints share a place. The first run reads a's
// details and fails on b's; the resumed run must read b's, not take a's
// finished checkpoint for b's own (b1 was never written, exit 0).
func TestSiblingsSharingAKeyResumeTheirOwnChildren(t *testing.T) {
	var failB atomic.Bool
	failB.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/items":
			w.Write([]byte(`[{"id": 1, "type": "a"}, {"id": 1, "type": "b"}]`))
		case "/details/a/1":
			w.Write([]byte(`[{"d": "a1"}]`))
		case "/details/b/1":
			if failB.Swap(false) {
				http.Error(w, "busy", http.StatusInternalServerError)
				return
			}
			w.Write([]byte(`[{"d": "b1"}]`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	f := mustSpec(t, `
version: 1
name: t
config:
  url: {required: true}
http: {base_url: "${ config.url }", retry: {attempts: 1}}
streams:
  items:
    request: {path: /items}
  details:
    for_each: items
    request:
      path: /details/${ parent.type }/${ parent.id }
tables:
  details: {from: details, row: '{d}', primary_key: [d]}
`)
	first, again, _ := failThenResume(t, f, srv.URL, "b's details to fail")
	if got := first.field("details", "d"); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("first run wrote %v, want a1", got)
	}
	if got := again.field("details", "d"); !slices.Contains(got, "b1") {
		t.Errorf("resumed run wrote %v: b's details, never read, taken for done", got)
	}
}
