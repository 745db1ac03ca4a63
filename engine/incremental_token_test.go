package engine_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// tokenSpec reads a change feed whose pages each hand out the token the
// next sync starts from (.next_sync), as Zendesk's after_cursor does;
// Graph's deltaLink is the same on the last page only. A record with bad:
// true fails its row.
const tokenSpec = `
version: 1
name: tok
config:
  url: {required: true}
http:
  base_url: ${ config.url }
streams:
  changes:
    incremental:
      token: .next_sync
    request:
      path: /changes
      query:
        from: ${ cursor }
    records: .items[]
    paginate: {type: cursor, token: .page_after, param: page}
tables:
  changes:
    from: changes
    primary_key: [id]
    row: 'if .bad then error("bad record \(.id)") else . end'
`

// changeAPI serves /changes?from=N (N: the sequence the last sync reached;
// none: from the start) two items a page, each page's next_sync the
// sequence after its last item (the last page's too). fail[page] answers
// that page (the items from 2*(page-1)) with a 400; noToken leaves
// next_sync out of the last page.
type changeAPI struct {
	mu         sync.Mutex
	items      []map[string]any
	froms      []string // from of each chain's first request
	fail       map[int]bool
	failDetail map[string]bool // /details/{id} answered 400
	noToken    bool
	expired    map[string]bool // from values answered 410, as an expired token
	// expiredPage: page values (a next page's cursor) answered 410 once,
	// as a cursor that expired while the chain was read
	expiredPage map[string]bool
	onExpire    func(*changeAPI) // called (locked) when an expiredPage is answered
	srv         *httptest.Server
}

func newChangeAPI(t *testing.T, n int) *changeAPI {
	a := &changeAPI{fail: map[int]bool{}}
	for i := range n {
		a.items = append(a.items, map[string]any{"id": i + 1, "name": "v1"})
	}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if id, ok := strings.CutPrefix(r.URL.Path, "/details/"); ok {
			if a.failDetail[id] {
				w.WriteHeader(400)
				return
			}
			json.NewEncoder(w).Encode([]map[string]any{{"id": id}})
			return
		}
		q := r.URL.Query()
		from, _ := strconv.Atoi(q.Get("from"))
		start, _ := strconv.Atoi(q.Get("page"))
		if q.Get("page") == "" {
			a.froms = append(a.froms, q.Get("from"))
			start = from
		}
		if a.expired[q.Get("from")] {
			w.WriteHeader(http.StatusGone)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": "syncStateNotFound", "message": "token " + q.Get("from") + " expired"}})
			return
		}
		if p := q.Get("page"); a.expiredPage[p] {
			delete(a.expiredPage, p)
			if a.onExpire != nil {
				a.onExpire(a)
			}
			w.WriteHeader(http.StatusGone)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": "syncStateNotFound", "message": "cursor " + p + " expired"}})
			return
		}
		if a.fail[start/2+1] {
			w.WriteHeader(400)
			return
		}
		end := min(start+2, len(a.items))
		body := map[string]any{"items": a.items[start:end], "next_sync": strconv.Itoa(end)}
		if end < len(a.items) {
			body["page_after"] = strconv.Itoa(end)
		} else if a.noToken {
			delete(body, "next_sync")
		}
		json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *changeAPI) add(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for range n {
		a.items = append(a.items, map[string]any{"id": len(a.items) + 1, "name": "v1"})
	}
}

func (a *changeAPI) asked() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.froms)
}

