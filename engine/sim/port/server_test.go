package port

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRateLimit(t *testing.T) {
	tests := []struct {
		name       string
		resetEpoch bool
	}{
		{"reset in seconds", false},
		{"reset as epoch", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			clk.Add(4 * time.Second) // 12:00:04, inside the window [12:00:00, 12:00:10)
			srv := New(Options{RateLimit: 3, Window: 10 * time.Second, Now: clk.Now, ResetEpoch: tc.resetEpoch})
			defer srv.Close()
			c := newClient(t, srv)
			newClient(t, srv) // the auth route is not counted
			windowEnd := time.Date(2026, 3, 1, 12, 0, 10, 0, time.UTC)
			wantReset := "6"
			if tc.resetEpoch {
				wantReset = strconv.FormatInt(windowEnd.Unix(), 10)
			}
			for i, wantRemaining := range []string{"2", "1", "0"} {
				r := c.must("GET", "/v1/blueprints", nil, http.StatusOK)
				h := r.header
				if h.Get("x-ratelimit-limit") != "3" || h.Get("x-ratelimit-period") != "10" ||
					h.Get("x-ratelimit-remaining") != wantRemaining || h.Get("x-ratelimit-reset") != wantReset {
					t.Fatalf("request %d headers: limit %q period %q remaining %q reset %q; want 3 10 %s %s", i,
						h.Get("x-ratelimit-limit"), h.Get("x-ratelimit-period"), h.Get("x-ratelimit-remaining"), h.Get("x-ratelimit-reset"), wantRemaining, wantReset)
				}
			}
			r := c.must("GET", "/v1/blueprints", nil, http.StatusTooManyRequests)
			if r.body["ok"] != false || r.header.Get("x-ratelimit-remaining") != "0" {
				t.Errorf("429: %s %v", r.raw, r.header)
			}
			// Unauthenticated requests are limited too (checked before auth).
			(&client{t: t, srv: srv}).must("GET", "/v1/blueprints", nil, http.StatusTooManyRequests)

			clk.Add(6*time.Second - time.Nanosecond)
			c.must("GET", "/v1/blueprints", nil, http.StatusTooManyRequests)
			clk.Add(time.Nanosecond)
			r = c.must("GET", "/v1/blueprints", nil, http.StatusOK)
			if r.header.Get("x-ratelimit-remaining") != "2" {
				t.Errorf("new window remaining %q, want 2", r.header.Get("x-ratelimit-remaining"))
			}
			if n := srv.CountRequests("GET", "/v1/blueprints"); n != 7 {
				t.Errorf("logged %d GET /v1/blueprints, want 7", n)
			}
		})
	}
}

func TestRateLimitDisabled(t *testing.T) {
	srv := New(Options{RateLimit: -1})
	defer srv.Close()
	c := newClient(t, srv)
	r := c.must("GET", "/v1/blueprints", nil, http.StatusOK)
	if h := r.header.Get("x-ratelimit-limit"); h != "" {
		t.Errorf("x-ratelimit-limit %q with limiting disabled", h)
	}
	def := New(Options{})
	defer def.Close()
	r = newClient(t, def).must("GET", "/v1/blueprints", nil, http.StatusOK)
	if r.header.Get("x-ratelimit-limit") != "35000" || r.header.Get("x-ratelimit-period") != "300" {
		t.Errorf("default headers %v", r.header)
	}
}

func TestBodyLimitEveryRoute(t *testing.T) {
	srv := New(Options{MaxBodyBytes: 64})
	defer srv.Close()
	c := newClient(t, srv) // the auth body is under 64 bytes
	big := `{"identifier":"` + strings.Repeat("x", 100) + `"}`
	for _, path := range []string{"/v1/blueprints", "/v1/blueprints/a/entities", "/v1/blueprints/a/entities/search", "/v1/auth/access_token"} {
		r := c.must("POST", path, big, http.StatusRequestEntityTooLarge)
		if r.body["ok"] != false || r.body["error"] == "" {
			t.Errorf("%s: 413 body %s", path, r.raw)
		}
	}
}

