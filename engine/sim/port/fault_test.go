package port

import (
	"net/http"
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
