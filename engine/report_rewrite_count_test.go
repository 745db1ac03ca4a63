package engine_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// TestReportCountsRewrittenEntityOnce: a parent listed again with other
// values has its children read again, and their second reading replaces
// the first's: a table's row counts once among those written, and so must
// a blueprint's entity among those produced ("a duplicate identifier
// once"), in a dry run and in a run, where Port holds one entity.
func TestReportCountsRewrittenEntityOnce(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  owners:
    request: {path: /parents}
    paginate: {type: offset, param: offset, size: 1, size_param: limit}
  items:
    for_each: owners
    request:
      path: /parents/${ parent.id }/items
tables:
  t: {from: items, primary_key: [id], row: '{id, v: $parent.v}'}
port:
  blueprints: bp.json
  entities:
    - {blueprint: item, from: items, identifier: .id, properties: {v: $parent.v}}
`, `[{"identifier": "item", "title": "Item", "schema": {"properties": {"v": {"type": "number"}}, "required": []}}]`)
	// p1 is listed twice, changed between its two pages.
	fx.pages("/parents", []any{map[string]any{"id": "p1", "v": 1}, map[string]any{"id": "p1", "v": 2}})
	fx.json("/parents/p1/items", []any{map[string]any{"id": "c1"}})
	for _, dry := range []bool{true, false} {
		var out bytes.Buffer
		res, err := fx.run(engine.RunOptions{DryRun: dry, Stdout: &out})
		if err != nil {
			t.Fatalf("dry run %v: %v", dry, err)
		}
		if res.Summary.Rewritten["t"] != 1 {
			t.Fatalf("dry run %v: rewritten %v, want t's row rewritten once: the test needs a parent read again", dry, res.Summary.Rewritten)
		}
		rep := engine.NewRunReport(fx.spec, "s.yaml", res, err, engine.ExitOK, dry, time.Now())
		if len(rep.Tables) != 1 || rep.Tables[0].RowsWritten != 1 {
			t.Errorf("dry run %v: tables %+v, want t: 1 row written", dry, rep.Tables)
		}
		if len(rep.Blueprints) != 1 || rep.Blueprints[0].Produced != 1 {
			t.Errorf("dry run %v: blueprints %+v, want item: 1 produced", dry, rep.Blueprints)
		}
		if !dry && (rep.Blueprints[0].Upserted != 1 || len(fx.entities("item")) != 1) {
			t.Errorf("run: item upserted %d, Port holds %v; want c1 once", rep.Blueprints[0].Upserted, fx.entities("item"))
		}
	}
}
