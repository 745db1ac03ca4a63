package engine_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
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
	"github.com/jackc/pgx/v5"
)

// The chaos property test: a parents → children API paged four ways
// answers each request with a random fault (seeded), ferry runs into
// SQLite (and PostgreSQL), and whatever the faults, nothing is lost
// silently: a run that exits 0 wrote exactly the source's records, one
// that does not names the stream and parent of every record it misses,
// and a resumed run without faults converges to exactly the source's
// records. FERRY_CHAOS_SEEDS=n runs n seeds (default 2, for speed);
// FERRY_CHAOS_SEED=s runs seed s alone.

// chaosKids are the child streams, one per pagination style.
var chaosKids = []string{"kids_page", "kids_cursor", "kids_link", "kids_offset"}

// chaosRec is one source record.
type chaosRec struct {
	ID, V, Note, Parent string
	hasNote             bool
	// X: a field only TestChaosAppend's append tables map (unset: omitted).
	X string
}

func (r chaosRec) json() map[string]any {
	m := map[string]any{"id": r.ID, "v": r.V}
	if r.Parent != "" {
		m["parent"] = r.Parent
	}
	if r.hasNote { // an optional field the API omits when unset
		m["note"] = r.Note
	}
	if r.X != "" {
		m["x"] = r.X
	}
	return m
}

// row is the record as the table holds it, for comparison.
func (r chaosRec) row() string {
	note := "<null>"
	if r.hasNote {
		note = r.Note
	}
	return r.V + "|" + note + "|" + r.Parent + "|" // not marked deleted
}

// chaosAPI is the simulated source.
type chaosAPI struct {
	seed    uint64
	parents []chaosRec
	gone    string                           // a listed parent deleted since: its children answer 404
	kids    map[string]map[string][]chaosRec // stream → parent → records
	notes   map[string][]chaosRec            // kids_cursor record → its notes (grandchildren)
	srv     *httptest.Server
	// Per seed: the orgs list's paging (cursor, offset or link), and the
	// server's page size cap (the spec asks for 5).
	orgsPaging string
	pageCap    int

	// data guards parents, kids and notes, which TestChaosAppend changes
	// between runs while a cancelled run's handler may still answer.
	data sync.RWMutex

	mu        sync.Mutex
	faultRate float64        // 0: no faults
	seen      map[string]int // request URL → times asked (faults depend on it, not on arrival order)
	served    int
	onRequest func(n int)
	injected  map[string]int
	trace     []string       // each request and its fault, for a failing seed's log
	repeats   map[string]int // record id → times a page repeated it (shape dup)
	// afresh: stream|parent → times its first page was asked for after
	// a short page of it was served (a chain with a total that ended
	// short is read afresh: README, Pagination).
	afresh map[string]int
	cutAt  map[string]bool // stream|parent → a short page of it was served
}

// noteShort counts, for a chain with a total, its readings afresh.
func (a *chaosAPI) noteShort(stream, parent, shape string, first bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := stream + "|" + parent
	if first && a.cutAt[k] {
		a.afresh[k]++
		a.cutAt[k] = false
	}
	if shape == "short" || shape == "omit" {
		a.cutAt[k] = true
	}
}

func newChaosAPI(t *testing.T, seed uint64) *chaosAPI {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	a := &chaosAPI{seed: seed, kids: map[string]map[string][]chaosRec{}, notes: map[string][]chaosRec{}, seen: map[string]int{}, injected: map[string]int{}, repeats: map[string]int{}, afresh: map[string]int{}, cutAt: map[string]bool{}}
	a.orgsPaging = []string{"cursor", "offset", "link"}[rng.IntN(3)]
	a.pageCap = 1 + rng.IntN(4)
	n := 3 + rng.IntN(4)
	goneAt := rng.IntN(n + 1)
	for i := 0; i <= n; i++ {
		id := fmt.Sprintf("p%d", i)
		if i == goneAt {
			id = "gone" + strconv.Itoa(i)
			a.gone = id
		}
		a.parents = append(a.parents, chaosRec{ID: id, V: fmt.Sprintf("pv%d", rng.IntN(100)), Note: "pn", hasNote: rng.IntN(2) == 0})
	}
	for _, s := range chaosKids {
		a.kids[s] = map[string][]chaosRec{}
		for _, p := range a.parents {
			if p.ID == a.gone {
				continue
			}
			for j := range rng.IntN(11) {
				a.kids[s][p.ID] = append(a.kids[s][p.ID], chaosRec{
					ID: fmt.Sprintf("%s-%s-%d", s, p.ID, j), V: fmt.Sprintf("v%d", rng.IntN(1000)),
					Note: "n" + strconv.Itoa(j), hasNote: rng.IntN(3) > 0, Parent: p.ID,
				})
			}
			if s != "kids_cursor" {
				continue
			}
			for _, k := range a.kids[s][p.ID] {
				for j := range rng.IntN(5) {
					a.notes[k.ID] = append(a.notes[k.ID], chaosRec{
						ID: fmt.Sprintf("%s-n%d", k.ID, j), V: fmt.Sprintf("v%d", rng.IntN(1000)),
						Note: "x", hasNote: rng.IntN(2) > 0, Parent: k.ID,
					})
				}
			}
		}
	}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

// cancelWithin arms cancel at a random one of the next within requests the
// API serves: the run is cut there, wherever it stands.
func (a *chaosAPI) cancelWithin(rng *rand.Rand, within int, cancel context.CancelFunc) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.onRequest = cancelAtRandom(a.served, rng, within, cancel)
}

