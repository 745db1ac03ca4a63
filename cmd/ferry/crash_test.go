package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"
)

var (
	crashSeed   = flag.Uint64("crash.seed", 20260601, "seed of TestCrashResume's kill delays")
	crashTrials = flag.Int("crash.trials", 0, "trials of TestCrashResume per destination (default 12, or 8 under the race detector, which slows the ferry processes too)")
)

// The crash tests drive the real CLI in separate processes: TestMain (see
// script_test.go) puts this test binary on $PATH as "ferry", so a SIGKILL
// hits a whole ferry process, with its open database and HTTP connections.

// pageState selects the checkpoints of a sync in progress: the incremental
// cursors and the destination's source instance stay between syncs.
const pageState = `WHERE "stream" NOT LIKE '%@cursor' AND "stream" <> '@instance'`

// crashTables are the tables of testdata/crash/spec.yaml.
var crashTables = []string{"teams", "projects", "tasks", "task_labels", "task_events", "audit"}

// The simulated API has two versions: "a" is what an earlier, complete sync
// saw (one more team, other names, two tasks per project); "b" is what the
// runs under test extract. Both are served by one server under /a and /b.
func crashTeams(old bool) []string {
	var ids []string
	for i := 1; i <= 12; i++ {
		ids = append(ids, fmt.Sprintf("t%02d", i))
	}
	if old {
		ids = append(ids, "t99") // gone in b: the replace table marks it deleted
	}
	return ids
}

// crashProjects are 9 to 16 per team, about 150 in all: more task chains
// than the runner fetches ahead (64), so rows commit all along the run
// rather than after the last request.
func crashProjects(team string) []string {
	n, _ := strconv.Atoi(team[1:])
	var ids []string
	for p := 1; p <= 8+n%9; p++ {
		ids = append(ids, fmt.Sprintf("%s-p%d", team, p))
	}
	return ids
}

// crashTaskCount is 2 to 13 in b, except 46 to 112 (two or three pages)
// for each team's first project: about 2,000 tasks in all, each feeding
// three tables, so a run commits six batches of 1,000 rows.
func crashTaskCount(old bool, project string) int {
	if old {
		return 2
	}
	var team, p int
	fmt.Sscanf(project, "t%d-p%d", &team, &p)
	if p == 1 {
		return 40 + 6*team
	}
	return 2 + (13*team+29*p)%12
}

func crashTask(old bool, project string, k int) map[string]any {
	status := []string{"open", "open", "done"}[k%3]
	if old {
		status = "old"
	}
	var estimate any = k % 8
	if k%37 == 17 && !old {
		estimate = "n/a" // widens the column from LONG to STRING mid-run
	}
	var note any
	if k > 30 {
		note = fmt.Sprintf("note %d", k) // a column that appears late
	}
	return map[string]any{
		"id":       fmt.Sprintf("%s-k%d", project, k),
		"title":    fmt.Sprintf("Task %d", k),
		"status":   status,
		"estimate": estimate,
		"label":    []string{"bug", "chore", "docs", "feat", "perf"}[k%5],
		"due":      fmt.Sprintf("2025-%02d-%02dT10:00:00Z", 1+k%12, 1+k%28),
		"note":     note,
	}
}

// crashAudit lists the audit events in [start, end): one every two hours.
func crashAudit(old bool, start, end time.Time) []any {
	var out []any
	for at := start; at.Before(end); at = at.Add(2 * time.Hour) {
		id := "b-" + at.Format("0102-15")
		if old {
			id = "a-" + at.Format("0102-15")
		}
		out = append(out, map[string]any{"id": id, "at": at.Format(time.RFC3339)})
	}
	return out
}

// crashExpect is what every table holds after a sync of a, then of b.
type crashExpect struct {
	teams, projects, tasks, labels, events int
	newEvents                              int // of version b alone
}

