package port

import (
	"encoding/json"
	"fmt"
	"testing"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
	"github.com/ferry-etl/ferry/engine/sink"
)

// TestEntityPutTwiceCountsOnce: entities put again after the spool
// flushed them (a later put, after a merge had looked the first up in
// the runs, gets another n), one made invalid by its second put, one
// valid again after an invalid put (the last one wins: it is written). Port
// gets each latest version, and the
// report counts each entity once, by the state of its latest put: a
// second run finds the valid ones unchanged.
func TestEntityPutTwiceCountsOnce(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bps := []json.RawMessage{json.RawMessage(`{"identifier": "item", "title": "Item", "schema": {"properties": {"v": {"type": "string", "title": "V"}}, "required": []}}`)}
	ent := func(id string, v any) sink.Entity {
		return sink.Entity{Blueprint: "item", Data: map[string]any{"identifier": id, "title": id, "properties": map[string]any{"v": v}}}
	}
	var ents []sink.Entity
	const n = 3 * spoolBatch
	want := map[string]string{}
	put := func(id, v string) {
		ents = append(ents, ent(id, v))
		want[id] = v
	}
	for i := range n {
		put(fmt.Sprintf("e%04d", i), "1")
	}
	// Put again before any query, in a later flush of the buffer: both
	// puts wait in runs not yet merged.
	for i := 0; i < n; i += 7 {
		put(fmt.Sprintf("e%04d", i), "2")
	}
	for i := range spoolBatch {
		put(fmt.Sprintf("f%04d", i), "1")
	}
	// A merge asks the spool for the entity queued: it looks it up in the
	// runs as they are, unmerged.
	merged := ent("e0001", nil)
	merged.Merge = true
	ents = append(ents, merged)
	for i := 0; i < n; i += 11 {
		put(fmt.Sprintf("e%04d", i), "3")
	}
	ents = append(ents, ent("e0002", 3.5)) // invalid: v is a string
	ents = append(ents, ent("e0003", 4.5), ent("e0003", "4"))
	want["e0003"] = "4"
	delete(want, "e0002")
	rep, err := e.run(e.sink(), bps, ents, map[string]bool{"item": true})
	if err == nil {
		t.Fatal("no error: e0002's last put is invalid")
	}
	// e0003 was invalid once, but its last put is valid: written.
	got := rep.Blueprints["item"]
	if got.Upserted+got.Failed != len(want)+1 || got.Failed != 1 || got.Unchanged != 0 {
		t.Errorf("counts = %+v, want %d upserted and failed in all, 1 failed", got, len(want)+1)
	}
	for id, w := range want {
		props, _ := e.srv.Entity("item", id)["properties"].(map[string]any)
		if v := props["v"]; v != w {
			t.Fatalf("%s: v = %v, want the latest put's %s", id, v, w)
		}
	}
	var again []sink.Entity
	for id, v := range want {
		again = append(again, ent(id, v))
	}
	again = append(again, again[5], again[9]) // the same entity twice
	rep, err = e.run(e.sink(), nil, again, map[string]bool{"item": true})
	if err != nil {
		t.Fatal(err)
	}
	got = rep.Blueprints["item"]
	if got.Upserted != 0 || got.Unchanged != len(want) || got.Failed != 0 {
		t.Errorf("second run: counts = %+v, want all %d unchanged", got, len(want))
	}
}
