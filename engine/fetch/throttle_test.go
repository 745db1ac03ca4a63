package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

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
		{"exhausted, epoch milliseconds", 200, map[string]string{"x-ratelimit-remaining": "0", "x-ratelimit-reset": fmt.Sprint(base.Add(42 * time.Second).UnixMilli())}, base.Add(42 * time.Second)},
		{"429, seconds", 429, map[string]string{"x-ratelimit-reset": "3"}, base.Add(3 * time.Second)},
		{"429, Retry-After wins", 429, map[string]string{"x-ratelimit-reset": "30", "Retry-After": "2"}, base.Add(2 * time.Second)},
		{"429, Retry-After date", 429, map[string]string{"Retry-After": base.Add(9 * time.Second).Format(http.TimeFormat)}, base.Add(9 * time.Second)},
		{"429, no headers", 429, nil, base.Add(time.Second)},
		{"fractional reset rounds up", 429, map[string]string{"x-ratelimit-reset": "1.2"}, base.Add(2 * time.Second)},
		{"a far reset is capped", 429, map[string]string{"x-ratelimit-reset": fmt.Sprint(base.Add(24 * time.Hour).Unix())}, base.Add(MaxServerWait)},
		{"a long Retry-After is capped", 429, map[string]string{"Retry-After": "86400"}, base.Add(MaxServerWait)},
		{"a 503 with Retry-After does not gate", 503, map[string]string{"Retry-After": "20", "x-ratelimit-remaining": "5"}, time.Time{}},
		// A 429 that reports quota left is not a spent window.
		{"429 with quota left: a short pause, not the window", 429, map[string]string{"x-ratelimit-remaining": "40", "x-ratelimit-reset": "60"}, base.Add(time.Second)},
		{"429 with quota left honours Retry-After", 429, map[string]string{"x-ratelimit-remaining": "40", "x-ratelimit-reset": "60", "Retry-After": "3"}, base.Add(3 * time.Second)},
		{"429 with quota left, epoch reset", 429, map[string]string{"x-ratelimit-remaining": "40", "x-ratelimit-reset": fmt.Sprint(base.Add(60 * time.Second).Unix())}, base.Add(time.Second)},
		{"the pause never passes the reset", 429, map[string]string{"x-ratelimit-remaining": "40", "x-ratelimit-reset": fmt.Sprint(base.Add(500 * time.Millisecond).UnixMilli())}, base.Add(500 * time.Millisecond)},
		{"Retry-After never passes the reset", 429, map[string]string{"x-ratelimit-remaining": "0", "x-ratelimit-reset": "4", "Retry-After": "30"}, base.Add(4 * time.Second)},
		{"Retry-After past an epoch reset", 429, map[string]string{"x-ratelimit-reset": fmt.Sprint(base.Add(5 * time.Second).Unix()), "Retry-After": "30"}, base.Add(5 * time.Second)},
		// Our clock ahead of the server's: the reset it names is past here,
		// yet the window is still spent there; retrying at once would spend
		// the retries in a burst of 429s.
		{"429, an epoch reset already past: a pause", 429, map[string]string{"x-ratelimit-remaining": "0", "x-ratelimit-reset": fmt.Sprint(base.Add(-5 * time.Second).Unix())}, base.Add(time.Second)},
		{"spent, an epoch reset already past: a pause", 200, map[string]string{"x-ratelimit-remaining": "0", "x-ratelimit-reset": fmt.Sprint(base.Add(-5 * time.Second).Unix())}, base.Add(time.Second)},
		{"403 with Retry-After gates", 403, map[string]string{"Retry-After": "6", "x-ratelimit-remaining": "100"}, base.Add(6 * time.Second)},
		{"403 refusal does not gate", 403, map[string]string{"x-ratelimit-remaining": "100", "x-ratelimit-reset": "60"}, time.Time{}},
		{"429, ISO 8601 reset to the minute", 429, map[string]string{"x-ratelimit-reset": "2026-03-01T12:01Z"}, base.Add(2 * time.Minute)},
		// Jira's reset is cut to the minute: it must not cut Retry-After short.
		{"Retry-After within the ISO 8601 reset's minute", 429, map[string]string{"x-ratelimit-reset": "2026-03-01T12:01Z", "Retry-After": "90"}, base.Add(90 * time.Second)},
		{"spent, ISO 8601 reset with offset", 200, map[string]string{"x-ratelimit-remaining": "0", "x-ratelimit-reset": "2026-03-01T13:00:30+01:00"}, base.Add(30 * time.Second)},
		{"a reset already past bounds nothing", 429, map[string]string{"x-ratelimit-reset": fmt.Sprint(base.Add(-5 * time.Second).Unix()), "Retry-After": "2"}, base.Add(2 * time.Second)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			th := newThrottle(func() time.Time { return base }, nil)
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
		var now time.Time
		th := newThrottle(func() time.Time { return now }, nil)
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
		clk := newFakeClock()
		th := newThrottle(clk.Now, clk.Sleep)
		h := http.Header{}
		h.Set("x-ratelimit-limit", "50")
		h.Set("x-ratelimit-period", "3")
		h.Set("x-ratelimit-remaining", "49")
		th.observe(h, 200, clk.Now(), clk.Now())
		for range 51 {
			if err := th.wait(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		// 51 requests at 50 per 3 s with a burst of 2: two are free, the
		// other 49 are spaced 60 ms apart.
		want := make([]time.Duration, 49)
		for i := range want {
			want[i] = 60 * time.Millisecond
		}
		if d := cmp.Diff(want, clk.Sleeps()); d != "" {
			t.Errorf("pacing waits (-want +got):\n%s", d)
		}
	})
	t.Run("wait honours ctx at the gate", func(t *testing.T) {
		clk := newFakeClock()
		th := newThrottle(clk.Now, clk.Sleep)
		th.observe(http.Header{}, 429, clk.Now(), clk.Now())
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := th.wait(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("wait = %v, want context.Canceled", err)
		}
	})
}

