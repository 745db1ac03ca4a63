package humanitec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func decodeError(t *testing.T, body []byte) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if e.Error == "" || e.Message == "" {
		t.Errorf("error body %s lacks error or message", body)
	}
	return e
}

func TestAuth(t *testing.T) {
	org := Generate(1, Small())
	h := NewServer(org, Options{Token: "s3cret-token"})
	target := "/orgs/" + org.ID + "/apps"
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"no header", "", 401},
		{"wrong token", "Bearer nope", 401},
		{"basic scheme", "Basic czNjcmV0LXRva2Vu", 401},
		{"token without scheme", "s3cret-token", 401},
		{"token prefix only", "Bearer s3cret", 401},
		{"right token", "Bearer s3cret-token", 200},
		{"scheme is case-insensitive", "bearer s3cret-token", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, target, nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d", rec.Code, tc.want)
			}
			if tc.want == 401 {
				e := decodeError(t, rec.Body.Bytes())
				if strings.Contains(rec.Body.String(), "s3cret") {
					t.Errorf("401 body leaks the token: %s", rec.Body)
				}
				if e.Error != "API-000" {
					t.Errorf("error code %q, want API-000", e.Error)
				}
			}
		})
	}
	// Even the default token must be given; auth is never off.
	if rec := do(NewServer(org, Options{}), "", target); rec.Code != 401 {
		t.Errorf("default server without token: status %d, want 401", rec.Code)
	}
}

func TestNotFoundAndMethod(t *testing.T) {
	org := Generate(1, Small())
	h := NewServer(org, Options{})
	o := "/orgs/" + org.ID
	tests := []struct {
		name   string
		method string
		target string
		want   int
		bare   bool
	}{
		{"root", "GET", "/", 404, false},
		{"orgs", "GET", "/orgs", 404, false},
		{"unknown collection", "GET", o + "/widgets", 404, false},
		{"trailing slash", "GET", o + "/apps/", 404, false},
		{"unknown org", "GET", "/orgs/other/apps", 404, false},
		{"unknown app", "GET", o + "/apps/nope/envs", 404, false},
		{"escaped slash stays in one segment", "GET", o + "/apps/" + org.Apps[0].ID + "%2Fenvs", 404, false},
		{"unknown env", "GET", o + "/apps/" + org.Apps[0].ID + "/envs/nope/values", 404, false},
		{"unknown graph", "GET", o + "/apps/" + org.Apps[0].ID + "/envs/development/resources/graphs/nope", 404, false},
		{"unknown set", "GET", o + "/apps/" + org.Apps[0].ID + "/sets/nope", 404, true},
		{"sets of unknown app", "GET", o + "/apps/nope/sets", 404, true},
		{"unknown delta", "GET", o + "/apps/" + org.Apps[0].ID + "/deltas/nope", 404, true},
		{"post apps", "POST", o + "/apps", 405, false},
		{"delete values", "DELETE", o + "/apps/" + org.Apps[0].ID + "/values", 405, false},
		{"head pipelines", "HEAD", o + "/pipelines", 405, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, nil)
			req.Header.Set("Authorization", "Bearer "+DefaultToken)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("%s %s: status %d, want %d", tc.method, tc.target, rec.Code, tc.want)
			}
			if tc.method == "HEAD" {
				return
			}
			if tc.bare {
				var s string
				if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil || s == "" {
					t.Errorf("body %s is not a non-empty JSON string", rec.Body)
				}
			} else {
				decodeError(t, rec.Body.Bytes())
			}
			if tc.want == 405 && rec.Header().Get("Allow") != "GET" {
				t.Errorf("405 without Allow: GET")
			}
		})
	}
}

// fakeClock is an injected clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestRateLimit(t *testing.T) {
	org := Generate(1, Small())
	clock := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	h := NewServer(org, Options{RateLimit: 3, Window: time.Second, Now: clock.Now})
	target := "/orgs/" + org.ID + "/secretstores"
	step := func(advance time.Duration, want int) {
		t.Helper()
		clock.Advance(advance)
		rec := do(h, DefaultToken, target)
		if rec.Code != want {
			t.Fatalf("at %v: status %d, want %d", clock.Now().Format(time.StampMilli), rec.Code, want)
		}
		if want == 429 {
			decodeError(t, rec.Body.Bytes())
			if rec.Header().Get("Retry-After") != "" {
				t.Errorf("429 carries Retry-After; the API documents none")
			}
		}
	}
	step(0, 200)
	step(100*time.Millisecond, 200)
	step(100*time.Millisecond, 200)
	step(100*time.Millisecond, 429) // 4th within one second
	step(500*time.Millisecond, 429) // still 3 accepted in (t-1s, t]
	step(200*time.Millisecond, 200) // first one left the window at +1s
	step(0, 429)
	step(time.Second, 200)

	// Unauthenticated requests use up the budget too.
	h2 := NewServer(org, Options{RateLimit: 1, Now: clock.Now})
	if rec := do(h2, "", target); rec.Code != 401 {
		t.Fatalf("first request: %d, want 401", rec.Code)
	}
	if rec := do(h2, DefaultToken, target); rec.Code != 429 {
		t.Fatalf("second request: %d, want 429", rec.Code)
	}
	var n429 int
	for _, r := range h.Requests() {
		if r.Status == 429 {
			n429++
		}
	}
	if n429 != 3 {
		t.Errorf("request log has %d 429s, want 3", n429)
	}
}

