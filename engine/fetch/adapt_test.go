package fetch

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hiddenLimit answers like an API with an unannounced limit: more than
// limit requests within any window (sliding) get 429, with Retry-After in
// whole seconds until the oldest counted request leaves the window when
// retryAfter is set. Each answer takes latency on the fake clock.
type hiddenLimit struct {
	clk        *fakeClock
	limit      int
	window     time.Duration
	latency    time.Duration
	retryAfter bool
	status     int // the rejection's status; 429 when 0
	// spent: a rejection says X-RateLimit-Remaining 0 until the oldest
	// counted request leaves the window (X-RateLimit-Reset, seconds); an
	// accepted answer announces nothing.
	spent bool

	mu       sync.Mutex
	accepted []time.Time
	ok, rej  int
}

func (s *hiddenLimit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.clk.Advance(s.latency)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clk.Now()
	for len(s.accepted) > 0 && now.Sub(s.accepted[0]) >= s.window {
		s.accepted = s.accepted[1:]
	}
	if len(s.accepted) >= s.limit {
		s.rej++
		if s.retryAfter {
			wait := s.accepted[0].Add(s.window).Sub(now)
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
		}
		if s.spent {
			wait := s.accepted[0].Add(s.window).Sub(now)
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
		}
		w.WriteHeader(cmpOr(s.status, http.StatusTooManyRequests))
		return
	}
	s.accepted = append(s.accepted, now)
	s.ok++
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// TestAdaptiveHiddenLimit: with no rate_limit, a host with a hidden limit
// is found and followed. Requests are sent one after another on a fake
// clock (the answer's latency alone would allow more than the limit), so
// the outcome is exact: the run takes at most 1.2 × requests ÷ limit and at
// most 3 % of the requests sent are rejected.
func TestAdaptiveHiddenLimit(t *testing.T) {
	for _, tc := range []struct {
		limit      int
		latency    time.Duration
		retryAfter bool
		status     int
		spent      bool
	}{
		{limit: 30, latency: 20 * time.Millisecond, retryAfter: true},
		{limit: 100, latency: 5 * time.Millisecond, retryAfter: true},
		{limit: 30, latency: 10 * time.Millisecond},                                // a bare 429, as Humanitec and Harness send it
		{limit: 30, latency: 10 * time.Millisecond, status: 503, retryAfter: true}, // overloaded rather than limited
		// Its rejections alone say the budget is spent until the window
		// frees a slot: the budget never held a request before them, so
		// they are a limit to learn, not a budget's end.
		{limit: 30, latency: 20 * time.Millisecond, retryAfter: true, spent: true},
		{limit: 30, latency: 10 * time.Millisecond, spent: true},
		// A limit lower than adaptSure: its first cut counts too few
		// requests to be sure, and the second confirms it.
		{limit: 4, latency: 20 * time.Millisecond, retryAfter: true},
		{limit: 4, latency: 20 * time.Millisecond},
	} {
		t.Run(fmt.Sprintf("limit=%d/retry-after=%v/status=%d/spent=%v", tc.limit, tc.retryAfter, cmpOr(tc.status, 429), tc.spent), func(t *testing.T) {
			clk := newFakeClock()
			s := &hiddenLimit{clk: clk, limit: tc.limit, window: time.Second, latency: tc.latency, retryAfter: tc.retryAfter, status: tc.status, spent: tc.spent}
			srv := newServer(t, s.ServeHTTP)
			p := testPool(clk, 0.5, nil)
			c := mustClient(t, p, HostConfig{BaseURL: srv.URL, Retry: Retry{Attempts: 10}})
			const n = 3000
			start := clk.Now()
			for i := range n {
				if _, err := c.Do(t.Context(), &Request{URL: "/x"}); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
			}
			took := clk.Now().Sub(start)
			bound := time.Duration(n) * time.Second / time.Duration(tc.limit)
			ratio := float64(took) / float64(bound)
			rejected := float64(s.rej) / float64(s.ok+s.rej)
			t.Logf("%d requests: %v, %.3f × the bound %v; %d rejected (%.2f %%); rate now %.1f/s",
				s.ok+s.rej, took.Round(time.Millisecond), ratio, bound, s.rej, 100*rejected, p.Stats().Hosts[origin(c.base)].AdaptiveRate)
			if ratio > 1.2 {
				t.Errorf("took %.3f × requests ÷ limit, want at most 1.2", ratio)
			}
			if rejected > 0.03 {
				t.Errorf("%.2f %% of requests rejected, want at most 3 %%", 100*rejected)
			}
		})
	}
}

// TestAdaptiveCutOncePerRound: the rejections of requests sent before a
// cut do not cut again; one sent after it does, from the rate then in use.
func TestAdaptiveCutOncePerRound(t *testing.T) {
	clk := newFakeClock()
	a := newAdaptive(clk.Now, clk.Sleep)
	ctx := context.Background()
	var seqs []uint64
	var sent []time.Time
	for range 40 { // 40 at once: unpaced
		seq, err := a.wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seqs, sent = append(seqs, seq), append(sent, clk.Now())
	}
	if len(clk.Sleeps()) != 0 {
		t.Fatalf("waits before any answer: %v", clk.Sleeps())
	}
	clk.Advance(100 * time.Millisecond)
	for i := range seqs[:8] {
		a.observe(http.Header{}, http.StatusTooManyRequests, seqs[i], sent[i], clk.Now(), time.Time{})
	}
	rate, cuts := a.state()
	if cuts != 1 || rate != 32 {
		t.Fatalf("after 8 rejections of one round: rate %v, %d cuts; want 0.8 × 40 = 32, 1 cut", rate, cuts)
	}
	// Paced now: 1/32 s apart.
	seq, _ := a.wait(ctx)
	s1 := clk.Now()
	if _, err := a.wait(ctx); err != nil {
		t.Fatal(err)
	}
	if got := clk.Now().Sub(s1); got != time.Second/32 {
		t.Errorf("second request after the cut waited %v, want %v", got, time.Second/32)
	}
	a.observe(http.Header{}, http.StatusTooManyRequests, seq, s1, clk.Now(), time.Time{})
	if rate, cuts = a.state(); cuts != 2 || math.Abs(rate-0.8*32) > 1e-9 {
		t.Errorf("a rejection sent after the cut: rate %v, %d cuts; want 25.6, 2 cuts", rate, cuts)
	}
}

// TestAdaptiveRetryAfterHoldsHost: Retry-After on a 429 holds every request
// to the host until then, not only the one retried.
func TestAdaptiveRetryAfterHoldsHost(t *testing.T) {
	clk := newFakeClock()
	a := newAdaptive(clk.Now, clk.Sleep)
	ctx := context.Background()
	seq, _ := a.wait(ctx)
	a.observe(http.Header{"Retry-After": {"7"}}, http.StatusTooManyRequests, seq, clk.Now(), clk.Now(), time.Time{})
	before := clk.Now()
	if _, err := a.wait(ctx); err != nil {
		t.Fatal(err)
	}
	if got := clk.Now().Sub(before); got != 7*time.Second {
		t.Errorf("next request waited %v, want Retry-After's 7s", got)
	}
}

// TestAdaptiveRateLimit403HoldsHost: GitHub's secondary rate limit is a
// 403 with Retry-After; like a 429's, it holds every request to the host.
func TestAdaptiveRateLimit403HoldsHost(t *testing.T) {
	clk := newFakeClock()
	a := newAdaptive(clk.Now, clk.Sleep)
	ctx := context.Background()
	strike(a, clk) // a rejection alone cuts nothing (TestAdaptiveLoneRejection)
	seq, _ := a.wait(ctx)
	a.observe(http.Header{"Retry-After": {"60"}}, http.StatusForbidden, seq, clk.Now(), clk.Now(), time.Time{})
	before := clk.Now()
	if _, err := a.wait(ctx); err != nil {
		t.Fatal(err)
	}
	if got := clk.Now().Sub(before); got != time.Minute {
		t.Errorf("next request waited %v, want Retry-After's 1m", got)
	}
	if _, cuts := a.state(); cuts != 1 {
		t.Errorf("cuts = %d, want 1", cuts)
	}
}

// TestAdaptiveGrowth: the rate grows back while it holds requests back,
// quickly to near the rate of the cut, then slowly; an idle host's rate
// stays.
func TestAdaptiveGrowth(t *testing.T) {
	clk := newFakeClock()
	a := newAdaptive(clk.Now, clk.Sleep)
	ctx := context.Background()
	strike(a, clk)
	for range 49 {
		a.wait(ctx)
	}
	seq, _ := a.wait(ctx)
	a.observe(http.Header{}, http.StatusTooManyRequests, seq, clk.Now(), clk.Now(), time.Time{})
	r0, _ := a.state()
	if math.Abs(r0-0.8*51) > 1e-9 {
		t.Fatalf("rate after the cut = %v, want %v", r0, 0.8*51)
	}
	// Idle: a success a second later, nothing was held back.
	clk.Advance(3 * time.Second)
	a.observe(http.Header{}, http.StatusOK, seq, clk.Now(), clk.Now(), time.Time{})
	if r, _ := a.state(); r != r0 {
		t.Errorf("idle host: rate %v, want it unchanged at %v", r, r0)
	}
	// Busy: every request is paced; answers come back at once.
	answer := func(d time.Duration) float64 {
		end := clk.Now().Add(d)
		for clk.Now().Before(end) {
			seq, _ := a.wait(ctx)
			a.observe(http.Header{}, http.StatusOK, seq, clk.Now(), clk.Now(), time.Time{})
		}
		r, _ := a.state()
		return r
	}
	peak := 51.0
	if r := answer(2*time.Second + 100*time.Millisecond); r < adaptNear*peak || r > adaptNear*peak*1.01 {
		t.Errorf("2 s after the cut: rate %.2f, want just past %.2f (the quick recovery)", r, adaptNear*peak)
	}
	r1, _ := a.state()
	if r := answer(5 * time.Second); r-r1 > 6*adaptProbe*peak || r <= r1 {
		t.Errorf("5 s later: rate %.2f from %.2f, want the slow probe (%.3f a second)", r, r1, adaptProbe*peak)
	}
}

// TestAdaptiveBudget: a spent budget (remaining 0) holds requests until
// the reset; requests started after the answer count against what
// remained.
func TestAdaptiveBudget(t *testing.T) {
	clk := newFakeClock()
	a := newAdaptive(clk.Now, clk.Sleep)
	ctx := context.Background()
	seq, _ := a.wait(ctx)
	a.observe(http.Header{"Ratelimit": {`"default";r=2;t=5`}}, http.StatusOK, seq, clk.Now(), clk.Now(), time.Time{})
	for range 2 {
		a.wait(ctx)
	}
	if len(clk.Sleeps()) != 0 {
		t.Fatalf("the two remaining requests waited: %v", clk.Sleeps())
	}
	a.wait(ctx)
	if got := clk.Sleeps(); len(got) != 1 || got[0] != 5*time.Second {
		t.Errorf("the third waited %v, want the reset (5s)", got)
	}
}

// TestAdaptiveBudgetInFlight: requests out when an answer comes may not be
// in its count (they can reach the host later), and an answer that
// overtook a newer one must not give the budget back.
func TestAdaptiveBudgetInFlight(t *testing.T) {
	clk := newFakeClock()
	a := newAdaptive(clk.Now, clk.Sleep)
	ctx := context.Background()
	var seqs []uint64
	for range 4 {
		seq, _ := a.wait(ctx)
		seqs = append(seqs, seq)
	}
	now := clk.Now()
	// The answer to the last says 3 left; the other three are still out.
	a.observe(http.Header{"Ratelimit": {`"q";r=3;t=5`}}, http.StatusOK, seqs[3], now, now, time.Time{})
	// The first's answer, made earlier, arrives late: 6 left.
	a.observe(http.Header{"Ratelimit": {`"q";r=6;t=5`}}, http.StatusOK, seqs[0], now, now, time.Time{})
	a.wait(ctx) // 3 left, 3 taken by the requests out: none for this one
	if got := clk.Sleeps(); len(got) != 1 || got[0] != 5*time.Second {
		t.Errorf("a request with the budget taken by those out waited %v, want the reset (5s)", got)
	}
}

func TestAnnouncedBudget(t *testing.T) {
	recv := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		h         http.Header
		remaining int
		reset     time.Duration
		ok        bool
	}{
		{"x-ratelimit seconds", http.Header{"X-Ratelimit-Remaining": {"12"}, "X-Ratelimit-Reset": {"30"}}, 12, 30 * time.Second, true},
		{"x-ratelimit epoch", http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {strconv.FormatInt(recv.Unix()+90, 10)}}, 0, 90 * time.Second, true},
		{"x-ratelimit without reset", http.Header{"X-Ratelimit-Remaining": {"3"}}, 0, 0, false},
		{"draft separate fields", http.Header{"Ratelimit-Remaining": {"7"}, "Ratelimit-Reset": {"4"}}, 7, 4 * time.Second, true},
		{"draft dictionary", http.Header{"Ratelimit": {"limit=100, remaining=50, reset=30"}}, 50, 30 * time.Second, true},
		{"structured items", http.Header{"Ratelimit": {`"burst";r=9;t=1, "day";r=4;t=600`}}, 4, 600 * time.Second, true},
		// Servers that send the reset as an epoch in the IETF fields: read
		// as seconds it held a spent budget for MaxServerWait, not 20 s.
		{"draft separate fields, epoch reset", http.Header{"Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {strconv.FormatInt(recv.Unix()+20, 10)}}, 0, 20 * time.Second, true},
		{"draft dictionary, epoch reset", http.Header{"Ratelimit": {"limit=100, remaining=0, reset=" + strconv.FormatInt(recv.Unix()+20, 10)}}, 0, 20 * time.Second, true},
		{"structured, epoch reset", http.Header{"Ratelimit": {`"day";r=0;t=` + strconv.FormatInt(recv.Unix()+20, 10)}}, 0, 20 * time.Second, true},
		{"x-ratelimit ISO 8601 (Jira)", http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"2026-03-04T05:08Z"}}, 0, 173 * time.Second, true},
		// Okta's and X's spelling, with a hyphen between Rate and Limit.
		{"x-rate-limit epoch (Okta)", http.Header{"X-Rate-Limit-Remaining": {"0"}, "X-Rate-Limit-Reset": {strconv.FormatInt(recv.Unix()+45, 10)}}, 0, 45 * time.Second, true},
		{"x-rate-limit without reset", http.Header{"X-Rate-Limit-Remaining": {"3"}}, 0, 0, false},
		{"x-ratelimit wins over x-rate-limit", http.Header{"X-Ratelimit-Remaining": {"5"}, "X-Ratelimit-Reset": {"10"}, "X-Rate-Limit-Remaining": {"0"}, "X-Rate-Limit-Reset": {"99"}}, 5, 10 * time.Second, true},
		{"structured without t", http.Header{"Ratelimit": {`"day";r=4`}}, 0, 0, false},
		{"none", http.Header{}, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, reset, ok := announcedBudget(tc.h, recv)
			if ok != tc.ok || ok && (r != tc.remaining || reset.Sub(recv) != tc.reset) {
				t.Errorf("= %d, %v, %v; want %d, %v, %v", r, reset.Sub(recv), ok, tc.remaining, tc.reset, tc.ok)
			}
		})
	}
}