// windowServer answers like Port: limit requests per window of period
// seconds, x-ratelimit-* on every answer, 429 once the window is spent.
// Its clock is the test's fake clock.
type windowServer struct {
	clk           *fakeClock
	limit, period int
	epoch         bool

	mu       sync.Mutex
	start    time.Time // current window start
	used     int
	statuses []int
}

func (s *windowServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clk.Now()
	win := time.Duration(s.period) * time.Second
	if s.start.IsZero() || !now.Before(s.start.Add(win)) {
		s.start, s.used = now.Truncate(win), 0
	}
	end := s.start.Add(win)
	status := http.StatusOK
	if s.used >= s.limit {
		status = http.StatusTooManyRequests
	} else {
		s.used++
	}
	s.statuses = append(s.statuses, status)
	h := w.Header()
	h.Set("x-ratelimit-limit", strconv.Itoa(s.limit))
	h.Set("x-ratelimit-period", strconv.Itoa(s.period))
	h.Set("x-ratelimit-remaining", strconv.Itoa(s.limit-s.used))
	if s.epoch {
		h.Set("x-ratelimit-reset", strconv.FormatInt(end.Unix(), 10))
	} else {
		h.Set("x-ratelimit-reset", strconv.FormatInt(int64((end.Sub(now)+time.Second-1)/time.Second), 10))
	}
	w.WriteHeader(status)
	io.WriteString(w, `{}`)
}

func (s *windowServer) count(status int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, st := range s.statuses {
		if st == status {
			n++
		}
	}
	return n
}

