package fetch

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// hubSpotHeaders are HubSpot's names for its rolling ten-second budget:
// no reset, the window's length in milliseconds and its limit instead.
var hubSpotHeaders = BudgetHeaders{
	Remaining: "X-HubSpot-RateLimit-Remaining",
	Limit:     "X-HubSpot-RateLimit-Max",
	Window:    "X-HubSpot-RateLimit-Interval-Milliseconds",
	Millis:    true,
}

func TestDeclaredBudget(t *testing.T) {
	recv := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	linear := BudgetHeaders{Remaining: "X-RateLimit-Requests-Remaining", Reset: "X-RateLimit-Requests-Reset"}
	for _, tc := range []struct {
		name      string
		names     BudgetHeaders
		h         http.Header
		remaining int
		reset     time.Duration
		ok        bool
	}{
		{"rolling window in milliseconds", hubSpotHeaders, http.Header{"X-Hubspot-Ratelimit-Remaining": {"7"}, "X-Hubspot-Ratelimit-Interval-Milliseconds": {"10000"}}, 7, 10 * time.Second, true},
		{"rolling window in seconds", BudgetHeaders{Remaining: "A-Left", Window: "A-Window"}, http.Header{"A-Left": {"3"}, "A-Window": {"60"}}, 3, time.Minute, true},
		{"reset as epoch milliseconds", linear, http.Header{"X-Ratelimit-Requests-Remaining": {"0"}, "X-Ratelimit-Requests-Reset": {strconv.FormatInt(recv.UnixMilli()+30000, 10)}}, 0, 30 * time.Second, true},
		{"reset as seconds", linear, http.Header{"X-Ratelimit-Requests-Remaining": {"4"}, "X-Ratelimit-Requests-Reset": {"12"}}, 4, 12 * time.Second, true},
		{"reset as milliseconds", BudgetHeaders{Remaining: "A-Left", Reset: "A-Reset", Millis: true}, http.Header{"A-Left": {"4"}, "A-Reset": {"1500"}}, 4, 1500 * time.Millisecond, true},
		// With unit ms, an epoch in seconds is still an epoch (read as
		// milliseconds it was a delay of 20 days).
		{"reset as epoch seconds, unit ms", BudgetHeaders{Remaining: "A-Left", Reset: "A-Reset", Millis: true}, http.Header{"A-Left": {"0"}, "A-Reset": {strconv.FormatInt(recv.Unix()+30, 10)}}, 0, 30 * time.Second, true},
		{"reset as epoch milliseconds, unit ms", BudgetHeaders{Remaining: "A-Left", Reset: "A-Reset", Millis: true}, http.Header{"A-Left": {"0"}, "A-Reset": {strconv.FormatInt(recv.UnixMilli()+30000, 10)}}, 0, 30 * time.Second, true},
		// The declared names come first; the standard ones still count
		// on an answer without them.
		{"declared before standard", hubSpotHeaders, http.Header{"X-Hubspot-Ratelimit-Remaining": {"7"}, "X-Hubspot-Ratelimit-Interval-Milliseconds": {"10000"}, "X-Ratelimit-Remaining": {"90"}, "X-Ratelimit-Reset": {"60"}}, 7, 10 * time.Second, true},
		{"standard when the declared are absent", hubSpotHeaders, http.Header{"X-Ratelimit-Remaining": {"90"}, "X-Ratelimit-Reset": {"60"}}, 90, time.Minute, true},
		{"remaining without its window", hubSpotHeaders, http.Header{"X-Hubspot-Ratelimit-Remaining": {"7"}}, 0, 0, false},
		{"a window that is no number", hubSpotHeaders, http.Header{"X-Hubspot-Ratelimit-Remaining": {"7"}, "X-Hubspot-Ratelimit-Interval-Milliseconds": {"soon"}}, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, reset, ok := tc.names.budget(tc.h, recv)
			if ok != tc.ok || ok && (r != tc.remaining || reset.Sub(recv) != tc.reset) {
				t.Errorf("= %d, %v, %v; want %d, %v, %v", r, reset.Sub(recv), ok, tc.remaining, tc.reset, tc.ok)
			}
		})
	}
}

