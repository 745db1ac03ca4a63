package fetch

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type reply struct {
	status int
	header map[string]string
}

// scripted serves replies in order, then 200 {"ok":true}.
func scripted(replies ...reply) (http.HandlerFunc, *atomic.Int32) {
	var n atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i >= len(replies) {
			io.WriteString(w, `{"ok":true}`)
			return
		}
		for k, v := range replies[i].header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(replies[i].status)
	}, &n
}

func TestRetryWaits(t *testing.T) {
	now := newFakeClock().Now()
	r429 := func(h map[string]string) reply { return reply{429, h} }
	tests := []struct {
		name      string
		retry     Retry
		rnd       float64
		replies   []reply
		wantWaits []time.Duration
	}{
		{name: "retry-after seconds", replies: []reply{r429(map[string]string{"Retry-After": "7"})}, wantWaits: []time.Duration{7 * time.Second}},
		{name: "retry-after http-date", replies: []reply{r429(map[string]string{"Retry-After": now.Add(10 * time.Second).Format(http.TimeFormat)})}, wantWaits: []time.Duration{10 * time.Second}},
		{name: "x-ratelimit-reset epoch", replies: []reply{r429(map[string]string{"x-ratelimit-reset": strconv.FormatInt(now.Add(12*time.Second).Unix(), 10)})}, wantWaits: []time.Duration{12 * time.Second}},
		{name: "x-ratelimit-reset seconds", replies: []reply{r429(map[string]string{"x-ratelimit-reset": "3"})}, wantWaits: []time.Duration{3 * time.Second}},
		{name: "retry-after decimal seconds", replies: []reply{r429(map[string]string{"Retry-After": "2.0"})}, wantWaits: []time.Duration{2 * time.Second}}, // Shopify
		{name: "retry-after fractional seconds", replies: []reply{r429(map[string]string{"Retry-After": "1.25"})}, wantWaits: []time.Duration{1250 * time.Millisecond}},
		{name: "retry-after garbage backs off", rnd: 0.5, replies: []reply{r429(map[string]string{"Retry-After": "soon"})}, wantWaits: []time.Duration{250 * time.Millisecond}},
		{name: "retry-after negative backs off", rnd: 0.5, replies: []reply{r429(map[string]string{"Retry-After": "-3"})}, wantWaits: []time.Duration{250 * time.Millisecond}},
		{name: "retry-after wins over x-ratelimit-reset", replies: []reply{r429(map[string]string{"Retry-After": "2", "x-ratelimit-reset": "9"})}, wantWaits: []time.Duration{2 * time.Second}},
		{
			name: "429 without headers backs off exponentially", rnd: 0.5,
			replies:   []reply{r429(nil), r429(nil), r429(nil)},
			wantWaits: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second},
		},
		{
			name: "backoff capped by max", rnd: 0.5, retry: Retry{Initial: 500 * time.Millisecond, Max: 600 * time.Millisecond},
			replies:   []reply{{503, nil}, {503, nil}, {503, nil}},
			wantWaits: []time.Duration{250 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond},
		},
		{name: "backoff longer than hint wins", rnd: 0.5, replies: []reply{r429(map[string]string{"Retry-After": "0"})}, wantWaits: []time.Duration{250 * time.Millisecond}},
		{name: "hint beyond max is honoured", retry: Retry{Max: 30 * time.Second}, replies: []reply{r429(map[string]string{"Retry-After": "120"})}, wantWaits: []time.Duration{120 * time.Second}},
		{name: "hint beyond hard cap is capped", replies: []reply{r429(map[string]string{"Retry-After": "3600"})}, wantWaits: []time.Duration{MaxServerWait}},
		{name: "503 honours retry-after", replies: []reply{{503, map[string]string{"Retry-After": "4"}}}, wantWaits: []time.Duration{4 * time.Second}},
		{name: "503 ignores x-ratelimit-reset", rnd: 0.5, replies: []reply{{503, map[string]string{"x-ratelimit-reset": "40"}}}, wantWaits: []time.Duration{250 * time.Millisecond}},
		// Jira Cloud: the reset is an ISO 8601 time, cut to the minute:
		// waited out to the minute's end, when it has surely passed.
		{name: "x-ratelimit-reset ISO 8601 minutes", replies: []reply{r429(map[string]string{"X-RateLimit-Reset": now.Add(3 * time.Minute).Truncate(time.Minute).Format("2006-01-02T15:04Z")})}, wantWaits: []time.Duration{4*time.Minute - 7*time.Second}},
		{name: "x-ratelimit-reset ISO 8601 offset", replies: []reply{r429(map[string]string{"X-RateLimit-Reset": "2026-03-04T06:06:17+01:00"})}, wantWaits: []time.Duration{10 * time.Second}},
		{name: "x-ratelimit-reset ISO 8601 fraction, offset without colon", replies: []reply{r429(map[string]string{"X-RateLimit-Reset": "2026-03-04T05:06:09.500+0000"})}, wantWaits: []time.Duration{2500 * time.Millisecond}},
		{name: "x-ratelimit-reset ISO 8601 in the past backs off", rnd: 0.5, replies: []reply{r429(map[string]string{"X-RateLimit-Reset": "2026-03-04T05:00Z"})}, wantWaits: []time.Duration{250 * time.Millisecond}},
		// Unreadable resets neither retry at once nor wait without end.
		{name: "x-ratelimit-reset ISO 8601 without zone backs off", rnd: 0.5, replies: []reply{r429(map[string]string{"X-RateLimit-Reset": "2026-03-04T05:09"})}, wantWaits: []time.Duration{250 * time.Millisecond}},
		{name: "x-ratelimit-reset garbage backs off", rnd: 0.5, replies: []reply{r429(map[string]string{"X-RateLimit-Reset": "tomorrow"}), r429(map[string]string{"X-RateLimit-Reset": "tomorrow"})}, wantWaits: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}},
		// PagerDuty: a 429 names the wait in ratelimit-reset only.
		{name: "429 honours ratelimit-reset", replies: []reply{r429(map[string]string{"ratelimit-limit": "960", "ratelimit-remaining": "0", "ratelimit-reset": "30"})}, wantWaits: []time.Duration{30 * time.Second}},
		{name: "429 honours a RateLimit item's reset", replies: []reply{r429(map[string]string{"RateLimit": `"default";r=0;t=6`})}, wantWaits: []time.Duration{6 * time.Second}},
		// GitHub: its rate limits are 403s that say so.
		{name: "403 secondary rate limit honours retry-after", replies: []reply{{403, map[string]string{"Retry-After": "60", "x-ratelimit-remaining": "4000"}}}, wantWaits: []time.Duration{60 * time.Second}},
		{name: "403 primary rate limit waits for the reset", replies: []reply{{403, map[string]string{"x-ratelimit-remaining": "0", "x-ratelimit-reset": strconv.FormatInt(now.Add(12*time.Second).Unix(), 10)}}}, wantWaits: []time.Duration{12 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, n := scripted(tc.replies...)
			srv := newServer(t, h)
			clk := newFakeClock()
			c := mustClient(t, testPool(clk, tc.rnd, nil), HostConfig{BaseURL: srv.URL, Retry: tc.retry})
			resp, err := c.Do(t.Context(), &Request{URL: "/x"})
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if want := len(tc.replies) + 1; resp.Attempts != want || int(n.Load()) != want {
				t.Errorf("attempts = %d (server saw %d), want %d", resp.Attempts, n.Load(), want)
			}
			if d := cmp.Diff(tc.wantWaits, clk.Sleeps()); d != "" {
				t.Errorf("waits (-want +got):\n%s", d)
			}
		})
	}
}