func TestRateHeaders(t *testing.T) {
	for _, epoch := range []bool{false, true} {
		t.Run(fmt.Sprintf("epoch=%v", epoch), func(t *testing.T) {
			clk := newFakeClock()
			ws := &windowServer{clk: clk, limit: 5, period: 10, epoch: epoch}
			// Someone else has spent the current window.
			ws.start, ws.used = clk.Now().Truncate(10*time.Second), 5
			srv := newServer(t, ws.ServeHTTP)
			p := testPool(clk, 0.5, nil)
			// Two configs of one host: asking once throttles both.
			a := mustClient(t, p, HostConfig{BaseURL: srv.URL, RateHeaders: true})
			b := mustClient(t, p, HostConfig{BaseURL: srv.URL})
			for i := range 20 {
				c := a
				if i%2 == 1 {
					c = b
				}
				if _, err := c.Do(t.Context(), &Request{URL: "/x"}); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
			}
			// One 429 from the spent window closes the gate until the reset;
			// after it, pacing at 5 per 10 s keeps every request clear.
			if n := ws.count(http.StatusTooManyRequests); n != 1 {
				t.Errorf("%d 429s, want 1", n)
			}
			// The gate's 3 s to the window end, then one request every 2 s.
			want := []time.Duration{3 * time.Second}
			for range 19 {
				want = append(want, 2*time.Second)
			}
			if d := cmp.Diff(want, clk.Sleeps()); d != "" {
				t.Errorf("waits (-want +got):\n%s", d)
			}
		})
	}
	t.Run("off by default", func(t *testing.T) {
		clk := newFakeClock()
		ws := &windowServer{clk: clk, limit: 5, period: 10}
		srv := newServer(t, ws.ServeHTTP)
		c := mustClient(t, testPool(clk, 0.5, nil), HostConfig{BaseURL: srv.URL, Retry: Retry{Attempts: 10}})
		for i := range 12 {
			if _, err := c.Do(t.Context(), &Request{URL: "/x"}); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		// Without the throttle nothing paces to limit/period, but the
		// adaptive control still honours the announced budget: a spent
		// window holds the next request until its reset, so no 429.
		if n := ws.count(http.StatusTooManyRequests); n != 0 {
			t.Errorf("%d 429s without RateHeaders, want none (remaining 0 waits for the reset)", n)
		}
		// The first window's 5 requests, its reset 3 s later (the clock
		// starts 7 s into it), 5 more, then the next reset.
		if d := cmp.Diff([]time.Duration{3 * time.Second, 10 * time.Second}, clk.Sleeps()); d != "" {
			t.Errorf("waits (-want +got):\n%s", d)
		}
	})
}

func TestRateHeaders429WaitsForTheGate(t *testing.T) {
	// A 429 whose reset says 3 s: on a throttled host the retry waits the
	// gate's 3 s, not the larger of backoff and hint, and not both.
	h, n := scripted(reply{429, map[string]string{"x-ratelimit-reset": "3", "x-ratelimit-remaining": "0"}})
	srv := newServer(t, h)
	clk := newFakeClock()
	c := mustClient(t, testPool(clk, 0.99, nil), HostConfig{BaseURL: srv.URL, RateHeaders: true, Retry: Retry{Initial: 10 * time.Second, Max: 10 * time.Second}})
	resp, err := c.Do(t.Context(), &Request{URL: "/x"})
	if err != nil || resp.Attempts != 2 || n.Load() != 2 {
		t.Fatalf("Do = %+v, %v; want success on attempt 2", resp, err)
	}
	if d := cmp.Diff([]time.Duration{3 * time.Second}, clk.Sleeps()); d != "" {
		t.Errorf("waits (-want +got):\n%s", d)
	}
}

func TestRateHeaders429SkewedEpochPauses(t *testing.T) {
	// The server's clock is behind ours: its 429s name a reset that is
	// already past here. Each retry must still pause, not fire at once.
	clk := newFakeClock()
	past := fmt.Sprint(clk.Now().Add(-5 * time.Second).Unix())
	r := reply{429, map[string]string{"x-ratelimit-reset": past, "x-ratelimit-remaining": "0"}}
	h, n := scripted(r, r, r)
	srv := newServer(t, h)
	c := mustClient(t, testPool(clk, 0.5, nil), HostConfig{BaseURL: srv.URL, RateHeaders: true})
	resp, err := c.Do(t.Context(), &Request{URL: "/x"})
	if err != nil || resp.Attempts != 4 || n.Load() != 4 {
		t.Fatalf("Do = %+v, %v; want success on attempt 4", resp, err)
	}
	if d := cmp.Diff([]time.Duration{time.Second, time.Second, time.Second}, clk.Sleeps()); d != "" {
		t.Errorf("waits (-want +got):\n%s", d)
	}
}

func TestRateHeaders429OpenGateBacksOff(t *testing.T) {
	// A 429 whose Retry-After is 0 leaves the gate open: the retry still
	// backs off, as on any host, rather than firing at once.
	h, n := scripted(reply{429, map[string]string{"Retry-After": "0"}}, reply{429, map[string]string{"Retry-After": "0"}})
	srv := newServer(t, h)
	clk := newFakeClock()
	c := mustClient(t, testPool(clk, 0.5, nil), HostConfig{BaseURL: srv.URL, RateHeaders: true})
	resp, err := c.Do(t.Context(), &Request{URL: "/x"})
	if err != nil || resp.Attempts != 3 || n.Load() != 3 {
		t.Fatalf("Do = %+v, %v; want success on attempt 3", resp, err)
	}
	if d := cmp.Diff([]time.Duration{250 * time.Millisecond, 500 * time.Millisecond}, clk.Sleeps()); d != "" {
		t.Errorf("waits (-want +got):\n%s", d)
	}
}
