package engine_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestStreamsPartThenResumedSyncKeepsRows: `--streams x` reads x whole in
// an open sync and ends x's part (cd93a00: its checkpoints kept, so the
// run resuming the sync does not read x again). t, a replace table fed by
// x alone, was reconciled by the --streams run, which ended its sync
// generation; the run resuming the sync finds x done, writes no row of
// t, and reconciling t with no generation begun marked every row written
// before it deleted: a and b, which x still lists, deleted with exit 0
// (under the default delete_threshold, a false "deletion skipped"
// warning instead, and the sync not reconciled).
func TestStreamsPartThenResumedSyncKeepsRows(t *testing.T) {
	for _, be := range dupBackends() {
		for _, open := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/open=%v", be.name, open), func(t *testing.T) {
				name, use := be.setup(t)
				fx := newFixture(t, strings.Replace(specHead, "\nname: nl\n", "\nname: "+name+"\n", 1)+`streams:
  x:
    request: {path: /x}
  y:
    request: {path: /y}
tables:
  t: {from: x, mode: replace, delete_threshold: 1, primary_key: [id], row: '{id}'}
  y: {from: y, primary_key: [id], row: '{id}'}
`, "")
				query := use(fx)
				fx.json("/x", []any{map[string]any{"id": "a"}, map[string]any{"id": "b"}})
				if open {
					// The sync is left open by a failing y; x is done in it.
					fx.raw("/y", http.StatusBadRequest, `{"message": "no"}`)
					runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
				}
				if _, err := fx.run(engine.RunOptions{Streams: []string{"x"}}); err != nil {
					t.Fatal(err)
				}
				fx.json("/y", []any{map[string]any{"id": "y1"}})
				if _, err := fx.run(engine.RunOptions{}); err != nil {
					t.Fatal(err)
				}
				want := []string{"a:live", "b:live"}
				if got := query(`SELECT id || ':' || CASE WHEN _ferry_deleted THEN 'deleted' ELSE 'live' END FROM %t ORDER BY id`); !slices.Equal(got, want) {
					t.Errorf("open=%v: t after the run resuming the sync = %v, want %v: x lists both", open, got, want)
				}
				// The next sync reads x afresh: c gone, marked.
				fx.json("/x", []any{map[string]any{"id": "a"}})
				if _, err := fx.run(engine.RunOptions{}); err != nil {
					t.Fatal(err)
				}
				want = []string{"a:live", "b:deleted"}
				if got := query(`SELECT id || ':' || CASE WHEN _ferry_deleted THEN 'deleted' ELSE 'live' END FROM %t ORDER BY id`); !slices.Equal(got, want) {
					t.Errorf("open=%v: t after the next sync = %v, want %v", open, got, want)
				}
			})
		}
	}
}