func TestNoRetry(t *testing.T) {
	tests := []struct {
		name   string
		cfg    HostConfig
		method string
		status int
		header map[string]string
	}{
		{name: "404", method: "GET", status: 404},
		{name: "403 refusal", method: "GET", status: 403, header: map[string]string{"x-ratelimit-remaining": "4999", "x-ratelimit-reset": "60"}},
		{name: "403 rate limit with no retry statuses", cfg: HostConfig{Retry: Retry{Statuses: []int{}}}, method: "GET", status: 403, header: map[string]string{"Retry-After": "1"}},
		{name: "403 rate limit when 429 is not retried", cfg: HostConfig{Retry: Retry{Statuses: []int{503}}}, method: "GET", status: 403, header: map[string]string{"x-ratelimit-remaining": "0"}},
		{name: "400 POST", method: "POST", status: 400},
		{name: "500 POST with RetryPOST false", cfg: HostConfig{RetryPOST: ptr(false)}, method: "POST", status: 500},
		{name: "503 PATCH", method: "PATCH", status: 503},
		{name: "503 with no retry statuses", cfg: HostConfig{Retry: Retry{Statuses: []int{}}}, method: "GET", status: 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, `{"error":"nope"}`)
			})
			tc.cfg.BaseURL = srv.URL
			clk := newFakeClock()
			c := mustClient(t, testPool(clk, 0, nil), tc.cfg)
			resp, err := c.Do(t.Context(), &Request{Method: tc.method, URL: "/x"})
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("Do error = %v, want *StatusError", err)
			}
			want := tc.method + " " + srv.URL + "/x: " + strconv.Itoa(tc.status) + " " + http.StatusText(tc.status) + `: {"error":"nope"}`
			if se.Error() != want {
				t.Errorf("Error() = %q, want %q", se.Error(), want)
			}
			if resp == nil || resp.Status != tc.status || string(resp.Body) != `{"error":"nope"}` {
				t.Errorf("response = %+v, want the final %d response", resp, tc.status)
			}
			if n.Load() != 1 || len(clk.Sleeps()) != 0 {
				t.Errorf("server saw %d requests, %d waits; want 1 and 0", n.Load(), len(clk.Sleeps()))
			}
		})
	}
}

