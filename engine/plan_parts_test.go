package engine_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestPlanOfResumedSyncKeepsTablesAPartReconciled: a --streams run of x in
// an open sync (x read whole by the failed run before it, listing a, k and s)
// reconciled t, its part done; x then lists only k. The run resuming the
// sync reads x no more and leaves t as the part left it, all three live; the
// plan, which reads x afresh, said it would delete a and s (under the delete threshold). It now refuses
// those deletions, naming why, and the run does what it said.
func TestPlanOfResumedSyncKeepsTablesAPartReconciled(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  x:
    request: {path: /x}
  y:
    request: {path: /y}
tables:
  t: {from: x, mode: replace, primary_key: [id], row: '{id}'}
  u: {from: y, primary_key: [id], row: '{id}'}
`, "")
	fx.json("/x", []any{map[string]any{"id": "a"}, map[string]any{"id": "k"}, map[string]any{"id": "s"}})
	fx.raw("/y", 500, `{"error": "down"}`)
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
	fx.json("/x", []any{map[string]any{"id": "a"}})
	if _, err := fx.run(engine.RunOptions{Streams: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	fx.json("/x", []any{map[string]any{"id": "k"}})
	fx.json("/y", []any{map[string]any{"id": "y1"}})

	cfg, err := engine.ResolveConfig(fx.spec, engine.ConfigSources{Sets: map[string]string{"url": fx.api.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	p, err := engine.PlanRun(t.Context(), fx.spec, cfg, engine.PlanOptions{Dest: fx.db})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(p.Tables, func(tp engine.TablePlan) bool { return tp.Name == "t" })
	if tp := p.Tables[i]; tp.Delete != 0 || tp.Refused == nil || tp.Refused.Count != 2 || !strings.Contains(tp.Refused.Reason, "--streams run") {
		t.Errorf("plan of t: delete %d, refused %+v; want a's and s's deletions refused, the part named", tp.Delete, tp.Refused)
	}

	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"a:live", "k:live", "s:live"}
	if got := fx.query(`SELECT id || ':' || CASE WHEN _ferry_deleted THEN 'deleted' ELSE 'live' END FROM "nl__t" ORDER BY id`); !slices.Equal(got, want) {
		t.Errorf("t = %v, want %v: the resumed run leaves t as the part reconciled it, as the plan said", got, want)
	}
}