// tokenRun runs the spec into dest; newSync abandons an unfinished sync,
// as a run after --resume-within does. It returns the run's logs and error.
func tokenRun(t *testing.T, f *engine.Spec, cfg *engine.Config, dest string, newSync bool) (string, error) {
	t.Helper()
	var logs bytes.Buffer
	opts := engine.RunOptions{Dest: dest, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if newSync {
		opts.ResumeWithin = time.Nanosecond
	}
	_, err := engine.Run(t.Context(), f, cfg, opts)
	return logs.String(), err
}

// incremental.token: the token of the chain's last page is where the next
// sync starts; a chain that failed (on a middle page, or a record of its
// last page) leaves the token before it, so a new sync asks the same
// again; a last page without a token keeps the cursor, with a warning.
func TestIncrementalToken(t *testing.T) {
	api := newChangeAPI(t, 5)
	dir := t.TempDir()
	f, cfg := loadIncremental(t, dir, tokenSpec, api.srv.URL)
	dest := "sqlite:" + filepath.Join(dir, "tok.db")

	if _, err := tokenRun(t, f, cfg, dest, false); err != nil {
		t.Fatal(err)
	}
	api.add(3) // 6..8
	if _, err := tokenRun(t, f, cfg, dest, false); err != nil {
		t.Fatal(err)
	}
	if got, want := api.asked(), []string{"", "5"}; !slices.Equal(got, want) {
		t.Fatalf("syncs started from %q, want %q: the second from the first's last page's token", got, want)
	}

	// A middle page fails: from 8 the chain's pages are items 9-10, 11-12
	// and 13, and its second is refused (a 400: not retried).
	api.add(5) // 9..13
	api.mu.Lock()
	api.fail[6] = true
	api.mu.Unlock()
	if _, err := tokenRun(t, f, cfg, dest, false); err == nil {
		t.Fatal("a run whose chain failed on its second page succeeded")
	}
	api.mu.Lock()
	api.fail = map[int]bool{}
	api.mu.Unlock()
	if _, err := tokenRun(t, f, cfg, dest, true); err != nil {
		t.Fatal(err)
	}
	if got := api.asked(); got[len(got)-1] != "8" {
		t.Fatalf("the sync after a failed chain started from %q, want 8: the failed chain's first page must not move the token (asked %q)", got[len(got)-1], got)
	}

	// A record of the last page fails its row: the token stays.
	api.add(2) // 14, 15: the chain from 13 is one page
	api.mu.Lock()
	api.items[14]["bad"] = true
	api.mu.Unlock()
	if _, err := tokenRun(t, f, cfg, dest, false); err == nil {
		t.Fatal("a run whose last page's record failed succeeded")
	}
	api.mu.Lock()
	delete(api.items[14], "bad")
	api.mu.Unlock()
	if _, err := tokenRun(t, f, cfg, dest, true); err != nil {
		t.Fatal(err)
	}
	if got := api.asked(); got[len(got)-1] != "13" {
		t.Fatalf("the sync after a failed record started from %q, want 13: a token must not pass a record not written (asked %q)", got[len(got)-1], got)
	}

	// The last page gives no token: the cursor stays, said in the log,
	// and the first page's token is not taken instead (item 18 would be
	// passed).
	api.add(3) // 16..18: pages 16-17 and 18
	api.mu.Lock()
	api.noToken = true
	api.mu.Unlock()
	logs, err := tokenRun(t, f, cfg, dest, false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs, "gave no incremental.token") {
		t.Errorf("no warning of a last page without a token:\n%s", logs)
	}
	if _, err := tokenRun(t, f, cfg, dest, false); err != nil {
		t.Fatal(err)
	}
	if got := api.asked(); got[len(got)-1] != "15" {
		t.Errorf("after a last page without a token the sync started from %q, want 15 (asked %q)", got[len(got)-1], got)
	}
}

// A resumed sync reads a token chain's committed pages again (to drive a
// child that failed); the API answers them as they are now, and the
// token saved at the end passes what changed in between: a record that
// changed since its page was committed is written again, not left at its
// old version.
func TestIncrementalTokenResumeWritesChanges(t *testing.T) {
	api := newChangeAPI(t, 4)
	api.failDetail = map[string]bool{"2": true}
	dir := t.TempDir()
	// tokenSpec with a child per change.
	spec := strings.Replace(tokenSpec, "\ntables:\n", `
  details:
    for_each: changes
    request:
      path: /details/${ parent.id }
tables:
  details: {from: details, primary_key: [id]}
`, 1)
	f, cfg := loadIncremental(t, dir, spec, api.srv.URL)
	dest := "sqlite:" + filepath.Join(dir, "tok.db")
	if _, err := tokenRun(t, f, cfg, dest, false); err == nil {
		t.Fatal("a run with a failed child succeeded")
	}
	api.mu.Lock()
	api.failDetail = nil
	api.items[0]["name"] = "changed since its page was committed"
	api.mu.Unlock()
	if _, err := tokenRun(t, f, cfg, dest, false); err != nil {
		t.Fatal(err)
	}
	rows := queryStrings(t, filepath.Join(dir, "tok.db"), `SELECT id, coalesce(name, '') FROM "tok__changes" ORDER BY id`)
	if want := []string{"1|changed since its page was committed", "2|v1", "3|v1", "4|v1"}; !slices.Equal(rows, want) {
		t.Errorf("rows %q, want %q", rows, want)
	}
	if got := queryStrings(t, filepath.Join(dir, "tok.db"), `SELECT count(*), 0 FROM "tok__details"`); !slices.Equal(got, []string{"4|0"}) {
		t.Errorf("details %q, want 4", got)
	}
	api.add(1)
	if _, err := tokenRun(t, f, cfg, dest, false); err != nil {
		t.Fatal(err)
	}
	if got := api.asked(); got[len(got)-1] != "4" {
		t.Errorf("the sync after the resumed one started from %q, want 4, the token the resumed run saved (asked %q)", got[len(got)-1], got)
	}
}

// queryStrings reads two-column rows of the SQLite file db as "a|b".
func queryStrings(t *testing.T, db, q string) []string {
	t.Helper()
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a, b string
		if err := rows.Scan(&a, &b); err != nil {
			t.Fatal(err)
		}
		out = append(out, a+"|"+b)
	}
	return out
}

