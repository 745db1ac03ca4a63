package fetch

import (
	"context"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// adaptive is the rate control of a host without RateHeaders: it learns the
// rate the host accepts from what the host answers, so a spec need not
// guess a rate_limit (one it gives stays a ceiling, in Pool.waitRate).
//
// It starts unpaced: the host's concurrency is the only limit. A rate
// limit ([rateLimited]: a 429, or GitHub's 403) or a 503 cuts the rate
// multiplicatively (to adaptCut of the rate sent over the last second
// the host was open, once per round: answers to requests sent before the cut tell nothing
// new), and Retry-After on them holds every request to the host until
// then; unpaced, one alone cuts nothing, a second soon after does. A cut
// that counted a handful of requests, with no other cut shortly before, is
// no sure measure of a limit: its rate doubles each second until the next
// rejection. Otherwise, while the rate is what holds requests back, it grows
// additively: quickly back to just under the rate of the last cut, then
// slowly past it (a probe for a limit that rose), and quickly again once
// well past it without a complaint. The host's announced budget —
// x-ratelimit-remaining and -reset, or the IETF RateLimit fields — holds
// requests while it is spent, until its reset; a rate limit that comes
// with its budget spent is that, and cuts nothing, when the host announces
// its budget on other answers too (one that announces it only on its
// rejections has a limit the budget never held requests to). A budget
// that slides (its reset is when one place frees, not the whole budget:
// HCP Terraform's) shows itself by such a rejection, when the budget was
// taken back whole at a reset; from then on the host's own starts are
// kept to its x-ratelimit-limit in the longest reset it announced (unless
// its answers announce more than one limit or resource: GitHub's). A
// spec's rolling window (BudgetHeaders.Window and Limit) is kept the same
// way from the first answer. Further budgets a spec declares
// (HostConfig.OtherBudgets: an organization's beside its user's) are each
// followed on their own, as the first: any spent holds requests.
type adaptive struct {
	now   func() time.Time
	sleep func(context.Context, time.Duration) error

	mu      sync.Mutex
	rate    float64   // requests per second; 0: unpaced
	next    time.Time // pacing: the earliest start of the next request
	until   time.Time // no request starts before (Retry-After, a spent budget)
	cut     time.Time // when the rate was last cut
	peak    float64   // the rate sent when it was last cut
	grown   time.Time // the last additive increase
	limited time.Time // the latest start pacing held a request back to
	starts  [adaptRing]time.Time
	nstarts uint64 // requests started, the sequence number of the next
	// answered: when each of the last requests was answered (zero while
	// it is out, or if it got no answer).
	answered [adaptRing]time.Time

	// The budget of the host's declared (or standard) headers; more: the
	// further budgets a spec declared, each kept on its own.
	budgetTrack
	more []*budgetTrack
	all  []*budgetTrack // the first and more, see tracks
	out  int            // requests started and not yet answered or abandoned

	// slides: a rate limit came with the announced budget spent, so the
	// budget did not come back whole at its reset (a sliding window,
	// whose reset is when one place frees); resetMax is the longest reset
	// announced with the limit, the shortest the window can be. The host's own starts
	// are then kept to its x-ratelimit-limit in any resetMax.
	slides   bool
	resetMax time.Duration
	// limitSeen and resourceSeen: the limit (and x-ratelimit-resource)
	// the last answer announced; mixed, once two answers differed: the
	// host has more than one budget (GitHub's resources), which no one
	// count of its starts can keep.
	limitSeen    int
	resourceSeen string
	mixed        bool

	heldFrom time.Time // when the latest Retry-After hold (until) began
	rejected time.Time // the last rejection (a rate limit, a 503) seen
	passed   time.Time // the last answer that was no rejection
	cuts     int64     // times the rate was cut
	// sure: the last cut measured a limit — it counted adaptSure requests
	// or more, or came soon after another cut. A cut from a handful of
	// requests (two passing rejections early in a run) may be no limit
	// at all: its rate doubles each second until the next rejection.
	sure bool

	// onCut, when set, hears of each cut (under a.mu: it must not call
	// back): the answer's status, the rate sent before it and the new rate.
	onCut func(status int, sentRate, rate float64)
}

// budgetTrack follows one budget the host announces.
type budgetTrack struct {
	// The budget the host announced in its latest answer with one:
	// remaining until budgetEnd, of which budgetUsed are taken by the
	// requests started since and those still out when it came (they may
	// have reached the host after the answer was made: a request can wait
	// for a concurrency slot after its start here).
	budget     int
	budgetUsed int
	budgetEnd  time.Time
	hasBudget  bool
	// frees: when the places a rolling window's budget counted free,
	// ascending, when they were all the run's own requests (ownWindow):
	// each frees a window after its answer at the latest. nil: the
	// budget holds until budgetEnd.
	frees []time.Time
	// budgeted: an answer that was no rejection announced a budget, so
	// the budget holds requests before it is spent; only then does a
	// rejection announcing it spent mean its end rather than a limit.
	budgeted bool

	// names: the headers a spec declared for the budget, read before the
	// standard ones (the first budget's only: strict, a further one's
	// are read alone).
	names  BudgetHeaders
	strict bool
	// rollLimit requests in any rollWindow: a rolling window's budget as
	// the latest answer with one declared it (0: none known).
	rollLimit  int
	rollWindow time.Duration
}

const (
	// adaptCut is the multiplicative decrease.
	adaptCut = 0.8
	// adaptNear is where the quick recovery stops, as a share of the
	// rate of the last cut.
	adaptNear = 0.95
	// adaptFar: past this share of the last cut's rate the probe is quick
	// again (the limit rose, or the cut was a fluke).
	adaptFar = 1.2
	// adaptRecover is how long the quick recovery takes from the cut.
	adaptRecover = 2 * time.Second
	// adaptProbe is the slow growth near the last cut's rate, a share of
	// that rate per second: about 17 s from adaptNear to the rate of the
	// cut, so a steady limit costs one rejection per ~500 requests.
	adaptProbe = 0.003
	// adaptPair: an unpaced host's rejection cuts only this soon after
	// another; one alone is no measure of a rate.
	adaptPair = 2 * time.Second
	// adaptSure is how many requests a cut must count over its span to
	// be a measure of the host's limit; adaptConfirm how soon after
	// another a cut confirms the limit however few it counts.
	adaptSure    = 10
	adaptConfirm = 30 * time.Second
	// adaptMin is the lowest rate a cut leads to.
	adaptMin = 0.2
	// adaptRing holds the start times of the last requests, to measure
	// the rate sent over the last second.
	adaptRing = 1024
	// adaptRollSlack widens a rolling window the host's own starts are
	// counted over: a request reaches the host a little after it starts
	// here, and two that started a window apart may arrive closer.
	adaptRollSlack = 0.05
)

func newAdaptive(now func() time.Time, sleep func(context.Context, time.Duration) error) *adaptive {
	return &adaptive{now: now, sleep: sleep}
}

// declare names the headers of the host's budget and of its further
// ones, unless named already.
func (a *adaptive) declare(b BudgetHeaders, more []BudgetHeaders) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.names.declared() {
		a.names = b
	}
	if len(a.more) == 0 {
		for _, m := range more {
			if m.declared() {
				a.more = append(a.more, &budgetTrack{names: m, strict: true})
			}
		}
	}
}