// TestStreamsPartsOfATableReconciledByTheSync: t takes rows from x and w;
// `--streams x` and then `--streams w` each read one of them, neither
// reconciling t (its generation stays open), and the run resuming the
// sync reads neither again: it reconciles t, marking s, which w no longer
// lists (the rule of TestStreamsPartThenResumedSyncKeepsRows is only for
// a table whose generation a --streams run ended).
func TestStreamsPartsOfATableReconciledByTheSync(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  x:
    request: {path: /x}
  w:
    request: {path: /w}
  y:
    request: {path: /y}
tables:
  t: {from: [x, w], mode: replace, primary_key: [id], row: '{id}'}
  y: {from: y, primary_key: [id], row: '{id}'}
`, "")
	fx.json("/x", []any{map[string]any{"id": "a"}})
	fx.json("/w", []any{map[string]any{"id": "b"}, map[string]any{"id": "s"}})
	fx.json("/y", []any{map[string]any{"id": "y1"}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	fx.json("/w", []any{map[string]any{"id": "b"}})
	for _, s := range []string{"x", "w"} {
		if _, err := fx.run(engine.RunOptions{Streams: []string{s}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"a:live", "b:live", "s:deleted"}
	if got := fx.query(`SELECT id || ':' || CASE WHEN _ferry_deleted THEN 'deleted' ELSE 'live' END FROM "nl__t" ORDER BY id`); !slices.Equal(got, want) {
		t.Errorf("t = %v, want %v: the sync read x and w whole, in its two parts", got, want)
	}
}

// TestFailedAppendMappingMovedPastCommittedPagesIsAppended: a's mapping to
// log failed (exit 1) on a page the run committed; its row in items, the
// keyed table, was committed. In the resumed run a, its amount mended,
// is past the committed pages (records added pushed it there): c75281a
// took it for a record whose rows its partition committed (items saved
// its key, same values) and left it out of log, whose row it never got:
// lost, exit 0. The retry list names a by its id (or its stream key), and
// d, committed and pushed past the committed pages too, is still appended
// once; a record without either is named by its content, which a's
// change made another: log may get d twice then, never loses a.
func TestFailedAppendMappingMovedPastCommittedPagesIsAppended(t *testing.T) {
	for _, key := range []string{"", "\n    key: .id", "\n    key: .none"} {
		t.Run(fmt.Sprintf("key=%q", key), func(t *testing.T) {
			fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
    paginate: {type: offset, param: offset}`+key+`
tables:
  items: {from: items, primary_key: [id], row: '{id: (.id // .name)}'}
  log: {from: items, mode: append, row: '{id: (.id // .name), n: (.amount | tonumber)}'}
`, "")
			item := func(id, amount string) map[string]any { return map[string]any{"id": id, "amount": amount} }
			if strings.Contains(key, "none") {
				// Identified by content: a, mended, is another key.
				item = func(id, amount string) map[string]any { return map[string]any{"name": id, "amount": amount} }
			}
			fx.pages("/items", []any{item("a", "n/a"), item("d", "4"), item("c", "3")}, 2)
			runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
			fx.pages("/items", []any{item("z", "9"), item("y", "8"), item("a", "1"), item("d", "4"), item("c", "3")})
			if _, err := fx.run(engine.RunOptions{}); err != nil {
				t.Fatalf("resumed run: %v", err)
			}
			got := fx.query(`SELECT id FROM "nl__log" ORDER BY id`)
			if want := []string{"a", "c", "d", "y", "z"}; !slices.Contains(got, "a") || !strings.Contains(key, "none") && !slices.Equal(got, want) {
				t.Errorf("log = %v, want %v (d twice allowed when named by its content): a's row in log was never committed", got, want)
			}
		})
	}
}

// TestLeafStreamCheckpointHoldsNoRecords: a chain of a stream that a
// resumed run never reads again (no stream below it, no entities, no
// lookup, nothing to retry) holds no hashes of its records in its
// checkpoints (7f12b50 saved them with every checkpoint: 8 bytes a record
// of the last page, in each partition's state until the sync ends, read
// by no run). x's is such; w's, whose notes the resumed run drives, holds
// them.
func TestLeafStreamCheckpointHoldsNoRecords(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  x:
    request: {path: /x}
    paginate: {type: offset, param: offset}
  w:
    request: {path: /w}
    paginate: {type: offset, param: offset}
  notes:
    for_each: w
    request: {path: '/w/${ parent.id }/notes'}
  y:
    request: {path: /y}
tables:
  x: {from: x, mode: append, row: '{id}'}
  w: {from: w, mode: append, row: '{id}'}
  y: {from: y, primary_key: [id], row: '{id}'}
`, "")
	fx.pages("/x", []any{map[string]any{"id": "a"}, map[string]any{"id": "b"}})
	fx.pages("/w", []any{map[string]any{"id": "c"}})
	fx.json("/w/c/notes", []any{})
	fx.raw("/y", http.StatusBadRequest, `{"message": "no"}`)
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
	st := fx.query(`SELECT stream || ' ' || value FROM "nl___ferry_state" WHERE stream IN ('x', 'w') ORDER BY stream`)
	if len(st) != 2 || strings.Contains(st[1], `"recs"`) || !strings.Contains(st[0], `"recs"`) {
		t.Errorf("checkpoints = %v, want w's holding its last page's records, x's none", st)
	}
}

// TestStreamsPartRedoneAndFailedKeepsTheOtherPartsRows: t takes rows from
// x and w. `--streams x,w` reads both in a new sync and reconciles t
// (its generation ended, syncState.Ended); `--streams x` then begins x's
// part anew (x no longer a part done) and fails. The run resuming the
// sync reads x again and not w (its part done): t's new generation holds
// x's rows only, and reconciling it marked b deleted though w lists it
// (exit 0). A table a --streams run reconciled is left unreconciled while
// any of its streams is a part the resumed run does not read again.
func TestStreamsPartRedoneAndFailedKeepsTheOtherPartsRows(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  x:
    request: {path: /x}
  w:
    request: {path: /w}
  y:
    request: {path: /y}
tables:
  t: {from: [x, w], mode: replace, primary_key: [id], row: '{id}'}
  y: {from: y, primary_key: [id], row: '{id}'}
`, "")
	fx.json("/x", []any{map[string]any{"id": "a"}})
	fx.json("/w", []any{map[string]any{"id": "b"}})
	fx.json("/y", []any{map[string]any{"id": "y1"}})
	if _, err := fx.run(engine.RunOptions{Streams: []string{"x", "w"}}); err != nil {
		t.Fatal(err)
	}
	fx.raw("/x", http.StatusBadRequest, `{"message": "no"}`)
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{Streams: []string{"x"}}); return err }())
	fx.json("/x", []any{map[string]any{"id": "a"}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"a:live", "b:live"}
	if got := fx.query(`SELECT id || ':' || CASE WHEN _ferry_deleted THEN 'deleted' ELSE 'live' END FROM "nl__t" ORDER BY id`); !slices.Equal(got, want) {
		t.Errorf("t after the run resuming the sync = %v, want %v: w lists b", got, want)
	}
}

