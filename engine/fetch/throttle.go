package fetch

import (
	"context"
	"math"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// throttle is HostConfig.RateHeaders: it paces a host's requests to the
// rate the host announces and holds them while its window is exhausted.
//
// Pacing: once a response carries x-ratelimit-limit and x-ratelimit-period,
// requests are spaced evenly at limit/period (a token bucket holding 4% of
// the window), so a long load runs at the allowed rate instead of bursting
// into 429s.
//
// Gate: when a response says remaining is 0, or is a rate limit
// ([rateLimited]: a 429, or GitHub's 403), no request starts
// before x-ratelimit-reset — or before Retry-After when present, or a second
// after a 429 that still reports quota left or a reset not after the
// answer — but never after the reset
// (when it lies ahead), nor later than MaxServerWait from the answer. The reset is read as by [serverHint]. Whole
// seconds until the reset are coarse (a "1" may mean 10 ms), so every
// response narrows an interval that must hold the window's end —
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
	until  time.Time // the gate: no request starts before
	endLo  time.Time // the current window ends in (endLo, endHi]
	endHi  time.Time
}

func newThrottle(now func() time.Time, sleep func(context.Context, time.Duration) error) *throttle {
	return &throttle{now: now, sleep: sleep}
}

// wait blocks until a request may start: the gate is open and the pacing
// allows one more.
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
		// The gate may have closed while we slept: look again.
	}
}

// gateDelay is how long from now the gate stays closed.
func (t *throttle) gateDelay() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return max(t.until.Sub(t.now()), 0)
}

// observe updates pacing and the gate from one response to a request sent
// at sent and answered at recv.
func (t *throttle) observe(h http.Header, status int, sent, recv time.Time) {
	limit, okL := headerCount(h, "X-Ratelimit-Limit")
	period, okP := headerCount(h, "X-Ratelimit-Period")
	remaining, okR := headerCount(h, "X-Ratelimit-Remaining")
	reset, epoch, okReset := rateReset(h)
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
	if okReset && !epoch {
		// Round a fractional reset up: the interval must hold the end.
		whole := time.Duration(math.Ceil(reset)) * time.Second
		lo := sent.Add(whole - time.Second)
		hi := recv.Add(whole)
		switch {
		case t.endHi.IsZero() || !lo.Before(t.endHi):
			t.endLo, t.endHi = lo, hi // a new window (or a first look)
		case hi.Before(t.endLo):
			// A late answer about a window that has already ended: it
			// must neither disturb the estimate nor close the gate.
			return
		default:
			t.endLo, t.endHi = later(t.endLo, lo), earlier(t.endHi, hi)
			if t.endLo.After(t.endHi) {
				t.endLo, t.endHi = lo, hi
			}
		}
	}
	spent := okR && remaining <= 0
	if !spent && !rateLimited(status, h) {
		return
	}
	var end time.Time // the window's end, when the answer tells it
	switch {
	case okReset && epoch:
		end = epochTime(reset)
	case okReset:
		end = t.endHi
	}
	var until time.Time
	switch d, okRA := retryAfter(h, recv); {
	case okRA:
		until = recv.Add(d)
	case okR && remaining > 0:
		// A 429 while the window still has quota (a burst or concurrency
		// limit, a proxy) says nothing about the window: pause briefly
		// instead of holding every request until the window ends.
		until = recv.Add(time.Second)
	case end.After(recv):
		until = end
	default:
		// No reset, or one not after the answer (a server clock behind
		// ours): the window is spent all the same, so pause rather than
		// spend the retries at once.
		until = now.Add(time.Second)
	}
	// Never past the reset: the window's end brings the quota back. A
	// reset not after the answer (a skewed epoch clock) bounds nothing.
	if end.After(recv) {
		until = earlier(until, end)
	}
	until = earlier(until, recv.Add(MaxServerWait))
	if until.After(t.until) {
		t.until = until
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