// wait blocks until a request may start and returns its sequence number,
// for observe.
func (a *adaptive) wait(ctx context.Context) (uint64, error) {
	paced := false
	for {
		a.mu.Lock()
		now := a.now()
		if d := a.closedFor(now); d > 0 {
			a.mu.Unlock()
			if err := a.sleep(ctx, d); err != nil {
				return 0, err
			}
			// A slot taken before the host closed is spent: taking a new
			// one spreads the requests held here over the rate, where
			// each would start the moment the hold ended, a burst that
			// breaks the limit again.
			paced = false
			continue
		}
		var d time.Duration
		if a.rate > 0 && !paced {
			paced = true
			start := later(now, a.next)
			a.next = start.Add(time.Duration(float64(time.Second) / a.rate))
			if d = start.Sub(now); d > 0 {
				a.limited = later(a.limited, start)
			}
		}
		if d <= 0 {
			seq := a.nstarts
			a.starts[seq%adaptRing] = now
			a.answered[seq%adaptRing] = time.Time{}
			a.nstarts++
			a.out++
			for _, t := range a.tracks() {
				if t.hasBudget {
					t.budgetUsed++
				}
			}
			a.mu.Unlock()
			return seq, ctx.Err()
		}
		a.mu.Unlock()
		if err := a.sleep(ctx, d); err != nil {
			return 0, err
		}
		// Look again: a 429 may have closed the host meanwhile.
	}
}