// Facts from Port's OpenAPI document (testdata/port-schemas.json) that the
// server's constants must match.
func TestSchemaFacts(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(readTestdata(t, "port-schemas.json"), &doc); err != nil {
		t.Fatal(err)
	}
	get := func(path ...string) any {
		var v any = doc
		for _, p := range path {
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("facts: %v: not an object at %q", path, p)
			}
			v = m[p]
		}
		return v
	}
	noLookahead := func(p string) string { return strings.Replace(p, `(?!\.{1,2}$)`, "", 1) }
	enum := func(v any) []string {
		var out []string
		for _, x := range v.([]any) {
			out = append(out, x.(string))
		}
		return out
	}
	bpProp := get("blueprint.create.request", "properties", "schema", "properties", "properties", "additionalProperties", "properties")
	entityID := get("entity.create.request", "properties", "identifier", "oneOf").([]any)[0].(map[string]any)
	checks := []struct {
		name      string
		got, want any
	}{
		{"entity id pattern", entityIDPattern, noLookahead(entityID["pattern"].(string))},
		{"entity id max", float64(maxEntityID), entityID["maxLength"]},
		{"blueprint id pattern", blueprintIDPattern, noLookahead(get("blueprint.create.request", "properties", "identifier", "pattern").(string))},
		{"blueprint id max", float64(maxBlueprintID), get("blueprint.create.request", "properties", "identifier", "maxLength")},
		{"blueprint title max", float64(maxTitle), get("blueprint.create.request", "properties", "title", "maxLength")},
		{"blueprint description max", float64(maxBlueprintDescription), get("blueprint.create.request", "properties", "description", "maxLength")},
		{"property key pattern", keyPattern, get("blueprint.create.request", "properties", "schema", "properties", "properties", "propertyNames", "pattern")},
		{"property key max", float64(maxKey), get("blueprint.create.request", "properties", "schema", "properties", "properties", "propertyNames", "maxLength")},
		{"relation key pattern", keyPattern, get("blueprint.create.request", "properties", "relations", "propertyNames", "pattern")},
		{"mirror path pattern", mirrorPathPattern, get("blueprint.create.request", "properties", "mirrorProperties", "additionalProperties", "properties", "path", "pattern")},
		{"property types", propertyTypes, enum(bpProp.(map[string]any)["type"].(map[string]any)["enum"])},
		{"property formats", propertyFormats, enum(bpProp.(map[string]any)["format"].(map[string]any)["enum"])},
		{"property specs", propertySpecs, enum(bpProp.(map[string]any)["spec"].(map[string]any)["enum"])},
		{"relation keys", slices.Sorted(slices.Values(relationKeys)), slices.Sorted(func(yield func(string) bool) {
			for k := range get("blueprint.create.request", "properties", "relations", "additionalProperties", "properties").(map[string]any) {
				if !yield(k) {
					return
				}
			}
		})},
		{"bulk max", float64(maxBulkEntities), get("entity.bulk.request", "properties", "entities", "maxItems")},
		{"bulk min", float64(1), get("entity.bulk.request", "properties", "entities", "minItems")},
		{"bulk delete max", float64(maxBulkDelete), get("entity.bulkdelete.request", "properties", "entities", "maxItems")},
		{"search limit max", float64(maxSearchLimit), get("entity.search.request", "properties", "limit", "maximum")},
		{"search limit default", float64(defaultSearchLimit), get("entity.search.request", "properties", "limit", "default")},
		{"auth keys closed", false, get("auth.request", "additionalProperties")},
		{"bulk body closed", false, get("entity.bulk.request", "additionalProperties")},
		{"search body closed", false, get("entity.search.request", "additionalProperties")},
		{"schema object closed", false, get("blueprint.create.request", "properties", "schema", "additionalProperties")},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s: server has %v, Port's spec says %v", c.name, c.got, c.want)
		}
	}
	// The identifier check must agree with the full pattern on the cases the
	// lookahead exists for.
	for _, id := range []string{".", "..", "...", "a.b", ".a"} {
		wantOK := id != "." && id != ".."
		if gotOK := checkEntityID(id) == nil; gotOK != wantOK {
			t.Errorf("checkEntityID(%q) ok=%v, want %v", id, gotOK, wantOK)
		}
	}
}

