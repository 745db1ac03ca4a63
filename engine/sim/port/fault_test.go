package port

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFaultBody(t *testing.T) {
	srv := New(Options{})
	defer srv.Close()
	c := newClient(t, srv)
	catalogFixture(t, c)
	srv.InjectFault(Fault{Method: "POST", Path: "*/entities/bulk", Times: 1, Kind: FaultBody, Body: `{"ok":true}`})

	const path = "/v1/blueprints/app/entities/bulk?upsert=true"
	r := c.must("POST", path, bulkBody(2, func(i int) map[string]any { return appEntity([]string{"x", "y"}[i], nil) }), http.StatusOK)
	if _, ok := r.body["entities"]; ok || string(r.raw) != `{"ok":true}` {
		t.Errorf("faulty answer %s, want the injected body", r.raw)
	}
	// The write happened all the same: only the answer is broken.
	if srv.Entity("app", "x") == nil || srv.Entity("app", "y") == nil {
		t.Error("a FaultBody request was not applied")
	}
	// Times: 1 — the next request is answered properly.
	r = c.must("POST", path, bulkBody(1, func(int) map[string]any { return appEntity("z", nil) }), http.StatusOK)
	if len(r.body["entities"].([]any)) != 1 {
		t.Errorf("second answer %s", r.raw)
	}

	// An empty search answer, every time (Times 0), for one blueprint only.
	srv.InjectFault(Fault{Path: "/v1/blueprints/app/entities/search", Kind: FaultBody, Body: ""})
	for range 2 {
		if r := c.must("POST", "/v1/blueprints/app/entities/search", map[string]any{}, http.StatusOK); len(r.raw) != 0 {
			t.Errorf("search answered %s, want an empty body", r.raw)
		}
	}
	if r := c.must("POST", "/v1/blueprints/env/entities/search", map[string]any{}, http.StatusOK); r.body["entities"] == nil {
		t.Errorf("the fault reached another path: %s", r.raw)
	}
	srv.ClearFaults()
	if r := c.must("POST", "/v1/blueprints/app/entities/search", map[string]any{}, http.StatusOK); len(r.body["entities"].([]any)) != 3 {
		t.Errorf("after ClearFaults: %s", r.raw)
	}
	// BodyContains picks one kind of request on a path.
	srv.InjectFault(Fault{Path: "*/entities/search", BodyContains: `"value":"x"`, Kind: FaultBody, Body: `{"ok":true,"entities":[]}`})
	byX := map[string]any{"query": map[string]any{"combinator": "and", "rules": []any{map[string]any{"property": "$identifier", "operator": "=", "value": "x"}}}}
	if r := c.must("POST", "/v1/blueprints/app/entities/search", byX, http.StatusOK); len(r.body["entities"].([]any)) != 0 {
		t.Errorf("search with the matching body: %s", r.raw)
	}
	byY := map[string]any{"query": map[string]any{"combinator": "and", "rules": []any{map[string]any{"property": "$identifier", "operator": "=", "value": "y"}}}}
	if r := c.must("POST", "/v1/blueprints/app/entities/search", byY, http.StatusOK); len(r.body["entities"].([]any)) != 1 {
		t.Errorf("search with another body: %s", r.raw)
	}
	if n := srv.CountRequests("POST", "*/entities/search"); n != 6 {
		t.Errorf("CountRequests by suffix = %d, want 4", n)
	}
}

func TestFaultThrottle(t *testing.T) {
	clk := newClock()
	clk.Add(4 * time.Second)
	srv := New(Options{RateLimit: 10, Window: 10 * time.Second, Now: clk.Now})
	defer srv.Close()
	c := newClient(t, srv)
	catalogFixture(t, c) // 2 requests of the window's 10
	srv.InjectFault(Fault{Method: "POST", Path: "/v1/blueprints/app/entities", Times: 2, Kind: FaultThrottle, RetryAfter: "1"})

	for range 2 {
		r := c.must("POST", "/v1/blueprints/app/entities", appEntity("t", nil), http.StatusTooManyRequests)
		// Quota left, as a throttling proxy or a burst limit would answer.
		if r.header.Get("x-ratelimit-remaining") != "8" || r.header.Get("Retry-After") != "1" || r.header.Get("x-ratelimit-reset") != "6" {
			t.Errorf("429 headers %v", r.header)
		}
	}
	if srv.Entity("app", "t") != nil {
		t.Error("a throttled request was applied")
	}
	r := c.must("POST", "/v1/blueprints/app/entities", appEntity("t", nil), http.StatusCreated)
	if r.header.Get("x-ratelimit-remaining") != "7" {
		t.Errorf("remaining %q after two injected 429s, want 7 (they are not counted)", r.header.Get("x-ratelimit-remaining"))
	}
}