// closedFor is how long no request may start: a Retry-After, or a spent
// budget until its reset. a.mu must be held.
func (a *adaptive) closedFor(now time.Time) time.Duration {
	d := a.until.Sub(now)
	for _, t := range a.tracks() {
		d = max(d, t.closedFor(a, now))
	}
	return max(d, 0)
}

// tracks are the budgets followed: the first, then the further ones.
// a.mu must be held.
func (a *adaptive) tracks() []*budgetTrack {
	// Made once, not with every request that waits or is answered.
	if len(a.all) != 1+len(a.more) {
		a.all = append([]*budgetTrack{&a.budgetTrack}, a.more...)
	}
	return a.all
}

// closedFor is how long the budget holds every request: its rolling
// window's, or its spent count's until its reset. a.mu must be held.
func (t *budgetTrack) closedFor(a *adaptive, now time.Time) time.Duration {
	var d time.Duration
	if n := t.rollLimit; n > 0 && n <= adaptRing && a.nstarts >= uint64(n) {
		// A rolling window holds the requests of its length: the n-th
		// latest start must have left it before another may start.
		span := t.rollWindow + time.Duration(adaptRollSlack*float64(t.rollWindow))
		d = max(d, a.starts[(a.nstarts-uint64(n))%adaptRing].Add(span).Sub(now))
	}
	if t.hasBudget {
		if !now.Before(t.budgetEnd) {
			t.hasBudget, t.frees = false, nil // the window reset: the next answer tells
		} else if t.budgetUsed >= t.budget+t.freed(now) {
			end := t.budgetEnd
			if i := t.budgetUsed - t.budget; i >= 0 && i < len(t.frees) {
				end = t.frees[i] // the place the next request needs
			}
			d = max(d, end.Sub(now))
		}
	}
	return d
}

