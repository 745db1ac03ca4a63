package apitest

import (
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Option configures a Server.
type Option func(*config)

type config struct {
	clock  Clock
	logger *slog.Logger
	rate   *RateLimit
}

// WithRateLimit allows n requests per fixed window of length per, counted
// over the whole server (as an API key's quota is). Requests over the limit
// get 429. With headers, the 429 carries Retry-After (whole seconds until
// the window ends, at least 1) and every reply carries X-RateLimit-Limit,
// X-RateLimit-Remaining and X-RateLimit-Reset (Unix seconds); without, the
// 429 is bare, as Harness's edge sends it. It overrides the fixture's
// rate_limit.
func WithRateLimit(n int, per time.Duration, headers bool) Option {
	return func(c *config) { c.rate = &RateLimit{Limit: n, Per: Duration{per}, Headers: headers} }
}

// RateStyleGitHub is [RateLimit.Style] for GitHub's primary rate limit.
const RateStyleGitHub = "github"

// WithClock replaces the real clock, e.g. with a [ManualClock].
func WithClock(clk Clock) Option {
	return func(c *config) {
		if clk != nil {
			c.clock = clk
		}
	}
}

// WithLogger logs one debug line per request (method, path, status, route;
// never the query string or headers, which may carry credentials).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// rateLimiter is a fixed-window counter.
type rateLimiter struct {
	limit   int
	per     time.Duration
	headers bool
	github  bool

	mu    sync.Mutex
	start time.Time
	used  int
}

// take reports whether the request may proceed and sets the rate-limit
// headers on h.
func (rl *rateLimiter) take(now time.Time, h http.Header) bool {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.start.IsZero() || !now.Before(rl.start.Add(rl.per)) {
		rl.start, rl.used = now, 0
	}
	end := rl.start.Add(rl.per)
	ok := rl.used < rl.limit
	if ok {
		rl.used++
	}
	if rl.github {
		// GitHub: every answer carries the window; an exhausted one is a
		// 403 with remaining 0 and the reset as epoch seconds.
		h.Set("X-Ratelimit-Limit", strconv.Itoa(rl.limit))
		h.Set("X-Ratelimit-Remaining", strconv.Itoa(rl.limit-rl.used))
		h.Set("X-Ratelimit-Used", strconv.Itoa(rl.used))
		h.Set("X-Ratelimit-Reset", strconv.FormatInt(int64(math.Ceil(float64(end.UnixNano())/1e9)), 10))
		h.Set("X-Ratelimit-Resource", "core")
		return ok
	}
	if rl.headers {
		h.Set("X-RateLimit-Limit", strconv.Itoa(rl.limit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(rl.limit-rl.used))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(int64(math.Ceil(float64(end.UnixNano())/1e9)), 10))
		if !ok {
			secs := int(math.Ceil(end.Sub(now).Seconds()))
			h.Set("Retry-After", strconv.Itoa(max(secs, 1)))
		}
	}
	return ok
}
