package port

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// throttle paces requests to the rate Port announces and stops them while a
// window is exhausted.
//
// Pacing: once a response carries x-ratelimit-limit and x-ratelimit-period,
// requests are spaced evenly at limit/period (a token bucket holding 4% of
// the window), so a long load runs at the allowed rate instead of bursting
// into 429s.
// Gate: when a response says remaining is 0, or is a 429, no request starts
// before x-ratelimit-reset (Retry-After wins when present). The reset is
// read as epoch seconds when it is larger than 10^9, else as whole seconds
// until the window ends. Whole seconds are coarse (a "1" may mean 10 ms), so
// every response narrows an interval that must hold the window's end —
// (sent + reset - 1s, received + reset] — and the gate opens at the
// interval's upper bound; with requests spaced well under a second apart
// this pins the end to within a request's latency.
type throttle struct {
	now   func() time.Time
	sleep func(context.Context, time.Duration) error

	mu     sync.Mutex
	lim    *rate.Limiter
	limit  int
	period int
	until  time.Time
	endLo  time.Time // the current window ends in (endLo, endHi]
	endHi  time.Time
}

// wait blocks until a request may start.
func (t *throttle) wait(ctx context.Context) error {
	reserved := false
	for {
		t.mu.Lock()
		now := t.now()
		if now.Before(t.until) {
			d := t.until.Sub(now)
			t.mu.Unlock()
			if err := t.sleep(ctx, d); err != nil {
				return err
			}
			continue
		}
		var d time.Duration
		if !reserved && t.lim != nil {
			reserved = true
			d = t.lim.ReserveN(now, 1).DelayFrom(now)
		}
		t.mu.Unlock()
		if d <= 0 {
			return ctx.Err()
		}
		if err := t.sleep(ctx, d); err != nil {
			return err
		}
	}
}

// observe updates pacing and the gate from one response to a request sent
// at sent and answered at recv.
func (t *throttle) observe(h http.Header, status int, sent, recv time.Time) {
	limit, okL := headerInt(h, "x-ratelimit-limit")
	period, okP := headerInt(h, "x-ratelimit-period")
	remaining, okR := headerInt(h, "x-ratelimit-remaining")
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if okL && okP && limit > 0 && period > 0 && (limit != t.limit || period != t.period) {
		t.limit, t.period = limit, period
		r := rate.Limit(float64(limit) / float64(period))
		// A small burst (4% of the window) lets a request delayed by the
		// scheduler be made up; the gate still stops an exhausted window.
		burst := max(1, limit/25)
		if t.lim == nil {
			t.lim = rate.NewLimiter(r, burst)
		} else {
			t.lim.SetLimitAt(now, r)
			t.lim.SetBurstAt(now, burst)
		}
	}
	reset, okReset := headerInt(h, "x-ratelimit-reset")
	epoch := okReset && reset > 1_000_000_000
	if okReset && !epoch {
		lo := sent.Add(time.Duration(reset-1) * time.Second)
		hi := recv.Add(time.Duration(reset) * time.Second)
		switch {
		case t.endHi.IsZero() || !lo.Before(t.endHi):
			t.endLo, t.endHi = lo, hi // a new window (or a first look)
		case hi.Before(t.endLo):
			// A late answer about a window that has already ended: it
			// must neither disturb the estimate nor close the gate.
			return
		default:
			t.endLo, t.endHi = maxTime(t.endLo, lo), minTime(t.endHi, hi)
			if t.endLo.After(t.endHi) {
				t.endLo, t.endHi = lo, hi
			}
		}
	}
	if status != http.StatusTooManyRequests && !(okR && remaining <= 0) {
		return
	}
	var until time.Time
	if d, ok := retryAfter(h, sent); ok {
		until = sent.Add(d)
	} else if epoch {
		until = time.Unix(int64(reset), 0)
	} else if okReset {
		until = t.endHi
	} else if status == http.StatusTooManyRequests {
		until = now.Add(time.Second)
	}
	if until.After(t.until) {
		t.until = until
	}
}

// retryAfter reads Retry-After (seconds or HTTP date) relative to sent.
func retryAfter(h http.Header, sent time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(sent), 0), true
	}
	return 0, false
}

func headerInt(h http.Header, k string) (int, bool) {
	v := strings.TrimSpace(h.Get(k))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, false
	}
	return int(f + 0.999999), true // fractional seconds: round up, never early
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
