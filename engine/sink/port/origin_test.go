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

// TestOriginsStayOffTheHeap: a fan-out whose every parent yields one
// entity has an origin an entity; the origins past the first originSpill
// bytes are in a file, and each reference still names its own (in the
// file, in the buffer, merged or not, none).
func TestOriginsStayOffTheHeap(t *testing.T) {
	o := origins{dir: t.TempDir()}
	defer o.close()
	const n = 20000
	refs := make([]uint64, n)
	for i := range n {
		r, err := o.ref("details", fmt.Sprintf("apps[id=app-%06d] > envs[id=production]", i), i%7 == 0)
		if err != nil {
			t.Fatal(err)
		}
		refs[i] = r
	}
	if again, _ := o.ref("details", fmt.Sprintf("apps[id=app-%06d] > envs[id=production]", n-1), false); again != refs[n-1]&^1 {
		t.Errorf("the last origin again: ref %d, want %d (consecutive entities share theirs)", again, refs[n-1]&^1)
	}
	if o.spilled == 0 || cap(o.buf) > 2*originSpill {
		t.Errorf("spilled %d bytes, %d buffered (cap %d): the origins stay on the heap", o.spilled, len(o.buf), cap(o.buf))
	}
	for _, i := range []int{0, 1, 7, n / 2, n - 2, n - 1} {
		got, merged, err := o.of(refs[i])
		want := origin{"details", fmt.Sprintf("apps[id=app-%06d] > envs[id=production]", i)}
		if err != nil || got != want || merged != (i%7 == 0) {
			t.Errorf("origin %d: %+v merged %v (%v), want %+v merged %v", i, got, merged, err, want, i%7 == 0)
		}
	}
	if none, _ := o.ref("", "", false); none != 0 {
		t.Errorf("no stream: ref %d, want 0", none)
	}
	if got, _, err := o.of(0); err != nil || got != (origin{}) {
		t.Errorf("ref 0: %+v %v, want none", got, err)
	}
}
