package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults applied to a zero Retry.
const (
	DefaultAttempts = 5
	DefaultInitial  = 500 * time.Millisecond
	DefaultMax      = 30 * time.Second
	// MaxServerWait caps a server's Retry-After or x-ratelimit-reset hint
	// when it exceeds Retry.Max: the hint is honoured up to this long.
	MaxServerWait = 5 * time.Minute
)

// DefaultStatuses returns the statuses retried when Retry.Statuses is nil:
// 408, 429, 500, 502, 503 and 504. A 408 is the server's report that it
// timed out waiting for the request, the event fetch already retries when
// its own attempt timeout fires; RFC 9110 (15.5.9) lets the client repeat
// the request, and Port's own client (Ocean) does.
func DefaultStatuses() []int {
	return []int{
		http.StatusRequestTimeout,
		http.StatusTooManyRequests,
		http.StatusInternalServerError,
		http.StatusBadGateway,
		http.StatusServiceUnavailable,
		http.StatusGatewayTimeout,
	}
}

// retryPolicy is a normalised Retry.
type retryPolicy struct {
	attempts     int
	statuses     map[int]bool
	initial, max time.Duration
}

func newRetryPolicy(r Retry) retryPolicy {
	p := retryPolicy{attempts: r.Attempts, initial: r.Initial, max: r.Max, statuses: map[int]bool{}}
	if p.attempts <= 0 {
		p.attempts = DefaultAttempts
	}
	if p.initial <= 0 {
		p.initial = DefaultInitial
	}
	if p.max <= 0 {
		p.max = DefaultMax
	}
	if p.max < p.initial {
		p.max = p.initial
	}
	statuses := r.Statuses
	if statuses == nil {
		statuses = DefaultStatuses()
	}
	for _, s := range statuses {
		p.statuses[s] = true
	}
	return p
}

// backoff is capped exponential backoff with full jitter: a uniform draw
// in [0, min(max, initial·2^(failures-1))). rnd returns a value in [0, 1).
func (p retryPolicy) backoff(failures int, rnd func() float64) time.Duration {
	ceil := p.initial
	for i := 1; i < failures && ceil < p.max; i++ {
		ceil *= 2
	}
	ceil = min(ceil, p.max)
	return time.Duration(float64(ceil) * rnd())
}

// wait combines the backoff with a server hint: the longer of the two,
// the hint honoured beyond Max up to MaxServerWait.
func (p retryPolicy) wait(backoff, hint time.Duration) time.Duration {
	return max(backoff, min(hint, max(p.max, MaxServerWait)))
}

// serverHint reads how long the server asks us to wait. Retry-After
// (delta-seconds or HTTP-date) counts on any retried status; a reset —
// x-ratelimit-reset, else the IETF RateLimit fields' (PagerDuty's 429
// has only ratelimit-reset) — only on a rate limit ([rateLimited]),
// because some servers (Port) send it on every response, where it names
// the end of the current window.
func serverHint(h http.Header, status int, now time.Time) time.Duration {
	if d, ok := retryAfter(h, now); ok {
		return d
	}
	if !rateLimited(status, h) {
		return 0
	}
	v, epoch, ok := rateReset(h)
	switch {
	case !ok:
		if t, ok := ietfReset(h, now); ok {
			return max(t.Sub(now), 0)
		}
		return 0
	case v > maxEpoch:
		return secs(v) // absurd; the caller caps it
	case epoch:
		return max(epochTime(v).Sub(now), 0)
	}
	return secs(v)
}

// ietfReset reads the reset of the IETF RateLimit fields: RateLimit-Reset
// alone, else the one [announcedBudget] reads with its remaining.
func ietfReset(h http.Header, now time.Time) (time.Time, bool) {
	if t, ok := headerCount(h, "Ratelimit-Reset"); ok {
		return resetAt(float64(t), now), true
	}
	_, reset, ok := announcedBudget(h, now)
	return reset, ok
}

// rateLimited reports whether an answer is a rate limit: a 429, or a 403
// that says it is one, as GitHub's do (its primary limit carries
// x-ratelimit-remaining: 0, its secondary limit Retry-After). A 403
// without them is a refusal, never retried.
func rateLimited(status int, h http.Header) bool {
	switch status {
	case http.StatusTooManyRequests:
		return true
	case http.StatusForbidden:
		if h.Get("Retry-After") != "" {
			return true
		}
		n, ok := headerCount(h, "X-Ratelimit-Remaining")
		return ok && n == 0
	}
	return false
}

// serverRetry reads Stripe-Should-Retry, the server's own word on whether
// the request may be sent again: false even for a 5xx or 429 (it would
// fail the same way, or repeat work already done), true even for a status
// not retried otherwise (a 409 lock timeout). set is false when the
// header is absent or neither true nor false.
func serverRetry(h http.Header) (retry, set bool) {
	switch v := strings.TrimSpace(h.Get("Stripe-Should-Retry")); {
	case strings.EqualFold(v, "true"):
		return true, true
	case strings.EqualFold(v, "false"):
		return false, true
	}
	return false, false
}

