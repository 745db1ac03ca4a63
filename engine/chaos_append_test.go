package engine_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
	"github.com/jackc/pgx/v5"
)

// TestChaosAppend is TestChaos (its simulator, spec and matrix) with an
// append table beside the keyed table of each child and grandchild
// stream, over a source that changes between syncs and, in some seeds,
// between the runs of a sync. The append row maps a field, x, that no
// keyed table maps (a change only there is a new version for the append
// table alone) and not note, which only the keyed tables map (a change
// only there is none); in some seeds it also reads jq's `now`, a load
// time, which the comparison leaves out. In some seeds the keyed tables
// that have no on_duplicate have `warn` instead.
//
// A version of a record is the values its append row maps but the load
// time: (id, v, x, parent). A sync's appends are the rows its append
// tables gained since it began. The properties:
//
//  1. After every run, whatever its exit, each row a sync appended is a
//     version its record had during the sync, and each (record, version)
//     is appended at most once in the sync where the stream's keyed
//     table is keyed by the record alone (no on_duplicate, or fail:
//     README, State and resume, "not appended again while it is as
//     committed"). Under warn or merge, a record met again past the
//     committed pages may be appended again (README: "and so is a record
//     without a key of such a table"): duplicated, never lost. A page that
//     repeats the previous page's last record (the source's own
//     duplicate) is still appended once (the chain keeps two pages'
//     record hashes). Not once: a chain with a total that a short page
//     cut, which is read afresh from its first page (README, Pagination:
//     "an append table gets its rows again"); the simulator counts both.
//  2. After a run that exits 0 (it ends the sync), every record present
//     since the sync began has at least one of the versions it had during
//     the sync appended in the sync (a record unchanged, its one
//     version); one added during the sync may be the next sync's.
//  3. A run that fails, not cancelled, names what the sync has not
//     appended yet: each record without a version appended in the sync is
//     explained by a failure of its stream under its parent, or of an
//     ancestor's stream (as chaosReported).
//  4. Each sync appends its own reading: properties 1 and 2 count a
//     sync's rows only, so a record the last sync appended is appended
//     again by the next, unchanged or not.
//
// Records of the leaf streams (kids_page, kids_link, kids_offset, notes)
// change, and are added (at a list's front too, which shifts the rest
// onto later pages: a resumed run meets records its partition committed
// past the pages it committed), between the runs of a sync; kids_cursor's, whose records are
// notes' parents, only between syncs (a chain whose parent changed is read
// afresh, and its append table gets its rows again: README, State and
// resume). FERRY_CHAOS_APPEND_SEEDS=n runs n seeds (default 1),
// FERRY_CHAOS_APPEND_SEED=s seed s alone; PostgreSQL too when
// FERRY_TEST_POSTGRES_URL is set.
func TestChaosAppend(t *testing.T) {
	chaosMatrix(t, seedsFrom(t, "FERRY_CHAOS_APPEND", 1), chaosAppendRun)
}

// caStreams are the streams with an append table, <stream>_log.
var caStreams = []string{"kids_page", "kids_cursor", "kids_link", "kids_offset", "notes"}

// caLeaves are the streams no stream reads below.
var caLeaves = []string{"kids_page", "kids_link", "kids_offset", "notes"}

// caVersion is a record's version as its append row maps it.
func caVersion(r chaosRec) string {
	x := r.X
	if x == "" {
		x = "<null>"
	}
	return r.ID + "|" + r.V + "|" + x + "|" + r.Parent
}

// records are a stream's records now, by id.
func (a *chaosAPI) records(stream string) map[string]chaosRec {
	a.data.RLock()
	defer a.data.RUnlock()
	out := map[string]chaosRec{}
	if stream == "notes" {
		for _, ns := range a.notes {
			for _, n := range ns {
				out[n.ID] = n
			}
		}
		return out
	}
	for _, rs := range a.kids[stream] {
		for _, r := range rs {
			out[r.ID] = r
		}
	}
	return out
}