// observe learns from the answer to request seq, sent at sent and answered
// at recv; again, when set, is when the request's last attempt was refused
// too (a 503 or a rate limit).
func (a *adaptive) observe(h http.Header, status int, seq uint64, sent, recv time.Time, again time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.out--
	if a.nstarts-seq <= adaptRing {
		defer func() { a.answered[seq%adaptRing] = recv }()
	}
	spent := false // the answer says one of its host's budgets is spent
	for i, t := range a.tracks() {
		remaining, reset, ok := t.observe(a, h, status, seq, sent, recv)
		if !ok {
			continue
		}
		// A host that says its budget is spent only when it rejects
		// (remaining 0 until a second frees a slot) has a limit the budget
		// never holds requests to: its rejections cut as any other.
		spentHere := remaining == 0 && reset.After(recv) && t.budgeted
		t.budgeted = t.budgeted || status != http.StatusServiceUnavailable && !rateLimited(status, h)
		spent = spent || spentHere
		if i == 0 {
			if spentHere && rateLimited(status, h) {
				a.slides = true
			}
			a.slide(h, earlier(reset, recv.Add(MaxServerWait)).Sub(recv))
		}
	}
	if status != http.StatusServiceUnavailable && !rateLimited(status, h) {
		a.passed = later(a.passed, recv)
		a.grow(sent, recv)
		return
	}
	if d, ok := retryAfter(h, recv); ok {
		if until := recv.Add(min(d, MaxServerWait)); until.After(a.until) {
			if a.until.Before(recv) {
				a.heldFrom = recv
			}
			a.until = until
		}
	}
	if sent.Before(a.cut) {
		return // sent at the rate already cut
	}
	if !again.IsZero() && (status == http.StatusServiceUnavailable || a.passed.After(again)) {
		// One request refused over and over is that request's: a 503,
		// one broken endpoint, not the host's load; a rate limit while
		// other requests get through, a limit on one resource. Cut for
		// each retry, it slowed every other request to the host (a 105 s
		// run where a 502 took 2 s; 34 s where one search's two 429s took
		// 2 s). A rate limit with none through since the request's last
		// (one request at a time, a host refusing all) may be the host's,
		// and counts as any refusal: excused, a window limit at
		// concurrency 1 was never cut, its requests refused until their
		// retries ran out.
		return
	}
	if spent && rateLimited(status, h) {
		// The announced budget explains the rejection, and holds
		// requests until its reset; the rate sent before it (a handful
		// early in a run) says nothing of the limit.
		return
	}
	if a.rate == 0 && recv.Sub(a.rejected) > adaptPair {
		// Unpaced, a rejection alone is no rate: a host's passing 503,
		// or one 429 early in a run, when the rate sent over the last
		// second is the handful of requests started so far (cut to it,
		// the run would crawl there). Its Retry-After still holds the
		// host, and its request is retried; a second one soon after
		// cuts.
		a.rejected = recv
		return
	}
	a.rejected = recv
	sentRate, counted := a.openRate(recv, max(recv.Sub(sent), time.Second))
	a.sure = counted >= adaptSure || a.cuts > 0 && recv.Sub(a.cut) < adaptConfirm
	if a.rate > 0 {
		sentRate = min(sentRate, a.rate)
	}
	a.peak = max(sentRate, adaptMin)
	a.rate = max(adaptCut*sentRate, adaptMin)
	a.cut, a.grown = recv, recv
	a.next = recv
	a.cuts++
	if a.onCut != nil {
		a.onCut(status, sentRate, a.rate)
	}
}

// observe reads the budget from the answer to request seq: the remaining
// count and its reset as announced, ok when it carries them. a.mu must be
// held.
func (t *budgetTrack) observe(a *adaptive, h http.Header, status int, seq uint64, sent, recv time.Time) (remaining int, reset time.Time, ok bool) {
	if n, w, ok := t.names.limit(h); ok {
		t.rollLimit, t.rollWindow = n, w
	}
	if t.strict && strings.TrimSpace(h.Get(t.names.Remaining)) == "" {
		// A further budget's names are read alone: the standard
		// headers are the first budget's.
		return 0, time.Time{}, false
	}
	remaining, reset, ok = t.names.budget(h, recv)
	if !ok {
		return 0, time.Time{}, false
	}
	var frees []time.Time
	if n, w, ok := t.names.limit(h); ok {
		frees = a.ownWindow(n-remaining, w, seq, sent, recv)
	}
	end := earlier(reset, recv.Add(MaxServerWait))
	// Answers overtake each other: within a window, one that leaves
	// more than known is older news.
	// (A reset in seconds moves with the answer's arrival: only one
	// more than a second later is a new window.)
	if !t.hasBudget || end.After(t.budgetEnd.Add(time.Second)) || remaining-a.out < t.budget+t.freed(recv)-t.budgetUsed {
		t.budget, t.budgetUsed, t.budgetEnd, t.hasBudget = remaining, a.out, end, true
		// A rolling window holding only the run's own requests frees
		// as they leave it: held until the answer is a window old, a
		// run paced at the limit stalled a window long in each.
		t.frees = frees
	}
	return remaining, reset, true
}