// TestAdaptiveGrowthSlowHost: a host answering in 2 s, asked one request
// after another (a chain of pages), is cut by a 503; its pacing then holds
// each request back, so the rate must grow back as on a fast host. Each
// request's answer comes more than a second after the pacing last held one
// back, which must not pass for an idle host.
func TestAdaptiveGrowthSlowHost(t *testing.T) {
	clk := newFakeClock()
	a := newAdaptive(clk.Now, clk.Sleep)
	ctx := context.Background()
	const latency = 2 * time.Second
	var r0 float64
	var cuts int64
	for range 2 { // the first 503 alone cuts nothing
		seq, _ := a.wait(ctx)
		sent := clk.Now()
		clk.Advance(latency)
		a.observe(http.Header{}, http.StatusServiceUnavailable, seq, sent, clk.Now(), time.Time{})
		r0, cuts = a.state()
	}
	if cuts != 1 || math.Abs(r0-0.8*0.5) > 1e-9 {
		t.Fatalf("after the 503: rate %v, %d cuts; want 0.8 × 0.5 = 0.4, 1 cut", r0, cuts)
	}
	for end := clk.Now().Add(30 * time.Second); clk.Now().Before(end); {
		seq, _ := a.wait(ctx)
		sent := clk.Now()
		clk.Advance(latency)
		a.observe(http.Header{}, http.StatusOK, seq, sent, clk.Now(), time.Time{})
	}
	if r, _ := a.state(); r < adaptNear*0.5 {
		t.Errorf("30 s of paced requests after the cut: rate %.3f, want back to at least %.3f", r, adaptNear*0.5)
	}
}