// TestFaultStatusDropOmit: a 5xx that applied nothing, a 5xx after the
// write was applied, a dropped connection after it, and a bulk answer
// that leaves out an entity Port wrote; SetFaultFunc picks per request.
func TestFaultStatusDropOmit(t *testing.T) {
	srv := New(Options{})
	defer srv.Close()
	c := newClient(t, srv)
	catalogFixture(t, c)
	const path = "/v1/blueprints/app/entities/bulk?upsert=true"
	one := func(id string) []byte {
		b, _ := json.Marshal(bulkBody(1, func(int) map[string]any { return appEntity(id, nil) }))
		return b
	}

	srv.InjectFault(Fault{Path: "*/entities/bulk", Times: 1, Kind: FaultStatus, Status: 503, RetryAfter: "0"})
	r := c.must("POST", path, one("s1"), http.StatusServiceUnavailable)
	if r.body["error"] != "internal_error" || r.header.Get("Retry-After") != "0" {
		t.Errorf("503 answer %s %v", r.raw, r.header)
	}
	if srv.Entity("app", "s1") != nil {
		t.Error("a FaultStatus request without Applied was applied")
	}
	srv.InjectFault(Fault{Path: "*/entities/bulk", Times: 1, Kind: FaultStatus, Status: 504, Applied: true})
	c.must("POST", path, one("s2"), http.StatusGatewayTimeout)
	if srv.Entity("app", "s2") == nil {
		t.Error("a FaultStatus request with Applied was not applied")
	}

	srv.InjectFault(Fault{Path: "*/entities/bulk", Times: 1, Kind: FaultDrop})
	req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL()+path, bytes.NewReader(one("d1")))
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Errorf("a FaultDrop request was answered %d", res.StatusCode)
	}
	if srv.Entity("app", "d1") == nil {
		t.Error("a FaultDrop request was not applied")
	}

	srv.SetFaultFunc(func(method, path string, body []byte) *Fault {
		if strings.Contains(string(body), `"o1"`) {
			return &Fault{Kind: FaultOmit}
		}
		return nil
	})
	two, _ := json.Marshal(bulkBody(2, func(i int) map[string]any { return appEntity([]string{"o1", "o2"}[i], nil) }))
	r = c.must("POST", path, two, http.StatusOK)
	if l := r.body["entities"].([]any); len(l) != 1 || l[0].(map[string]any)["identifier"] != "o2" {
		t.Errorf("omitting answer %s, want only o2", r.raw)
	}
	if srv.Entity("app", "o1") == nil || srv.Entity("app", "o2") == nil {
		t.Error("a FaultOmit request was not applied whole")
	}
	r = c.must("POST", "/v1/blueprints/app/bulk/entities/delete", map[string]any{"entities": []string{"o1", "o2"}}, http.StatusOK)
	if l := r.body["deletedEntities"].([]any); len(l) != 1 || l[0] != "o2" {
		t.Errorf("omitting delete answer %s, want only o2", r.raw)
	}
	if srv.Entity("app", "o1") != nil {
		t.Error("the entity a delete answer left out was not deleted")
	}
	srv.SetFaultFunc(nil)
	c.must("POST", path, one("o1"), http.StatusOK)

	// Unapplied: the entity left out was not written (deleted) either.
	srv.InjectFault(Fault{Path: "*/entities/bulk", Times: 1, Kind: FaultOmit, Unapplied: true})
	three, _ := json.Marshal(bulkBody(2, func(i int) map[string]any { return appEntity([]string{"u1", "u2"}[i], nil) }))
	r = c.must("POST", path, three, http.StatusOK)
	if l := r.body["entities"].([]any); len(l) != 1 || l[0].(map[string]any)["identifier"] != "u2" {
		t.Errorf("unapplied omitting answer %s, want only u2", r.raw)
	}
	if srv.Entity("app", "u1") != nil || srv.Entity("app", "u2") == nil {
		t.Error("an unapplied FaultOmit wrote the entity it left out, or not the other")
	}
	srv.InjectFault(Fault{Path: "*/bulk/entities/delete", Times: 1, Kind: FaultOmit, Unapplied: true})
	r = c.must("POST", "/v1/blueprints/app/bulk/entities/delete", map[string]any{"entities": []string{"o1", "u2"}}, http.StatusOK)
	if l := r.body["deletedEntities"].([]any); len(l) != 1 || l[0] != "u2" {
		t.Errorf("unapplied omitting delete answer %s, want only u2", r.raw)
	}
	if srv.Entity("app", "o1") == nil || srv.Entity("app", "u2") != nil {
		t.Error("an unapplied FaultOmit deleted the entity it left out, or kept the other")
	}
}