func TestFailPath(t *testing.T) {
	org := Generate(1, Small())
	a := org.Apps[0]
	resources := "/orgs/" + org.ID + "/apps/" + a.ID + "/envs/development/resources"
	sets := "/orgs/" + org.ID + "/apps/" + a.ID + "/sets"
	h := NewServer(org, Options{FailPath: func(method, path string) int {
		switch path {
		case resources:
			return 500
		case sets:
			return 404
		case "/orgs/" + org.ID + "/secretstores":
			return 503
		}
		return 0
	}})
	c := loadContract(t)
	tests := []struct {
		target, op string
		want       int
	}{
		{resources, "/orgs/{orgId}/apps/{appId}/envs/{envId}/resources", 500},
		{sets, "/orgs/{orgId}/apps/{appId}/sets", 404},
		{"/orgs/" + org.ID + "/secretstores", "/orgs/{orgId}/secretstores", 503},
		{"/orgs/" + org.ID + "/apps/" + a.ID + "/envs/staging/resources", "/orgs/{orgId}/apps/{appId}/envs/{envId}/resources", 200},
	}
	for _, tc := range tests {
		rec := do(h, DefaultToken, tc.target)
		if rec.Code != tc.want {
			t.Errorf("GET %s: status %d, want %d", tc.target, rec.Code, tc.want)
			continue
		}
		if err := c.validate(t, tc.op, rec.Code, rec.Body.Bytes()); err != nil {
			t.Errorf("GET %s: %v", tc.target, err)
		}
	}
	// Faults come after auth: without a token the answer is still 401.
	if rec := do(h, "", resources); rec.Code != 401 {
		t.Errorf("fault without token: %d, want 401", rec.Code)
	}
}

func TestLatencyUsesInjectedSleep(t *testing.T) {
	org := Generate(1, Small())
	var mu sync.Mutex
	var slept []time.Duration
	h := NewServer(org, Options{Latency: 250 * time.Millisecond, Sleep: func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		slept = append(slept, d)
		return ctx.Err()
	}})
	target := "/orgs/" + org.ID + "/apps"
	if rec := do(h, DefaultToken, target); rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	req.Header.Set("Authorization", "Bearer "+DefaultToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Body.Len() != 0 {
		t.Errorf("cancelled request got a body: %s", rec.Body)
	}
	if diff := cmp.Diff([]time.Duration{250 * time.Millisecond, 250 * time.Millisecond}, slept); diff != "" {
		t.Errorf("sleeps (-want +got):\n%s", diff)
	}
	if err := sleepCtx(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("sleepCtx on a cancelled context = %v, want context.Canceled", err)
	}
}