func crashExpected() crashExpect {
	projects, tasks, labels := map[string]bool{}, map[string]bool{}, map[string]bool{}
	events, newEvents := 0, 0
	for _, old := range []bool{true, false} {
		for _, team := range crashTeams(old) {
			for _, p := range crashProjects(team) {
				projects[p] = true
				for k := 1; k <= crashTaskCount(old, p); k++ {
					task := crashTask(old, p, k)
					tasks[task["id"].(string)] = true
					labels[team+"/"+task["label"].(string)] = true
					events++
					if !old {
						newEvents++
					}
				}
			}
		}
	}
	return crashExpect{teams: len(crashTeams(true)), projects: len(projects), tasks: len(tasks), labels: len(labels), events: events, newEvents: newEvents}
}

// crashAPI serves both versions. Version b answers after latency, so a run
// takes long enough to be killed at many points.
type crashAPI struct {
	srv     *httptest.Server
	latency time.Duration
	// hold, when set, is called first by every request, to hold some back.
	hold  func(r *http.Request)
	count atomic.Int64
	teams atomic.Int64 // requests of the team list: one per run that starts
}

func startCrashAPI(t *testing.T, latency time.Duration, hold func(*http.Request)) *crashAPI {
	t.Helper()
	a := &crashAPI{latency: latency, hold: hold}
	a.srv = httptest.NewServer(a)
	t.Cleanup(a.srv.Close)
	return a
}

func (a *crashAPI) url(version string) string { return a.srv.URL + "/" + version }

func (a *crashAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.count.Add(1)
	if strings.HasSuffix(r.URL.Path, "/teams") {
		a.teams.Add(1)
	}
	if a.hold != nil {
		a.hold(r)
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	old := parts[0] == "a"
	if !old && a.latency > 0 {
		// Simulated API latency, not synchronisation.
		tm := time.NewTimer(a.latency)
		select {
		case <-tm.C:
		case <-r.Context().Done():
			tm.Stop()
			return
		}
	}
	q := r.URL.Query()
	var body any
	switch {
	case len(parts) == 2 && parts[1] == "teams":
		const size = 4
		ids := crashTeams(old)
		page, _ := strconv.Atoi(q.Get("page"))
		var teams []any
		for i := (page - 1) * size; i >= 0 && i < page*size && i < len(ids); i++ {
			name := "Team " + ids[i][1:]
			if old {
				name = "Old team " + ids[i][1:]
			}
			teams = append(teams, map[string]any{"id": ids[i], "name": name, "region": []string{"eu", "us"}[i%2]})
		}
		body = map[string]any{"teams": nonNilList(teams), "total_pages": (len(ids) + size - 1) / size}
	case len(parts) == 4 && parts[1] == "teams" && parts[3] == "projects":
		ids := crashProjects(parts[2])
		from := 0
		if c := q.Get("cursor"); c != "" {
			from, _ = strconv.Atoi(strings.TrimPrefix(c, "after-"))
		}
		var projects []any
		const size = 5
		for i := from; i < from+size && i < len(ids); i++ {
			projects = append(projects, map[string]any{"id": ids[i], "name": "Project " + ids[i],
				"meta": map[string]any{"owner": fmt.Sprintf("u%d", i), "tags": []string{"x", ids[i]}, "old": old}})
		}
		var next any
		if from+size < len(ids) {
			next = fmt.Sprintf("after-%d", from+size)
		}
		body = map[string]any{"projects": nonNilList(projects), "next": next}
	case len(parts) == 4 && parts[1] == "projects" && parts[3] == "tasks":
		page, _ := strconv.Atoi(q.Get("page"))
		size, _ := strconv.Atoi(q.Get("per_page"))
		if page < 1 || size < 1 {
			http.Error(w, "bad page", http.StatusBadRequest)
			return
		}
		var tasks []any
		n := crashTaskCount(old, parts[2])
		for k := (page-1)*size + 1; k <= page*size && k <= n; k++ {
			tasks = append(tasks, crashTask(old, parts[2], k))
		}
		body = map[string]any{"tasks": nonNilList(tasks), "total_pages": (n + size - 1) / size}
	case len(parts) == 2 && parts[1] == "audit":
		start, err1 := time.Parse(time.RFC3339, q.Get("start"))
		end, err2 := time.Parse(time.RFC3339, q.Get("end"))
		if err1 != nil || err2 != nil || end.Sub(start) > 24*time.Hour {
			http.Error(w, "bad window", http.StatusBadRequest)
			return
		}
		events := crashAudit(old, start, end)
		from, _ := strconv.Atoi(q.Get("cursor"))
		const size = 4
		var page []any
		for i := from; i < from+size && i < len(events); i++ {
			page = append(page, events[i])
		}
		var next any
		if from+size < len(events) {
			next = strconv.Itoa(from + size)
		}
		body = map[string]any{"events": nonNilList(page), "next": next}
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}

func nonNilList(l []any) []any {
	if l == nil {
		return []any{}
	}
	return l
}

// crashDest is one destination kind: SQLite files in a temporary directory,
// or schemas in the PostgreSQL database of FERRY_TEST_POSTGRES_URL.
type crashDest struct {
	kind  string
	dir   string // sqlite: where the database files go
	pgURL string // postgres
}

func newCrashDest(t *testing.T, kind string) *crashDest {
	t.Helper()
	d := &crashDest{kind: kind, dir: t.TempDir()}
	if kind == "postgres" {
		d.pgURL = os.Getenv("FERRY_TEST_POSTGRES_URL")
		if d.pgURL == "" {
			t.Skip("FERRY_TEST_POSTGRES_URL is not set: skipping the PostgreSQL destination (e.g. postgres://postgres:ferry@127.0.0.1:5432/ferry_test?sslmode=disable)")
		}
		conn := d.pgConn(t, t.Context())
		conn.Close(t.Context())
	}
	return d
}

// pgConn connects to the test database; trials run in parallel, and a
// pgx.Conn serves one at a time.
func (d *crashDest) pgConn(t *testing.T, ctx context.Context) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, d.pgURL)
	if err != nil {
		t.Fatalf("FERRY_TEST_POSTGRES_URL: %v", err)
	}
	return conn
}