// retryAfter reads Retry-After, delta-seconds (also decimal) or an HTTP-date, as a wait
// from now; ok is false when it is absent or malformed.
func retryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return secs(float64(n)), true
	}
	if decimal(v) {
		// Not RFC 9110's delta-seconds, but what some APIs send (Shopify's
		// "2.0"): dropping it would retry sooner than asked.
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return secs(f), true
		}
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// decimal reports whether s is digits, a point and digits, such as "2.5".
func decimal(s string) bool {
	whole, frac, ok := strings.Cut(s, ".")
	return ok && whole != "" && frac != "" && allDigits(whole) && allDigits(frac)
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// maxEpoch bounds the epoch seconds read from x-ratelimit-reset: later
// values (past the year 5000) are nonsense and only clamped.
const maxEpoch = 1e11

// rateReset reads x-ratelimit-reset, which servers send either as the
// epoch second the window ends (above 1e9; epoch milliseconds above 1e12
// are converted), as the seconds left until it does, or (Jira Cloud) as
// an ISO 8601 time such as 2024-01-01T10:00Z. Anything else is not a
// reset: the caller backs off as without one.
func rateReset(h http.Header) (v float64, epoch, ok bool) {
	s := rateHeader(h, "X-Ratelimit-Reset")
	if s == "" {
		return 0, false, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t, ok := isoTime(s)
		if !ok {
			return 0, false, false
		}
		// A time before 1970 is in the past all the same. (UnixNano
		// would overflow past 2262.)
		return max(float64(t.Unix())+float64(t.Nanosecond())/1e9, 0), true, true
	}
	if !(f >= 0) { // also rejects NaN
		return 0, false, false
	}
	if f > 1e12 {
		f /= 1000 // epoch milliseconds: no seconds epoch is that large
	}
	return f, f > 1e9, true
}

// isoTime reads an ISO 8601 date-time with a zone (Z or an offset):
// Jira's own yyyy-MM-ddTHH:mmZ without seconds, and with seconds,
// fractions and offsets written with or without a colon. One without a
// zone names no instant and is not read. A time to the minute is read as
// the minute's end: Jira's reset is the request's time plus Retry-After,
// cut to the minute, so only then has it surely passed.
func isoTime(s string) (time.Time, bool) {
	if len(s) < len("2006-01-02T15:04Z") || s[4] != '-' {
		return time.Time{}, false
	}
	for _, layout := range [...]string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	for _, layout := range [...]string{"2006-01-02T15:04Z07:00", "2006-01-02T15:04Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Add(time.Minute), true
		}
	}
	return time.Time{}, false
}

// epochTime converts epoch seconds, clamped to maxEpoch.
func epochTime(v float64) time.Time {
	sec, frac := math.Modf(min(v, maxEpoch))
	return time.Unix(int64(sec), int64(frac*1e9))
}

// headerCount reads a non-negative count header such as
// x-ratelimit-limit; a fractional value is rounded up.
func headerCount(h http.Header, key string) (int, bool) {
	s := rateHeader(h, key)
	if s == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(s); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f >= 0) || f > math.MaxInt32 {
		return 0, false
	}
	return int(math.Ceil(f)), true
}

// rateHeader returns h's key, trimmed. An X-Ratelimit-* field that is
// absent is read in its other spelling, X-Rate-Limit-*, which some APIs
// send: their budget and reset count as everyone else's.
func rateHeader(h http.Header, key string) string {
	v := strings.TrimSpace(h.Get(key))
	if rest, ok := strings.CutPrefix(key, "X-Ratelimit-"); ok && v == "" {
		v = strings.TrimSpace(h.Get("X-Rate-Limit-" + rest))
	}
	return v
}

// secs converts seconds to a Duration without overflowing.
func secs(f float64) time.Duration {
	if f > float64(24*time.Hour/time.Second) {
		return 24 * time.Hour
	}
	return time.Duration(f * float64(time.Second))
}

// Permanent is implemented by transport errors that the same request
// would meet again, such as a request missing from a replayed cassette:
// when Permanent returns true the attempt is not retried.
type Permanent interface{ Permanent() bool }

// retryableErr reports whether a failed attempt may be retried: transport
// failures and a body cut short are; TLS verification failures (the
// client's of the server, the server's of the client certificate), redirect
// loops, permanent transport errors and errors raised before anything was
// sent are not.
func retryableErr(err error, gotResponse bool) bool {
	var (
		cve  *tls.CertificateVerificationError
		uae  x509.UnknownAuthorityError
		hne  x509.HostnameError
		cie  x509.CertificateInvalidError
		ue   *url.Error
		redi *redirectError
		perm Permanent
	)
	var idle *errIdle
	switch {
	case errors.As(err, &cve), errors.As(err, &uae), errors.As(err, &hne), errors.As(err, &cie), errors.As(err, &redi):
		return false
	case remoteAlert(err, clientCertAlerts...):
		return false // the server refused the client certificate, or its absence
	case errors.As(err, &perm) && perm.Permanent():
		return false
	case errors.As(err, &idle):
		return true // a download that stalled
	case errors.Is(err, context.Canceled):
		return false
	case errors.As(err, &ue):
		return true
	default:
		// resty returns body read errors bare, with the response set.
		return gotResponse
	}
}

// retryableMethod reports whether method may be re-sent.
func retryableMethod(method string, retryPOST bool) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return true
	case http.MethodPost:
		return retryPOST
	}
	return false
}

// sleepCtx waits for d or until ctx is done, whichever comes first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
