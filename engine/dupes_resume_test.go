package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
	"github.com/jackc/pgx/v5"
)

// The duplicate check spans a sync, not a run: a run that failed after
// committing a partition holding key K, then the resumed run whose other
// partition yields K again. And the partition a resumed run reads again
// rewrites its own keys: no duplicate.

// dupBackend is a destination for the tests below: the spec's name, and
// a query on the destination, %t naming table t and %s the state table.
type dupBackend struct {
	name string
	// setup gives the spec's name and points fx at the destination.
	setup func(t *testing.T) (name string, use func(fx *fixture) func(q string) []string)
}

func dupBackends() []dupBackend {
	sqlite := dupBackend{name: "sqlite", setup: func(t *testing.T) (string, func(fx *fixture) func(string) []string) {
		return "nl", func(fx *fixture) func(string) []string {
			return func(q string) []string {
				return fx.query(strings.NewReplacer("%t", `"nl__t"`, "%s", `"nl___ferry_state"`).Replace(q))
			}
		}
	}}
	pg := dupBackend{name: "postgres", setup: func(t *testing.T) (string, func(fx *fixture) func(string) []string) {
		url := pgURL(t)
		name := fmt.Sprintf("dupes_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
		drop := func(ctx context.Context) {
			conn := pgConnect(t, ctx, url)
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{name}.Sanitize()+` CASCADE`); err != nil {
				t.Errorf("drop schema %s: %v", name, err)
			}
		}
		drop(t.Context())
		t.Cleanup(func() { drop(context.Background()) })
		return name, func(fx *fixture) func(string) []string {
			fx.db = url
			return func(q string) []string {
				ctx := t.Context()
				conn := pgConnect(t, ctx, url)
				defer conn.Close(ctx)
				q = strings.NewReplacer("%t", pgx.Identifier{name, "t"}.Sanitize(), "%s", pgx.Identifier{name, "_ferry_state"}.Sanitize()).Replace(q)
				rows, err := conn.Query(ctx, q)
				if err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				defer rows.Close()
				var out []string
				for rows.Next() {
					var s string
					if err := rows.Scan(&s); err != nil {
						t.Fatal(err)
					}
					out = append(out, s)
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
				return out
			}
		}
	}}
	return []dupBackend{sqlite, pg}
}

// dupSpec reads parents, then each parent's items in pages of one, into
// table t keyed by id alone (so two parents' items can share a key).
func dupSpec(name, mode, extra string) string {
	return strings.Replace(specHead, "\nname: nl\n", "\nname: "+name+"\n", 1) + `streams:
  owners:
    request: {path: /parents}
  items:
    for_each: owners
    request:
      path: /parents/${ parent.id }/items
    paginate: {type: offset, param: offset, size: 1, size_param: limit}
tables:
  t: {from: items, primary_key: [id], row: '{id, a, b}', columns: {id: STRING, a: STRING, b: STRING}, on_duplicate: ` + mode + `}
` + extra
}

// pages serves recs one a page (offset paging), failing with 500 at the
// offsets in fail.
func (fx *fixture) pages(path string, recs []any, fail ...int) {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	fx.routes[path] = func(w http.ResponseWriter, r *http.Request) {
		var off int
		fmt.Sscan(r.URL.Query().Get("offset"), &off)
		if slices.Contains(fail, off) {
			http.Error(w, "busy", http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(recs[min(off, len(recs)):min(off+1, len(recs))])
	}
}

func rec(id string, a, b any) map[string]any { return map[string]any{"id": id, "a": a, "b": b} }

// TestDuplicateAcrossResumedRuns: p1's partition, holding key k, is
// committed by a run that fails on p2; the resumed run reads only p2, whose
// item has key k too. That is a duplicate of the sync, as it would be of
// one run: fail keeps the first row and fails the second (exit 1), merge
// merges it into the stored one, warn counts it.
func TestDuplicateAcrossResumedRuns(t *testing.T) {
	for _, be := range dupBackends() {
		for _, tc := range []struct {
			mode, want string
			failed     bool
		}{
			{"warn", "k|-|b1", false},
			{"fail", "k|a1|-", true},
			{"merge", "k|a1|b1", false},
		} {
			t.Run(be.name+"/"+tc.mode, func(t *testing.T) {
				name, use := be.setup(t)
				fx := newFixture(t, dupSpec(name, tc.mode, ""), "")
				query := use(fx)
				fx.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2"}})
				fx.pages("/parents/p1/items", []any{rec("k", "a1", nil)})
				fx.pages("/parents/p2/items", []any{rec("k", nil, "b1")}, 0)
				_, err := fx.run(engine.RunOptions{})
				runErrorOf(t, err)
				const rows = `SELECT id || '|' || coalesce(a, '-') || '|' || coalesce(b, '-') FROM %t ORDER BY id`
				if got := query(rows); !slices.Equal(got, []string{"k|a1|-"}) {
					t.Fatalf("after the failed run, t = %v, want p1's row", got)
				}
				const keys = `SELECT CAST(count(*) AS TEXT) FROM %s WHERE stream = 'items@keys'`
				if got := query(keys); !slices.Equal(got, []string{"1"}) {
					t.Errorf("after the failed run, %v entries of saved keys, want p1's", got)
				}
				fx.pages("/parents/p2/items", []any{rec("k", nil, "b1")})
				fx.takeRequests()
				res, err := fx.run(engine.RunOptions{})
				if got := fx.takeRequests(); slices.Contains(got, "/parents/p1/items") {
					t.Fatalf("the resumed run read p1's items again (%v): the test needs a run that does not", got)
				}
				if tc.failed {
					re := runErrorOf(t, err)
					if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), "primary key") || !strings.Contains(re.Failures[0].Error(), "on_duplicate: fail") {
						t.Errorf("failures = %v, want p2's row failed as a duplicate", re.Failures)
					}
				} else if err != nil {
					t.Fatalf("resumed run: %v", err)
				}
				if len(res.Summary.Duplicates) != 1 || res.Summary.Duplicates[0].Name != "t" || res.Summary.Duplicates[0].Count != 1 || res.Summary.Duplicates[0].Modes[tc.mode] != 1 {
					t.Errorf("duplicates = %+v, want t: 1 (%s)", res.Summary.Duplicates, tc.mode)
				} else if ex := res.Summary.Duplicates[0].Examples; len(ex) != 1 || !strings.Contains(ex[0], "p2") {
					t.Errorf("examples = %q, want p2's row", ex)
				}
				if got := query(rows); !slices.Equal(got, []string{tc.want}) {
					t.Errorf("t = %v, want %q", got, tc.want)
				}
				if !tc.failed {
					// The sync is over: its saved keys go with its checkpoints.
					if got := query(keys); !slices.Equal(got, []string{"0"}) {
						t.Errorf("after the sync ended, %v entries of saved keys, want none", got)
					}
				}
			})
		}
	}
}

// TestResumedPartitionReadAgainIsNoDuplicate: p2's first page (key x) is
// committed, then its second request fails. p2 changes before the resumed
// run, which therefore reads its items afresh: x again, from the partition
// that wrote it. That rewrites its own row: no duplicate. (p1 goes on after
// its committed page, which held z, and yields w: its own new key.)
func TestResumedPartitionReadAgainIsNoDuplicate(t *testing.T) {
	for _, be := range dupBackends() {
		t.Run(be.name, func(t *testing.T) {
			name, use := be.setup(t)
			fx := newFixture(t, dupSpec(name, "fail", ""), "")
			query := use(fx)
			fx.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2", "v": 1}})
			fx.pages("/parents/p1/items", []any{rec("z", "1", nil)}, 1)
			fx.pages("/parents/p2/items", []any{rec("x", "1", nil), rec("y", "1", nil)}, 1)
			_, err := fx.run(engine.RunOptions{})
			runErrorOf(t, err)
			const rows = `SELECT id || '|' || coalesce(a, '-') FROM %t ORDER BY id`
			if got := query(rows); !slices.Equal(got, []string{"x|1", "z|1"}) {
				t.Fatalf("after the failed run, t = %v", got)
			}
			// p2 changed: read afresh, x first again.
			fx.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2", "v": 2}})
			fx.pages("/parents/p2/items", []any{rec("x", "2", nil), rec("y", "2", nil)})
			fx.pages("/parents/p1/items", []any{rec("z", "1", nil), rec("w", "1", nil)})
			res, err := fx.run(engine.RunOptions{})
			if err != nil {
				t.Fatalf("resumed run: %v", err)
			}
			if len(res.Summary.Duplicates) != 0 {
				t.Errorf("duplicates = %+v, want none: p2 rewrote its own rows", res.Summary.Duplicates)
			}
			if got := query(rows); !slices.Equal(got, []string{"w|1", "x|2", "y|2", "z|1"}) {
				t.Errorf("t = %v, want p2's rows rewritten", got)
			}
		})
	}
}

// TestDuplicateWithinResumedChain: p2's first page (key x) is committed,
// its second request fails; the resumed run goes on at the second page,
// which now holds x too (the listing shifted). An uninterrupted run would
// have seen x twice in the chain: so does the sync.
func TestDuplicateWithinResumedChain(t *testing.T) {
	for _, be := range dupBackends() {
		t.Run(be.name, func(t *testing.T) {
			name, use := be.setup(t)
			fx := newFixture(t, dupSpec(name, "fail", ""), "")
			query := use(fx)
			fx.json("/parents", []any{map[string]any{"id": "p2"}})
			fx.pages("/parents/p2/items", []any{rec("x", "a1", nil), rec("y", "a1", nil)}, 1)
			_, err := fx.run(engine.RunOptions{})
			runErrorOf(t, err)
			fx.pages("/parents/p2/items", []any{rec("w", "a2", nil), rec("x", "a2", nil)})
			fx.takeRequests()
			res, err := fx.run(engine.RunOptions{})
			if got := fx.takeRequests(); slices.Contains(got, "/parents/p2/items?limit=1&offset=0") {
				t.Fatalf("the resumed run read p2's first page again (%v): the test needs one that goes on", got)
			}
			re := runErrorOf(t, err)
			if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), "on_duplicate: fail") {
				t.Errorf("failures = %v, want x failed as a duplicate", re.Failures)
			}
			if len(res.Summary.Duplicates) != 1 || res.Summary.Duplicates[0].Count != 1 {
				t.Errorf("duplicates = %+v, want t: 1", res.Summary.Duplicates)
			}
			if got := query(`SELECT id || '|' || coalesce(a, '-') FROM %t ORDER BY id`); !slices.Equal(got, []string{"x|a1"}) {
				t.Errorf("t = %v, want the first x kept", got)
			}
		})
	}
}

