package port

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
	"github.com/ferry-etl/ferry/engine/sink"
)

// cyclePasses returns, per identifier of bp, the dependsOn value each
// first-pass body carried (absent: not carried) and the identifiers sent in
// the second pass.
func cyclePasses(t *testing.T, e *env, bp string) (first map[string]any, second []string) {
	t.Helper()
	first = map[string]any{}
	for _, r := range e.srv.Requests() {
		if r.Path != "/v1/blueprints/"+bp+"/entities/bulk" {
			continue
		}
		var body struct{ Entities []map[string]any }
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		for _, ent := range body.Entities {
			id, _ := ent["identifier"].(string)
			rels, _ := ent["relations"].(map[string]any)
			if r.Query.Get("merge") == "true" {
				second = append(second, id)
				continue
			}
			if v, ok := rels["dependsOn"]; ok {
				first[id] = v
			}
		}
	}
	slices.Sort(second)
	return first, second
}

// A self-related blueprint spanning two pages of the spool: an entity whose
// targets were written in an earlier bulk request carries its cycle
// relation in the first pass and gets no second-pass work; one whose
// targets come later (a later page, its own request, a request not sent
// yet) still gets the relation in the second pass. On a rerun, a changed
// entity whose targets were found unchanged (or found in Port) is sent
// once, with the relation.
func TestCycleRelationSentEarly(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bps := rawBlueprints(`{"identifier":"node","title":"Node","schema":{"properties":{"v":{"type":"string","title":"V"}}},
	 "relations":{"dependsOn":{"target":"node","many":true,"required":false}}}`)
	deps := map[string][]any{
		"n0500": {"n0000", "n0001"}, // written in the first page's first request
		"n0501": {"n0000", "n0499"}, // n0499: the first page's last request, not sent yet
		"n0010": {"n0515"},          // a later page
		"n0011": {"n0012"},          // the same request
	}
	ents := func(v string, extra map[string][]any) []sink.Entity {
		var out []sink.Entity
		for i := range 520 {
			id := fmt.Sprintf("n%04d", i)
			d := deps[id]
			if x, ok := extra[id]; ok {
				d = x
			}
			if d == nil {
				d = []any{}
			}
			val := "a"
			if id == "n0500" || id == "n0010" {
				val = v
			}
			out = append(out, sink.Entity{Blueprint: "node", Data: map[string]any{"identifier": id, "title": id,
				"properties": map[string]any{"v": val}, "relations": map[string]any{"dependsOn": d}}})
		}
		return out
	}
	complete := map[string]bool{"node": true}
	// ext: a node of an earlier run, not produced by the rerun below.
	first := ents("a", nil)
	first = append(first, sink.Entity{Blueprint: "node", Data: map[string]any{"identifier": "ext", "title": "ext",
		"properties": map[string]any{"v": "a"}, "relations": map[string]any{"dependsOn": []any{}}}})
	// The first run's requests pass a gate that fixes what is written
	// when the second page is prepared, whatever the scheduling: n0000's
	// request answered, n0499's not.
	gate := newWriteGate(t, e.srv.URL(), "n0000", "n0499", "n0500")
	rep, err := e.run(e.sink(func(c *Config) { c.BaseURL = gate.URL }), bps, first, complete)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Upserted != 521 || rep.Failed != 0 {
		t.Fatalf("report upserted %d failed %d, want 521 and 0", rep.Upserted, rep.Failed)
	}
	early, second := cyclePasses(t, e, "node")
	if got := fmt.Sprint(early["n0500"]); got != "[n0000 n0001]" {
		t.Errorf("n0500's first pass carried dependsOn %s, want [n0000 n0001]", got)
	}
	for _, id := range []string{"n0501", "n0010", "n0011"} {
		if v, ok := early[id]; ok {
			t.Errorf("%s's first pass carried dependsOn %v before its targets were written", id, v)
		}
	}
	if want := []string{"n0010", "n0011", "n0501"}; !slices.Equal(second, want) {
		t.Errorf("second pass sent %v, want %v", second, want)
	}
	for id, d := range deps {
		if got, want := fmt.Sprint(e.srv.Entity("node", id)["relations"].(map[string]any)["dependsOn"]), fmt.Sprint(d); got != want {
			t.Errorf("%s dependsOn %s in Port, want %s", id, got, want)
		}
	}

	// The rerun: n0500 and n0010 changed; n0005 (unchanged, first page)
	// and n0502 (changed, second page) name ext, which only Port holds.
	e.srv.ResetRequests()
	extra := map[string][]any{"n0005": {"ext"}, "n0502": {"ext"}}
	rep, err = e.run(e.sink(), bps, ents("b", extra), complete)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Upserted != 4 || rep.Unchanged != 516 || rep.Failed != 0 || rep.Deleted != 0 {
		t.Errorf("rerun report upserted %d unchanged %d failed %d deleted %d, want 4, 516, 0, 0", rep.Upserted, rep.Unchanged, rep.Failed, rep.Deleted)
	}
	early, second = cyclePasses(t, e, "node")
	if got := fmt.Sprint(early["n0500"]); got != "[n0000 n0001]" {
		t.Errorf("rerun: n0500's first pass carried dependsOn %s, want [n0000 n0001]", got)
	}
	if got := fmt.Sprint(early["n0502"]); got != "[ext]" {
		t.Errorf("rerun: n0502's first pass carried dependsOn %s, want [ext]", got)
	}
	if want := []string{"n0005", "n0010"}; !slices.Equal(second, want) {
		t.Errorf("rerun: second pass sent %v, want %v", second, want)
	}
	for id, want := range map[string]string{"n0500": "[n0000 n0001]", "n0010": "[n0515]", "n0005": "[ext]", "n0502": "[ext]"} {
		ent := e.srv.Entity("node", id)
		if got := fmt.Sprint(ent["relations"].(map[string]any)["dependsOn"]); got != want {
			t.Errorf("rerun: %s dependsOn %s in Port, want %s", id, got, want)
		}
	}
	if e.srv.Entity("node", "ext") == nil {
		t.Error("ext, stale but referenced, was deleted")
	}
}

// newWriteGate is a proxy to a Port simulator that orders bulk writes:
// every other write waits until the one naming first is answered, and the
// one naming held waits until one naming release has arrived (sent only
// once the page after held's has been prepared), or 10 s.
func newWriteGate(t *testing.T, target, first, held, release string) *httptest.Server {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	var once [2]sync.Once
	firstDone, released := make(chan struct{}), make(chan struct{})
	names := func(body []byte, id string) bool { return bytes.Contains(body, []byte(`"identifier":"`+id+`"`)) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if r.Method != http.MethodPost || !bytes.Contains([]byte(r.URL.Path), []byte("/entities/bulk")) {
			proxy.ServeHTTP(w, r)
			return
		}
		wait := func(ch chan struct{}) {
			select {
			case <-ch:
			case <-time.After(10 * time.Second):
			}
		}
		switch {
		case names(body, first):
			proxy.ServeHTTP(w, r)
			once[0].Do(func() { close(firstDone) })
			return
		case names(body, release):
			once[1].Do(func() { close(released) })
		case names(body, held):
			wait(released)
		}
		wait(firstDone)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}