// TestShiftedRecordAfterStreamsRunOfTheParentIsAppended: `--streams x`
// leaves x's child notes out, so in that run x has no stream below it and
// (3bb02b6) its checkpoints held no records of their page; the run fails
// on x's third page. The full run resuming the sync reads x's committed
// pages again to drive notes, and could not tell c, shifted onto the
// last committed page when a went away, from a committed record: taken
// for committed, never appended to log, exit 0 (warned as a checkpoint of
// an older ferry). A checkpoint holds its page's records whenever some
// run of the spec may read its pages again.
func TestShiftedRecordAfterStreamsRunOfTheParentIsAppended(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  x:
    request: {path: /x}
    paginate: {type: offset, param: offset}
  notes:
    for_each: x
    request: {path: '/x/${ parent.id }/notes'}
tables:
  log: {from: x, mode: append, row: '{id}'}
`, "")
	id := func(s string) map[string]any { return map[string]any{"id": s} }
	for _, s := range []string{"a", "b", "c", "d"} {
		fx.json("/x/"+s+"/notes", []any{})
	}
	fx.pages("/x", []any{id("a"), id("b"), id("c")}, 2)
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{Streams: []string{"x"}}); return err }())
	fx.pages("/x", []any{id("b"), id("c"), id("d")})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := fx.query(`SELECT id FROM "nl__log" ORDER BY id`), []string{"a", "b", "c", "d"}; !slices.Equal(got, want) {
		t.Errorf("log = %v, want %v: c moved onto a committed page", got, want)
	}
}

// TestStreamsPartUnsavedKeepsTheTablesOpen: `--streams x` in an open sync
// (y failed) ends x's part; its sync entry, which records the part done,
// cannot be saved (the database refuses it), and the run fails saying so.
// It still reconciled t and ended its generation, and the run resuming the
// sync, not knowing x's part done and finding x's chain done, read x no
// more and reconciled t again: a and b marked deleted though x lists
// them, exit 0. A part not saved now ends no table's generation.
func TestStreamsPartUnsavedKeepsTheTablesOpen(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  x:
    request: {path: /x}
  y:
    request: {path: /y}
tables:
  t: {from: x, mode: replace, delete_threshold: 1, primary_key: [id], row: '{id}'}
  y: {from: y, primary_key: [id], row: '{id}'}
`, "")
	fx.json("/x", []any{map[string]any{"id": "a"}, map[string]any{"id": "b"}})
	fx.raw("/y", http.StatusBadRequest, `{"message": "no"}`)
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
	fx.query(`CREATE TRIGGER no_sync BEFORE INSERT ON "nl___ferry_state" WHEN NEW.stream = '@sync' BEGIN SELECT RAISE(ABORT, 'refused'); END`)
	if _, err := fx.run(engine.RunOptions{Streams: []string{"x"}}); err == nil || !strings.Contains(err.Error(), "save the sync") {
		t.Fatalf("--streams x: %v, want the sync's entry not saved", err)
	}
	fx.query(`DROP TRIGGER no_sync`)
	fx.json("/y", []any{map[string]any{"id": "y1"}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"a:live", "b:live"}
	if got := fx.query(`SELECT id || ':' || CASE WHEN _ferry_deleted THEN 'deleted' ELSE 'live' END FROM "nl__t" ORDER BY id`); !slices.Equal(got, want) {
		t.Errorf("t after the run resuming the sync = %v, want %v: x lists both", got, want)
	}
}
