package main

import (
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestPrintPlanNotWritten: a plan whose only findings are entities a run
// would not write never says the destinations match the source.
func TestPrintPlanNotWritten(t *testing.T) {
	p := &engine.Plan{Complete: true, Port: &engine.PortPlan{Owner: "o", Blueprints: []engine.BlueprintPlan{{
		Name: "app", Unchanged: 2,
		Conflicts: []engine.ConflictPlan{{Identifier: "theirs", Owner: "other"}},
		Invalid:   []engine.InvalidPlan{{Identifier: "d", Error: "title: must be a string"}},
	}}}}
	var b strings.Builder
	printPlan(&b, p, "")
	out := b.String()
	if strings.Contains(out, "match the source.") {
		t.Errorf("plan says the destinations match the source:\n%s", out)
	}
	if !strings.Contains(out, "2 entities would not be written (marked !): a run would fail.") {
		t.Errorf("plan does not count the entities not written:\n%s", out)
	}
}