// ownWindow tells when the places of a rolling window of length w free,
// when the requests it holds (counted, by the answer to request seq, sent
// at sent and received at recv) can all be the run's own: seq itself and
// the requests answered before seq was sent that may have reached the
// host within the window (started in it, or answered in it) are as many.
// Each leaves the window a window after its answer at the latest. nil
// when the count holds more: another client's requests, which leave at a
// time nothing here tells (or the run's own, answered late: the budget
// then holds until budgetEnd, as without a limit). A request still out
// when the answer came is taken from the budget already (budgetUsed), so
// if the count holds it in place of a boundary one listed here, its
// place is still kept. a.mu must be held.
func (a *adaptive) ownWindow(counted int, w time.Duration, seq uint64, sent, recv time.Time) []time.Time {
	if counted <= 0 || counted > adaptRing {
		return nil
	}
	from := recv.Add(-w)
	frees := []time.Time{recv.Add(w)}
	for i := uint64(0); i < min(a.nstarts, adaptRing); i++ {
		j := a.nstarts - 1 - i
		st, at := a.starts[j%adaptRing], a.answered[j%adaptRing]
		if !st.After(from.Add(-w)) {
			break // older ones left out make the list short, never wrong
		}
		if j == seq || at.IsZero() || at.After(sent) || !st.After(from) && !at.After(from) {
			continue
		}
		frees = append(frees, at.Add(w))
	}
	if len(frees) < counted {
		return nil
	}
	slices.SortFunc(frees, func(x, y time.Time) int { return x.Compare(y) })
	// More than the answer counted: the latest are kept.
	return frees[len(frees)-counted:]
}

// freed is how many of the budget's places have freed by now. a.mu must
// be held.
func (t *budgetTrack) freed(now time.Time) int {
	n, _ := slices.BinarySearchFunc(t.frees, now, func(f, t time.Time) int {
		if f.After(t) {
			return 1
		}
		return -1
	})
	return n
}

// grow raises the rate additively while the rate is what holds requests
// back (an idle host's rate stays where its answers left it): the request
// answered at now, sent at sent, was held back or followed one that was.
// It is judged by when it was sent, not answered, so a slow host's paced
// requests count as held back however long their answers take.
func (a *adaptive) grow(sent, now time.Time) {
	if a.rate == 0 || sent.Sub(a.limited) > time.Second {
		a.grown = now
		return
	}
	dt := now.Sub(a.grown).Seconds()
	if dt <= 0 {
		return
	}
	a.grown = now
	if !a.sure {
		a.rate *= math.Exp2(dt)
		return
	}
	var perSecond float64
	switch {
	case a.rate < adaptNear*a.peak:
		perSecond = (adaptNear - adaptCut) * a.peak / adaptRecover.Seconds()
	case a.rate < adaptFar*a.peak:
		perSecond = adaptProbe * a.peak
	default:
		perSecond = (adaptNear - adaptCut) * a.rate / adaptRecover.Seconds()
	}
	a.rate += perSecond * dt
}

// abandon ends a started request that got no answer (it failed before or
// on the network).
func (a *adaptive) abandon() {
	a.mu.Lock()
	a.out--
	a.mu.Unlock()
}

// sentRate is the rate of the requests started in the span before now (a
// second, or a slow request's round trip), and how many it counted.
// openRate is the rate sent over the span before now that the host was
// open: a Retry-After hold within it sent nothing, and counted as time it
// made a rejection right after the hold read as a host that takes a
// handful of requests a second. a.mu must be held.
func (a *adaptive) openRate(now time.Time, span time.Duration) (float64, int) {
	held := earlier(now, a.until).Sub(later(now.Add(-span), a.heldFrom))
	if held <= 0 || a.heldFrom.IsZero() {
		return a.sentRate(now, span)
	}
	r, n := a.sentRate(now, span+held)
	return r * (span + held).Seconds() / span.Seconds(), n
}

func (a *adaptive) sentRate(now time.Time, span time.Duration) (float64, int) {
	n := 0
	for i := uint64(0); i < min(a.nstarts, adaptRing); i++ {
		t := a.starts[(a.nstarts-1-i)%adaptRing]
		if now.Sub(t) > span {
			break
		}
		n++
	}
	return float64(n) / span.Seconds(), n
}

// state is the current rate (0: unpaced) and the number of cuts so far.
func (a *adaptive) state() (rate float64, cuts int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rate, a.cuts
}