// rollingBudget answers like HubSpot's general limit: at most limit
// requests in any window (rolling, counted when they arrive), a 429
// beyond; every answer announces the window's limit, its length in
// milliseconds and what remains, under HubSpot's names.
type rollingBudget struct {
	clk     *fakeClock
	limit   int
	window  time.Duration
	latency time.Duration

	// steady: another client's requests a second, taking places too.
	steady float64

	mu       sync.Mutex
	accepted []time.Time
	ok, rej  int
	last     time.Time // the other client's last request
}

func (s *rollingBudget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.clk.Advance(s.latency)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clk.Now()
	for len(s.accepted) > 0 && now.Sub(s.accepted[0]) >= s.window {
		s.accepted = s.accepted[1:]
	}
	if s.steady > 0 {
		if s.last.IsZero() {
			s.last = now
		}
		// The other client's requests since the last, while places last.
		for every := time.Duration(float64(time.Second) / s.steady); !s.last.Add(every).After(now); {
			s.last = s.last.Add(every)
			if len(s.accepted) < s.limit && now.Sub(s.last) < s.window {
				s.accepted = append(s.accepted, s.last)
			}
		}
	}
	status := http.StatusOK
	if len(s.accepted) >= s.limit {
		s.rej++
		status = http.StatusTooManyRequests
	} else {
		s.accepted = append(s.accepted, now)
		s.ok++
	}
	h := w.Header()
	h.Set("X-HubSpot-RateLimit-Max", strconv.Itoa(s.limit))
	h.Set("X-HubSpot-RateLimit-Interval-Milliseconds", strconv.FormatInt(s.window.Milliseconds(), 10))
	h.Set("X-HubSpot-RateLimit-Remaining", strconv.Itoa(s.limit-len(s.accepted)))
	w.WriteHeader(status)
}