func TestCatalogSnapshot(t *testing.T) {
	srv := New(Options{})
	defer srv.Close()
	c := newClient(t, srv)
	catalogFixture(t, c)
	for _, id := range []string{"b", "a", "c/1"} {
		if err := srv.SeedEntity("app", []byte(fmt.Sprintf(`{"identifier":%q,"properties":{"size":1}}`, id))); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.SeedEntity("env", []byte(`{"identifier":"e","properties":{"kind":"k"},"relations":{"app":"a"}}`)); err != nil {
		t.Fatal(err)
	}
	if err := srv.SeedEntity("env", []byte(`{"identifier":"e2","properties":{"kind":"k"},"relations":{"app":"ghost"}}`)); err == nil {
		t.Errorf("SeedEntity with a missing relation target: no error")
	}
	if err := srv.SeedBlueprint([]byte(`{"identifier":"app","title":"x","schema":{"properties":{}}}`)); err == nil {
		t.Errorf("SeedBlueprint of an existing blueprint: no error")
	}
	cat := srv.Catalog()
	var order []string
	for _, e := range cat.Entities {
		order = append(order, e.Blueprint+":"+e.Identifier)
	}
	if got := strings.Join(order, ","); got != "app:a,app:b,app:c/1,env:e" {
		t.Errorf("entity order %s", got)
	}
	if len(cat.Blueprints) != 2 || cat.Blueprints[0]["identifier"] != "app" {
		t.Errorf("blueprints %v", cat.Blueprints)
	}
	if _, ok := cat.Blueprints[0]["createdAt"]; ok {
		t.Errorf("catalog blueprints carry timestamps")
	}
	if !bytes.Equal(cat.JSON(), srv.Catalog().JSON()) {
		t.Errorf("two snapshots differ")
	}
	// The snapshot is a copy.
	cat.Entities[0].Properties["size"] = 99
	if srv.Catalog().Entities[0].Properties["size"] == 99 {
		t.Errorf("snapshot aliases server state")
	}
}

func TestRequestLogAndConcurrency(t *testing.T) {
	srv := New(Options{Latency: 20 * time.Millisecond})
	defer srv.Close()
	c := newClient(t, srv)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c.do("GET", "/v1/blueprints", nil)
		})
	}
	wg.Wait()
	if n := srv.CountRequests("GET", "/v1/blueprints"); n != 4 {
		t.Errorf("CountRequests = %d, want 4", n)
	}
	if n := srv.CountRequests("", "/v1/*"); n != 5 {
		t.Errorf("CountRequests prefix = %d, want 5", n)
	}
	if p := srv.PeakInFlight(); p < 1 || p > 4 {
		t.Errorf("PeakInFlight = %d", p)
	}
	reqs := srv.Requests()
	if reqs[0].Path != "/v1/auth/access_token" || !strings.Contains(string(reqs[0].Body), "clientSecret") || reqs[0].Status != 200 {
		t.Errorf("first logged request %+v", reqs[0])
	}
	srv.ResetRequests()
	if len(srv.Requests()) != 0 {
		t.Errorf("ResetRequests left entries")
	}
}

func TestStart(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	srv, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, srv)
	c.must("GET", "/v1/blueprints", nil, http.StatusOK)
	cancel()
	srv.Close()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL()+"/v1/blueprints", nil)
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Errorf("server still answers after Close")
	}
}

// Port may compress search answers; the simulator does whenever the client
// accepts gzip, so a client that asks for it must also undo it.
func TestSearchGzip(t *testing.T) {
	srv := New(Options{})
	defer srv.Close()
	c := newClient(t, srv)
	catalogFixture(t, c)
	for _, enc := range []string{"gzip", ""} {
		req, err := http.NewRequestWithContext(t.Context(), "POST", srv.URL()+"/v1/blueprints/app/entities/search", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Accept-Encoding", enc)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var body io.Reader = bytes.NewReader(raw)
		if got := res.Header.Get("Content-Encoding"); (got == "gzip") != (enc == "gzip") {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q", enc, got)
		} else if got == "gzip" {
			zr, err := gzip.NewReader(body)
			if err != nil {
				t.Fatal(err)
			}
			body = zr
		}
		var out map[string]any
		if err := json.NewDecoder(body).Decode(&out); err != nil || out["ok"] != true {
			t.Errorf("Accept-Encoding %q: %v %v", enc, out, err)
		}
	}
}
