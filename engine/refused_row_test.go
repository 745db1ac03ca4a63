package engine_test

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

// poisonAPI is pagedAPI whose item 4 of parent "d" has 2100 more fields
// while poisoned is set: as a row of the items table it would need more
// columns than SQLite (2000) or PostgreSQL (1600) allow, and the database
// refuses it.
func poisonAPI(t *testing.T, poisoned *atomic.Bool) *httptest.Server {
	t.Helper()
	var extra strings.Builder
	for i := range 2100 {
		fmt.Fprintf(&extra, `,"f%04d":1`, i)
	}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/parents" {
			fmt.Fprint(w, `[{"id":"a"},{"id":"b/c"},{"id":"d"},{"id":"e"}]`)
			return
		}
		parent := strings.TrimSuffix(strings.TrimPrefix(r.URL.EscapedPath(), "/parents/"), "/items")
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		var items []string
		for i := after; i < after+3; i++ {
			more := ""
			if parent == "d" && i == 4 && poisoned.Load() {
				more = extra.String()
			}
			items = append(items, fmt.Sprintf(`{"id":%d,"parent":%q,"v":"x%d"%s}`, i, parent, i, more))
		}
		next := "null"
		if after+3 < 15 {
			next = strconv.Quote(strconv.Itoa(after + 3))
		}
		fmt.Fprintf(w, `{"items":[%s],"next":%s}`, strings.Join(items, ","), next)
	}))
	t.Cleanup(s.Close)
	return s
}

// refusedTarget is one destination of TestRefusedRowFailsItself.
type refusedTarget struct {
	dest  string
	spec  *engine.Spec
	dump  func() map[string][]string
	state func() map[string]string // stream/partition -> value, but the instance (it outlives syncs)
}

// TestRefusedRowFailsItself: one record the database refuses (a row that
// would need too many columns) fails itself, not its batch. Every other
// row is written, but those of its partition to the append table (the next
// run reads the partition again); the record is reported as a failed
// record naming its stream, parent and key; the run exits 1; its
// partition's checkpoint is not committed and the sync stays open, so the
// next run reads that partition again: still poisoned, the same; fixed,
// everything is written, the append table holding each row once, and the
// sync ends.
func TestRefusedRowFailsItself(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "ferry.db")
		state := func() map[string]string {
			db, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			rows, err := db.Query(`SELECT stream, "partition", value FROM "paged___ferry_state" WHERE stream <> '@instance'`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			out := map[string]string{}
			for rows.Next() {
				var s, p, v string
				if err := rows.Scan(&s, &p, &v); err != nil {
					t.Fatal(err)
				}
				out[s+"/"+p] = v
			}
			return out
		}
		testRefusedRow(t, refusedTarget{dest: "sqlite:" + path, spec: loadSpec(t, dir), dump: func() map[string][]string { return dump(t, path) }, state: state})
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgURL(t)
		sp := loadPGSpec(t, t.TempDir(), url, "refused")
		state := func() map[string]string {
			ctx := t.Context()
			conn := pgConnect(t, ctx, url)
			defer conn.Close(ctx)
			rows, err := conn.Query(ctx, `SELECT stream, "partition", value FROM `+pgx.Identifier{sp.Name(), "_ferry_state"}.Sanitize()+` WHERE stream <> '@instance'`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			out := map[string]string{}
			for rows.Next() {
				var s, p, v string
				if err := rows.Scan(&s, &p, &v); err != nil {
					t.Fatal(err)
				}
				out[s+"/"+p] = v
			}
			return out
		}
		testRefusedRow(t, refusedTarget{dest: url, spec: sp, dump: func() map[string][]string { return pgDump(t, url, sp.Name()) }, state: state})
	})
}

