package port

import (
	"errors"
	"fmt"
	"testing"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
	"github.com/ferry-etl/ferry/engine/sink"
)

// TestLaterVersionReplacesInvalidOne: an entity written again under its
// identifier replaces the earlier version — the last one wins (README
// on_duplicate: not given, warn) — also when the earlier one failed
// offline validation: the later, valid version is written and the run
// does not fail for a version that was replaced. A valid version replaced
// by an invalid one still fails (it is the last). Whether the versions meet
// in memory or the first went to the spool already makes no difference.
func TestLaterVersionReplacesInvalidOne(t *testing.T) {
	app := func(id, created string) sink.Entity {
		return sink.Entity{Blueprint: bpApp, Stream: "apps", Data: map[string]any{
			"identifier": id, "title": "App " + id, "properties": map[string]any{"createdAt": created},
		}}
	}
	const good, bad = "2025-01-01T10:00:00Z", "not a date"
	for _, between := range []int{0, spoolBatch + 5} {
		t.Run(fmt.Sprintf("%d between", between), func(t *testing.T) {
			e := newEnv(t, portsim.Options{})
			ents := []sink.Entity{app("fixed", bad), app("broken", good)}
			for i := range between {
				ents = append(ents, app(fmt.Sprintf("other-%04d", i), good))
			}
			ents = append(ents, app("fixed", good), app("broken", bad))
			rep, err := e.run(e.sink(), humanitecBlueprints(t, bpApp), ents, map[string]bool{bpApp: true})
			if !errors.Is(err, ErrEntitiesFailed) {
				t.Fatalf("err = %v, want entities failed (broken's last version is invalid)", err)
			}
			if got := failedIDs(rep); len(got) != 1 || got[0] != bpApp+":broken" {
				t.Errorf("failed %v, want only broken (fixed's invalid version was replaced)", got)
			}
			if rep.Upserted != between+1 || rep.Failed != 1 {
				t.Errorf("upserted %d failed %d, want %d and 1", rep.Upserted, rep.Failed, between+1)
			}
			got := e.srv.Entity(bpApp, "fixed")
			if got == nil {
				t.Fatal("fixed, valid in its last version, is not in Port")
			}
			if p, _ := got["properties"].(map[string]any); p["createdAt"] != good {
				t.Errorf("fixed in Port: %v", got)
			}
			if e.srv.Entity(bpApp, "broken") != nil {
				t.Error("broken, invalid in its last version, was written")
			}
		})
	}
}

// TestMergedPartInvalidStillFails: under on_duplicate: merge a later part
// does not replace an earlier one but joins it, so an invalid part, whose
// values the merge cannot hold, keeps its entity failed.
func TestMergedPartInvalidStillFails(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	part := func(created string) sink.Entity {
		return sink.Entity{Blueprint: bpApp, Stream: "apps", Merge: true, Data: map[string]any{
			"identifier": "a", "properties": map[string]any{"createdAt": created},
		}}
	}
	rep, err := e.run(e.sink(), humanitecBlueprints(t, bpApp), []sink.Entity{part("not a date"), part("2025-01-01T10:00:00Z")}, nil)
	if !errors.Is(err, ErrEntitiesFailed) || rep.Failed != 1 {
		t.Fatalf("err %v, failed %d: want the entity with an invalid part failed", err, rep.Failed)
	}
}