// announcedBudget reads the requests left and the time they are good
// until, from x-ratelimit-remaining and x-ratelimit-reset (seconds, or an
// epoch as [rateReset] reads it) or the IETF RateLimit fields: the
// separate RateLimit-Remaining and RateLimit-Reset of the early drafts,
// `RateLimit: limit=100, remaining=50, reset=30`, or the later
// `RateLimit: "default";r=50;t=30` (the smallest remaining of its items);
// their reset too may be an epoch (see [resetAt]).
func announcedBudget(h http.Header, recv time.Time) (remaining int, reset time.Time, ok bool) {
	if r, okR := headerCount(h, "X-Ratelimit-Remaining"); okR {
		if v, epoch, okT := rateReset(h); okT {
			if epoch {
				return r, epochTime(v), true
			}
			return r, recv.Add(secs(v)), true
		}
	}
	if r, okR := headerCount(h, "Ratelimit-Remaining"); okR {
		if t, okT := headerCount(h, "Ratelimit-Reset"); okT {
			return r, resetAt(float64(t), recv), true
		}
	}
	v := h.Get("Ratelimit")
	if v == "" {
		return 0, time.Time{}, false
	}
	found := false
	for _, item := range strings.Split(v, ",") {
		r, t, okItem := ratelimitItem(item)
		if okItem && (!found || r < remaining) {
			remaining, reset, found = r, resetAt(float64(t), recv), true
		}
	}
	if found {
		return remaining, reset, true
	}
	// The dictionary form spreads one policy over the members.
	params := map[string]string{}
	for _, m := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(m), "=")
		params[strings.ToLower(k)] = strings.TrimSpace(val)
	}
	r, errR := strconv.Atoi(params["remaining"])
	t, errT := strconv.Atoi(params["reset"])
	if errR != nil || errT != nil || r < 0 || t < 0 {
		return 0, time.Time{}, false
	}
	return r, resetAt(float64(t), recv), true
}

// slide keeps the host's own starts to its announced limit in the
// longest reset seen, once its budget is known to slide, and stops when
// answers announce more than one budget. reset is the answer's, from its
// arrival: only an answer announcing the limit measures the window (one
// without is maybe another budget's, a daily quota's). A declared
// rolling window counts starts by its own headers instead. a.mu must be
// held.
func (a *adaptive) slide(h http.Header, reset time.Duration) {
	l, ok := announcedLimit(h)
	if !ok || a.names.Window != "" {
		return
	}
	res := strings.TrimSpace(h.Get("X-Ratelimit-Resource"))
	if a.limitSeen != 0 && (l != a.limitSeen || res != a.resourceSeen) {
		a.mixed = true
	}
	a.limitSeen, a.resourceSeen = l, res
	a.resetMax = max(a.resetMax, reset)
	switch {
	case a.mixed:
		a.rollLimit = 0
	case a.slides:
		a.rollLimit, a.rollWindow = l, a.resetMax
	}
}

// announcedLimit reads the requests a window allows: x-ratelimit-limit
// (or X-Rate-Limit-Limit), else RateLimit-Limit.
func announcedLimit(h http.Header) (int, bool) {
	if n, ok := headerCount(h, "X-Ratelimit-Limit"); ok && n > 0 {
		return n, true
	}
	n, ok := headerCount(h, "Ratelimit-Limit")
	return n, ok && n > 0
}

// resetAt reads an IETF reset, seconds from recv by the drafts, as
// [rateReset] reads x-ratelimit-reset: some servers send an epoch there
// too, which read as seconds would lie decades ahead.
func resetAt(v float64, recv time.Time) time.Time {
	if v > 1e12 {
		v /= 1000
	}
	if v > 1e9 {
		return epochTime(v)
	}
	return recv.Add(secs(v))
}

// ratelimitItem reads one `"policy";r=50;t=30` item.
func ratelimitItem(item string) (remaining, reset int, ok bool) {
	parts := strings.Split(strings.TrimSpace(item), ";")
	okR, okT := false, false
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			continue
		}
		switch strings.ToLower(k) {
		case "r":
			remaining, okR = n, true
		case "t":
			reset, okT = n, true
		}
	}
	return remaining, reset, okR && okT
}