// TestDuplicateEntityAcrossResumedRuns: Port entities need no saved
// identifiers. They reach Port only when a run ends, so a resumed run reads
// again every chain that feeds Port (the committed ones too, writing no row
// twice) and sees every entity of the sync: p1's entity k, committed by
// the failed run, is met again before p2's.
func TestDuplicateEntityAcrossResumedRuns(t *testing.T) {
	fx := newFixture(t, dupSpec("nl", "warn", `port:
  blueprints: bp.json
  entities:
    - {blueprint: item, from: items, identifier: .id, properties: {v: .a}, on_duplicate: fail}
`), itemBlueprint)
	fx.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2"}})
	fx.pages("/parents/p1/items", []any{rec("k", "a1", nil)})
	fx.pages("/parents/p2/items", []any{rec("k", "a2", nil)}, 0)
	_, err := fx.run(engine.RunOptions{})
	runErrorOf(t, err)
	fx.pages("/parents/p2/items", []any{rec("k", "a2", nil)})
	_, err = fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), `identifier "k" already produced`) || !strings.Contains(re.Failures[0].Error(), "p2") {
		t.Errorf("failures = %v, want p2's entity k failed as a duplicate", re.Failures)
	}
	if e := fx.port.Entity("item", "k"); e == nil || fmt.Sprint(e["properties"].(map[string]any)["v"]) != "a1" {
		t.Errorf("entity k = %v, want p1's", e)
	}
}