// change changes one record of one of streams: its v (both tables see
// it), its x (only the append table) or its note (only the keyed table);
// or adds one to a list, at its front or anywhere (which shifts the
// records after it onto later pages: a resumed run meets them past the
// pages it committed). born numbers the records added.
func (a *chaosAPI) change(rng *rand.Rand, streams []string, born *int) string {
	a.data.Lock()
	defer a.data.Unlock()
	stream := streams[rng.IntN(len(streams))]
	lists := a.kids[stream]
	if stream == "notes" {
		lists = a.notes
	}
	parents := slices.Sorted(maps.Keys(lists))
	if len(parents) == 0 {
		return "nothing"
	}
	if rng.IntN(2) == 0 {
		p := parents[rng.IntN(len(parents))]
		*born++
		r := chaosRec{ID: fmt.Sprintf("%s-%s-a%d", stream, p, *born), V: fmt.Sprintf("v%d", rng.IntN(1000)), Parent: p, X: "xa"}
		if stream == "notes" {
			r.ID = fmt.Sprintf("%s-a%d", p, *born)
		}
		at := 0
		if rng.IntN(2) == 0 {
			at = rng.IntN(len(lists[p]) + 1)
		}
		lists[p] = slices.Insert(lists[p], at, r)
		return fmt.Sprintf("add %s at %d", r.ID, at)
	}
	var all []*chaosRec
	for _, p := range parents {
		for i := range lists[p] {
			all = append(all, &lists[p][i])
		}
	}
	r := all[rng.IntN(len(all))]
	switch rng.IntN(3) {
	case 0:
		r.V = fmt.Sprintf("v%d", rng.IntN(1000))
		return "v of " + r.ID
	case 1:
		r.X = []string{"", "x" + strconv.Itoa(rng.IntN(1000))}[rng.IntN(2)]
		return "x of " + r.ID
	}
	r.Note, r.hasNote = "m"+strconv.Itoa(rng.IntN(1000)), rng.IntN(3) > 0
	return "note of " + r.ID
}

// caLogs reads append tables back: table → version → rows.
type caLogs func(t *testing.T, table string) map[string]int

func caSQLiteLogs(dir, name string) caLogs {
	path := filepath.Join(dir, "t.db")
	return func(t *testing.T, table string) map[string]int {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.Query(caSelect + fmt.Sprintf(`"%s__%s"`, name, table))
		if err != nil {
			if strings.Contains(err.Error(), "no such table") {
				return map[string]int{}
			}
			t.Fatal(err)
		}
		defer rows.Close()
		return caScan(t, rows)
	}
}

func caPGLogs(url, name string) caLogs {
	return func(t *testing.T, table string) map[string]int {
		ctx := t.Context()
		conn := pgConnect(t, ctx, url)
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, caSelect+pgx.Identifier{name, table}.Sanitize())
		if err != nil {
			if strings.Contains(err.Error(), "does not exist") {
				return map[string]int{}
			}
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int{}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			out[v]++
		}
		if err := rows.Err(); err != nil {
			if strings.Contains(err.Error(), "does not exist") {
				return map[string]int{}
			}
			t.Fatal(err)
		}
		return out
	}
}

// caSelect reads an append row as caVersion writes it, without its load time.
const caSelect = `SELECT id || '|' || coalesce(v, '<null>') || '|' || coalesce(x, '<null>') || '|' || coalesce(parent, '<null>') FROM `