// prepare returns the --dest of a spec name, with nothing of an earlier test
// run left there; the schema is dropped when t ends.
func (d *crashDest) prepare(t *testing.T, name string) string {
	t.Helper()
	if d.kind == "sqlite" {
		return "sqlite:" + filepath.Join(d.dir, name+".db")
	}
	drop := func(ctx context.Context) error {
		conn := d.pgConn(t, ctx)
		defer conn.Close(ctx)
		_, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+quoteIdent(name)+` CASCADE`)
		return err
	}
	if err := drop(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(context.Background()); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return d.pgURL
}

// query runs q on the destination of spec name and returns its column
// names and rows.
func (d *crashDest) query(t *testing.T, name, q string) ([]string, [][]any, error) {
	t.Helper()
	ctx := t.Context()
	if d.kind == "postgres" {
		conn := d.pgConn(t, ctx)
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, q)
		if err != nil {
			return nil, nil, err
		}
		defer rows.Close()
		var cols []string
		for _, f := range rows.FieldDescriptions() {
			cols = append(cols, f.Name)
		}
		var out [][]any
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				return nil, nil, err
			}
			out = append(out, vals)
		}
		return cols, out, rows.Err()
	}
	db, err := sql.Open("sqlite", filepath.Join(d.dir, name+".db"))
	if err != nil {
		return nil, nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, nil, err
	}
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		out = append(out, vals)
	}
	return cols, out, rows.Err()
}

