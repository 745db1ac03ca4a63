package engine_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// collisionSpec is dupSpec (items of each parent into t, keyed by id alone)
// with no on_duplicate: the default, which tells collisions apart.
func collisionSpec(t *testing.T) string {
	t.Helper()
	src := dupSpec("nl", "warn", "")
	out := strings.Replace(src, ", on_duplicate: warn}", "}", 1)
	if out == src {
		t.Fatal("dupSpec changed: no on_duplicate to remove")
	}
	return out
}

// TestKeyCollisionFailsTheRun: with no on_duplicate, two different records
// from different parents under one key (ids unique only per parent, a key
// that forgot the parent) are a collision: the later row is written (the
// last one wins, as before), but the earlier record is lost, so the run
// fails and names the key. Before, it was only counted, and the run exited
// 0 with a record lost. An explicit on_duplicate: warn accepts it.
func TestKeyCollisionFailsTheRun(t *testing.T) {
	fx := newFixture(t, collisionSpec(t), "")
	fx.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2"}})
	fx.pages("/parents/p1/items", []any{rec("1", "p1's first", nil), rec("2", "p1's second", nil)})
	fx.pages("/parents/p2/items", []any{rec("1", "p2's first", nil)})
	res, err := fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), `primary key "1" already written by another record`) ||
		!strings.Contains(re.Failures[0].Error(), "lost") {
		t.Fatalf("failures = %v, want the collision of key 1", re.Failures)
	}
	if got := fx.query(`SELECT count(*) FROM "nl__t"`); !slices.Equal(got, []string{"2"}) {
		t.Errorf("t holds %v rows, want 2 (the later row of key 1 written)", got)
	}
	if d := res.Summary.Duplicates; len(d) != 1 || d[0].Count != 1 || d[0].Modes["collision"] != 1 || d[0].Modes["warn"] != 0 {
		t.Errorf("duplicates = %+v, want t: 1, counted as a collision", res.Summary.Duplicates)
	}

	// on_duplicate: warn says the repeats are expected: the last one wins.
	fx2 := newFixture(t, dupSpec("nl", "warn", ""), "")
	fx2.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2"}})
	fx2.pages("/parents/p1/items", []any{rec("1", "p1's first", nil)})
	fx2.pages("/parents/p2/items", []any{rec("1", "p2's first", nil)})
	if _, err := fx2.run(engine.RunOptions{}); err != nil {
		t.Errorf("on_duplicate: warn: %v, want the repeat accepted", err)
	}
}

// TestRecordMetTwiceIsNoCollision: a record listed under two parents with
// the same values (a user in two teams), and a record met again on its own
// chain with new values (changed while it was read: an incremental export
// lists it again) are no collision; the run succeeds, the repeats counted.
func TestRecordMetTwiceIsNoCollision(t *testing.T) {
	fx := newFixture(t, collisionSpec(t), "")
	fx.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2"}})
	fx.pages("/parents/p1/items", []any{rec("u", "same", nil), rec("v", "old", nil), rec("v", "new", nil)})
	fx.pages("/parents/p2/items", []any{rec("u", "same", nil)})
	res, err := fx.run(engine.RunOptions{})
	if err != nil {
		t.Fatalf("run: %v, want no collision", err)
	}
	if got := fx.query(`SELECT id || '|' || a FROM "nl__t" ORDER BY id`); !slices.Equal(got, []string{"u|same", "v|new"}) {
		t.Errorf("t = %v, want u once and v's latest version", got)
	}
	if len(res.Summary.Duplicates) != 1 || res.Summary.Duplicates[0].Count != 2 {
		t.Errorf("duplicates = %+v, want t: 2", res.Summary.Duplicates)
	}
}

// TestEntityCollisionFailsTheRun: the same for Port entities. Two parents'
// items under one identifier with other properties: the later entity is
// sent, the earlier is lost and named, and the run fails.
func TestEntityCollisionFailsTheRun(t *testing.T) {
	src := strings.Replace(collisionSpec(t), "tables:\n", `port:
  blueprints: bp.json
  entities:
    - blueprint: item
      from: items
      identifier: .id
      properties: {v: .a}
tables:
`, 1)
	const blueprints = `[{"identifier": "item", "title": "Item", "schema": {"properties": {"v": {"type": "string", "title": "V"}}, "required": []}, "relations": {}}]`
	fx := newFixture(t, src, blueprints)
	fx.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2"}})
	fx.pages("/parents/p1/items", []any{rec("1", "p1's", nil)})
	fx.pages("/parents/p2/items", []any{rec("1", "p2's", nil)})
	_, err := fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	var entity, row bool
	for _, f := range re.Failures {
		entity = entity || strings.Contains(f.Error(), `blueprint item: identifier "1" already written by another record`)
		row = row || strings.Contains(f.Error(), `table t: primary key "1" already written by another record`)
	}
	if !entity || !row || len(re.Failures) != 2 {
		t.Errorf("failures = %v, want the entity's and the row's collision", re.Failures)
	}
}

