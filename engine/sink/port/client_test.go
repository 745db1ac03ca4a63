package port

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/porttest"
	"github.com/ferry-etl/ferry/engine/sink"
)

func apps(n int) []sink.Entity {
	out := make([]sink.Entity, n)
	for i := range out {
		out[i] = sink.Entity{Blueprint: bpApp, Data: map[string]any{"identifier": fmt.Sprintf("app-%04d", i), "title": "App", "properties": map[string]any{}}}
	}
	return out
}

func TestTokenFetchedOnce(t *testing.T) {
	e := newEnv(t, porttest.Options{})
	rep, err := e.run(e.sink(), humanitecBlueprints(t, bpApp), apps(500), map[string]bool{bpApp: true})
	if err != nil || rep.Upserted != 500 {
		t.Fatalf("err %v report %+v", err, rep)
	}
	if n := e.srv.CountRequests("POST", "/v1/auth/access_token"); n != 1 {
		t.Errorf("%d token requests for 500 entities, want 1", n)
	}
	if n := e.srv.CountRequests("POST", "/v1/blueprints/"+bpApp+"/entities/bulk"); n != 25 {
		t.Errorf("%d bulk requests for 500 entities, want 25", n)
	}
}

func TestTokenRefresh(t *testing.T) {
	tests := []struct {
		name    string
		between func(e *env)
		want    int // token requests over two runs
	}{
		{"still valid", func(e *env) { e.clock.Add(time.Hour) }, 1},
		{"refreshed before expiry", func(e *env) { e.clock.Add(3*time.Hour - 5*time.Minute) }, 2},
		{"expired", func(e *env) { e.clock.Add(4 * time.Hour) }, 2},
		{"revoked server-side: 401 then refresh", func(e *env) { e.srv.ExpireTokens() }, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, porttest.Options{})
			s := e.sink()
			if _, err := e.run(s, humanitecBlueprints(t, bpApp), apps(30), nil); err != nil {
				t.Fatal(err)
			}
			tc.between(e)
			rep, err := e.run(s, nil, apps(30), nil)
			if err != nil || rep.Upserted != 30 {
				t.Fatalf("second run: err %v report %+v", err, rep)
			}
			if n := e.srv.CountRequests("POST", "/v1/auth/access_token"); n != tc.want {
				t.Errorf("%d token requests, want %d", n, tc.want)
			}
		})
	}
}

func TestBadCredentials(t *testing.T) {
	e := newEnv(t, porttest.Options{})
	s := e.sink(func(c *Config) { c.ClientSecret = "wrong-secret-value" })
	err := s.EnsureBlueprints(t.Context(), humanitecBlueprints(t, bpApp))
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
		t.Fatalf("error %v, want a 401 StatusError", err)
	}
	if strings.Contains(err.Error(), "wrong-secret-value") {
		t.Errorf("error leaks the secret: %v", err)
	}
	if n := e.srv.CountRequests("POST", "/v1/auth/access_token"); n != 1 {
		t.Errorf("credentials retried %d times", n)
	}
}