func testRefusedRow(t *testing.T, tg refusedTarget) {
	var poisoned atomic.Bool
	poisoned.Store(true)
	api := poisonAPI(t, &poisoned)
	cfg, err := engine.ResolveConfig(tg.spec, engine.ConfigSources{Sets: map[string]string{"url": api.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	runOnce := func() (*engine.Result, error) {
		return engine.Run(t.Context(), tg.spec, cfg, engine.RunOptions{Dest: tg.dest})
	}
	without := func(rows []string, parent string) []string {
		return slices.DeleteFunc(slices.Clone(rows), func(r string) bool { return strings.Contains(r, `"parent":"`+parent+`"`) })
	}
	// What a clean run writes, less the partition of parent d.
	var want map[string][]string

	for attempt := 1; attempt <= 2; attempt++ {
		res, err := runOnce()
		if err == nil {
			t.Fatalf("run %d: a run with a refused record succeeded", attempt)
		}
		if code := engine.ExitCode(err, false); code != engine.ExitFailed {
			t.Errorf("run %d: exit code %d for a run with a refused record", attempt, code)
		}
		if !strings.Contains(err.Error(), "1 failed record") || !strings.Contains(err.Error(), `id=4`) {
			t.Errorf("run %d: error does not name the failed record: %v", attempt, err)
		}
		if attempt == 1 {
			t.Logf("run 1: %v", err)
		}
		var recs []string
		for _, f := range res.Summary.Failures {
			if f.Record() {
				recs = append(recs, fmt.Sprintf("%s|%s|%s", f.Stream, f.Table, f.Parents))
			}
		}
		if len(recs) != 1 || !strings.HasPrefix(recs[0], "items|items|roots=d > items[") || !strings.Contains(recs[0], `id=4`) {
			t.Errorf("run %d: failed records %q, want the one of items, parent d, id 4", attempt, recs)
		}
		rep := engine.NewRunReport(tg.spec, "spec.yaml", res, err, engine.ExitCode(err, false), false, time.Now())
		if len(rep.Failures) != 1 || rep.Failures[0].Kind != "record" || rep.Failures[0].Table != "items" {
			t.Errorf("run %d: report failures %+v, want one record of items", attempt, rep.Failures)
		}
		got := tg.dump()
		if attempt == 1 {
			// The upsert table gets every row but the refused one; the
			// append table none of partition d's, which the next run
			// reads again.
			if len(got["items"]) != 59 || len(got["items_log"]) != 45 || len(got["roots"]) != 4 {
				t.Fatalf("run 1 wrote %d items, %d items_log, %d roots; want 59, 45 (every partition but d's), 4", len(got["items"]), len(got["items_log"]), len(got["roots"]))
			}
			for _, r := range got["items"] {
				if strings.Contains(r, `"parent":"d"`) && strings.Contains(r, `"id":4,`) {
					t.Errorf("the refused row is in the table: %s", r)
				}
			}
			want = got
		} else if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("run %d, still poisoned, changed the tables (-run 1 +now):\n%s", attempt, diff)
		}
		if rep := tableReport(rep, "items"); rep.RowsWritten != int64(len(got["items"])) && attempt == 1 {
			t.Errorf("run 1: report says %d items written; the table holds %d", rep.RowsWritten, len(got["items"]))
		}
		st := tg.state()
		for k := range st {
			if strings.HasPrefix(k, "items/roots=d") {
				t.Errorf("run %d: the refused record's partition has a committed checkpoint %s = %s", attempt, k, st[k])
			}
		}
		if _, ok := st["items/roots=a"]; !ok {
			t.Errorf("run %d: the sync was ended or partition a's checkpoint lost: state %v", attempt, st)
		}
	}

	poisoned.Store(false)
	res, err := runOnce()
	if err != nil {
		t.Fatalf("run with the record fixed: %v", err)
	}
	got := tg.dump()
	for _, table := range []string{"items", "items_log"} {
		if n := len(got[table]); n != 60 {
			t.Errorf("after the fixed run %s holds %d rows, want 60", table, n)
		}
		if !slices.Equal(without(got[table], "d"), without(want[table], "d")) {
			t.Errorf("after the fixed run the rows of %s outside partition d changed", table)
		}
		if c := slices.Compact(slices.Clone(got[table])); len(c) != len(got[table]) {
			t.Errorf("%s holds a row twice", table)
		}
	}
	if res.Rows["items"] != 15 || res.Rows["items_log"] != 15 {
		t.Errorf("the fixed run wrote %d items and %d items_log, want the 15 of partition d to each", res.Rows["items"], res.Rows["items_log"])
	}
	if st := tg.state(); len(st) != 0 {
		t.Errorf("state after the fixed run = %v, want none (the sync ended)", st)
	}
}

func tableReport(rep *engine.RunReport, name string) engine.TableReport {
	for _, t := range rep.Tables {
		if t.Name == name {
			return t
		}
	}
	return engine.TableReport{}
}
