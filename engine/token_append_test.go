package engine_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestIncrementalTokenResumeAppendsOnce: a resumed sync reads a token
// chain's committed pages again (to drive a child that failed) and writes
// their records again, as the API answers them now: the token it saves
// passes what changed since. An append table gets a record again only
// when its row changed since its partition committed it (the new version
// is a new row, which no later sync would give); an unchanged one is not
// appended twice by ferry's own replay.
func TestIncrementalTokenResumeAppendsOnce(t *testing.T) {
	api := newChangeAPI(t, 4)
	api.failDetail = map[string]bool{"2": true}
	dir := t.TempDir()
	spec := strings.Replace(tokenSpec, "\ntables:\n", `
  details:
    for_each: changes
    request:
      path: /details/${ parent.id }
tables:
  details: {from: details, primary_key: [id]}
  log: {from: changes, mode: append, row: '{id, name}'}
`, 1)
	f, cfg := loadIncremental(t, dir, spec, api.srv.URL)
	dest := "sqlite:" + filepath.Join(dir, "tok.db")
	if _, err := tokenRun(t, f, cfg, dest, false); err == nil {
		t.Fatal("a run with a failed child succeeded")
	}
	const log = `SELECT id, name FROM "tok__log" ORDER BY id, name`
	if got := queryStrings(t, filepath.Join(dir, "tok.db"), log); !slices.Equal(got, []string{"1|v1", "2|v1", "3|v1", "4|v1"}) {
		t.Fatalf("after the failed run, log = %q", got)
	}
	api.mu.Lock()
	api.failDetail = nil
	api.items[0]["name"] = "changed since its page was committed"
	api.mu.Unlock()
	if _, err := tokenRun(t, f, cfg, dest, false); err != nil {
		t.Fatal(err)
	}
	want := []string{"1|changed since its page was committed", "1|v1", "2|v1", "3|v1", "4|v1"}
	if got := queryStrings(t, filepath.Join(dir, "tok.db"), log); !slices.Equal(got, want) {
		t.Errorf("log = %q, want %q: each version once", got, want)
	}
}