// cancelAtRandom returns an onRequest hook of a simulator that has served
// requests so far: it calls cancel at a random one of the next within.
func cancelAtRandom(served int, rng *rand.Rand, within int, cancel context.CancelFunc) func(n int) {
	stop := served + 1 + rng.IntN(within)
	return func(n int) {
		if n == stop {
			cancel()
		}
	}
}

func (a *chaosAPI) setFaults(rate float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.faultRate = rate
}

// rand is a generator for the n-th asking of url: the same seed gives the
// same answers whatever order concurrent chains ask in.
func (a *chaosAPI) rand(url string, n int) *rand.Rand {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s#%d", url, n)
	return rand.New(rand.NewPCG(a.seed, h.Sum64()))
}

var chaosFaults = []string{"429-retry-after", "429-reset", "429-date", "429-epoch", "401", "empty-200", "stall", "500", "502", "503", "error-body", "fatal-body", "truncated-json", "cut-body", "reset", "slow"}

func (a *chaosAPI) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.served++
	n, hook := a.served, a.onRequest
	a.seen[r.URL.String()]++
	rng := a.rand(r.URL.String(), a.seen[r.URL.String()])
	rate := a.faultRate
	fault, shape := "", ""
	if rate > 0 && rng.Float64() < rate {
		fault = chaosFaults[rng.IntN(len(chaosFaults))]
		a.injected[fault]++
	} else if rate > 0 && rng.Float64() < rate {
		shape = []string{"short", "dup", "omit"}[rng.IntN(3)]
		a.injected[shape]++
	}
	a.trace = append(a.trace, fmt.Sprintf("%s %s %s", r.URL, fault, shape))
	a.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	switch fault {
	case "429-retry-after":
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	case "429-reset":
		w.Header().Set("x-ratelimit-remaining", "0")
		w.Header().Set("x-ratelimit-reset", "0")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	case "429-date": // Retry-After as an HTTP date, already past
		w.Header().Set("Retry-After", time.Now().Add(-10*time.Second).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusTooManyRequests)
		return
	case "429-epoch": // GitHub's reset in epoch seconds, just past (a skewed clock; now would hold each for up to a second)
		w.Header().Set("x-ratelimit-remaining", "0")
		w.Header().Set("x-ratelimit-reset", strconv.FormatInt(time.Now().Unix()-1, 10))
		w.WriteHeader(http.StatusTooManyRequests)
		return
	case "401": // not retried: the chain fails
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"message": "token expired"}`))
		return
	case "empty-200": // no body: a failure, never "no records"
		w.WriteHeader(http.StatusOK)
		return
	case "500", "502", "503":
		code, _ := strconv.Atoi(fault)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(code)
		fmt.Fprintf(w, "<html><body><h1>%d</h1>upstream trouble</body></html>", code)
		return
	case "error-body": // a rule retries it
		json.NewEncoder(w).Encode(map[string]any{"error": "backend busy", "retryable": true})
		return
	case "fatal-body": // a rule fails the chain with it
		json.NewEncoder(w).Encode(map[string]any{"error": "internal", "retryable": false})
		return
	case "reset":
		hijackClose(w, "")
		return
	case "slow": // past the spec's timeout
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
		return
	}
	a.data.RLock()
	status, hdr, body := a.answer(r, shape, rng)
	a.data.RUnlock()
	switch fault {
	case "truncated-json": // a whole HTTP answer whose JSON stops halfway
		body = body[:len(body)/2]
	case "stall": // half the body, then nothing past the timeout
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		w.Write(body[:len(body)/2])
		http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
		return
	case "cut-body": // the connection drops halfway through the promised body
		hijackClose(w, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:len(body)/2]))
		return
	}
	for k, v := range hdr {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

func hijackClose(w http.ResponseWriter, raw string) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	buf.WriteString(raw)
	buf.Flush()
	conn.Close()
}

// window is the part of list a page serves from position lo with size n,
// shaped: a short page (cut below n; not the last), a duplicate (the
// previous page's last record again, as when a record added at the front
// shifts the list), or as it is.
func (a *chaosAPI) window(list []chaosRec, lo, n int, shape string, rng *rand.Rand) (page []chaosRec, next int) {
	lo = min(lo, len(list))
	hi := min(lo+n, len(list))
	if shape == "short" && hi-lo > 1 && hi < len(list) {
		hi = lo + 1 + rng.IntN(hi-lo-1)
	}
	page = slices.Clone(list[lo:hi])
	if shape == "dup" && lo > 0 {
		page = append([]chaosRec{list[lo-1]}, page...)
		a.mu.Lock()
		a.repeats[list[lo-1].ID]++
		a.mu.Unlock()
	}
	return page, hi
}

func recsJSON(rs []chaosRec) []any {
	out := []any{}
	for _, r := range rs {
		out = append(out, r.json())
	}
	return out
}

func posToken(pos int) string {
	return base64.StdEncoding.EncodeToString([]byte("pos/" + strconv.Itoa(pos) + "?="))
}

func posUntoken(s string) int {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(b), "pos/") {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(string(b), "pos/"), "?="))
	if err != nil {
		return -1
	}
	return n
}

func (a *chaosAPI) answer(r *http.Request, shape string, rng *rand.Rand) (int, map[string]string, []byte) {
	q := r.URL.Query()
	size := func(name string) int {
		n, err := strconv.Atoi(q.Get(name))
		if err != nil || n <= 0 {
			return a.pageCap
		}
		return min(n, a.pageCap)
	}
	enc := func(v any) []byte { b, _ := json.Marshal(v); return b }
	bad := func(msg string) (int, map[string]string, []byte) {
		return http.StatusBadRequest, nil, enc(map[string]any{"message": msg})
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) == 1 && parts[0] == "parents" {
		lo := 0
		if c := q.Get("cursor"); c != "" {
			if lo = posUntoken(c); lo < 0 {
				return bad("bad cursor")
			}
		}
		if o := q.Get("offset"); o != "" {
			var err error
			if lo, err = strconv.Atoi(o); err != nil {
				return bad("bad offset")
			}
			if shape == "dup" { // would shift the offset past a record
				shape = ""
			}
		}
		if o := q.Get("start"); o != "" {
			var err error
			if lo, err = strconv.Atoi(o); err != nil {
				return bad("bad start")
			}
		}
		page, hi := a.window(a.parents, lo, 2, shape, rng)
		body := map[string]any{"items": recsJSON(page), "total": len(a.parents)}
		hdr := map[string]string{}
		if hi < len(a.parents) {
			body["next"] = posToken(hi)
			hdr["Link"] = fmt.Sprintf(`<%s/parents?start=%d>; rel="next"`, a.srv.URL, hi)
		}
		return 200, hdr, enc(body)
	}
	if len(parts) == 5 && parts[0] == "parents" && parts[2] == "kids_cursor" && parts[4] == "notes" {
		// next_url paging: the next page's whole URL in the body.
		if parts[1] == a.gone {
			return http.StatusNotFound, nil, enc(map[string]any{"message": "parent not found"})
		}
		lo, err := strconv.Atoi(q.Get("from"))
		if q.Get("from") == "" {
			lo, err = 0, nil
		}
		if err != nil {
			return bad("bad from")
		}
		list := a.notes[parts[3]]
		page, hi := a.window(list, lo, 2, shape, rng)
		body := map[string]any{"notes": recsJSON(page), "next": nil}
		if hi < len(list) {
			body["next"] = fmt.Sprintf("%s%s?from=%d", a.srv.URL, r.URL.Path, hi)
		}
		return 200, nil, enc(body)
	}
	if len(parts) != 3 || parts[0] != "parents" {
		return http.StatusNotFound, nil, enc(map[string]any{"message": "no route"})
	}
	p, stream := parts[1], parts[2]
	if p == a.gone {
		return http.StatusNotFound, nil, enc(map[string]any{"message": "parent not found"})
	}
	list := a.kids[stream][p]
	switch stream {
	case "kids_page": // page numbers from 1 with total_pages: a short page loses records, which total finds
		n := size("per_page")
		pg, err := strconv.Atoi(q.Get("page"))
		if err != nil || pg < 1 {
			return bad("bad page")
		}
		page, _ := a.window(list, (pg-1)*n, n, shape, rng)
		a.noteShort(stream, p, shape, pg == 1)
		body := map[string]any{"items": recsJSON(page)}
		if shape != "omit" {
			body["total_pages"] = (len(list) + n - 1) / n
			body["total"] = len(list)
		}
		return 200, nil, enc(body)
	case "kids_cursor":
		lo := 0
		if c := q.Get("after"); c != "" {
			if lo = posUntoken(c); lo < 0 {
				return bad("bad cursor")
			}
		}
		page, hi := a.window(list, lo, size("limit"), shape, rng)
		meta := map[string]any{}
		if hi < len(list) {
			meta["next_cursor"] = posToken(hi)
		}
		return 200, nil, enc(map[string]any{"data": recsJSON(page), "meta": meta})
	case "kids_link":
		lo, err := strconv.Atoi(q.Get("start"))
		if q.Get("start") == "" {
			lo, err = 0, nil
		}
		if err != nil {
			return bad("bad start")
		}
		n := size("per_page")
		page, hi := a.window(list, lo, n, shape, rng)
		hdr := map[string]string{}
		if hi < len(list) {
			hdr["Link"] = fmt.Sprintf(`<%s%s?start=%d&per_page=%d>; rel="next", <%s%s?start=0&per_page=%d>; rel="first"`, a.srv.URL, r.URL.Path, hi, n, a.srv.URL, r.URL.Path, n)
		}
		return 200, hdr, enc(recsJSON(page))
	case "kids_offset": // offsets advance by what a page held: a duplicate would shift it, so none
		lo, err := strconv.Atoi(q.Get("offset"))
		if q.Get("offset") == "" {
			lo, err = 0, nil
		}
		if err != nil {
			return bad("bad offset")
		}
		if shape == "dup" {
			shape = ""
		}
		page, _ := a.window(list, lo, size("limit"), shape, rng)
		a.noteShort(stream, p, shape, lo == 0)
		body := map[string]any{"results": recsJSON(page)}
		if shape != "omit" {
			body["total"] = len(list)
		}
		return 200, nil, enc(body)
	}
	return http.StatusNotFound, nil, enc(map[string]any{"message": "no route"})
}

const chaosSpec = `version: 1
name: NAME
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  timeout: 300ms
  concurrency: 4
  retry: {attempts: 4, initial: 1ms, max: 2ms}
  rules:
    - status: 404
      action: empty
    - status: 200
      body: '.retryable? == true'
      action: retry
      message: .error
    - status: 200
      body: '.retryable? == false'
      action: fail
      message: .error
