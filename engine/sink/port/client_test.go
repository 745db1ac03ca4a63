package port

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/fetch"
	portsim "github.com/ferry-etl/ferry/engine/sim/port"
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
	e := newEnv(t, portsim.Options{})
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
			e := newEnv(t, portsim.Options{})
			s := e.sink()
			if _, err := e.run(s, humanitecBlueprints(t, bpApp), apps(30), nil); err != nil {
				t.Fatal(err)
			}
			tc.between(e)
			// Retitled: the second run has all 30 to write again.
			again := apps(30)
			for _, a := range again {
				a.Data["title"] = "App, renamed"
			}
			rep, err := e.run(s, nil, again, nil)
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
	e := newEnv(t, portsim.Options{})
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
			e := newEnv(t, portsim.Options{RateLimit: 5, Window: 10 * time.Second, ResetEpoch: epoch})
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
			n429, posts := 0, 0
			for _, r := range e.srv.Requests() {
				if r.Method != "POST" || !strings.HasPrefix(r.Path, "/v1/blueprints/") {
					continue // the token, and the test's own exhausting GETs
				}
				posts++
				if r.Status == http.StatusTooManyRequests {
					n429++
				}
			}
			// One 429 from the exhausted window (to the ownership
			// searches that come first); after that the throttle paces at
			// 5 per 10 s and waits out each window.
			if n429 != 1 {
				t.Errorf("%d 429 responses to the sink, want exactly 1", n429)
			}
			// Port holds no app: the owned listing's search, then no
			// lookup of the identifiers not among them.
			if n := e.srv.CountRequests("POST", "/v1/blueprints/"+bpApp+"/entities/bulk"); n != 5 || posts != 1+5+n429 {
				t.Errorf("%d bulk requests of %d, want 5 bulk and one search (owned entities)", n, posts)
			}
			// 7 requests need the next window; time must have passed
			// but not wildly more (paced, not backoff storms).
			if el := e.clock.Now().Sub(start); el < 5*time.Second || el > 40*time.Second {
				t.Errorf("virtual time %v for 5 requests at 5 per 10 s", el)
			}
		})
	}
}

