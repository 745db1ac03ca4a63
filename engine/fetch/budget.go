package fetch

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// BudgetHeaders names the headers in which an API announces its request
// budget under names of its own, such as HubSpot's
// X-HubSpot-RateLimit-Remaining, -Max and -Interval-Milliseconds: they are
// read before the standard ones (x-ratelimit-*, the IETF RateLimit
// fields), which still count on an answer without them. The zero value
// declares none.
type BudgetHeaders struct {
	// Remaining holds the requests left in the window.
	Remaining string
	// Reset holds when the window ends, read as x-ratelimit-reset is:
	// seconds from the answer (milliseconds with Millis), an epoch in
	// seconds or milliseconds, or an ISO 8601 time.
	Reset string
	// Window holds the length of a rolling window instead (an API with no
	// reset: each request counts until it is that old). What an answer
	// counts has left the window by then, so its remaining holds until
	// the answer is that old.
	Window string
	// Limit, with Window, holds the requests allowed in any window: the
	// host's own requests are then kept to it, counted as they start; and
	// when what an answer counts can all be the run's own requests, each
	// frees its place a window after its own answer (see ownWindow).
	Limit string
	// Millis reads Window, and a Reset that is a delay, in milliseconds.
	Millis bool
}

func (b BudgetHeaders) declared() bool { return b != BudgetHeaders{} }

func (b BudgetHeaders) validate() error {
	switch {
	case !b.declared():
		return nil
	case b.Remaining == "":
		return errors.New("rate limit headers: needs the remaining header")
	case b.Reset != "" && b.Window != "":
		return errors.New("rate limit headers: give a reset or a window header, not both")
	case b.Reset == "" && b.Window == "":
		return errors.New("rate limit headers: needs a reset or a window header")
	case b.Limit != "" && b.Window == "":
		return errors.New("rate limit headers: the limit is read with a window header (a rolling window's limit)")
	}
	return nil
}

// unit is a delay's unit.
func (b BudgetHeaders) unit() time.Duration {
	if b.Millis {
		return time.Millisecond
	}
	return time.Second
}

// budget reads the declared budget of an answer received at recv: the
// requests left and the time they are good until; ok is false when the
// answer does not carry it whole. Without declared headers, or on an
// answer without them, it reads the standard ones ([announcedBudget]).
func (b BudgetHeaders) budget(h http.Header, recv time.Time) (remaining int, reset time.Time, ok bool) {
	if !b.declared() || strings.TrimSpace(h.Get(b.Remaining)) == "" {
		return announcedBudget(h, recv)
	}
	r, okR := headerCount(h, b.Remaining)
	if !okR {
		return 0, time.Time{}, false
	}
	if b.Window != "" {
		w, okW := b.window(h)
		return r, recv.Add(w), okW
	}
	s := strings.TrimSpace(h.Get(b.Reset))
	if f, err := strconv.ParseFloat(s, 64); err == nil && b.Millis && f >= 0 && f <= 1e9 {
		// A delay in milliseconds (up to 11 days); above, an epoch in
		// seconds or milliseconds, as waitValue reads it.
		return r, recv.Add(secs(f / 1000)), true
	}
	d, okT := waitValue(s, recv)
	return r, recv.Add(d), okT
}

// window reads the declared rolling window's length, at most
// MaxServerWait, as a reset is honoured: a window read far too long (a
// unit mistaken, an epoch) would hold every limit-th request for it.
func (b BudgetHeaders) window(h http.Header) (time.Duration, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(h.Get(b.Window)), 64)
	if err != nil || !(f > 0) {
		return 0, false
	}
	return min(secs(f*b.unit().Seconds()), MaxServerWait), true
}

// limit reads the declared rolling window's limit and length.
func (b BudgetHeaders) limit(h http.Header) (n int, window time.Duration, ok bool) {
	if b.Limit == "" || b.Window == "" {
		return 0, 0, false
	}
	n, okL := headerCount(h, b.Limit)
	w, okW := b.window(h)
	return n, w, okL && okW && n > 0
}
