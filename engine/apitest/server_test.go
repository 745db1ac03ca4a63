package apitest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFaults(t *testing.T) {
	items := numbered(4)
	full := string(encodeJSON(items))
	tests := []struct {
		name  string
		fault Fault
		check func(t *testing.T, resp *http.Response, body []byte, readErr error)
	}{
		{
			name:  "status with retry-after and default body",
			fault: Fault{Status: 503, Headers: map[string]string{"Retry-After": "1"}},
			check: func(t *testing.T, resp *http.Response, body []byte, readErr error) {
				if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" {
					t.Errorf("got %d Retry-After=%q, want 503 and 1", resp.StatusCode, resp.Header.Get("Retry-After"))
				}
				if got := string(body); got != `{"error":"simulated_fault","message":"Service Unavailable"}` {
					t.Errorf("body = %s", got)
				}
			},
		},
		{
			name:  "status with ratelimit reset and custom body",
			fault: Fault{Status: 429, Headers: map[string]string{"x-ratelimit-reset": "1700000000"}, Body: `{"ok":false}`},
			check: func(t *testing.T, resp *http.Response, body []byte, readErr error) {
				if resp.StatusCode != 429 || resp.Header.Get("X-Ratelimit-Reset") != "1700000000" || string(body) != `{"ok":false}` {
					t.Errorf("got %d %v %s", resp.StatusCode, resp.Header, body)
				}
			},
		},
		{
			name:  "truncate",
			fault: Fault{Truncate: true},
			check: func(t *testing.T, resp *http.Response, body []byte, readErr error) {
				if resp.StatusCode != 200 || resp.ContentLength != int64(len(full)) {
					t.Errorf("got %d Content-Length %d, want 200 and %d", resp.StatusCode, resp.ContentLength, len(full))
				}
				if !errors.Is(readErr, io.ErrUnexpectedEOF) {
					t.Errorf("read error = %v, want unexpected EOF", readErr)
				}
				if string(body) != full[:len(full)/2] {
					t.Errorf("body = %q, want the first half of %q", body, full)
				}
			},
		},
		{
			name:  "non-json",
			fault: Fault{NonJSON: true},
			check: func(t *testing.T, resp *http.Response, body []byte, readErr error) {
				if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
					t.Errorf("got %d %q, want 200 text/html", resp.StatusCode, resp.Header.Get("Content-Type"))
				}
				var v any
				if json.Unmarshal(body, &v) == nil {
					t.Errorf("body %q parses as JSON", body)
				}
			},
		},
		{
			name:  "non-json with status",
			fault: Fault{NonJSON: true, Status: 502, Body: "<html>bad gateway</html>"},
			check: func(t *testing.T, resp *http.Response, body []byte, readErr error) {
				if resp.StatusCode != 502 || string(body) != "<html>bad gateway</html>" {
					t.Errorf("got %d %q", resp.StatusCode, body)
				}
			},
		},
		{
			name:  "zero fault passes",
			fault: Fault{},
			check: func(t *testing.T, resp *http.Response, body []byte, readErr error) {
				if resp.StatusCode != 200 || string(body) != full {
					t.Errorf("got %d %s, want the normal reply", resp.StatusCode, body)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startT(t, Fixture{Routes: []Route{{Path: "/f", Items: items, Faults: []Fault{tc.fault}}}})
			resp, err := s.Client().Do(newReq(t, "GET", s.URL()+"/f", nil))
			if err != nil {
				t.Fatal(err)
			}
			body, readErr := io.ReadAll(resp.Body)
			resp.Body.Close()
			tc.check(t, resp, body, readErr)

			// The fault is consumed: the next request is served normally.
			if r := get(t, s, "/f"); r.status != 200 || string(r.body) != full {
				t.Errorf("after the fault: %d %s, want 200 %s", r.status, r.body, full)
			}
			if got := s.Count("GET", "/f"); got != 2 {
				t.Errorf("Count = %d, want 2", got)
			}
		})
	}
}