// A 429 that still reports quota left (a burst limit, a proxy) must not
// hold the load until Port's window ends: a minute here.
func TestRateLimit429WithQuotaLeft(t *testing.T) {
	tests := []struct {
		retryAfter         string
		minSlept, maxSlept time.Duration
	}{
		{"", 3 * time.Second, 10 * time.Second}, // a second per 429
		{"2", 6 * time.Second, 12 * time.Second},
	}
	for _, tc := range tests {
		t.Run("retry-after="+tc.retryAfter, func(t *testing.T) {
			e := newEnv(t, portsim.Options{RateLimit: 1000, Window: time.Minute})
			s := e.sink(func(c *Config) { c.Concurrency = 1 })
			if err := s.EnsureBlueprints(t.Context(), humanitecBlueprints(t, bpApp)); err != nil {
				t.Fatal(err)
			}
			e.srv.InjectFault(portsim.Fault{Method: "POST", Path: "*/entities/bulk", Times: 3, Kind: portsim.FaultThrottle, RetryAfter: tc.retryAfter})
			for _, ent := range apps(40) {
				if err := s.Write(t.Context(), ent); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := s.Finish(t.Context(), nil)
			if err != nil || rep.Upserted != 40 {
				t.Fatalf("err %v report %+v", err, rep)
			}
			if n := e.srv.CountRequests("POST", "*/entities/bulk"); n != 2+3 {
				t.Errorf("%d bulk requests, want 2 and the 3 refused", n)
			}
			// Virtual time: the fake clock advances only by the sink's waits.
			if slept := e.clock.Slept(); slept < tc.minSlept || slept > tc.maxSlept {
				t.Errorf("the sink waited %v for three 429s with quota left, want %v..%v (not the minute to the window's end)", slept, tc.minSlept, tc.maxSlept)
			}
		})
	}
}

func TestRateLimitPacingAvoids429(t *testing.T) {
	e := newEnv(t, portsim.Options{RateLimit: 10, Window: 6 * time.Second})
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

func TestRetryOn5xxAnd408(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	failing := []int{http.StatusBadGateway, http.StatusRequestTimeout}
	var mu sync.Mutex
	pool := fetch.NewPool(fetch.Options{Logger: e.cfg.Logger, Now: e.clock.Now, Sleep: e.clock.Sleep,
		Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			defer mu.Unlock()
			if strings.HasSuffix(r.URL.Path, "/entities/bulk") && len(failing) > 0 {
				status := failing[0]
				failing = failing[1:]
				return &http.Response{StatusCode: status, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
			}
			return http.DefaultTransport.RoundTrip(r)
		})})
	s := e.sink(func(c *Config) {
		c.Pool = pool
		c.Concurrency = 1
	})
	rep, err := e.run(s, humanitecBlueprints(t, bpApp), apps(5), nil)
	if err != nil || rep.Upserted != 5 || len(failing) != 0 {
		t.Fatalf("err %v report %+v failing left %v", err, rep, failing)
	}
	for _, want := range []string{"status=502", "status=408"} {
		if !strings.Contains(e.logs.String(), want) {
			t.Errorf("retry after %s not logged", want)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Sinks (or a run's sources and its sink) sharing one pool share its
// token: one run, one token request.
func TestSharedPoolOneToken(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	pool := fetch.NewPool(fetch.Options{Now: e.clock.Now, Sleep: e.clock.Sleep})
	for i := range 2 {
		s := e.sink(func(c *Config) { c.Pool = pool })
		if _, err := e.run(s, humanitecBlueprints(t, bpApp), apps(30), nil); err != nil {
			t.Fatalf("sink %d: %v", i, err)
		}
	}
	if n := e.srv.CountRequests("POST", "/v1/auth/access_token"); n != 1 {
		t.Errorf("%d token requests for two sinks on one pool, want 1", n)
	}
	if st := pool.Stats(); st.Hosts[strings.TrimSuffix(e.srv.URL(), "/")].Requests == 0 {
		t.Errorf("the pool carried none of the requests: %+v", st)
	}
}

// Port's {error, message} body becomes the StatusError's code and message,
// with any secret the body echoes redacted.
func TestStatusErrorFromPortBody(t *testing.T) {
	const secret = "s3cr3t-echoed-back"
	e := newEnv(t, portsim.Options{ClientSecret: secret})
	pool := fetch.NewPool(fetch.Options{Now: e.clock.Now, Sleep: e.clock.Sleep,
		Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if strings.HasSuffix(r.URL.Path, "/blueprints/"+bpApp) {
				body := `{"ok":false,"error":"forbidden","message":"client ` + secret + ` may not read"}`
				return &http.Response{StatusCode: http.StatusForbidden, Body: io.NopCloser(strings.NewReader(body)), Header: http.Header{}, Request: r}, nil
			}
			return http.DefaultTransport.RoundTrip(r)
		})})
	s := e.sink(func(c *Config) { c.Pool = pool; c.ClientSecret = secret })
	err := s.Write(t.Context(), apps(1)[0])
	var se *StatusError
	if !errors.As(err, &se) {
		t.Fatalf("Write error %v, want a StatusError", err)
	}
	want := StatusError{Method: "GET", Path: "/v1/blueprints/" + bpApp, Status: 403, Code: "forbidden", Message: "client REDACTED may not read"}
	if *se != want {
		t.Errorf("StatusError %+v, want %+v", *se, want)
	}
}

// exhaust spends the current rate-limit window with unauthenticated
// requests (counted before auth) until the server answers 429.
func exhaust(t *testing.T, srv *portsim.Server) {
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

// Port's 401 and 413 answers may carry an error code and no message: the
// error names the code without a dangling separator.
func TestStatusErrorWithoutMessage(t *testing.T) {
	id := func(s string) string { return s }
	for raw, want := range map[string]string{
		`{"ok":false,"error":"request_too_large"}`:                 "POST /v1/x: 413 request_too_large",
		`{"ok":false,"error":"request_too_large","message":"big"}`: "POST /v1/x: 413 request_too_large: big",
		`{"ok":false,"message":"big"}`:                             "POST /v1/x: 413 big",
	} {
		if got := statusError("POST", "/v1/x", http.StatusRequestEntityTooLarge, []byte(raw), id).Error(); got != want {
			t.Errorf("%s: %q, want %q", raw, got, want)
		}
	}
}