func TestPOSTBodyResent(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	var types []string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		types = append(types, r.Header.Get("Content-Type"))
		n := len(bodies)
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL})
	body := map[string]any{"filter": map[string]any{"ids": []string{"a", "b"}}}
	if _, err := c.Do(t.Context(), &Request{Method: "post", URL: "/q", Body: body}); err != nil {
		t.Fatalf("Do: %v", err)
	}
	want := `{"filter":{"ids":["a","b"]}}`
	if d := cmp.Diff([]string{want, want}, bodies); d != "" {
		t.Errorf("bodies (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"application/json", "application/json"}, types); d != "" {
		t.Errorf("content types (-want +got):\n%s", d)
	}
}

func TestAttemptsCap(t *testing.T) {
	for _, attempts := range []int{1, 3, 0} {
		t.Run(strconv.Itoa(attempts), func(t *testing.T) {
			var n atomic.Int32
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				w.WriteHeader(http.StatusServiceUnavailable)
			})
			clk := newFakeClock()
			c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: srv.URL, Retry: Retry{Attempts: attempts}})
			resp, err := c.Do(t.Context(), &Request{URL: "/x"})
			want := attempts
			if want == 0 {
				want = DefaultAttempts
			}
			var se *StatusError
			if !errors.As(err, &se) || se.Status != 503 {
				t.Fatalf("Do error = %v, want 503 StatusError", err)
			}
			if int(n.Load()) != want || resp.Attempts != want || len(clk.Sleeps()) != want-1 {
				t.Errorf("server saw %d, Attempts %d, waits %d; want %d, %d, %d", n.Load(), resp.Attempts, len(clk.Sleeps()), want, want, want-1)
			}
		})
	}
}