// TestFailedDuplicateLeavesItsKey: p1's page with key k is committed, then
// the run fails. In the resumed run p2 (first now) yields k: a duplicate
// of p1's row, failed, not written. Then p1, changed, is read afresh and
// yields k again: its own row, rewritten, not a duplicate of p2's, which
// was never written.
func TestFailedDuplicateLeavesItsKey(t *testing.T) {
	fx := newFixture(t, dupSpec("nl", "fail", ""), "")
	fx.json("/parents", []any{map[string]any{"id": "p1", "v": 1}, map[string]any{"id": "p2"}})
	fx.pages("/parents/p1/items", []any{rec("k", "a1", nil), rec("m", "a1", nil)}, 1)
	fx.pages("/parents/p2/items", nil, 0)
	_, err := fx.run(engine.RunOptions{})
	runErrorOf(t, err)
	fx.json("/parents", []any{map[string]any{"id": "p2"}, map[string]any{"id": "p1", "v": 2}})
	fx.pages("/parents/p2/items", []any{rec("k", nil, "b1")})
	fx.pages("/parents/p1/items", []any{rec("k", "a2", nil)})
	res, err := fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), "p2") {
		t.Errorf("failures = %v, want p2's row only", re.Failures)
	}
	if len(res.Summary.Duplicates) != 1 || res.Summary.Duplicates[0].Count != 1 {
		t.Errorf("duplicates = %+v, want t: 1", res.Summary.Duplicates)
	}
	if got := fx.query(`SELECT id || '|' || coalesce(a, '-') || '|' || coalesce(b, '-') FROM "nl__t" ORDER BY id`); !slices.Equal(got, []string{"k|a2|-"}) {
		t.Errorf("t = %v, want p1's k rewritten", got)
	}
}