// TestKeyCollisionAcrossResumedRuns: p1's item k is committed by a run that
// fails on p2; the resumed run reads only p2, whose item k has other
// values: a collision with what the earlier run committed, which the
// resumed run's row replaces. It fails the run as it would in one run. The
// same values from p2 (a record met twice) are no collision.
func TestKeyCollisionAcrossResumedRuns(t *testing.T) {
	for _, be := range dupBackends() {
		for _, tc := range []struct {
			name  string
			again map[string]any // p2's item in the resumed run
			fails bool
		}{
			{"collision", rec("k", "p2's", nil), true},
			{"met twice", rec("k", "p1's", nil), false},
		} {
			t.Run(be.name+"/"+tc.name, func(t *testing.T) {
				name, use := be.setup(t)
				src := dupSpec(name, "warn", "")
				src = strings.Replace(src, ", on_duplicate: warn}", "}", 1)
				fx := newFixture(t, src, "")
				query := use(fx)
				fx.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2"}})
				fx.pages("/parents/p1/items", []any{rec("k", "p1's", nil)})
				fx.pages("/parents/p2/items", []any{tc.again}, 0)
				_, err := fx.run(engine.RunOptions{})
				runErrorOf(t, err)
				fx.pages("/parents/p2/items", []any{tc.again})
				fx.takeRequests()
				_, err = fx.run(engine.RunOptions{})
				if got := fx.takeRequests(); slices.Contains(got, "/parents/p1/items") {
					t.Fatalf("the resumed run read p1's items again (%v): the test needs a run that does not", got)
				}
				if !tc.fails {
					if err != nil {
						t.Fatalf("resumed run: %v, want the record met twice accepted", err)
					}
					return
				}
				re := runErrorOf(t, err)
				if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), `primary key "k" already written by another record`) {
					t.Errorf("failures = %v, want the collision of key k with p1's committed row", re.Failures)
				}
				if got := query(`SELECT id || '|' || a FROM %t`); !slices.Equal(got, []string{"k|p2's"}) {
					t.Errorf("t = %v, want p2's row written (the last one wins)", got)
				}
			})
		}
	}
}

// TestKeyCollisionWithReplayedRecord: p1's incremental chain commits A (key
// k) and fails C's mapping; p2 fails. The resumed run replays p1's pages
// (for C), meeting A again without writing it, then p2 gives k with other
// values: a collision with A, as in one run. (A replayed key noted without
// A's fingerprint hid it.)
func TestKeyCollisionWithReplayedRecord(t *testing.T) {
	src := strings.Replace(collisionSpec(t), `row: '{id, a, b}'`,
		`row: '{id, a: (if .a == "bad" then error("bad a") else .a end), b}'`, 1)
	src = strings.Replace(src, "    paginate:", "    key: .rid\n    incremental: {cursor: .u, initial: \"0\"}\n    paginate:", 1)
	fx := newFixture(t, src, "")
	item := func(rid int, id, a string) map[string]any {
		r := ridRec(rid, id, a)
		r["u"] = "1"
		return r
	}
	fx.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2"}})
	fx.pages("/parents/p1/items", []any{item(1, "k", "p1's"), item(2, "z", "bad")})
	fx.pages("/parents/p2/items", []any{item(3, "k", "p2's")}, 0)
	_, err := fx.run(engine.RunOptions{})
	if re := runErrorOf(t, err); len(re.Failures) != 2 {
		t.Fatalf("first run failures = %v, want C's mapping and p2's request", re.Failures)
	}
	fx.pages("/parents/p1/items", []any{item(1, "k", "p1's"), item(2, "z", "c")})
	fx.pages("/parents/p2/items", []any{item(3, "k", "p2's")})
	fx.takeRequests()
	_, err = fx.run(engine.RunOptions{})
	if got := fx.takeRequests(); !slices.Contains(got, "/parents/p1/items") {
		t.Fatalf("the resumed run did not replay p1's items (%v): the test needs one that does", got)
	}
	re := runErrorOf(t, err)
	if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), `primary key "k" already written by another record`) {
		t.Errorf("failures = %v, want the collision of key k with p1's A", re.Failures)
	}
}