func TestAttemptTimeout(t *testing.T) {
	tests := []struct {
		name     string
		hang     int32 // attempts that hang
		attempts int
		wantErr  bool
	}{
		{name: "timeout then success", hang: 1, attempts: 3},
		{name: "every attempt times out", hang: 2, attempts: 2, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			done := make(chan struct{})
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) <= tc.hang {
					select {
					case <-r.Context().Done():
					case <-done:
					}
					return
				}
				io.WriteString(w, "{}")
			})
			defer close(done)
			clk := newFakeClock()
			c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: srv.URL, Timeout: 50 * time.Millisecond, Retry: Retry{Attempts: tc.attempts}})
			resp, err := c.Do(t.Context(), &Request{URL: "/slow"})
			if tc.wantErr {
				if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "attempt timed out after 50ms") {
					t.Fatalf("Do error = %v, want an attempt timeout", err)
				}
			} else if err != nil || resp.Attempts != 2 {
				t.Fatalf("Do = %+v, %v; want success on attempt 2", resp, err)
			}
			if got := n.Load(); got != 2 {
				t.Errorf("server saw %d requests, want 2", got)
			}
			if len(clk.Sleeps()) != 1 {
				t.Errorf("waits = %v, want one", clk.Sleeps())
			}
		})
	}
}

func TestBodyCutShortIsRetried(t *testing.T) {
	var n atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"items\":[")
			buf.Flush()
			conn.Close()
			return
		}
		io.WriteString(w, `{"items":[]}`)
	})
	c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL})
	resp, err := c.Do(t.Context(), &Request{URL: "/x"})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if resp.Attempts != 2 || string(resp.Body) != `{"items":[]}` {
		t.Errorf("Do = attempts %d body %q, want 2 and the full body", resp.Attempts, resp.Body)
	}
}

func TestNetworkErrorRetriedThenReported(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	base := srv.URL
	srv.Close()
	clk := newFakeClock()
	c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: base, Retry: Retry{Attempts: 3}})
	_, err := c.Do(t.Context(), &Request{URL: "/x"})
	if err == nil || !strings.HasPrefix(err.Error(), "GET "+base+"/x: ") {
		t.Fatalf("Do error = %v, want a network error naming the request", err)
	}
	if len(clk.Sleeps()) != 2 {
		t.Errorf("waits = %v, want 2 (3 attempts)", clk.Sleeps())
	}
}

func TestContextCancel(t *testing.T) {
	t.Run("in flight", func(t *testing.T) {
		arrived := make(chan struct{}, 1)
		var n atomic.Int32
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			arrived <- struct{}{}
			<-r.Context().Done()
		})
		c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL})
		ctx, cancel := context.WithCancel(t.Context())
		go func() { <-arrived; cancel() }()
		_, err := c.Do(ctx, &Request{URL: "/x"})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Do error = %v, want context.Canceled", err)
		}
		if n.Load() != 1 {
			t.Errorf("server saw %d requests, want 1", n.Load())
		}
	})
	t.Run("during backoff with the real sleeper", func(t *testing.T) {
		arrived := make(chan struct{}, 1)
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
			arrived <- struct{}{}
		})
		c := mustClient(t, NewPool(Options{}), HostConfig{BaseURL: srv.URL})
		ctx, cancel := context.WithCancel(t.Context())
		go func() { <-arrived; cancel() }()
		_, err := c.Do(ctx, &Request{URL: "/x"})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Do error = %v, want context.Canceled", err)
		}
	})
	t.Run("waiting for a slot", func(t *testing.T) {
		arrived := make(chan struct{}, 1)
		release := make(chan struct{})
		var n atomic.Int32
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			arrived <- struct{}{}
			<-release
		})
		p := testPool(newFakeClock(), 0, nil)
		c := mustClient(t, p, HostConfig{BaseURL: srv.URL, Concurrency: 1})
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := c.Do(t.Context(), &Request{URL: "/first"}); err != nil {
				t.Errorf("first Do: %v", err)
			}
		})
		<-arrived
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := c.Do(ctx, &Request{URL: "/second"})
		close(release)
		wg.Wait()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Do error = %v, want context.Canceled", err)
		}
		if n.Load() != 1 {
			t.Errorf("server saw %d requests, want 1", n.Load())
		}
	})
}