func caScan(t *testing.T, rows *sql.Rows) map[string]int {
	out := map[string]int{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out[v]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// caSync is what one sync is checked against.
type caSync struct {
	base map[string]map[string]int             // log → its rows as the sync began
	had  map[string]map[string]map[string]bool // stream → id → versions during the sync
	// born: records added during the sync, which a chain done before may
	// not meet (the next sync's: README, State and resume).
	born  map[string]bool
	noted bool // the sync's start noted
	// once: the streams whose keyed table is keyed by the record alone.
	once map[string]bool
	// repeats: chaosAPI.repeats as the sync began.
	repeats map[string]int
	// afresh: chaosAPI.afresh as the sync began.
	afresh map[string]int
}

func (c *caSync) note(a *chaosAPI) {
	for _, s := range caStreams {
		if c.had[s] == nil {
			c.had[s] = map[string]map[string]bool{}
		}
		for id, r := range a.records(s) {
			if c.had[s][id] == nil && c.noted {
				c.born[id] = true
			}
			if c.had[s][id] == nil {
				c.had[s][id] = map[string]bool{}
			}
			c.had[s][id][caVersion(r)] = true
		}
	}
	c.noted = true
}

// appended: what the sync appended to stream's log so far, by version.
func (c *caSync) appended(t *testing.T, logs caLogs, stream, what string) map[string]int {
	t.Helper()
	now := logs(t, stream+"_log")
	out := map[string]int{}
	for v, n := range now {
		if n > c.base[stream][v] {
			out[v] = n - c.base[stream][v]
		}
	}
	for v, n := range c.base[stream] {
		if now[v] < n {
			t.Errorf("%s: %s_log lost %d rows %s", what, stream, n-now[v], v)
		}
	}
	return out
}

// check: property 1 after any run; 2 when exitZero; 3 when failed.
func (c *caSync) check(t *testing.T, a *chaosAPI, logs caLogs, failed *engine.RunError, exitZero bool, what string) {
	t.Helper()
	for _, s := range caStreams {
		got := c.appended(t, logs, s, what)
		for v, n := range got {
			id, _, _ := strings.Cut(v, "|")
			if !c.had[s][id][v] {
				t.Errorf("seed %d: %s: %s_log got %s, a version the sync never had (it had %v)", a.seed, what, s, v, slices.Sorted(maps.Keys(c.had[s][id])))
			}
			a.mu.Lock()
			repeated := a.repeats[id] - c.repeats[id]
			a.mu.Unlock()
			// A chain with a total that a short page cut is read afresh
			// from its first page (README, Pagination: "an append table
			// gets its rows again").
			parent := v[strings.LastIndex(v, "|")+1:]
			a.mu.Lock()
			afresh := a.afresh[s+"|"+parent] - c.afresh[s+"|"+parent]
			a.mu.Unlock()
			if n > 1+afresh && c.once[s] {
				t.Errorf("seed %d: %s: %s_log got %s %d times in the sync, want once (the source repeated it on the next page %d times, still once; its chain, cut short by the source, was read afresh %d times)", a.seed, what, s, v, n, repeated, afresh)
			}
		}
		if !exitZero && failed == nil {
			continue
		}
		recs := a.records(s)
		for _, id := range slices.Sorted(maps.Keys(c.had[s])) {
			r := recs[id]
			n := 0
			for v := range c.had[s][id] {
				n += got[v]
			}
			if n > 0 || c.born[id] {
				continue
			}
			if exitZero {
				t.Errorf("seed %d: %s exited 0: %s_log misses %s in the sync (it had %v)", a.seed, what, s, id, slices.Sorted(maps.Keys(c.had[s][id])))
			} else if !caExplained(a, failed, s, r) {
				t.Errorf("seed %d: %s: %s_log misses %s (parent %s) in the sync, and no failure names it", a.seed, what, s, id, r.Parent)
			}
		}
	}
}

// caExplained: a failure of the record's stream under its parent, or of an
// ancestor's stream, explains it.
func caExplained(a *chaosAPI, re *engine.RunError, stream string, r chaosRec) bool {
	failed := func(stream, parent string) bool {
		for _, f := range re.Failures {
			if f.Stream == stream && strings.Contains(f.Parents, parent) {
				return true
			}
		}
		return false
	}
	if failed("orgs", "") {
		return true
	}
	if stream != "notes" {
		return failed(stream, "orgs[id="+r.Parent+"]")
	}
	if failed("notes", "kids_cursor[id="+r.Parent+"]") {
		return true
	}
	kid := a.records("kids_cursor")[r.Parent]
	return failed("kids_cursor", "orgs[id="+kid.Parent+"]")
}

func chaosAppendRun(t *testing.T, seed uint64, destKind, mode string) {
	a := newChaosAPI(t, seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	for _, s := range caStreams {
		a.data.Lock()
		for _, rs := range map[bool]map[string][]chaosRec{true: a.notes, false: a.kids[s]}[s == "notes"] {
			for i := range rs {
				if rng.IntN(2) == 0 {
					rs[i].X = "x" + strconv.Itoa(rng.IntN(1000))
				}
			}
		}
		a.data.Unlock()
	}
	dir := t.TempDir()
	name := fmt.Sprintf("chaosap_%d_%d_%s", os.Getpid(), seed, mode)
	var dest chaosDest
	var logs caLogs
	if destKind == "postgres" {
		dest = pgChaosDest(t, os.Getenv("FERRY_TEST_POSTGRES_URL"), name)
		logs = caPGLogs(os.Getenv("FERRY_TEST_POSTGRES_URL"), name)
	} else {
		dest = sqliteChaosDest(dir, name)
		logs = caSQLiteLogs(dir, name)
	}
	loadTime := rng.IntN(2) == 0
	warn := rng.IntN(2) == 0
	midSync := rng.IntN(3) > 0
	once := map[string]bool{"kids_link": true} // on_duplicate: fail
	repl := []string{"name: NAME", "name: " + name,
		"ORGS_PAGING", map[string]string{
			"cursor": "{type: cursor, token: .next, param: cursor}",
			"offset": "{type: offset, param: offset, total: .total}",
			"link":   "{type: link_header}",
		}[a.orgsPaging],
		"concurrency: 4", fmt.Sprintf("concurrency: %d", 1+seed%6),
	}
	for _, s := range []string{"kids_page", "kids_offset", "notes"} {
		if warn {
			old := s + ": {from: " + s + ", mode: replace,"
			repl = append(repl, old, old+" on_duplicate: warn,")
		} else {
			once[s] = true
		}
	}
	text := strings.NewReplacer(repl...).Replace(chaosSpec)
	loaded, loadedCol := "", ""
	if loadTime {
		loaded, loadedCol = ", loaded: now", ", loaded: DOUBLE"
	}
	for _, s := range caStreams {
		text += fmt.Sprintf("  %s_log: {from: %s, mode: append, row: '{id, v, x, parent%s}', columns: {id: STRING, v: STRING, x: STRING, parent: STRING%s}}\n", s, s, loaded, loadedCol)
	}
	t.Logf("seed %d: orgs paged by %s, pages capped at %d, concurrency %d; load time %v, warn %v, changes between runs of a sync %v", seed, a.orgsPaging, a.pageCap, 1+seed%6, loadTime, warn, midSync)
	path := filepath.Join(dir, "s.yaml")
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
	defer func() {
		if t.Failed() {
			a.mu.Lock()
			t.Logf("requests (url fault shape):\n%s", strings.Join(a.trace, "\n"))
			a.mu.Unlock()
		}
	}()
	mark := func(s string) {
		a.mu.Lock()
		a.trace = append(a.trace, s)
		a.mu.Unlock()
	}
	begin := func() *caSync {
		c := &caSync{base: map[string]map[string]int{}, had: map[string]map[string]map[string]bool{}, once: once, born: map[string]bool{}}
		for _, s := range caStreams {
			c.base[s] = logs(t, s+"_log")
		}
		c.note(a)
		a.mu.Lock()
		c.repeats, c.afresh = maps.Clone(a.repeats), maps.Clone(a.afresh)
		a.mu.Unlock()
		return c
	}
	born := 0
	syncs := 2 + rng.IntN(2)
	for sync := range syncs {
		if sync > 0 {
			var did []string
			for range 1 + rng.IntN(6) {
				did = append(did, a.change(rng, caStreams, &born))
			}
			mark(fmt.Sprintf("-- between syncs: %v", did))
			t.Logf("seed %d: between syncs: %v", seed, did)
		}
		c := begin()
		ended := false
		for i := range 1 + rng.IntN(3) {
			if i > 0 && midSync {
				var did []string
				for range 2 + rng.IntN(8) {
					did = append(did, a.change(rng, caLeaves, &born))
				}
				c.note(a)
				mark(fmt.Sprintf("-- between runs: %v", did))
				t.Logf("seed %d: sync %d: between runs: %v", seed, sync+1, did)
			}
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
			a.trace = append(a.trace, fmt.Sprintf("-- sync %d run %d ended: %v", sync+1, i+1, err))
			a.mu.Unlock()
			cut := ctx.Err() != nil
			cancel()
			what := fmt.Sprintf("sync %d run %d (%s)", sync+1, i+1, mode)
			t.Logf("seed %d: %s: %v; injected so far %s", seed, what, err, injected)
			var re *engine.RunError
			switch {
			case err == nil:
				c.check(t, a, logs, nil, true, what)
				ended = true
			case cut:
				c.check(t, a, logs, nil, false, what)
			case !errors.As(err, &re):
				t.Errorf("seed %d: %s: %v is not a RunError listing its failures", seed, what, err)
			default:
				c.check(t, a, logs, re, false, what)
			}
			if t.Failed() {
				return
			}
			if ended {
				break
			}
		}
		// Quiet runs end the sync (a chain cut after a short page fails
		// once: the next run reads it afresh).
		for try := 0; !ended; try++ {
			err := run(t.Context())
			mark(fmt.Sprintf("-- sync %d quiet run %d ended: %v", sync+1, try+1, err))
			what := fmt.Sprintf("sync %d quiet run %d", sync+1, try+1)
			t.Logf("seed %d: %s: %v", seed, what, err)
			var re *engine.RunError
			switch {
			case err == nil:
				c.check(t, a, logs, nil, true, what)
				ended = true
			case try > 0 || !errors.As(err, &re) || !strings.Contains(err.Error(), "paging ended after"):
				t.Fatalf("seed %d: %s: %v", seed, what, err)
			default:
				c.check(t, a, logs, re, false, what)
			}
			if t.Failed() {
				return
			}
		}
	}
	// A quiet sync of its own: its append tables get every record once
	// more, and the keyed tables hold exactly the source.
	c := begin()
	if err := run(t.Context()); err != nil {
		t.Fatalf("seed %d: a new sync without faults: %v", seed, err)
	}
	c.check(t, a, logs, nil, true, "a new sync without faults")
	a.data.RLock()
	truth := a.truth()
	a.data.RUnlock()
	chaosExact(t, dest, truth, "a new sync without faults")
}