func TestFaultDrop(t *testing.T) {
	s := startT(t, Fixture{Routes: []Route{{Path: "/d", Body: map[string]any{"ok": true}, Faults: []Fault{{Drop: true}}}}})
	// A fresh connection, so the transport cannot replay the request.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := c.Do(newReq(t, "GET", s.URL()+"/d", nil)); err == nil {
		resp.Body.Close()
		t.Fatalf("dropped request: got status %d, want a transport error", resp.StatusCode)
	}
	if r := do(t, c, newReq(t, "GET", s.URL()+"/d", nil)); r.status != 200 {
		t.Errorf("after the drop: status %d, want 200", r.status)
	}
	got := s.Requests()
	if len(got) != 2 || got[0].Status != 0 || got[1].Status != 200 {
		t.Errorf("recorded statuses %v, want [0 200]", statuses(got))
	}
}

func statuses(rs []Recorded) []int {
	out := make([]int, len(rs))
	for i, r := range rs {
		out[i] = r.Status
	}
	return out
}

func TestFaultSequence(t *testing.T) {
	s := startT(t, Fixture{Routes: []Route{{
		Path: "/s", Body: "ok",
		Faults: []Fault{{Status: 500}, {}, {Status: 502}, {Status: 429}},
	}}})
	var got []int
	for range 6 {
		got = append(got, get(t, s, "/s").status)
	}
	if diff := cmp.Diff([]int{500, 200, 502, 429, 200, 200}, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

func TestFaultDelay(t *testing.T) {
	clk := NewManualClock(time.Unix(1_700_000_000, 0))
	s := startT(t, Fixture{Routes: []Route{{Path: "/slow", Body: "ok", Faults: []Fault{{Delay: Duration{30 * time.Second}}, {Delay: Duration{30 * time.Second}, Status: 504}}}}}, WithClock(clk))

	t.Run("client gives up", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", s.URL()+"/slow", nil)
			resp, err := s.Client().Do(req)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		if err := clk.WaitSleepers(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context canceled", err)
		}
		// The server notices the closed connection and stops sleeping.
		if err := clk.WaitSleepers(t.Context(), 0); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("delay then status", func(t *testing.T) {
		got := make(chan int, 1)
		go func() {
			resp, err := s.Client().Do(newReq(t, "GET", s.URL()+"/slow", nil))
			if err != nil {
				got <- 0
				return
			}
			resp.Body.Close()
			got <- resp.StatusCode
		}()
		if err := clk.WaitSleepers(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		clk.Advance(29 * time.Second)
		if clk.Sleepers() != 1 {
			t.Fatalf("released before the delay ended")
		}
		clk.Advance(time.Second)
		if st := <-got; st != 504 {
			t.Errorf("status = %d, want 504", st)
		}
	})
	t.Run("real timer delay", func(t *testing.T) {
		s := startT(t, Fixture{Routes: []Route{{Path: "/r", Body: "ok", Faults: []Fault{{Delay: Duration{5 * time.Millisecond}}}}}})
		if r := get(t, s, "/r"); r.status != 200 {
			t.Errorf("status = %d, want 200", r.status)
		}
	})
}

func TestCloseReleasesSleepers(t *testing.T) {
	clk := NewManualClock(time.Unix(0, 0)) // never advanced: only Close can release
	s, err := Start(Fixture{Latency: Duration{time.Hour}, Routes: []Route{{Path: "/x"}}}, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		resp, err := s.Client().Do(newReq(t, "GET", s.URL()+"/x", nil))
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	if err := clk.WaitSleepers(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	s.Close() // returns only once the sleeping handler has been released
	<-errc
	if got := s.InFlight(); got != 0 {
		t.Errorf("InFlight after Close = %d, want 0", got)
	}
	if got := s.Requests(); len(got) != 1 || got[0].Status != 0 {
		t.Errorf("recorded %v, want one request that got no reply", statuses(got))
	}
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name       string
		auth       AuthCheck
		header     map[string]string
		query      string
		path       string
		wantStatus int
		wantBody   string
	}{
		{name: "missing header", auth: AuthCheck{Header: "Authorization", Value: "Bearer s3cret"}, path: "/p", wantStatus: 401, wantBody: `{"error":"unauthorized","message":"missing or invalid credentials"}`},
		{name: "wrong header", auth: AuthCheck{Header: "Authorization", Value: "Bearer s3cret"}, header: map[string]string{"Authorization": "Bearer nope"}, path: "/p", wantStatus: 401},
		{name: "right header", auth: AuthCheck{Header: "Authorization", Value: "Bearer s3cret"}, header: map[string]string{"Authorization": "Bearer s3cret"}, path: "/p", wantStatus: 200, wantBody: `"ok"`},
		{name: "any value", auth: AuthCheck{Header: "x-api-key"}, header: map[string]string{"X-Api-Key": "whatever"}, path: "/p", wantStatus: 200},
		{name: "query param", auth: AuthCheck{Query: "api_key", Value: "k"}, query: "?api_key=k", path: "/p", wantStatus: 200},
		{name: "either carrier", auth: AuthCheck{Header: "x-api-key", Query: "api_key", Value: "k"}, query: "?api_key=k", path: "/p", wantStatus: 200},
		{name: "custom status and body", auth: AuthCheck{Header: "x-api-key", Value: "k", Status: 403, Body: map[string]any{"ok": false, "error": "forbidden"}}, path: "/p", wantStatus: 403, wantBody: `{"error":"forbidden","ok":false}`},
		{name: "unknown path is 401 first", auth: AuthCheck{Header: "x-api-key"}, path: "/nope", wantStatus: 401},
		{name: "unknown path with creds is 404", auth: AuthCheck{Header: "x-api-key"}, header: map[string]string{"X-Api-Key": "k"}, path: "/nope", wantStatus: 404},
		{name: "public route", auth: AuthCheck{Header: "x-api-key"}, path: "/public", wantStatus: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			auth := tc.auth
			s := startT(t, Fixture{Auth: &auth, Routes: []Route{{Path: "/p", Body: "ok"}, {Path: "/public", Public: true}}})
			req := newReq(t, "GET", s.URL()+tc.path+tc.query, nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			r := do(t, s.Client(), req)
			if r.status != tc.wantStatus {
				t.Errorf("status = %d, want %d", r.status, tc.wantStatus)
			}
			if tc.wantBody != "" && string(r.body) != tc.wantBody {
				t.Errorf("body = %s, want %s", r.body, tc.wantBody)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	for _, headers := range []bool{true, false} {
		t.Run(fmt.Sprintf("headers=%v", headers), func(t *testing.T) {
			start := time.Unix(1_700_000_000, 0)
			clk := NewManualClock(start)
			s := startT(t, Fixture{Routes: []Route{{Path: "/r", Body: "ok"}}}, WithClock(clk), WithRateLimit(3, 2*time.Second, headers))
			var got []int
			for range 4 {
				got = append(got, get(t, s, "/r").status)
			}
			if diff := cmp.Diff([]int{200, 200, 200, 429}, got); diff != "" {
				t.Errorf("statuses (-want +got):\n%s", diff)
			}
			clk.Advance(500 * time.Millisecond)
			r := get(t, s, "/r")
			if r.status != 429 {
				t.Fatalf("status = %d, want 429", r.status)
			}
			wantHeaders := map[string]string{"Retry-After": "", "X-Ratelimit-Limit": "", "X-Ratelimit-Remaining": "", "X-Ratelimit-Reset": ""}
			if headers {
				wantHeaders = map[string]string{
					"Retry-After":           "2", // 1.5 s left, rounded up
					"X-Ratelimit-Limit":     "3",
					"X-Ratelimit-Remaining": "0",
					"X-Ratelimit-Reset":     strconv.FormatInt(start.Add(2*time.Second).Unix(), 10),
				}
			}
			for k, want := range wantHeaders {
				if got := r.header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if msg := dig(decode(t, r.body), "error"); msg != "rate_limited" {
				t.Errorf("error = %v, want rate_limited", msg)
			}
			clk.Advance(1500 * time.Millisecond) // the window ends
			r = get(t, s, "/r")
			if r.status != 200 {
				t.Errorf("after the window: status %d, want 200", r.status)
			}
			if headers && r.header.Get("X-Ratelimit-Remaining") != "2" {
				t.Errorf("X-RateLimit-Remaining = %q, want 2", r.header.Get("X-Ratelimit-Remaining"))
			}
			if got := s.Count("GET", "/r"); got != 6 {
				t.Errorf("Count = %d, want every request recorded (6)", got)
			}
		})
	}
}

func TestRecording(t *testing.T) {
	clk := NewManualClock(time.Unix(1_700_000_000, 0))
	s := startT(t, Fixture{Routes: []Route{{Method: "POST", Path: "/apps/{app}/deploy", Status: 201}}}, WithClock(clk))
	req := newReq(t, "POST", s.URL()+"/apps/my%20app/deploy?dry=1&tag=a&tag=b", map[string]any{"env": "dev"})
	req.Header.Set("Authorization", "Bearer x")
	if r := do(t, s.Client(), req); r.status != 201 {
		t.Fatalf("status = %d", r.status)
	}
	get(t, s, "/missing")

	got := s.Requests()
	if len(got) != 2 {
		t.Fatalf("recorded %d requests, want 2", len(got))
	}
	r := got[0]
	want := Recorded{
		Method: "POST", Path: "/apps/my app/deploy", RawPath: "/apps/my%20app/deploy",
		Query: map[string][]string{"dry": {"1"}, "tag": {"a", "b"}},
		Body:  []byte(`{"env":"dev"}`), Time: clk.Now(),
		Route: 0, Params: map[string]string{"app": "my app"}, Status: 201,
	}
	r.Header = nil
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("recorded (-want +got):\n%s", diff)
	}
	if got[0].Header.Get("Authorization") != "Bearer x" || got[0].Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers not recorded: %v", got[0].Header)
	}
	if got[1].Route != -1 || got[1].Status != 404 {
		t.Errorf("unmatched request: route %d status %d, want -1 404", got[1].Route, got[1].Status)
	}

	// The copy is the caller's own.
	got[0].Query.Set("dry", "changed")
	if s.Requests()[0].Query.Get("dry") != "1" {
		t.Error("Requests returned shared state")
	}
	counts := []struct {
		method, path string
		want         int
	}{
		{"POST", "/apps/my%20app/deploy", 1},
		{"POST", "/apps/my app/deploy", 1},
		{"post", "/apps/{app}/deploy", 1},
		{"GET", "/apps/{app}/deploy", 0},
		{"", "/missing", 1},
		{"", "/apps/{x}/{y}", 1},
	}
	for _, c := range counts {
		if got := s.Count(c.method, c.path); got != c.want {
			t.Errorf("Count(%q, %q) = %d, want %d", c.method, c.path, got, c.want)
		}
	}
	if got := len(s.RequestsFor("POST", "/apps/{app}/deploy")); got != 1 {
		t.Errorf("RequestsFor = %d, want 1", got)
	}
}

func TestPeakConcurrency(t *testing.T) {
	clk := NewManualClock(time.Unix(0, 0))
	s := startT(t, Fixture{Routes: []Route{{Path: "/c/{i}", Body: "ok", Latency: Duration{time.Second}}}}, WithClock(clk))
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	t.Cleanup(c.CloseIdleConnections)

	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range 8 {
		wg.Go(func() {
			resp, err := c.Do(newReq(t, "GET", fmt.Sprintf("%s/c/%d", s.URL(), i), nil))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	if err := clk.WaitSleepers(t.Context(), 8); err != nil {
		t.Fatal(err)
	}
	if got := s.InFlight(); got != 8 {
		t.Errorf("InFlight = %d while all sleep, want 8", got)
	}
	clk.Advance(time.Second)
	wg.Wait()
	if got := s.PeakConcurrency(); got != 8 {
		t.Errorf("PeakConcurrency = %d, want 8", got)
	}
	if s.Count("GET", "/c/{i}") != 8 {
		t.Errorf("Count = %d, want 8", s.Count("GET", "/c/{i}"))
	}
	for i, st := range statuses {
		if st != 200 {
			t.Errorf("client %d: status %d", i, st)
		}
	}
}

func TestPathParams(t *testing.T) {
	s := startT(t, Fixture{Routes: []Route{
		{Path: "/orgs/{org}/apps", Items: []any{map[string]any{"id": "a1", "org": "{org}", "url": "/orgs/{org}/apps/a1", "n": 7}}},
		{Path: "/orgs/{org}/apps/{app}/envs", Generate: &Generate{Count: 2, Start: 1, Item: map[string]any{"id": "{app}-env{i}", "n": "{i}", "tags": []any{"{org}"}}}},
		{Path: "/orgs/{org}/apps/{app}", Body: map[string]any{"id": "{app}", "msg": "in {org}: {unknown}"}, Headers: map[string]string{"X-App": "{app}"}},
		{Path: "/gen/{parent}/children", ItemsFunc: func(p map[string]string) []any {
			return []any{map[string]any{"id": p["parent"] + "-c"}}
		}, Paginate: &Paging{Type: PageNumber}},
		{Method: "DELETE", Path: "/orgs/{org}/apps/{app}"},
	}})
	tests := []struct {
		method, path string
		wantStatus   int
		want         string
	}{
		{"GET", "/orgs/acme/apps", 200, `[{"id":"a1","n":7,"org":"acme","url":"/orgs/acme/apps/a1"}]`},
		{"GET", "/orgs/acme/apps/web/envs", 200, `[{"id":"web-env1","n":1,"tags":["acme"]},{"id":"web-env2","n":2,"tags":["acme"]}]`},
		{"GET", "/orgs/a%2Fb/apps/x%20y", 200, `{"id":"x y","msg":"in a/b: {unknown}"}`},
		{"GET", "/gen/p7/children", 200, `[{"id":"p7-c"}]`},
		{"GET", "/gen/p7/children?page=1", 200, `[]`},
		{"GET", "/orgs//apps", 404, ""},
		{"GET", "/orgs/acme/apps/web/envs/x", 404, ""},
		{"PUT", "/orgs/acme/apps/web", 405, ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := do(t, s.Client(), newReq(t, tc.method, s.URL()+tc.path, nil))
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d: %s", r.status, tc.wantStatus, r.body)
			}
			if tc.want != "" && string(r.body) != tc.want {
				t.Errorf("body =\n%s\nwant\n%s", r.body, tc.want)
			}
			if tc.wantStatus == 405 && r.header.Get("Allow") != "GET, DELETE" {
				t.Errorf("Allow = %q, want GET, DELETE", r.header.Get("Allow"))
			}
		})
	}
	if r := get(t, s, "/orgs/acme/apps/web"); r.header.Get("X-App") != "web" {
		t.Errorf("X-App = %q, want web", r.header.Get("X-App"))
	}
}

func TestQueryMatchAndOrder(t *testing.T) {
	s := startT(t, Fixture{Routes: []Route{
		{Path: "/q", Query: map[string]string{"kind": "a"}, Body: "a"},
		{Path: "/q", Query: map[string]string{"token": "*"}, Body: "has token"},
		{Path: "/q", Body: "fallback"},
	}})
	tests := []struct{ query, want string }{
		{"?kind=a", `"a"`},
		{"?kind=a&token=1", `"a"`}, // first match wins
		{"?kind=b&token=", `"has token"`},
		{"?kind=b", `"fallback"`},
		{"", `"fallback"`},
	}
	for _, tc := range tests {
		if r := get(t, s, "/q"+tc.query); string(r.body) != tc.want {
			t.Errorf("GET /q%s = %s, want %s", tc.query, r.body, tc.want)
		}
	}
	// Routes added at run time come after the fixture's.
	s.Handle(Route{Path: "/late", Status: 204})
	s.Handle(Route{Path: "/q", Body: "shadowed"})
	if r := get(t, s, "/late"); r.status != 204 {
		t.Errorf("GET /late = %d, want 204", r.status)
	}
	if r := get(t, s, "/q"); string(r.body) != `"fallback"` {
		t.Errorf("GET /q = %s, want the earlier route", r.body)
	}
}

func TestEcho(t *testing.T) {
	s := startT(t, Fixture{Routes: []Route{{Method: "POST", Path: "/echo/{id}", Echo: true}}})
	req := newReq(t, "POST", s.URL()+"/echo/e%2F1?a=1&a=2", json.RawMessage(`{"n":12345678901234567890}`))
	req.Header.Set("X-Trace", "t1")
	r := do(t, s.Client(), req)
	doc := decode(t, r.body).(map[string]any)
	headers := doc["headers"].(map[string]any)
	if headers["x-trace"] != "t1" || headers["content-type"] != "application/json" {
		t.Errorf("headers = %v", headers)
	}
	delete(doc, "headers")
	want := map[string]any{
		"method": "POST",
		"path":   "/echo/e/1",
		"query":  map[string]any{"a": []any{"1", "2"}},
		"body":   map[string]any{"n": json.Number("12345678901234567890")},
		"params": map[string]any{"id": "e/1"},
	}
	if diff := cmp.Diff(want, doc); diff != "" {
		t.Errorf("echo (-want +got):\n%s", diff)
	}
}

func TestStaticReplies(t *testing.T) {
	s := startT(t, Fixture{Routes: []Route{
		{Path: "/raw", RawBody: "plain {x}", Headers: map[string]string{"Content-Type": "text/plain"}},
		{Path: "/empty", Status: 204},
		{Path: "/str", Status: 404, Body: "not found"},
		{Path: "/envelope", Body: map[string]any{"status": "SUCCESS"}, Items: numbered(2), Paginate: &Paging{Type: PageNone, Envelope: "data", Meta: map[string]string{"count": "total_items"}}},
		{Path: "/func", BodyFunc: func(map[string]string) any { return map[string]any{"ok": true} }},
	}})
	tests := []struct {
		path       string
		wantStatus int
		wantBody   string
		wantType   string
	}{
		{"/raw", 200, "plain {x}", "text/plain"},
		{"/empty", 204, "", ""},
		{"/str", 404, `"not found"`, "application/json"},
		{"/envelope", 200, `{"count":2,"data":[{"id":0},{"id":1}],"status":"SUCCESS"}`, "application/json"},
		{"/func", 200, `{"ok":true}`, "application/json"},
	}
	for _, tc := range tests {
		r := get(t, s, tc.path)
		if r.status != tc.wantStatus || string(r.body) != tc.wantBody || r.header.Get("Content-Type") != tc.wantType {
			t.Errorf("GET %s = %d %q %q, want %d %q %q", tc.path, r.status, r.header.Get("Content-Type"), r.body, tc.wantStatus, tc.wantType, tc.wantBody)
		}
	}
}

func TestInvalidRoutes(t *testing.T) {
	bad := Fixture{Routes: []Route{
		{Path: "/ok", Body: "ok"},
		{Path: "/bad", Paginate: &Paging{Type: "curser"}},
	}}
	if _, err := Start(bad); err == nil || !strings.Contains(err.Error(), `routes[1]: paginate: type "curser"`) {
		t.Errorf("Start error = %v, want the bad paging type", err)
	}
	s := New(bad)
	t.Cleanup(s.Close)
	if s.Err() == nil {
		t.Error("Err() = nil, want the bad route")
	}
	if r := get(t, s, "/ok"); r.status != 200 {
		t.Errorf("valid route: status %d", r.status)
	}
	if r := get(t, s, "/bad"); r.status != 500 || !strings.Contains(string(r.body), "curser") {
		t.Errorf("invalid route: %d %s, want a 500 naming the problem", r.status, r.body)
	}
}

func TestRouteValidate(t *testing.T) {
	tests := []struct {
		name  string
		route Route
		want  string
	}{
		{"relative path", Route{Path: "x"}, "must start with /"},
		{"partial param", Route{Path: "/a/x{id}"}, "whole segment"},
		{"duplicate param", Route{Path: "/a/{id}/{id}"}, "used twice"},
		{"bad method", Route{Path: "/a", Method: "GE T"}, "not a valid HTTP method"},
		{"cursor without token path", Route{Path: "/a", Paginate: &Paging{Type: PageCursor, Param: "c", Envelope: "d"}}, "cursor needs token_path"},
		{"cursor without envelope", Route{Path: "/a", Paginate: &Paging{Type: PageCursor, Param: "c", TokenPath: "n"}}, "needs an envelope"},
		{"next_url with body field", Route{Path: "/a", Paginate: &Paging{Type: PageNext, NextPath: "n", Envelope: "d", BodyField: "b"}}, "carries its token in the URL"},
		{"page start 2", Route{Path: "/a", Paginate: &Paging{Type: PageNumber, Start: 2}}, "start must be 0 or 1"},
		{"page size over max", Route{Path: "/a", Paginate: &Paging{Type: PageNumber, PageSize: 50, MaxSize: 20}}, "exceeds max_size"},
		{"meta without envelope", Route{Path: "/a", Paginate: &Paging{Type: PageNumber, Meta: map[string]string{"t": "total_items"}}}, "need an envelope"},
		{"unknown meta", Route{Path: "/a", Paginate: &Paging{Type: PageNumber, Envelope: "d", Meta: map[string]string{"t": "totl"}}}, `unknown field "totl"`},
		{"body with items, no envelope", Route{Path: "/a", Body: map[string]any{}, Items: []any{}}, "envelope template"},
		{"echo with items", Route{Path: "/a", Echo: true, Items: []any{}}, "echo cannot be combined"},
		{"fault status", Route{Path: "/a", Faults: []Fault{{Status: 42}}}, "faults[0]: status 42"},
		{"token param on cursor", Route{Path: "/a", Paginate: &Paging{Type: PageCursor, Param: "c", TokenPath: "n", Envelope: "d", TokenParam: "t"}}, "token_param is only for page and offset"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.route.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestRequestBodyLimit(t *testing.T) {
	s := startT(t, Fixture{Routes: []Route{{Method: "POST", Path: "/big"}}})
	req, err := http.NewRequestWithContext(t.Context(), "POST", s.URL()+"/big", strings.NewReader(strings.Repeat("x", maxBody+1)))
	if err != nil {
		t.Fatal(err)
	}
	if r := do(t, s.Client(), req); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("status = %d, want 413", r.status)
	}
}

func TestLoggerRedacts(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := startT(t, Fixture{Auth: &AuthCheck{Query: "api_key", Value: "s3cret"}, Routes: []Route{{Path: "/p/{id}"}}}, WithLogger(log))
	req := newReq(t, "GET", s.URL()+"/p/7?api_key=s3cret", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	do(t, s.Client(), req)
	out := buf.String()
	if !strings.Contains(out, "path=/p/7") || !strings.Contains(out, "status=200") || !strings.Contains(out, "route=0") {
		t.Errorf("log = %q, want path, status and route", out)
	}
	if strings.Contains(out, "s3cret") {
		t.Errorf("log leaks the credential: %q", out)
	}
}
