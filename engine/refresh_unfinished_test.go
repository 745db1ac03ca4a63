package engine_test

import (
	"slices"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestFullRefreshOfSomeStreamsKeepsOthersCheckpoints: a sync left
// unfinished with projects (an append table) read up to page 1; a
// `--full-refresh --streams issues` run reads projects again from the
// start, only to drive issues. The run that resumes the sync then must
// not append page 1's project again, nor lose page 2's.
func TestFullRefreshOfSomeStreamsKeepsOthersCheckpoints(t *testing.T) {
	for _, refresh := range []bool{false, true} {
		fx := newFixture(t, specHead+`streams:
  projects:
    request: {path: /projects}
    paginate: {type: offset, param: offset}
  issues:
    for_each: projects
    request: {path: '/projects/${ parent.id }/issues'}
tables:
  projects: {from: projects, mode: append, row: '{id}'}
  issues: {from: issues, primary_key: [id], row: '{id}'}
`, "")
		fx.json("/projects/p1/issues", []any{map[string]any{"id": "i1"}})
		fx.json("/projects/p2/issues", []any{map[string]any{"id": "i2"}})
		ps := []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2"}}
		fx.pages("/projects", ps, 1)
		runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
		fx.pages("/projects", ps)
		if _, err := fx.run(engine.RunOptions{Streams: []string{"issues"}, FullRefresh: refresh}); err != nil {
			t.Fatalf("refresh=%v: run of issues: %v", refresh, err)
		}
		if _, err := fx.run(engine.RunOptions{}); err != nil {
			t.Fatalf("refresh=%v: resumed run: %v", refresh, err)
		}
		if got, want := fx.query(`SELECT id FROM "nl__projects" ORDER BY id`), []string{"p1", "p2"}; !slices.Equal(got, want) {
			t.Errorf("refresh=%v: projects (append) = %v, want %v", refresh, got, want)
		}
		if got, want := fx.query(`SELECT id FROM "nl__issues" ORDER BY id`), []string{"i1", "i2"}; !slices.Equal(got, want) {
			t.Errorf("refresh=%v: issues = %v, want %v", refresh, got, want)
		}
	}
}