// TestPartitionReadAfreshDropsItsKeys: p2's first page (x) is committed,
// its second request fails, and p1 fails. p2, changed, is read afresh by
// the resumed run and now yields y only: the keys of its earlier reading go
// with its old checkpoint. So x, which p1 yields in the third run, is no
// duplicate of the sync's (p2 no longer has it).
func TestPartitionReadAfreshDropsItsKeys(t *testing.T) {
	fx := newFixture(t, dupSpec("nl", "fail", ""), "")
	fx.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2", "v": 1}})
	fx.pages("/parents/p1/items", nil, 0)
	fx.pages("/parents/p2/items", []any{rec("x", "1", nil), rec("y", "1", nil)}, 1)
	_, err := fx.run(engine.RunOptions{})
	runErrorOf(t, err)
	fx.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2", "v": 2}})
	fx.pages("/parents/p2/items", []any{rec("y", "2", nil)})
	res, err := fx.run(engine.RunOptions{})
	if re := runErrorOf(t, err); len(re.Failures) != 1 || len(res.Summary.Duplicates) != 0 {
		t.Fatalf("failures = %v, duplicates %+v; want p1's request only", re.Failures, res.Summary.Duplicates)
	}
	fx.pages("/parents/p1/items", []any{rec("x", "3", nil)})
	res, err = fx.run(engine.RunOptions{})
	if err != nil {
		t.Fatalf("third run: %v", err)
	}
	if len(res.Summary.Duplicates) != 0 {
		t.Errorf("duplicates = %+v, want none", res.Summary.Duplicates)
	}
	if got := fx.query(`SELECT id || '|' || a FROM "nl__t" ORDER BY id`); !slices.Equal(got, []string{"x|3", "y|2"}) {
		t.Errorf("t = %v", got)
	}
}