// TestAdaptiveSpentBudgetNoCut: a rejection that announces its own spent
// budget (remaining 0 until a reset), from a host that announces its
// budget on its answers, is explained by it: requests wait for the reset,
// and the rate is not cut. Cut, it would be 0.8 of the
// rate sent in the last second, which early in a run is a handful: the
// run would then crawl at it, growing by a fraction of a request a
// second, long after the budget came back.
func TestAdaptiveSpentBudgetNoCut(t *testing.T) {
	clk := newFakeClock()
	a := newAdaptive(clk.Now, clk.Sleep)
	ctx := context.Background()
	seq, _ := a.wait(ctx)
	a.observe(http.Header{"Ratelimit-Remaining": {"40"}, "Ratelimit-Reset": {"1"}}, http.StatusOK, seq, clk.Now(), clk.Now(), time.Time{})
	clk.Advance(time.Second) // the window of that budget reset
	strike(a, clk)           // so that the 429 below is no lone rejection
	seq, _ = a.wait(ctx)
	a.wait(ctx)
	spent := http.Header{"Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"3"}, "Retry-After": {"1"}}
	a.observe(spent, http.StatusTooManyRequests, seq, clk.Now(), clk.Now(), time.Time{})
	if rate, cuts := a.state(); cuts != 0 || rate != 0 {
		t.Errorf("after a 429 of a spent budget: rate %v, %d cuts; want unpaced, no cut", rate, cuts)
	}
	before := clk.Now()
	if _, err := a.wait(ctx); err != nil {
		t.Fatal(err)
	}
	if got := clk.Now().Sub(before); got != 3*time.Second {
		t.Errorf("next request waited %v, want the reset's 3s", got)
	}
	// A rejection while budget remains is a limit the host did not
	// announce: cut.
	strike(a, clk)
	seq, _ = a.wait(ctx)
	a.observe(http.Header{"Ratelimit-Remaining": {"40"}, "Ratelimit-Reset": {"60"}}, http.StatusTooManyRequests, seq, clk.Now(), clk.Now(), time.Time{})
	if _, cuts := a.state(); cuts != 1 {
		t.Errorf("a 429 with budget left: %d cuts, want 1", cuts)
	}
	// A host that announces a budget only on its rejections has a limit
	// that budget never held a request to: cut.
	b := newAdaptive(clk.Now, clk.Sleep)
	strike(b, clk)
	seq, _ = b.wait(ctx)
	b.observe(spent, http.StatusTooManyRequests, seq, clk.Now(), clk.Now(), time.Time{})
	if _, cuts := b.state(); cuts != 1 {
		t.Errorf("a 429 of a spent budget never announced before: %d cuts, want 1", cuts)
	}
}

// strike answers one request to a with a 503 and no Retry-After: a lone
// rejection, which cuts nothing but makes the next one within adaptPair
// cut.
func strike(a *adaptive, clk *fakeClock) {
	seq, _ := a.wait(context.Background())
	a.observe(http.Header{}, http.StatusServiceUnavailable, seq, clk.Now(), clk.Now(), time.Time{})
}

// TestAdaptiveLoneRejection: an unpaced host's rejection alone (a passing
// 503, a 429 after the first few requests of a run) cuts no rate: cut to
// 0.8 of the handful of requests sent in the last second, a run crawled
// there (a 503 on an API's first request: 235 requests took 110 s, not
// 0.2). Its Retry-After still holds the host. A second rejection within
// adaptPair cuts; once paced, every rejection does (the probe found the
// limit).
func TestAdaptiveLoneRejection(t *testing.T) {
	clk := newFakeClock()
	a := newAdaptive(clk.Now, clk.Sleep)
	ctx := context.Background()
	strike(a, clk)
	if rate, cuts := a.state(); rate != 0 || cuts != 0 {
		t.Fatalf("after a lone 503: rate %v, %d cuts; want unpaced", rate, cuts)
	}
	clk.Advance(3 * time.Second)
	seq, _ := a.wait(ctx)
	a.observe(http.Header{"Retry-After": {"5"}}, http.StatusTooManyRequests, seq, clk.Now(), clk.Now(), time.Time{})
	if rate, cuts := a.state(); rate != 0 || cuts != 0 {
		t.Errorf("a 429 3 s after it: rate %v, %d cuts; want unpaced (still alone)", rate, cuts)
	}
	before := clk.Now()
	seq, _ = a.wait(ctx)
	if got := clk.Now().Sub(before); got != 5*time.Second {
		t.Errorf("next request waited %v, want the lone 429's Retry-After (5s)", got)
	}
	clk.Advance(time.Second)
	a.observe(http.Header{}, http.StatusTooManyRequests, seq, clk.Now(), clk.Now(), time.Time{})
	if _, cuts := a.state(); cuts != 0 {
		t.Errorf("a 429 6 s after the last: %d cuts, want 0", cuts)
	}
	seq, _ = a.wait(ctx)
	a.observe(http.Header{}, http.StatusServiceUnavailable, seq, clk.Now(), clk.Now(), time.Time{})
	if rate, cuts := a.state(); cuts != 1 || rate <= 0 {
		t.Errorf("a 503 right after a 429: rate %v, %d cuts; want paced, 1 cut", rate, cuts)
	}
	clk.Advance(10 * time.Second)
	seq, _ = a.wait(ctx)
	a.observe(http.Header{}, http.StatusTooManyRequests, seq, clk.Now(), clk.Now(), time.Time{})
	if _, cuts := a.state(); cuts != 2 {
		t.Errorf("paced, a lone 429: %d cuts, want 2", cuts)
	}
}

// TestAdaptiveCutLogged: a cut is logged at debug with the rates, which is
// how a user (or a benchmark) learns why a run slowed down.
func TestAdaptiveCutLogged(t *testing.T) {
	var n atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		// The first attempts of two requests: a pair of rejections.
		if k := n.Add(1); k == 1 || k == 3 {
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	var logs syncBuffer
	clk := newFakeClock()
	c := mustClient(t, testPool(clk, 0, textLogger(&logs)), HostConfig{BaseURL: srv.URL, Retry: Retry{Attempts: 3}})
	for _, u := range []string{"/x", "/y"} {
		if _, err := c.Do(t.Context(), &Request{URL: u}); err != nil {
			t.Fatalf("Do: %v", err)
		}
	}
	line := firstLineWith(logs.String(), "http rate cut")
	if line == "" || !strings.Contains(line, "status=429") || !strings.Contains(line, "per_second=") || !strings.Contains(line, "host="+srv.URL) {
		t.Errorf("no debug line for the cut (host, status, rates):\n%s", logs.String())
	}
}

func firstLineWith(text, s string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// TestAdaptiveNoBurstAfterHold: a request that took its pacing slot before
// a Retry-After closed the host takes a new one when the hold ends. Before,
// every such request (one per concurrency slot) started the moment the hold
// ended, with the next paced one: a burst that broke the limit again, each
// rejection cut the rate once more, and a run against a hidden 30/s limit
// spiralled down to 17/s (BenchmarkAdaptiveRate 1.43–1.50×).
func TestAdaptiveNoBurstAfterHold(t *testing.T) {
	clk := newFakeClock()
	var a *adaptive
	held := false
	a = newAdaptive(clk.Now, func(ctx context.Context, d time.Duration) error {
		if !held {
			// While B waits for its pacing slot, A's answer closes the
			// host for a second.
			held = true
			if err := clk.Sleep(ctx, d); err != nil {
				return err
			}
			a.observe(http.Header{"Retry-After": {"1"}}, http.StatusTooManyRequests, 0, clk.Now(), clk.Now(), time.Time{})
			return nil
		}
		return clk.Sleep(ctx, d)
	})
	a.rate = 10
	ctx := context.Background()
	if _, err := a.wait(ctx); err != nil { // A
		t.Fatal(err)
	}
	if _, err := a.wait(ctx); err != nil { // B: paced, then held
		t.Fatal(err)
	}
	startB := clk.Now()
	if _, err := a.wait(ctx); err != nil { // C
		t.Fatal(err)
	}
	startC := clk.Now()
	rate, _ := a.state()
	if gap, want := startC.Sub(startB), time.Duration(float64(time.Second)/rate); gap < want {
		t.Errorf("after the hold, B and C started %v apart, want the paced %v (rate %.2f/s)", gap, want, rate)
	}
}

// TestAdaptiveFalseCutRecovers: two passing rejections early in a run (a
// 429, then a 503 within adaptPair, on an API with no limit at all) cut the
// rate to 0.8 of the handful of requests sent so far. No rejection follows,
// so the rate must come back: before, it stayed near that handful for over a
// minute (Microsoft Graph's example: 63 requests in 60 s).
func TestAdaptiveFalseCutRecovers(t *testing.T) {
	clk := newFakeClock()
	var n atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		clk.Advance(20 * time.Millisecond)
		switch n.Add(1) {
		case 3:
			w.WriteHeader(http.StatusTooManyRequests)
		case 4:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	p := testPool(clk, 0.5, nil)
	c := mustClient(t, p, HostConfig{BaseURL: srv.URL, Retry: Retry{Attempts: 5}})
	const requests = 1500
	start := clk.Now()
	for i := range requests {
		if _, err := c.Do(t.Context(), &Request{URL: "/x"}); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	took := clk.Now().Sub(start)
	unpaced := time.Duration(requests) * 20 * time.Millisecond
	ratio := float64(took) / float64(unpaced)
	t.Logf("%d requests took %v, %.2f × their unpaced %v; rate now %.1f/s", requests, took.Round(time.Millisecond), ratio, unpaced, p.Stats().Hosts[origin(c.base)].AdaptiveRate)
	if ratio > 1.5 {
		t.Errorf("took %.2f × the unpaced time, want at most 1.5", ratio)
	}
}

// TestAdaptiveBrokenEndpointNoCut: one endpoint answering 503 to every
// attempt cuts no rate: its retries' 503s are that request's failure. Cut
// for each, the host's other requests crawled (Bitbucket's example: 105 s
// with a 503, 2 s with a 502). Two requests' 503s still cut.
func TestAdaptiveBrokenEndpointNoCut(t *testing.T) {
	clk := newFakeClock()
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		clk.Advance(20 * time.Millisecond)
		if strings.HasPrefix(r.URL.Path, "/broken") {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	p := testPool(clk, 0.5, nil)
	c := mustClient(t, p, HostConfig{BaseURL: srv.URL, Retry: Retry{Attempts: 5, Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond}})
	if _, err := c.Do(t.Context(), &Request{URL: "/broken/1"}); err == nil {
		t.Fatal("a 503 to every attempt: want an error")
	}
	if hs := p.Stats().Hosts[origin(c.base)]; hs.RateCuts != 0 || hs.AdaptiveRate != 0 {
		t.Errorf("one request's five 503s: %d cuts, rate %.2f; want unpaced", hs.RateCuts, hs.AdaptiveRate)
	}
	// Another request's 503 soon after is the host's: a pair, which cuts.
	if _, err := c.Do(t.Context(), &Request{URL: "/broken/2"}); err == nil {
		t.Fatal("want an error")
	}
	if hs := p.Stats().Hosts[origin(c.base)]; hs.RateCuts != 1 {
		t.Errorf("a second request's 503 soon after: %d cuts, want 1", hs.RateCuts)
	}
}

// TestAdaptiveLimitedResourceNoCut: one request rate limited on every
// attempt (a limit on one resource: a search, a project being indexed)
// is that request's, as one broken endpoint's 503s are: its retries' 429s
// cut nothing, so the host's other requests go on unpaced (one search's
// two 429s slowed 500 other chains from 2 s to 34 s), as long as other
// requests get through meanwhile (here one during each wait). Another
// request's 429 soon after is the host's limit: a pair, which cuts.
func TestAdaptiveLimitedResourceNoCut(t *testing.T) {
	clk := newFakeClock()
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		clk.Advance(20 * time.Millisecond)
		if strings.HasPrefix(r.URL.Path, "/search") {
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	var c *Client
	busy := false // the requests are sequential: no lock needed
	p := NewPool(Options{Now: clk.Now, Rand: func() float64 { return 0.5 }, Sleep: func(ctx context.Context, d time.Duration) error {
		err := clk.Sleep(ctx, d)
		if !busy && c != nil {
			busy = true
			if _, err := c.Do(ctx, &Request{URL: "/list"}); err != nil {
				t.Errorf("another request, meanwhile: %v", err)
			}
			busy = false
		}
		return err
	}})
	c = mustClient(t, p, HostConfig{BaseURL: srv.URL, Retry: Retry{Attempts: 4, Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond}})
	if _, err := c.Do(t.Context(), &Request{URL: "/search/1"}); err == nil {
		t.Fatal("a 429 to every attempt: want an error")
	}
	if hs := p.Stats().Hosts[origin(c.base)]; hs.RateCuts != 0 || hs.AdaptiveRate != 0 {
		t.Errorf("one request's four 429s: %d cuts, rate %.2f; want unpaced", hs.RateCuts, hs.AdaptiveRate)
	}
	if _, err := c.Do(t.Context(), &Request{URL: "/search/2"}); err == nil {
		t.Fatal("want an error")
	}
	if hs := p.Stats().Hosts[origin(c.base)]; hs.RateCuts != 1 {
		t.Errorf("a second request's 429 soon after: %d cuts, want 1", hs.RateCuts)
	}
}

// A request refused again while others get through is one resource's
// limit and cuts nothing; refused again with none through since (one
// request at a time against a host-wide window limit), it is a refusal
// like any other: a second soon after the first cuts.
func TestAdaptiveRefusedAgainAloneCuts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		between  bool // another request answered 200 between the refusals
		wantCuts int64
	}{
		{name: "others through between", between: true, wantCuts: 0},
		{name: "none through between", between: false, wantCuts: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			a := newAdaptive(clk.Now, clk.Sleep)
			ctx := t.Context()
			seq, _ := a.wait(ctx)
			sent := clk.Now()
			clk.Advance(20 * time.Millisecond)
			first := clk.Now()
			a.observe(http.Header{}, http.StatusTooManyRequests, seq, sent, first, time.Time{})
			if _, cuts := a.state(); cuts != 0 {
				t.Fatalf("a first refusal alone, unpaced: %d cuts, want 0", cuts)
			}
			clk.Advance(200 * time.Millisecond)
			if tc.between {
				seq, _ := a.wait(ctx)
				a.observe(http.Header{}, http.StatusOK, seq, clk.Now(), clk.Now(), time.Time{})
			}
			clk.Advance(300 * time.Millisecond)
			seq, _ = a.wait(ctx)
			sent = clk.Now()
			clk.Advance(20 * time.Millisecond)
			a.observe(http.Header{}, http.StatusTooManyRequests, seq, sent, clk.Now(), first)
			if _, cuts := a.state(); cuts != tc.wantCuts {
				t.Errorf("the retry refused again: %d cuts, want %d", cuts, tc.wantCuts)
			}
		})
	}
}

// TestAdaptiveCutNotFromHold: a rejection right after a Retry-After hold
// cuts from the rate the host was sent while it was open, not from the
// handful of requests started since the hold ended. Before, the second of
// two 429s a second apart (a hold of 1 s between them) measured the last
// second, nearly all of it held, and cut a host sent 20 a second to under
// 2 (the LaunchDarkly example's run took 55–114 s where it takes 4).
func TestAdaptiveCutNotFromHold(t *testing.T) {
	clk := newFakeClock()
	a := newAdaptive(clk.Now, clk.Sleep)
	ctx := context.Background()
	send := func(n int, status int, h http.Header) {
		for range n {
			seq, err := a.wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(50 * time.Millisecond)
			a.observe(h, status, seq, clk.Now(), clk.Now(), time.Time{})
		}
	}
	send(60, http.StatusOK, http.Header{}) // 3 s at 20 a second
	send(1, http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}})
	if rate, cuts := a.state(); rate != 0 || cuts != 0 {
		t.Fatalf("a lone 429: rate %v, %d cuts; want none yet", rate, cuts)
	}
	send(2, http.StatusOK, http.Header{})              // the hold, then two
	send(1, http.StatusTooManyRequests, http.Header{}) // the pair's second
	rate, cuts := a.state()
	if cuts != 1 {
		t.Fatalf("%d cuts, want 1", cuts)
	}
	if rate < 0.8*adaptCut*20 || rate > 1.15*adaptCut*20 {
		t.Errorf("cut to %.2f/s: want about %.0f/s (%.1f of the 20/s sent while the host was open)", rate, adaptCut*20, adaptCut)
	}
}
