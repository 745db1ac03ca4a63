package port

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
	"github.com/ferry-etl/ferry/engine/sink"
)

// TestPortRefusalNamesOrigin: an entity Port refuses is reported with the
// stream and parent chain of the record it was mapped from (carried
// through the spool, over several puts and their merge), the last one's
// when a later record replaced it, and said to be merged when records
// were merged into it. A relation dropped is logged with the entity that
// named the missing target and its origin.
func TestPortRefusalNamesOrigin(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bp := json.RawMessage(`{"identifier":"probe","title":"Probe","schema":{"properties":{"s":{"type":"string"}}},
	 "relations":{"peers":{"target":"probe","many":true,"required":false}}}`)
	ent := func(id, parents string, merge bool) sink.Entity {
		en := probeEntity(id, map[string]any{"s": parents})
		en.Stream, en.Partition, en.Parents, en.Merge = "envs", "p", parents, merge
		return en
	}
	var ents []sink.Entity
	for c := range 6 { // 600 entities: three puts of the spool, merged before reading
		for i := range 100 {
			ents = append(ents, ent(fmt.Sprintf("e-%d-%d", c, i), fmt.Sprintf("apps[id=%d]", c), false))
		}
	}
	ents[107].Data["relations"] = map[string]any{"peers": []any{"ghost"}} // e-1-7: a target missing, dropped
	ents = append(ents, ent("r", "apps[id=1]", false), ent("m", "apps[id=2]", true))
	ents = append(ents, ents[:300]...) // the same again: later puts replace them
	ents = append(ents, ent("r", "apps[id=4]", false), ent("m", "apps[id=5]", true))
	for _, id := range []string{"e-3-42", "r", "m"} {
		e.srv.RejectEntity("probe", id, http.StatusUnprocessableEntity, "blueprint_schema_mismatch", "rejected for the test")
	}
	rep, err := e.run(e.sink(), []json.RawMessage{bp}, ents, map[string]bool{"probe": true})
	if !errors.Is(err, ErrEntitiesFailed) {
		t.Fatalf("Finish: %v, want ErrEntitiesFailed", err)
	}
	want := map[string]EntityError{
		"e-3-42": {Stream: "envs", Parents: "apps[id=3]"},
		"r":      {Stream: "envs", Parents: "apps[id=4]"},
		"m":      {Stream: "envs", Parents: "apps[id=5]", Merged: true},
	}
	if len(rep.Errors) != len(want) {
		t.Fatalf("errors %+v, want %d", rep.Errors, len(want))
	}
	for _, x := range rep.Errors {
		w := want[x.Identifier]
		if x.Stream != w.Stream || x.Parents != w.Parents || x.Merged != w.Merged {
			t.Errorf("%s: stream %q parents %q merged %v, want %q %q %v", x.Identifier, x.Stream, x.Parents, x.Merged, w.Stream, w.Parents, w.Merged)
		}
		if !strings.Contains(x.Error(), "(stream envs, parents "+w.Parents) || strings.Contains(x.Error(), "merged into it") != w.Merged {
			t.Errorf("%s: message %q does not name its origin", x.Identifier, x.Error())
		}
	}
	if rep.DroppedRelations != 1 || !strings.Contains(e.logs.String(), `example=ghost entity=e-1-7 stream=envs parents="apps[id=1]"`) {
		t.Errorf("dropped %d; the log does not name e-1-7 and its origin:\n%s", rep.DroppedRelations, e.logs.String())
	}
	if rep.Upserted != 599 {
		t.Errorf("upserted %d, want 599 (602 less the three refused)", rep.Upserted)
	}
}