func TestRateLimit429(t *testing.T) {
	for _, epoch := range []bool{false, true} {
		t.Run(fmt.Sprintf("epoch=%v", epoch), func(t *testing.T) {
			e := newEnv(t, porttest.Options{RateLimit: 5, Window: 10 * time.Second, ResetEpoch: epoch})
			s := e.sink(func(c *Config) { c.Concurrency = 1 })
			if err := s.EnsureBlueprints(t.Context(), humanitecBlueprints(t, bpApp)); err != nil {
				t.Fatal(err)
			}
			// Someone else spends the rest of the window.
			exhaust(t, e.srv)
			start := e.clock.Now()
			for _, ent := range apps(100) {
				if err := s.Write(t.Context(), ent); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := s.Finish(t.Context(), nil)
			if err != nil || rep.Upserted != 100 {
				t.Fatalf("err %v report %+v", err, rep)
			}
			n429 := 0
			for _, r := range e.srv.Requests() {
				if r.Status == http.StatusTooManyRequests && strings.HasSuffix(r.Path, "/entities/bulk") {
					n429++
				}
			}
			// One 429 from the exhausted window; after that the throttle
			// paces at 5 per 10 s and waits out each window.
			if n429 != 1 {
				t.Errorf("%d 429 responses to the sink, want exactly 1", n429)
			}
			if n := e.srv.CountRequests("POST", "/v1/blueprints/"+bpApp+"/entities/bulk"); n != 5+n429 {
				t.Errorf("%d bulk requests, want %d", n, 5+n429)
			}
			// 5 bulk requests need the next window; time must have passed
			// but not wildly more (paced, not backoff storms).
			if el := e.clock.Now().Sub(start); el < 5*time.Second || el > 40*time.Second {
				t.Errorf("virtual time %v for 5 requests at 5 per 10 s", el)
			}
		})
	}
}

func TestRateLimitPacingAvoids429(t *testing.T) {
	e := newEnv(t, porttest.Options{RateLimit: 10, Window: 6 * time.Second})
	rep, err := e.run(e.sink(func(c *Config) { c.Concurrency = 4 }), humanitecBlueprints(t, bpApp), apps(600), nil)
	if err != nil || rep.Upserted != 600 {
		t.Fatalf("err %v report %+v", err, rep)
	}
	n429 := 0
	for _, r := range e.srv.Requests() {
		if r.Status == http.StatusTooManyRequests {
			n429++
		}
	}
	// 30 bulk + 2 blueprint requests at 10 per 6 s: at least 18 s of
	// virtual time; a handful of 429s at most (the first window, before
	// the limit is known).
	if n429 > 4 {
		t.Errorf("%d 429s: the throttle did not pace", n429)
	}
	if s := e.clock.Slept(); s < 17*time.Second {
		t.Errorf("slept %v, want >= 17s of pacing", s)
	}
}

func TestRetryOn5xx(t *testing.T) {
	e := newEnv(t, porttest.Options{})
	failing := 2
	s := e.sink(func(c *Config) {
		c.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if strings.HasSuffix(r.URL.Path, "/entities/bulk") && failing > 0 {
				failing--
				return &http.Response{StatusCode: http.StatusBadGateway, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
			}
			return http.DefaultTransport.RoundTrip(r)
		})}
		c.Concurrency = 1
	})
	rep, err := e.run(s, humanitecBlueprints(t, bpApp), apps(5), nil)
	if err != nil || rep.Upserted != 5 || failing != 0 {
		t.Fatalf("err %v report %+v failing left %d", err, rep, failing)
	}
	if !strings.Contains(e.logs.String(), "status=502") {
		t.Errorf("retry not logged")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestThrottleObserve(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		status    int
		headers   map[string]string
		wantUntil time.Time
	}{
		{"remaining left", 200, map[string]string{"x-ratelimit-remaining": "3", "x-ratelimit-reset": "7"}, time.Time{}},
		{"exhausted, seconds", 200, map[string]string{"x-ratelimit-remaining": "0", "x-ratelimit-reset": "7"}, base.Add(7 * time.Second)},
		{"exhausted, epoch", 200, map[string]string{"x-ratelimit-remaining": "0", "x-ratelimit-reset": fmt.Sprint(base.Add(42 * time.Second).Unix())}, base.Add(42 * time.Second)},
		{"429, seconds", 429, map[string]string{"x-ratelimit-reset": "3"}, base.Add(3 * time.Second)},
		{"429, Retry-After wins", 429, map[string]string{"x-ratelimit-reset": "30", "Retry-After": "2"}, base.Add(2 * time.Second)},
		{"429, no headers", 429, nil, base.Add(time.Second)},
		{"fractional reset rounds up", 429, map[string]string{"x-ratelimit-reset": "1.2"}, base.Add(2 * time.Second)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			th := &throttle{now: func() time.Time { return base }}
			h := http.Header{}
			for k, v := range tc.headers {
				h.Set(k, v)
			}
			th.observe(h, tc.status, base, base)
			if !th.until.Equal(tc.wantUntil) {
				t.Errorf("until %v, want %v", th.until, tc.wantUntil)
			}
		})
	}
	t.Run("whole-second resets narrow to the window end", func(t *testing.T) {
		end := base.Add(2200 * time.Millisecond) // true window end; period 3 s
		th := &throttle{}
		var now time.Time
		th.now = func() time.Time { return now }
		for ms := 0; ms <= 2100; ms += 100 {
			now = base.Add(time.Duration(ms) * time.Millisecond)
			left := end.Sub(now)
			h := http.Header{}
			h.Set("x-ratelimit-reset", fmt.Sprint(int((left+time.Second-1)/time.Second)))
			h.Set("x-ratelimit-remaining", "1")
			if ms == 2100 {
				h.Set("x-ratelimit-remaining", "0")
			}
			th.observe(h, 200, now, now)
		}
		if th.until.Before(end) || th.until.After(end.Add(100*time.Millisecond)) {
			t.Errorf("gate opens at %v, want within 100ms after %v", th.until.Sub(base), end.Sub(base))
		}
		// A late answer from the previous window (sent just before its end)
		// neither moves the estimate nor gates.
		gate := th.until
		now = end.Add(20 * time.Millisecond)
		newer := http.Header{}
		newer.Set("x-ratelimit-reset", "3")
		newer.Set("x-ratelimit-remaining", "40")
		th.observe(newer, 200, now, now) // first answer of the next window
		late := http.Header{}
		late.Set("x-ratelimit-reset", "1")
		late.Set("x-ratelimit-remaining", "0")
		th.observe(late, 200, end.Add(-10*time.Millisecond), now.Add(5*time.Millisecond))
		if !th.until.Equal(gate) || th.endLo.Before(end) {
			t.Errorf("late answer moved the gate to %v (estimate %v..%v)", th.until.Sub(base), th.endLo.Sub(base), th.endHi.Sub(base))
		}
		// The next window starts a new interval.
		now = end.Add(50 * time.Millisecond)
		h := http.Header{}
		h.Set("x-ratelimit-reset", "3")
		h.Set("x-ratelimit-remaining", "0")
		th.observe(h, 200, now, now)
		if want := end.Add(20*time.Millisecond + 3*time.Second); !th.until.Equal(want) {
			t.Errorf("new window gate %v, want %v", th.until.Sub(base), want.Sub(base))
		}
	})
	t.Run("pacing from limit and period", func(t *testing.T) {
		now := base
		var slept time.Duration
		th := &throttle{now: func() time.Time { return now }, sleep: func(_ context.Context, d time.Duration) error {
			slept += d
			now = now.Add(d)
			return nil
		}}
		h := http.Header{}
		h.Set("x-ratelimit-limit", "50")
		h.Set("x-ratelimit-period", "3")
		h.Set("x-ratelimit-remaining", "49")
		th.observe(h, 200, base, base)
		for range 51 {
			if err := th.wait(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		// 51 requests at 50 per 3 s with a burst of 2: two are free, the
		// other 49 are spaced 60 ms apart.
		if slept != 49*60*time.Millisecond {
			t.Errorf("slept %v, want 2.94s", slept)
		}
	})
}

// exhaust spends the current rate-limit window with unauthenticated
// requests (counted before auth) until the server answers 429.
func exhaust(t *testing.T, srv *porttest.Server) {
	t.Helper()
	for range 1000 {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL()+"/v1/blueprints", nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusTooManyRequests {
			return
		}
	}
	t.Fatal("window never exhausted")
}