func TestServerHint(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		status int
		want   time.Duration
	}{
		{"none", nil, 429, 0},
		{"seconds", map[string]string{"Retry-After": " 5 "}, 503, 5 * time.Second},
		{"negative seconds", map[string]string{"Retry-After": "-5"}, 429, 0},
		{"date in the past", map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 429, 0},
		{"garbage", map[string]string{"Retry-After": "soon"}, 429, 0},
		{"reset fractional seconds", map[string]string{"X-RateLimit-Reset": "1.5"}, 429, 1500 * time.Millisecond},
		{"reset epoch in the past", map[string]string{"X-RateLimit-Reset": strconv.FormatInt(now.Add(-time.Minute).Unix(), 10)}, 429, 0},
		{"reset on 500 ignored", map[string]string{"X-RateLimit-Reset": "10"}, 500, 0},
		{"reset epoch milliseconds", map[string]string{"X-RateLimit-Reset": strconv.FormatInt(now.Add(8*time.Second).UnixMilli(), 10)}, 429, 8 * time.Second},
		{"huge reset does not overflow", map[string]string{"X-RateLimit-Reset": "1e300"}, 429, 24 * time.Hour},
		{"reset ISO 8601 to the minute: its end", map[string]string{"X-RateLimit-Reset": "2026-03-04T05:08Z"}, 429, 173 * time.Second},
		{"reset ISO 8601 with seconds", map[string]string{"X-RateLimit-Reset": "2026-03-04T05:08:00Z"}, 429, 113 * time.Second},
		{"reset ISO 8601 far future is only clamped", map[string]string{"X-RateLimit-Reset": "9999-12-31T23:59Z"}, 429, 24 * time.Hour},
		{"reset ISO 8601 before 1970", map[string]string{"X-RateLimit-Reset": "1960-01-01T00:00Z"}, 429, 0},
		{"reset on a 403 refusal ignored", map[string]string{"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": "10"}, 403, 0},
		{"reset on a spent 403", map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "10"}, 403, 10 * time.Second},
		{"ratelimit-reset on 429", map[string]string{"RateLimit-Reset": "9"}, 429, 9 * time.Second},
		{"ratelimit-reset on 503 ignored", map[string]string{"RateLimit-Reset": "9"}, 503, 0},
		{"x-ratelimit-reset wins over ratelimit-reset", map[string]string{"X-RateLimit-Reset": "3", "RateLimit-Reset": "9"}, 429, 3 * time.Second},
		{"x-rate-limit-reset epoch on 429 (Okta)", map[string]string{"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": strconv.FormatInt(now.Add(40*time.Second).Unix(), 10)}, 429, 40 * time.Second},
		{"x-rate-limit-reset on a spent 403", map[string]string{"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "12"}, 403, 12 * time.Second},
		{"x-rate-limit-reset on a 403 refusal ignored", map[string]string{"X-Rate-Limit-Remaining": "4", "X-Rate-Limit-Reset": "12"}, 403, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			if got := serverHint(h, tc.status, now); got != tc.want {
				t.Errorf("serverHint = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBodyCap(t *testing.T) {
	const limit = 1000
	tests := []struct {
		name    string
		status  int
		size    int
		maxBody int64
		wantErr bool
	}{
		{name: "at the limit", status: 200, size: limit, maxBody: limit},
		{name: "over the limit", status: 200, size: limit + 1, maxBody: limit, wantErr: true},
		{name: "an error body over the limit", status: 503, size: 4 * limit, maxBody: limit, wantErr: true},
		{name: "default limit", status: 200, size: DefaultMaxBodyBytes + 1, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				w.WriteHeader(tc.status)
				w.Write([]byte(strings.Repeat("x", tc.size)))
			})
			clk := newFakeClock()
			c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: srv.URL, MaxBodyBytes: tc.maxBody,
				Auth: Auth{Type: AuthQuery, Param: "key", Token: "s3cret-key"}})
			resp, err := c.Do(t.Context(), &Request{URL: "/big"})
			if !tc.wantErr {
				if err != nil || len(resp.Body) != tc.size {
					t.Fatalf("Do = %d bytes, %v; want the whole %d-byte body", len(resp.Body), err, tc.size)
				}
				return
			}
			limit := tc.maxBody
			if limit == 0 {
				limit = DefaultMaxBodyBytes
			}
			want := "GET " + srv.URL + "/big?key=REDACTED: response body too large: over the limit of " + strconv.FormatInt(limit, 10) + " bytes"
			if !errors.Is(err, ErrBodyTooLarge) || err.Error() != want {
				t.Fatalf("Do error = %v, want %q", err, want)
			}
			if resp != nil {
				t.Errorf("Do returned a response (%d bytes) with a body over the limit", len(resp.Body))
			}
			if n.Load() != 1 || len(clk.Sleeps()) != 0 {
				t.Errorf("server saw %d requests, %d waits; want 1 and 0: an oversized body is not retried", n.Load(), len(clk.Sleeps()))
			}
		})
	}
}