// A token that is a link echoing the API key (query auth) is saved with
// the key held by name, never the key itself, and the next sync sends the
// real key again.
func TestIncrementalTokenHoldsSecrets(t *testing.T) {
	const key = "k3y-Sim-0123456789abcdef"
	var mu sync.Mutex
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		q := r.URL.Query()
		if q.Get("api_key") != key {
			w.WriteHeader(401)
			return
		}
		asked = append(asked, q.Get("since"))
		n, _ := strconv.Atoi(q.Get("since"))
		json.NewEncoder(w).Encode(map[string]any{"items": []map[string]any{{"id": n + 1, "bad": n == 2}},
			"delta": "http://" + r.Host + "/changes?api_key=" + key + "&since=" + strconv.Itoa(n+1)})
	}))
	defer srv.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "inc.yaml")
	spec := `
version: 1
name: tok
config:
  url: {required: true}
  key: {required: true, secret: true}
http:
  base_url: ${ config.url }
  auth: {type: query, param: api_key, value: "${ config.key }"}
streams:
  changes:
    incremental: {token: .delta}
    request:
      url: '${ cursor ?? (config.url + "/changes") }'
    records: .items[]
tables:
  changes: {from: changes, primary_key: [id], row: 'if .bad then error("bad") else . end'}
`
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: map[string]string{"url": srv.URL, "key": key}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	dest := "sqlite:" + filepath.Join(dir, "tok.db")
	for range 2 {
		if _, err := tokenRun(t, f, cfg, dest, false); err != nil {
			t.Fatal(err)
		}
	}
	// The third fails its record: its checkpoint stays, with the token
	// it read and the question it asked.
	if _, err := tokenRun(t, f, cfg, dest, false); err == nil {
		t.Fatal("a run whose record failed succeeded")
	}
	if !slices.Equal(asked, []string{"", "1", "2"}) {
		t.Errorf("asked since %q, want the first sync from the start, the next from the saved links", asked)
	}
	for _, row := range queryStrings(t, filepath.Join(dir, "tok.db"), `SELECT stream, value FROM "tok___ferry_state"`) {
		if strings.Contains(row, key) {
			t.Errorf("the state holds the API key: %s", row)
		}
	}
	// The sync resumes from its checkpoint, the key put back.
	if _, err := tokenRun(t, f, cfg, dest, false); err == nil {
		t.Fatal("the resumed run succeeded: the record still fails")
	}
	if !slices.Equal(asked, []string{"", "1", "2", "2"}) {
		t.Errorf("asked since %q: the resumed run asks its question again, with the real key", asked)
	}
}

// A token that is a link echoing a session token (session auth in a query
// parameter: a secret got at run time, no input) is saved without it, as
// a next link is; the next sync sends its own session again.
func TestIncrementalTokenHoldsSessionToken(t *testing.T) {
	const session = "sess-Sim-0123456789abcdef"
	var mu sync.Mutex
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/login" {
			json.NewEncoder(w).Encode(map[string]any{"token": session})
			return
		}
		q := r.URL.Query()
		if q.Get("session") != session {
			w.WriteHeader(401)
			return
		}
		asked = append(asked, q.Get("since"))
		n, _ := strconv.Atoi(q.Get("since"))
		json.NewEncoder(w).Encode(map[string]any{"items": []map[string]any{{"id": n + 1}},
			"delta": "http://" + r.Host + "/changes?session=" + session + "&since=" + strconv.Itoa(n+1)})
	}))
	defer srv.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "inc.yaml")
	spec := `
version: 1
name: tok
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  auth:
    type: session
    param: session
    login: {path: /login, token: .token}
streams:
  changes:
    incremental: {token: .delta}
    request:
      url: '${ cursor ?? (config.url + "/changes") }'
    records: .items[]
tables:
  changes: {from: changes, primary_key: [id]}
`
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: map[string]string{"url": srv.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	dest := "sqlite:" + filepath.Join(dir, "tok.db")
	for range 2 {
		if _, err := tokenRun(t, f, cfg, dest, false); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(asked, []string{"", "1"}) {
		t.Errorf("asked since %q, want the first sync from the start, the next from the saved link", asked)
	}
	for _, row := range queryStrings(t, filepath.Join(dir, "tok.db"), `SELECT stream, value FROM "tok___ferry_state"`) {
		if strings.Contains(row, session) {
			t.Errorf("the state holds the session token: %s", row)
		}
	}
}