streams:
  orgs:
    request: {path: /parents}
    records: .items[]
    paginate: ORGS_PAGING
  kids_page:
    for_each: orgs
    request: {path: '/parents/${ parent.id }/kids_page'}
    records: .items[]
    paginate: {type: page, param: page, size: 5, size_param: per_page, total_pages: .total_pages, total: .total}
  kids_cursor:
    for_each: orgs
    request: {path: '/parents/${ parent.id }/kids_cursor'}
    records: .data[]
    paginate: {type: cursor, token: .meta.next_cursor, param: after, size: 5, size_param: limit}
  notes:
    for_each: kids_cursor
    request: {path: '/parents/${ parent.parent }/kids_cursor/${ parent.id }/notes'}
    records: .notes[]
    paginate: {type: next_url, url: .next}
  kids_link:
    for_each: orgs
    request: {path: '/parents/${ parent.id }/kids_link', query: {per_page: 5}}
    paginate: {type: link_header}
  kids_offset:
    for_each: orgs
    request: {path: '/parents/${ parent.id }/kids_offset'}
    records: .results[]
    paginate: {type: offset, param: offset, size: 5, size_param: limit, total: .total}
tables:
  orgs: {from: orgs, mode: replace, primary_key: [id], row: '{id, v, note}', columns: {id: STRING, v: STRING, note: STRING}}
  kids_page: {from: kids_page, mode: replace, primary_key: [id], row: '{id, v, note, parent}', columns: {id: STRING, v: STRING, note: STRING, parent: STRING}}
  kids_cursor: {from: kids_cursor, on_duplicate: merge, primary_key: [id], row: '{id, v, note, parent}', columns: {id: STRING, v: STRING, note: STRING, parent: STRING}}
  # fail: an org listed twice (a shifted page) runs its chains once, and
  # no run fails a row as a duplicate of itself.
  kids_link: {from: kids_link, on_duplicate: fail, primary_key: [id], row: '{id, v, note, parent}', columns: {id: STRING, v: STRING, note: STRING, parent: STRING}}
  notes: {from: notes, mode: replace, primary_key: [id], row: '{id, v, note, parent}', columns: {id: STRING, v: STRING, note: STRING, parent: STRING}}
  kids_offset: {from: kids_offset, mode: replace, primary_key: [id], row: '{id, v, note, parent}', columns: {id: STRING, v: STRING, note: STRING, parent: STRING}}