func TestDefaultStatusesRetried(t *testing.T) {
	for _, status := range []int{408, 429, 500, 502, 503, 504} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			h, n := scripted(reply{status, nil})
			srv := newServer(t, h)
			c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL})
			resp, err := c.Do(t.Context(), &Request{Method: http.MethodPost, URL: "/x"})
			if err != nil || resp.Attempts != 2 || n.Load() != 2 {
				t.Errorf("Do = %+v, %v; want success on the retry", resp, err)
			}
		})
	}
}

// TestStripeShouldRetry: Stripe-Should-Retry overrides the status, both
// ways, but never makes a method retryable that is not otherwise.
func TestStripeShouldRetry(t *testing.T) {
	tests := []struct {
		name         string
		cfg          HostConfig
		method       string
		status       int
		value        string
		wantAttempts int
	}{
		{name: "true retries a 409", method: "GET", status: 409, value: "true", wantAttempts: 2},
		{name: "true retries a POST's 409", method: "POST", status: 409, value: "true", wantAttempts: 2},
		{name: "any case", method: "GET", status: 409, value: " True ", wantAttempts: 2},
		{name: "false stops a 503", method: "GET", status: 503, value: "false", wantAttempts: 1},
		{name: "false stops a 500 POST", method: "POST", status: 500, value: "false", wantAttempts: 1},
		{name: "false stops a 429", method: "GET", status: 429, value: "false", wantAttempts: 1},
		{name: "another value is ignored", method: "GET", status: 500, value: "maybe", wantAttempts: 2},
		{name: "another value retries no 409", method: "GET", status: 409, value: "1", wantAttempts: 1},
		{name: "true does not retry a POST with RetryPOST false", cfg: HostConfig{RetryPOST: ptr(false)}, method: "POST", status: 409, value: "true", wantAttempts: 1},
		{name: "true does not retry a PATCH", method: "PATCH", status: 409, value: "true", wantAttempts: 1},
		{name: "true within attempts", cfg: HostConfig{Retry: Retry{Attempts: 1}}, method: "GET", status: 409, value: "true", wantAttempts: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, n := scripted(reply{tc.status, map[string]string{"Stripe-Should-Retry": tc.value}})
			srv := newServer(t, h)
			tc.cfg.BaseURL = srv.URL
			c := mustClient(t, testPool(newFakeClock(), 0.5, nil), tc.cfg)
			resp, err := c.Do(t.Context(), &Request{Method: tc.method, URL: "/x"})
			if int(n.Load()) != tc.wantAttempts {
				t.Errorf("server saw %d requests, want %d", n.Load(), tc.wantAttempts)
			}
			var se *StatusError
			switch {
			case tc.wantAttempts == 1 && (!errors.As(err, &se) || se.Status != tc.status):
				t.Errorf("Do error = %v, want the %d StatusError", err, tc.status)
			case tc.wantAttempts > 1 && (err != nil || resp.Status != 200):
				t.Errorf("Do = %v, %v; want the 200 of the retry", resp, err)
			}
		})
	}
}