func TestRequestLog(t *testing.T) {
	org := Generate(1, Small())
	clock := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	var logs bytes.Buffer
	h := NewServer(org, Options{Now: clock.Now, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	o := "/orgs/" + org.ID
	do(h, DefaultToken, o+"/pipelines?app=a&app=b&per_page=5")
	do(h, "bad", o+"/apps")
	do(h, DefaultToken, o+"/apps/caf%C3%A9/envs")
	got := h.Requests()
	want := []Request{
		{Method: "GET", Path: o + "/pipelines", RawPath: o + "/pipelines",
			Query: map[string][]string{"app": {"a", "b"}, "per_page": {"5"}}, AuthOK: true, Status: 200, At: clock.now},
		{Method: "GET", Path: o + "/apps", RawPath: o + "/apps", Query: map[string][]string{}, AuthOK: false, Status: 401, At: clock.now},
		{Method: "GET", Path: o + "/apps/café/envs", RawPath: o + "/apps/caf%C3%A9/envs", Query: map[string][]string{}, AuthOK: true, Status: 404, At: clock.now},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Requests() (-want +got):\n%s", diff)
	}
	if strings.Contains(logs.String(), DefaultToken) || strings.Contains(logs.String(), "bad") {
		t.Errorf("log carries a token: %s", logs.String())
	}
	if n := strings.Count(logs.String(), "msg=request"); n != 3 {
		t.Errorf("log has %d request records, want 3:\n%s", n, logs.String())
	}
	h.ResetRequests()
	if n := len(h.Requests()); n != 0 {
		t.Errorf("after ResetRequests: %d entries", n)
	}
}

func TestOrgIDOverrideAndUpdate(t *testing.T) {
	org := Generate(1, Small())
	h := NewServer(org, Options{OrgID: "acme"})
	if rec := do(h, DefaultToken, "/orgs/"+org.ID+"/apps"); rec.Code != 404 {
		t.Errorf("generated org id still served: %d", rec.Code)
	}
	rec := do(h, DefaultToken, "/orgs/acme/apps")
	var apps []applicationResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &apps); err != nil {
		t.Fatal(err)
	}
	if len(apps) != 3 || apps[0].OrgID != "acme" {
		t.Fatalf("apps = %d, org_id %q; want 3 apps of acme", len(apps), apps[0].OrgID)
	}
	gone := org.Apps[1].ID
	h.Update(func(o *Org) { o.Apps = append(o.Apps[:1], o.Apps[2:]...) })
	if rec := do(h, DefaultToken, "/orgs/acme/apps/"+gone+"/envs"); rec.Code != 404 {
		t.Errorf("deleted app still served: %d", rec.Code)
	}
	rec = do(h, DefaultToken, "/orgs/acme/apps")
	if err := json.Unmarshal(rec.Body.Bytes(), &apps); err != nil {
		t.Fatal(err)
	}
	if len(apps) != 2 {
		t.Errorf("after delete: %d apps, want 2", len(apps))
	}
}

func TestEndpointSemantics(t *testing.T) {
	org := Generate(1, Small())
	h := NewServer(org, Options{})
	a := org.Apps[0]
	o := "/orgs/" + org.ID + "/apps/" + a.ID
	get := func(target string, v any) {
		t.Helper()
		rec := do(h, DefaultToken, target)
		if rec.Code != 200 {
			t.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
			t.Fatalf("GET %s: %v", target, err)
		}
	}

	t.Run("env values merge", func(t *testing.T) {
		var vals []Value
		get(o+"/envs/development/values", &vals)
		src := map[string]string{}
		for _, v := range vals {
			src[v.Key] = v.Source
			if v.IsSecret && v.Value != "" {
				t.Errorf("secret %s has a value", v.Key)
			}
		}
		want := map[string]string{"DB_HOST": "app", "API_TOKEN": "env", "LOG_LEVEL": "env", "feature.flags-v2": "app", "ENV_ONLY_FLAG": "env"}
		if diff := cmp.Diff(want, src); diff != "" {
			t.Errorf("sources (-want +got):\n%s", diff)
		}
		var appVals []Value
		get(o+"/values", &appVals)
		for _, v := range appVals {
			if v.Source != "app" {
				t.Errorf("app value %s has source %q", v.Key, v.Source)
			}
		}
	})
	t.Run("deltas archived filter", func(t *testing.T) {
		var live, archived, dev []Delta
		get(o+"/deltas", &live)
		get(o+"/deltas?archived=true", &archived)
		get(o+"/deltas?env=development&archived=false", &dev)
		if len(live)+len(archived) != len(a.Deltas) || len(archived) == 0 {
			t.Errorf("live %d + archived %d != %d deltas", len(live), len(archived), len(a.Deltas))
		}
		for _, d := range live {
			if d.Metadata.Archived {
				t.Errorf("archived delta %s listed by default", d.ID)
			}
		}
		if len(dev) == 0 {
			t.Error("env filter matched nothing")
		}
		for _, d := range dev {
			if d.Metadata.EnvID != "development" {
				t.Errorf("delta %s of env %q passed env=development", d.ID, d.Metadata.EnvID)
			}
		}
	})
	t.Run("value set versions key_changed", func(t *testing.T) {
		var all, changed []ValueSetVersion
		get(o+"/value-set-versions", &all)
		get(o+"/value-set-versions?key_changed=LOG_LEVEL", &changed)
		if len(changed) == 0 || len(changed) >= len(all) {
			t.Fatalf("key_changed kept %d of %d", len(changed), len(all))
		}
		for _, v := range changed {
			if !changesKey(v.Change, "LOG_LEVEL") {
				t.Errorf("version %s does not change LOG_LEVEL: %+v", v.ID, v.Change)
			}
		}
	})
	t.Run("resources scheduled_deletion", func(t *testing.T) {
		var all, sched []ActiveResource
		get(o+"/envs/development/resources", &all)
		get(o+"/envs/development/resources?scheduled_deletion=true", &sched)
		if len(sched) != 1 || !sched[0].ScheduledDeletion || len(all) <= len(sched) {
			t.Errorf("scheduled %d of %d", len(sched), len(all))
		}
		for _, r := range all {
			if r.OrgID != org.ID || r.AppID != a.ID || r.EnvID != "development" || r.EnvType != "development" {
				t.Errorf("resource %s: ids %q %q %q %q", r.ResID, r.OrgID, r.AppID, r.EnvID, r.EnvType)
			}
		}
	})
	t.Run("set diff", func(t *testing.T) {
		empty, full := a.Sets[0], a.Sets[len(a.Sets)-1]
		var up, down plainDelta
		get(o+"/sets/"+full.ID+"?diff="+empty.ID, &up)
		get(o+"/sets/"+empty.ID+"?diff="+full.ID, &down)
		if len(up.Modules.Add) != len(full.Modules) || len(up.Modules.Remove) != 0 {
			t.Errorf("empty -> full: add %d remove %d, want add %d", len(up.Modules.Add), len(up.Modules.Remove), len(full.Modules))
		}
		if len(down.Modules.Remove) != len(full.Modules) || len(down.Modules.Add) != 0 {
			t.Errorf("full -> empty: add %d remove %d", len(down.Modules.Add), len(down.Modules.Remove))
		}
		var same plainDelta
		get(o+"/sets/"+full.ID+"?diff="+full.ID, &same)
		if len(same.Modules.Add)+len(same.Modules.Remove)+len(same.Modules.Update)+len(same.Shared) != 0 {
			t.Errorf("diff with itself is not empty: %+v", same)
		}
	})
	t.Run("nil collections stay JSON arrays and objects", func(t *testing.T) {
		c := loadContract(t)
		org := Generate(1, Small())
		a := org.Apps[0]
		a.Sets[1].Modules, a.Sets[1].Shared = nil, nil
		a.Pipelines[0].TriggerTypes = nil
		a.Envs[0].Resources[0].Resource = nil
		a.Envs[0].Graphs[0].Nodes[0].DependsOn = nil
		a.Deltas[0].Shared, a.Deltas[0].Modules = nil, ModuleDeltas{}
		a.ValueSetVersions[0].Values, a.ValueSetVersions[0].Change = nil, nil
		h := NewServer(org, Options{})
		base := "/orgs/" + org.ID + "/apps/" + a.ID
		for target, op := range map[string]string{
			base + "/sets":                       "/orgs/{orgId}/apps/{appId}/sets",
			base + "/pipelines":                  "/orgs/{orgId}/apps/{appId}/pipelines",
			base + "/envs/development/resources": "/orgs/{orgId}/apps/{appId}/envs/{envId}/resources",
			base + "/envs/development/resources/graphs/" + a.Envs[0].Graphs[0].ID: "/orgs/{orgId}/apps/{appId}/envs/{envId}/resources/graphs/{graphId}",
			base + "/deltas/" + a.Deltas[0].ID:                                    "/orgs/{orgId}/apps/{appId}/deltas/{deltaId}",
			base + "/value-set-versions":                                          "/orgs/{orgId}/apps/{appId}/value-set-versions",
		} {
			rec := do(h, DefaultToken, target)
			if err := c.validate(t, op, rec.Code, rec.Body.Bytes()); err != nil {
				t.Errorf("GET %s: %v", target, err)
			}
		}
	})
}

// Every environment's type is listed once, with the fields the API
// requires.
func TestEnvTypes(t *testing.T) {
	org := Generate(1, Small())
	h := NewServer(org, Options{})
	rec := do(h, DefaultToken, "/orgs/"+org.ID+"/env-types")
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	var got []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	listed := map[string]int{}
	for _, et := range got {
		id, _ := et["id"].(string)
		if d, _ := et["description"].(string); id == "" || d == "" {
			t.Errorf("env type %v lacks id or description", et)
		}
		listed[id]++
	}
	for _, a := range org.Apps {
		for _, e := range a.Envs {
			if listed[e.Type] != 1 {
				t.Errorf("env %s/%s: type %q listed %d times", a.ID, e.ID, e.Type, listed[e.Type])
			}
		}
	}
	if len(got) < 2 {
		t.Errorf("%d env types, want the demo's several", len(got))
	}
}
