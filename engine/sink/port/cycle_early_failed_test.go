package port

import (
	"fmt"
	"slices"
	"testing"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
	"github.com/ferry-etl/ferry/engine/sink"
)

// A cycle relation's target that Port refused in an earlier request (its
// own, or the whole request's) is not in Port: the relation is not sent
// early with it, and the entity naming it goes through the second pass and
// the relation policy as before (the target dropped from the relation, the
// entity itself written), never failed by Port for a target it lacks.
func TestCycleRelationNotEarlyToAFailedTarget(t *testing.T) {
	for _, whole := range []bool{false, true} {
		t.Run(fmt.Sprintf("whole request %v", whole), func(t *testing.T) {
			e := newEnv(t, portsim.Options{})
			if whole {
				e.srv.RejectBatchWith("node", "n0000", 422, "invalid_request", "refused whole")
			} else {
				e.srv.RejectEntity("node", "n0000", 422, "invalid_request", "refused")
			}
			bps := rawBlueprints(`{"identifier":"node","title":"Node","schema":{"properties":{"v":{"type":"string","title":"V"}}},
			 "relations":{"dependsOn":{"target":"node","many":true,"required":false}}}`)
			var ents []sink.Entity
			for i := range 520 {
				id := fmt.Sprintf("n%04d", i)
				d := []any{}
				if id == "n0500" {
					d = []any{"n0000", "n0001"}
				}
				ents = append(ents, sink.Entity{Blueprint: "node", Data: map[string]any{"identifier": id, "title": id,
					"properties": map[string]any{"v": "a"}, "relations": map[string]any{"dependsOn": d}}})
			}
			rep, _ := e.run(e.sink(), bps, ents, map[string]bool{"node": true})
			if rep.Failed != 1 {
				t.Errorf("report failed %d, want 1 (n0000): %+v", rep.Failed, rep.Errors)
			}
			early, second := cyclePasses(t, e, "node")
			if v, ok := early["n0500"]; ok {
				t.Errorf("n0500's first pass carried dependsOn %v, naming a target Port refused", v)
			}
			if !slices.Contains(second, "n0500") {
				t.Errorf("second pass sent %v, without n0500", second)
			}
			ent := e.srv.Entity("node", "n0500")
			if ent == nil {
				t.Fatal("n0500 not in Port")
			}
			if got := fmt.Sprint(ent["relations"].(map[string]any)["dependsOn"]); got != "[n0001]" {
				t.Errorf("n0500 dependsOn %s in Port, want [n0001]", got)
			}
		})
	}
}