// TestAdaptiveRollingBudget: a host that announces a rolling window's
// budget under names of its own, declared by the spec, gets no request
// past it: none is refused, and the run still goes at about the limit.
// Requests go one after another on a fake clock, so the count is exact.
func TestAdaptiveRollingBudget(t *testing.T) {
	clk := newFakeClock()
	s := &rollingBudget{clk: clk, limit: 10, window: time.Second, latency: 5 * time.Millisecond}
	srv := newServer(t, s.ServeHTTP)
	p := testPool(clk, 0.5, nil)
	c := mustClient(t, p, HostConfig{BaseURL: srv.URL, Retry: Retry{Attempts: 10}, Budget: hubSpotHeaders})
	const n = 300
	start := clk.Now()
	for i := range n {
		if _, err := c.Do(t.Context(), &Request{URL: "/x"}); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	took := clk.Now().Sub(start)
	bound := time.Duration(n) * s.window / time.Duration(s.limit)
	t.Logf("%d requests: %v, %.3f × the bound %v; %d refused", s.ok+s.rej, took.Round(time.Millisecond), float64(took)/float64(bound), bound, s.rej)
	if s.rej != 0 {
		t.Errorf("%d requests refused, want none: the announced budget holds them", s.rej)
	}
	if took > bound*6/5 {
		t.Errorf("took %v, more than 1.2 × requests ÷ limit (%v)", took, bound)
	}
}

// TestAdaptiveRollingBudgetConcurrent: requests in flight together, as
// a run's streams send them, neither overrun the window nor wait past it.
func TestAdaptiveRollingBudgetConcurrent(t *testing.T) {
	clk := newFakeClock()
	s := &rollingBudget{clk: clk, limit: 6, window: time.Second, latency: 5 * time.Millisecond}
	srv := newServer(t, s.ServeHTTP)
	p := testPool(clk, 0.5, nil)
	c := mustClient(t, p, HostConfig{BaseURL: srv.URL, Retry: Retry{Attempts: 10}, Budget: hubSpotHeaders, Concurrency: 4})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for range 15 {
				if _, err := c.Do(t.Context(), &Request{URL: "/x"}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if s.rej != 0 {
		t.Errorf("%d requests refused, want none", s.rej)
	}
}

func TestBudgetHeadersValidate(t *testing.T) {
	for _, tc := range []struct {
		b    BudgetHeaders
		want string
	}{
		{BudgetHeaders{}, ""},
		{hubSpotHeaders, ""},
		{BudgetHeaders{Remaining: "A", Reset: "B"}, ""},
		{BudgetHeaders{Reset: "B"}, "needs the remaining header"},
		{BudgetHeaders{Remaining: "A"}, "needs a reset or a window header"},
		{BudgetHeaders{Remaining: "A", Reset: "B", Window: "C"}, "a reset or a window header, not both"},
		{BudgetHeaders{Remaining: "A", Reset: "B", Limit: "C"}, "limit is read with a window"},
	} {
		err := tc.b.validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.b, err, tc.want)
		}
	}
}

// TestAdaptiveSlidingBudget: a host whose budget slides (HCP Terraform:
// its reset is when the oldest request leaves the window, one place
// frees, not the whole budget) refuses a request while the budget it
// announced is spent; from then on the host's own starts are kept to
// x-ratelimit-limit in the longest reset seen (and 5% more), rather than
// released whole when the reset passes. A host that announces two limits
// (GitHub's resources: search's 30 a minute, core's 5000 an hour) has two
// budgets no one count can keep: its starts are not counted.
func TestAdaptiveSlidingBudget(t *testing.T) {
	for _, tc := range []struct {
		name  string
		other string // a third answer's x-ratelimit-limit and resource
		want  []time.Duration
	}{
		{name: "one budget", want: []time.Duration{500 * time.Millisecond, 445 * time.Millisecond}},
		{name: "two limits", other: "2", want: []time.Duration{500 * time.Millisecond}},
		{name: "two resources", other: "3 search", want: []time.Duration{500 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			a := newAdaptive(clk.Now, clk.Sleep)
			ctx := t.Context()
			budget := func(limit, remaining, reset string) http.Header {
				h := http.Header{"X-Ratelimit-Limit": {limit}, "X-Ratelimit-Remaining": {remaining}, "X-Ratelimit-Reset": {reset}}
				if l, res, ok := strings.Cut(limit, " "); ok {
					h.Set("X-Ratelimit-Limit", l)
					h.Set("X-Ratelimit-Resource", res)
				}
				return h
			}
			t0 := clk.Now()
			seq, _ := a.wait(ctx)
			a.observe(budget("3", "2", "0.900"), http.StatusOK, seq, t0, t0, time.Time{})
			seq, _ = a.wait(ctx)
			// Refused with the budget spent, until one place frees.
			a.observe(budget("3", "0", "0.500"), http.StatusTooManyRequests, seq, t0, t0, time.Time{})
			if tc.other != "" {
				seq, _ = a.wait(ctx)
				a.observe(budget(tc.other, "20", "40"), http.StatusOK, seq, t0, t0, time.Time{})
			}
			a.wait(ctx) // held by the spent budget until its reset
			a.wait(ctx)
			if got := clk.Sleeps(); !slices.Equal(got, tc.want) {
				t.Errorf("waits %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRollingWindowCapped: a declared window that reads far too long (the
// spec's unit s for an API sending milliseconds, an epoch, "Inf") holds
// no request longer than any server's word is honoured (MaxServerWait),
// as a reset is: counted as given, every limit-th request of the run
// waited up to a day.
func TestRollingWindowCapped(t *testing.T) {
	for _, win := range []string{"10000", "1700000000", "Inf"} {
		t.Run(win, func(t *testing.T) {
			clk := newFakeClock()
			a := newAdaptive(clk.Now, clk.Sleep)
			a.declare(BudgetHeaders{Remaining: "A-Left", Window: "A-Window", Limit: "A-Max"}, nil)
			ctx := t.Context()
			t0 := clk.Now()
			seq, _ := a.wait(ctx)
			a.observe(http.Header{"A-Left": {"1"}, "A-Window": {win}, "A-Max": {"2"}}, http.StatusOK, seq, t0, t0, time.Time{})
			a.wait(ctx)
			a.wait(ctx) // the window's two are spent
			var waited time.Duration
			for _, d := range clk.Sleeps() {
				waited += d
			}
			if limit := MaxServerWait + time.Duration(adaptRollSlack*float64(MaxServerWait)); waited > limit || waited < MaxServerWait {
				t.Errorf("window %s: waited %v, want %v to %v", win, waited, MaxServerWait, limit)
			}
		})
	}
}

// TestSlideWindowOfItsOwnLimit: the window a sliding budget is kept to
// is the longest reset of the answers announcing the limit kept. An
// answer with a budget and no limit (another budget's: a daily quota
// announced when it is the nearer one) is no measure of it: counted, a
// per-second API of 10 a second was kept to 10 in every 5¼ minutes.
func TestSlideWindowOfItsOwnLimit(t *testing.T) {
	clk := newFakeClock()
	a := newAdaptive(clk.Now, clk.Sleep)
	ctx := t.Context()
	second := func(remaining, reset string) http.Header {
		return http.Header{"X-Ratelimit-Limit": {"10"}, "X-Ratelimit-Remaining": {remaining}, "X-Ratelimit-Reset": {reset}}
	}
	now := clk.Now()
	seq, _ := a.wait(ctx)
	a.observe(second("9", "1"), http.StatusOK, seq, now, now, time.Time{})
	seq, _ = a.wait(ctx)
	// The day's quota, nearer spent than the second's budget.
	a.observe(http.Header{"X-Ratelimit-Remaining": {"8"}, "X-Ratelimit-Reset": {"40000"}}, http.StatusOK, seq, now, now, time.Time{})
	clk.Advance(10 * time.Minute) // the day's answer is long past
	now = clk.Now()
	seq, _ = a.wait(ctx)
	// Refused with the second's budget spent: it slides.
	a.observe(second("0", "0.5"), http.StatusTooManyRequests, seq, now, now, time.Time{})
	for range 40 {
		seq, _ = a.wait(ctx)
		now = clk.Now()
		a.observe(second("5", "0.5"), http.StatusOK, seq, now, now, time.Time{})
	}
	var waited time.Duration
	for _, d := range clk.Sleeps() {
		waited += d
	}
	// 40 requests at 10 in any ~1 s: about 4 s of waits, not minutes.
	if waited > 10*time.Second {
		t.Errorf("40 requests waited %v: the day's reset was taken for the second's window", waited)
	}
}

// TestAdaptiveRollingBudgetPaced: a rolling window's budget spent by the
// run's own requests alone, paced at about the limit (HubSpot's example:
// a ceiling of 9 a second, 100 in any 10 s), frees as those requests
// leave it, which their starts tell: holding every request until the
// answer that spent it was a window old stalled ~10 s in each window
// (600 requests in 110 s where the pace takes 67). Places another client
// takes (half the window just before the run, or 3 a second throughout)
// are not the run's: the remaining holds requests, none refused.
func TestAdaptiveRollingBudgetPaced(t *testing.T) {
	for _, tc := range []struct {
		rate   float64
		others int     // places another client took just before the run
		steady float64 // another client's requests a second
	}{{9, 0, 0}, {12, 0, 0}, {12, 50, 0}, {12, 0, 3}} {
		t.Run(strconv.FormatFloat(tc.rate, 'f', -1, 64)+"/others "+strconv.Itoa(tc.others)+"/steady "+strconv.FormatFloat(tc.steady, 'f', -1, 64), func(t *testing.T) {
			rate := tc.rate
			clk := newFakeClock()
			s := &rollingBudget{clk: clk, limit: 100, window: 10 * time.Second, latency: 5 * time.Millisecond, steady: tc.steady}
			for range tc.others {
				s.accepted = append(s.accepted, clk.Now())
			}
			srv := newServer(t, s.ServeHTTP)
			c := mustClient(t, testPool(clk, 0.5, nil), HostConfig{BaseURL: srv.URL, Retry: Retry{Attempts: 10}, Budget: hubSpotHeaders, RatePerSecond: rate, Burst: 10})
			const n = 600
			start := clk.Now()
			for i := range n {
				if _, err := c.Do(t.Context(), &Request{URL: "/x"}); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
			}
			took := clk.Now().Sub(start)
			bound := max(time.Duration(float64(n)/rate*float64(time.Second)), time.Duration(n)*s.window/time.Duration(s.limit))
			t.Logf("%d requests: %v, %.3f × the bound %v; %d refused", n, took.Round(time.Millisecond), float64(took)/float64(bound), bound, s.rej)
			if s.rej != 0 {
				t.Errorf("%d requests refused, want none", s.rej)
			}
			// Beside a steady other client the window holds places no
			// start here tells of: its remaining holds requests as before.
			if tc.steady == 0 && took > bound*6/5 {
				t.Errorf("took %v, more than 1.2 × the bound %v (the pace, or requests ÷ limit)", took, bound)
			}
		})
	}
}