// ident is the quoted name of a table of spec name (see package table).
func (d *crashDest) ident(name, table string) string {
	if d.kind == "sqlite" {
		return quoteIdent(name + "__" + table)
	}
	return quoteIdent(name) + "." + quoteIdent(table)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// dump reads every table of spec name: each row as JSON without
// _ferry_synced (the time of the run that wrote it), sorted, duplicates
// kept. _ferry_id stays: it is a hash of the row, the same in every run.
func (d *crashDest) dump(t *testing.T, name string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range crashTables {
		cols, rows, err := d.query(t, name, `SELECT * FROM `+d.ident(name, table))
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		for _, vals := range rows {
			m := map[string]any{}
			for i, c := range cols {
				if c != "_ferry_synced" {
					m[c] = vals[i]
				}
			}
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			out[table] = append(out[table], string(b))
		}
		slices.Sort(out[table])
	}
	return out
}

// count counts rows of a table of spec name; a missing table counts -1.
func (d *crashDest) count(t *testing.T, name, table, where string) int {
	t.Helper()
	_, rows, err := d.query(t, name, `SELECT count(*) FROM `+d.ident(name, table)+" "+where)
	if err != nil || len(rows) != 1 {
		return -1
	}
	switch n := rows[0][0].(type) {
	case int64:
		return int(n)
	}
	t.Fatalf("count(*) gave %T", rows[0][0])
	return 0
}

// waitUnlocked waits until no session holds the advisory lock of spec name
// (package table's lock key): a killed client's session ends only when the
// server notices the closed socket.
func (d *crashDest) waitUnlocked(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn := d.pgConn(t, ctx)
	defer conn.Close(ctx)
	key := "ferry:" + name
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended($1, 0))`, key); err != nil {
		t.Fatalf("wait for the lock of %s: %v", name, err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, key); err != nil {
		t.Fatal(err)
	}
}

// writeCrashSpec writes testdata/crash/spec.yaml under dir with its name
// replaced, and returns its path.
func writeCrashSpec(t *testing.T, dir, name string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "crash", "spec.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), "\nname: crash\n", "\nname: "+name+"\n", 1)
	if text == string(src) {
		t.Fatal("testdata/crash/spec.yaml: no 'name: crash' line to replace")
	}
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// ferryBin is the test binary as "ferry", installed on $PATH by TestMain.
func ferryBin(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("ferry")
	if err != nil {
		t.Fatalf("ferry is not on PATH (TestMain installs it): %v", err)
	}
	return bin
}

// ferryResult is how one ferry process ended.
type ferryResult struct {
	code   int  // exit code; -1 when killed
	killed bool // by our SIGKILL
	took   time.Duration
	stderr string
}

func (r ferryResult) String() string {
	if r.killed {
		return fmt.Sprintf("killed after %v", r.took.Round(time.Millisecond))
	}
	return fmt.Sprintf("exit %d after %v", r.code, r.took.Round(time.Millisecond))
}

// ferryCmd is a prepared `ferry run` of spec into dest against url.
type ferryCmd struct {
	bin, dir, spec, dest, url string
}

func (c ferryCmd) command(ctx context.Context) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.bin, "run", c.spec, "--dest", c.dest, "--set", "url="+c.url,
		"--progress", "none", "--log-level", "warn")
	cmd.Dir = c.dir // no stray .env or ferry.db
	// Under -race the child is race-enabled too; its default of sleeping
	// a second at exit would blur where kills land, and cost time.
	cmd.Env = append(os.Environ(), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	return cmd
}

// run runs ferry to its end, or SIGKILLs it after killAfter when that is
// not negative.
func (c ferryCmd) run(t *testing.T, killAfter time.Duration) ferryResult {
	t.Helper()
	// A bound, so a hung run fails the test instead of blocking it.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := c.command(ctx)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var kill <-chan time.Time
	if killAfter >= 0 {
		tm := time.NewTimer(killAfter) // the randomised kill point: the one sleep this test is about
		defer tm.Stop()
		kill = tm.C
	}
	var err error
	select {
	case err = <-waited:
	case <-kill:
		if kerr := cmd.Process.Signal(syscall.SIGKILL); kerr != nil && !errors.Is(kerr, os.ErrProcessDone) {
			t.Fatal(kerr)
		}
		err = <-waited
	}
	r := ferryResult{took: time.Since(start), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		if ctx.Err() != nil {
			t.Fatalf("ferry did not end within its time bound: %v\n%s", err, r.stderr)
		}
		if ws.Signal() != syscall.SIGKILL {
			t.Fatalf("ferry died of %v:\n%s", ws.Signal(), r.stderr)
		}
		r.killed = true
	}
	return r
}

// TestCrashResume is the crash-safety contract of the issue: a run killed
// with SIGKILL at any moment, then run again, ends with exactly the tables
// an uninterrupted run gives. Every trial first syncs version a of the API
// to completion (so upserts update, append adds, replace deletes), then
// runs version b killing ferry 1–3 times after random delays, then runs it
// to its end, and compares every table, row for row with duplicates, with
// the reference: the same two syncs, uninterrupted.
func TestCrashResume(t *testing.T) {
	seed, trials := *crashSeed, *crashTrials
	if trials <= 0 {
		trials = 12
		if raceEnabled() {
			trials = 8
		}
	}
	t.Logf("seed %d, %d trials per destination (rerun a failure with -crash.seed=%d)", seed, trials, seed)
	want := crashExpected()
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			dest := newCrashDest(t, kind)
			bin := ferryBin(t)
			api := startCrashAPI(t, 3*time.Millisecond, nil)
			prefix := fmt.Sprintf("crash_%d_", os.Getpid())
			if kind == "postgres" {
				prefix = fmt.Sprintf("crash_%d_%d_", os.Getpid(), time.Now().UnixNano()%1e6)
			}
			setup := func(t *testing.T, name string, api *crashAPI) ferryCmd {
				dir := t.TempDir()
				c := ferryCmd{bin: bin, dir: dir, spec: writeCrashSpec(t, dir, name), dest: dest.prepare(t, name), url: api.url("a")}
				if r := c.run(t, -1); r.code != 0 {
					t.Fatalf("sync of version a: %v:\n%s", r, r.stderr)
				}
				c.url = api.url("b")
				return c
			}

			ref := prefix + "ref"
			c := setup(t, ref, api)
			r := c.run(t, -1)
			if r.code != 0 {
				t.Fatalf("reference run: %v:\n%s", r, r.stderr)
			}
			window := r.took
			t.Logf("reference run of version b: %v, so kills land in [0, %[1]v)", window.Round(time.Millisecond))
			wantRows := dest.dump(t, ref)
			checkReference(t, dest, ref, wantRows, want)

			for i := range trials {
				t.Run(fmt.Sprintf("trial%02d", i), func(t *testing.T) {
					t.Parallel()
					rng := rand.New(rand.NewPCG(seed, uint64(i)))
					name := fmt.Sprintf("%st%02d", prefix, i)
					c := setup(t, name, api)
					var story []string
					lockedAfterKill := func(r ferryResult) bool {
						return kind == "postgres" && !r.killed && r.code == engine.ExitFailed && strings.Contains(r.stderr, "locked by another run")
					}
					runAfterKill := func(killAfter time.Duration) ferryResult {
						r := c.run(t, killAfter)
						if lockedAfterKill(r) {
							// The server had not yet ended the killed
							// client's session; say so, wait, go on.
							t.Logf("run right after a kill refused as locked (the killed session still held the lock): %s", firstLine(r.stderr, "locked"))
							story = append(story, "refused: locked")
							dest.waitUnlocked(t, name)
							r = c.run(t, killAfter)
						}
						return r
					}
					completed, afterKill := false, false
					for k := range 1 + rng.IntN(3) {
						// The larger of two uniform draws: kills lean
						// towards the later part of a run, where the
						// commits are; any point in [0, window) can come.
						delay := time.Duration(max(rng.Int64N(int64(window)), rng.Int64N(int64(window))))
						var r ferryResult
						if afterKill {
							r = runAfterKill(delay)
						} else {
							r = c.run(t, delay)
						}
						if !r.killed {
							if r.code != 0 {
								t.Fatalf("run %d (kill planned at %v) failed: %v:\n%s", k+1, delay, r, r.stderr)
							}
							story = append(story, fmt.Sprintf("kill at %v: too late, %v", delay, r))
							completed = true
							break
						}
						afterKill = true
						cps := dest.count(t, name, "_ferry_state", pageState)
						events := dest.count(t, name, "task_events", "")
						gens := dest.count(t, name, "_ferry_sync", "")
						story = append(story, fmt.Sprintf("killed at %v (%d checkpoints, %d task_events rows, %d open generations)", delay, cps, events, gens))
						if cps == 0 && gens == 0 && events == want.events {
							// Killed after the run had cleared its
							// checkpoints and finished teams: that sync is
							// over, and running again would be a second.
							story = append(story, "the killed run had completed")
							completed = true
							break
						}
					}
					if !completed {
						r := runAfterKill(-1)
						story = append(story, "final run: "+r.String())
						if r.code != 0 {
							t.Fatalf("%s\nfinal run: %v:\n%s", strings.Join(story, "\n"), r, r.stderr)
						}
					}
					t.Logf("%s", strings.Join(story, "; "))
					diff := compareTables(wantRows, dest.dump(t, name))
					if n := dest.count(t, name, "_ferry_state", pageState); n != 0 {
						diff += fmt.Sprintf("%d checkpoints left after the run that completed\n", n)
					}
					if n := dest.count(t, name, "_ferry_sync", ""); n != 0 {
						diff += fmt.Sprintf("%d replace generations left open after the run that completed\n", n)
					}
					switch {
					case diff == "":
					default:
						t.Errorf("seed %d trial %d: tables differ from the uninterrupted run's after: %s\n%s", seed, i, strings.Join(story, "; "), diff)
					}
				})
			}
		})
	}
}

// raceEnabled reports whether this test binary, and so the ferry processes
// it starts, was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// checkReference checks the uninterrupted run against the API's data, so
// that the trials are compared with something right.
func checkReference(t *testing.T, dest *crashDest, name string, rows map[string][]string, want crashExpect) {
	t.Helper()
	// Audit: 3 days of version a, then 4 of b, 12 events a day, each once.
	counts := map[string]int{"teams": want.teams, "projects": want.projects, "tasks": want.tasks, "task_labels": want.labels, "task_events": want.events, "audit": 7 * 12}
	for table, n := range counts {
		if len(rows[table]) != n {
			t.Errorf("reference: table %s has %d rows, want %d", table, len(rows[table]), n)
		}
	}
	if n := dest.count(t, name, "teams", `WHERE "_ferry_deleted" AND "id" = 't99'`); n != 1 {
		t.Errorf("reference: team t99, gone from the API, is not the one marked deleted (count %d)", n)
	}
	if n := dest.count(t, name, "teams", `WHERE "_ferry_deleted"`); n != 1 {
		t.Errorf("reference: %d teams marked deleted, want 1", n)
	}
	if n := dest.count(t, name, "tasks", `WHERE "status" = 'old'`); n != 2*len(crashProjects("t99")) {
		t.Errorf("reference: %d tasks still 'old', want only t99's %d", n, 2*len(crashProjects("t99")))
	}
}

// compareTables returns, per table, the rows the uninterrupted run has and
// the trial lacks, and the rows the trial has in excess (duplicates
// included); "" when all are equal.
func compareTables(want, got map[string][]string) string {
	var b strings.Builder
	for _, table := range crashTables {
		missing, extra := multisetDiff(want[table], got[table])
		if len(missing) == 0 && len(extra) == 0 {
			continue
		}
		fmt.Fprintf(&b, "table %s: %d rows, want %d: %d missing, %d extra or duplicated\nmissing (first 5):\n  %s\nextra (first 5):\n  %s\n",
			table, len(got[table]), len(want[table]), len(missing), len(extra),
			strings.Join(missing[:min(5, len(missing))], "\n  "), strings.Join(extra[:min(5, len(extra))], "\n  "))
	}
	return b.String()
}

func multisetDiff(want, got []string) (missing, extra []string) {
	n := map[string]int{}
	for _, r := range want {
		n[r]++
	}
	for _, r := range got {
		n[r]--
	}
	for _, r := range want {
		if n[r] > 0 {
			missing = append(missing, r)
			n[r]--
		}
	}
	for _, r := range got {
		if n[r] < 0 {
			extra = append(extra, r)
			n[r]++
		}
	}
	return missing, extra
}

// TestMultisetDiff checks the comparison the crash tests rely on to catch
// duplicates.
func TestMultisetDiff(t *testing.T) {
	for _, tc := range []struct {
		want, got, missing, extra []string
	}{
		{want: []string{"a", "b"}, got: []string{"b", "a"}},
		{want: []string{"a", "a"}, got: []string{"a"}, missing: []string{"a"}},
		{want: []string{"a"}, got: []string{"a", "a"}, extra: []string{"a"}},
		{want: []string{"a", "b"}, got: []string{"a", "c", "c"}, missing: []string{"b"}, extra: []string{"c", "c"}},
		{},
	} {
		missing, extra := multisetDiff(tc.want, tc.got)
		if !slices.Equal(missing, tc.missing) || !slices.Equal(extra, tc.extra) {
			t.Errorf("multisetDiff(%q, %q) = %q, %q; want %q, %q", tc.want, tc.got, missing, extra, tc.missing, tc.extra)
		}
	}
}

func firstLine(text, containing string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, containing) {
			return l
		}
	}
	return ""
}

// TestConcurrentRunRefused starts a run that holds at its first request,
// then runs the same spec into the same destination: the second run must be
// refused at once, naming the first, without a single request, while the
// first then completes normally.
func TestConcurrentRunRefused(t *testing.T) {
	want := crashExpected()
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			dest := newCrashDest(t, kind)
			started, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			api := startCrashAPI(t, 0, func(r *http.Request) {
				once.Do(func() { close(started) })
				select {
				case <-release:
				case <-r.Context().Done():
				}
			})
			name := fmt.Sprintf("lock_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
			dir := t.TempDir()
			c := ferryCmd{bin: ferryBin(t), dir: dir, spec: writeCrashSpec(t, dir, name), dest: dest.prepare(t, name), url: api.url("b")}
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			first := c.command(ctx)
			var firstErr strings.Builder
			first.Stderr = &firstErr
			if err := first.Start(); err != nil {
				t.Fatal(err)
			}
			firstDone := make(chan error, 1)
			go func() { firstDone <- first.Wait() }()
			select {
			case <-started:
			case err := <-firstDone:
				t.Fatalf("the first run ended before its first request: %v:\n%s", err, firstErr.String())
			}
			second := c.run(t, -1)
			t.Logf("second run: %v; stderr:\n%s", second, second.stderr)
			if second.code != engine.ExitFailed {
				t.Errorf("second run: %v, want exit %d", second, engine.ExitFailed)
			}
			if !strings.Contains(second.stderr, "locked by another run") {
				t.Errorf("second run's error does not say the destination is locked:\n%s", second.stderr)
			}
			if pid := fmt.Sprintf("(pid %d", first.Process.Pid); !strings.Contains(second.stderr, pid) {
				t.Errorf("second run's error does not name the holder %s:\n%s", pid, second.stderr)
			}
			if n := api.teams.Load(); n != 1 {
				t.Errorf("%d team lists asked while the first run held its requests: the refused run sent some", n)
			}
			close(release)
			if err := <-firstDone; err != nil {
				t.Fatalf("first run: %v:\n%s", err, firstErr.String())
			}
			rows := dest.dump(t, name)
			if n := len(rows["task_events"]); n != want.newEvents {
				t.Errorf("first run wrote %d task_events rows, want %d", n, want.newEvents)
			}
		})
	}
}