`

// truth is what each table must hold: id → row.
func (a *chaosAPI) truth() map[string]map[string]string {
	out := map[string]map[string]string{"orgs": {}}
	for _, p := range a.parents {
		out["orgs"][p.ID] = p.row()
	}
	for _, s := range chaosKids {
		out[s] = map[string]string{}
		for _, rs := range a.kids[s] {
			for _, r := range rs {
				out[s][r.ID] = r.row()
			}
		}
	}
	out["notes"] = map[string]string{}
	for _, ns := range a.notes {
		for _, n := range ns {
			out["notes"][n.ID] = n.row()
		}
	}
	return out
}

// chaosDest is a destination the test can read back.
type chaosDest struct {
	url  string
	read func(t *testing.T, table string) map[string]string
}

func sqliteChaosDest(dir, name string) chaosDest {
	path := filepath.Join(dir, "t.db")
	return chaosDest{url: "sqlite:" + path, read: func(t *testing.T, table string) map[string]string {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		return readChaosRows(t, func(q string) (*sql.Rows, error) { return db.Query(q) }, fmt.Sprintf(`"%s__%s"`, name, table))
	}}
}

func readChaosRows(t *testing.T, query func(string) (*sql.Rows, error), table string) map[string]string {
	t.Helper()
	rows, err := query(chaosSelect(table) + table)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return map[string]string{}
		}
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, v, note, parent string
		if err := rows.Scan(&id, &v, &note, &parent); err != nil {
			t.Fatal(err)
		}
		out[id] = v + "|" + note + "|" + parent
	}
	return out
}

// chaosSelect reads a table's rows as chaosRec.row writes them, with
// whether a replace table marked the row deleted.
func chaosSelect(table string) string {
	parent := "coalesce(parent, '<null>')"
	if strings.Contains(table, "orgs") {
		parent = "''"
	}
	return `SELECT id, coalesce(v, '<null>'), coalesce(note, '<null>'), ` + parent + ` || '|' || CASE WHEN _ferry_deleted THEN 'deleted' ELSE '' END FROM `
}

func pgChaosDest(t *testing.T, url, name string) chaosDest {
	pgFreshSchema(t, url, name)
	return chaosDest{url: url, read: func(t *testing.T, table string) map[string]string {
		ctx := t.Context()
		conn := pgConnect(t, ctx, url)
		defer conn.Close(ctx)
		q := chaosSelect(table) + pgx.Identifier{name, table}.Sanitize()
		rows, err := conn.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]string{}
		for rows.Next() {
			var id, v, note, parent string
			if err := rows.Scan(&id, &v, &note, &parent); err != nil {
				if strings.Contains(err.Error(), "does not exist") {
					return map[string]string{}
				}
				t.Fatal(err)
			}
			out[id] = v + "|" + note + "|" + parent
		}
		if err := rows.Err(); err != nil && !strings.Contains(err.Error(), "does not exist") {
			t.Fatal(err)
		}
		return out
	}}
}

func chaosSeeds(t *testing.T) []uint64 { return seedsFrom(t, "FERRY_CHAOS", 2) }

// seedsFrom lists the seeds a property test runs: PREFIX_SEED=s runs seed
// s alone, PREFIX_SEEDS=n seeds 1 to n; otherwise dflt of them (one with
// -short).
func seedsFrom(t *testing.T, prefix string, dflt int) []uint64 {
	if s := os.Getenv(prefix + "_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s_SEED: %v", prefix, err)
		}
		return []uint64{n}
	}
	count := dflt
	if testing.Short() {
		count = 1
	}
	if s := os.Getenv(prefix + "_SEEDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("%s_SEEDS: %v", prefix, err)
		}
		count = n
	}
	var out []uint64
	for i := range count {
		out = append(out, uint64(i+1))
	}
	return out
}

// chaosMatrix runs run for each seed, destination (SQLite, and
// PostgreSQL when FERRY_TEST_POSTGRES_URL is set) and mode (faults,
// cancel), in parallel subtests.
func chaosMatrix(t *testing.T, seeds []uint64, run func(t *testing.T, seed uint64, dest, mode string)) {
	dests := []string{"sqlite"}
	if os.Getenv("FERRY_TEST_POSTGRES_URL") != "" {
		dests = append(dests, "postgres")
	}
	for _, seed := range seeds {
		for _, dest := range dests {
			for _, mode := range []string{"faults", "cancel"} {
				t.Run(fmt.Sprintf("seed=%d/%s/%s", seed, dest, mode), func(t *testing.T) {
					t.Parallel()
					run(t, seed, dest, mode)
				})
			}
		}
	}
}

// TestChaos is the property: per seed, a run under faults, and a run
// cancelled at a random request, each resumed without faults.
func TestChaos(t *testing.T) {
	chaosMatrix(t, chaosSeeds(t), chaosRun)
}

func chaosRun(t *testing.T, seed uint64, destKind, mode string) {
	a := newChaosAPI(t, seed)
	dir := t.TempDir()
	name := fmt.Sprintf("chaos_%d_%d_%s", os.Getpid(), seed, mode)
	var dest chaosDest
	if destKind == "postgres" {
		dest = pgChaosDest(t, os.Getenv("FERRY_TEST_POSTGRES_URL"), name)
	} else {
		dest = sqliteChaosDest(dir, name)
	}
	path := filepath.Join(dir, "s.yaml")
	text := strings.NewReplacer("name: NAME", "name: "+name,
		"ORGS_PAGING", map[string]string{
			"cursor": "{type: cursor, token: .next, param: cursor}",
			"offset": "{type: offset, param: offset, total: .total}",
			"link":   "{type: link_header}",
		}[a.orgsPaging],
		"concurrency: 4", fmt.Sprintf("concurrency: %d", 1+seed%6),
	).Replace(chaosSpec)
	t.Logf("seed %d: orgs paged by %s, pages capped at %d, concurrency %d", seed, a.orgsPaging, a.pageCap, 1+seed%6)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	sp, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{Sets: map[string]string{"url": a.srv.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	run := func(ctx context.Context) error {
		_, err := engine.Run(ctx, sp, cfg, engine.RunOptions{Dest: dest.url, ResumeWithin: -1})
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	defer func() {
		if t.Failed() {
			a.mu.Lock()
			t.Logf("requests (url fault shape):\n%s", strings.Join(a.trace, "\n"))
			a.mu.Unlock()
		}
	}()
	truth := a.truth()
	// One to three runs under faults, each resuming the last (the
	// cancel mode cuts each at a random request, with faults or not),
	// then one without faults that must finish the sync.
	runs := 1 + rng.IntN(3)
	for i := range runs {
		ctx, cancel := context.WithCancel(t.Context())
		rate := 0.1 + 0.3*rng.Float64()
		if mode == "cancel" {
			rate *= float64(rng.IntN(2))
			a.cancelWithin(rng, 60, cancel)
		}
		a.setFaults(rate)
		err := run(ctx)
		a.mu.Lock()
		a.onRequest, a.faultRate = nil, 0
		injected := fmt.Sprint(a.injected)
		a.trace = append(a.trace, fmt.Sprintf("-- run %d ended: %v", i+1, err))
		a.mu.Unlock()
		t.Logf("seed %d %s: run %d: %v; injected so far %s", seed, mode, i+1, err, injected)
		cut := ctx.Err() != nil
		cancel()
		if err == nil {
			chaosExact(t, dest, truth, fmt.Sprintf("run %d, which exited 0", i+1))
			break
		}
		if !cut {
			chaosReported(t, a, dest, truth, err)
		}
		chaosNoExtra(t, dest, truth)
		if t.Failed() {
			return
		}
	}
	if err := run(t.Context()); err != nil {
		// A chain cut by a cancel after a short page (its items lost)
		// ends short of its total: it fails, and the next run reads it
		// afresh. Nothing else may fail without faults.
		var re *engine.RunError
		if !errors.As(err, &re) {
			t.Fatalf("seed %d: resumed run without faults: %v", seed, err)
		}
		for _, f := range re.Failures {
			if !strings.Contains(f.Error(), "paging ended after") {
				t.Fatalf("seed %d: resumed run without faults: %v", seed, err)
			}
		}
		t.Logf("seed %d: resumed run without faults: %v; once more", seed, err)
		chaosNoExtra(t, dest, truth)
		if err := run(t.Context()); err != nil {
			t.Fatalf("seed %d: the run after a short chain, without faults: %v", seed, err)
		}
	}
	chaosExact(t, dest, truth, "the resumed run without faults")
	// A sync of its own, complete: its replace tables are reconciled.
	if err := run(t.Context()); err != nil {
		t.Fatalf("seed %d: a new sync without faults: %v", seed, err)
	}
	chaosExact(t, dest, truth, "a new sync without faults")
}

// chaosExact: every table holds exactly the source's records.
func chaosExact(t *testing.T, dest chaosDest, truth map[string]map[string]string, what string) {
	t.Helper()
	for table, want := range truth {
		got := dest.read(t, table)
		for id, row := range want {
			if g, ok := got[id]; !ok {
				t.Errorf("%s: table %s misses %s", what, table, id)
			} else if g != row {
				t.Errorf("%s: table %s: %s = %q, want %q", what, table, id, g, row)
			}
		}
		for id := range got {
			if _, ok := want[id]; !ok {
				t.Errorf("%s: table %s holds %s, which the source never had", what, table, id)
			}
		}
	}
}

func chaosNoExtra(t *testing.T, dest chaosDest, truth map[string]map[string]string) {
	t.Helper()
	for table, want := range truth {
		for id, g := range dest.read(t, table) {
			if w, ok := want[id]; !ok || g != w {
				t.Errorf("failed run: table %s: %s = %q, source has %q", table, id, g, w)
			}
		}
	}
}

// chaosReported: a failed run names, for each record it misses, its
// stream and parent, or the failed chain of an ancestor (whose rows an
// earlier run of the sync may have written: the chain failed before
// reaching them again, so their children were not asked for).
func chaosReported(t *testing.T, a *chaosAPI, dest chaosDest, truth map[string]map[string]string, err error) {
	t.Helper()
	var re *engine.RunError
	if !errors.As(err, &re) {
		t.Errorf("seed %d: failed run: %v is not a RunError listing its failures", a.seed, err)
		return
	}
	if engine.ExitCode(err, false) == 0 {
		t.Errorf("seed %d: failed run exits 0: %v", a.seed, err)
	}
	failed := func(stream, parent string) bool {
		for _, f := range re.Failures {
			if f.Stream == stream && strings.Contains(f.Parents, parent) {
				return true
			}
		}
		return false
	}
	got := map[string]map[string]string{}
	for table := range truth {
		got[table] = dest.read(t, table)
	}
	has := func(table, id string) bool { _, ok := got[table][id]; return ok }
	for _, o := range a.parents {
		if !has("orgs", o.ID) && !failed("orgs", "") {
			t.Errorf("seed %d: org %s missing, no failure of stream orgs", a.seed, o.ID)
		}
	}
	kidExplained := func(s string, k chaosRec) bool {
		return failed(s, "orgs[id="+k.Parent+"]") || failed("orgs", "")
	}
	for _, s := range chaosKids {
		for _, o := range a.parents {
			for _, k := range a.kids[s][o.ID] {
				if !has(s, k.ID) && !kidExplained(s, k) {
					t.Errorf("seed %d: %s record %s (parent %s) missing silently", a.seed, s, k.ID, o.ID)
				}
				if s != "kids_cursor" {
					continue
				}
				for _, n := range a.notes[k.ID] {
					if !has("notes", n.ID) && !failed("notes", "kids_cursor[id="+k.ID+"]") && !kidExplained(s, k) {
						t.Errorf("seed %d: notes record %s (parents %s > %s) missing silently", a.seed, n.ID, o.ID, k.ID)
					}
				}
			}
		}
	}
}
