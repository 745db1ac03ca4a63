package fetch

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// twoBudgets answers like Buildkite: every answer announces two fixed
// windows, the organization's (shared with another client, which spends
// most of it at the start of each window) and the token's user's, and a
// request past either is refused.
type twoBudgets struct {
	clk                 *fakeClock
	start               time.Time
	window              time.Duration
	orgLimit, userLimit int
	other               int // the other client's requests at each window's start

	mu                  sync.Mutex
	win                 int64
	org, user           int
	ok, rejOrg, rejUser int
}

func (s *twoBudgets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clk.Now()
	if win := int64(now.Sub(s.start) / s.window); win != s.win || s.ok+s.rejOrg+s.rejUser == 0 {
		s.win, s.org, s.user = win, s.other, 0
	}
	end := s.start.Add(time.Duration(s.win+1) * s.window)
	reset := strconv.Itoa(int((end.Sub(now) + time.Second - 1) / time.Second))
	status := http.StatusOK
	switch {
	case s.org >= s.orgLimit:
		status = http.StatusTooManyRequests
		s.rejOrg++
	case s.user >= s.userLimit:
		status = http.StatusTooManyRequests
		s.rejUser++
	default:
		s.org++
		s.user++
		s.ok++
	}
	h := w.Header()
	h.Set("Org-Remaining", strconv.Itoa(s.orgLimit-s.org))
	h.Set("Org-Reset", reset)
	h.Set("User-Remaining", strconv.Itoa(s.userLimit-s.user))
	h.Set("User-Reset", reset)
	w.WriteHeader(status)
}

var (
	orgBudget  = BudgetHeaders{Remaining: "Org-Remaining", Reset: "Org-Reset"}
	userBudget = BudgetHeaders{Remaining: "User-Remaining", Reset: "User-Reset"}
)

// TestAdaptiveTwoBudgets: a host announcing two budgets, both declared,
// gets no request past either: the user's is spent in one window, the
// organization's (mostly another client's) in another, and each holds
// the requests until its own reset.
func TestAdaptiveTwoBudgets(t *testing.T) {
	for _, conc := range []int{1, 4} {
		t.Run(strconv.Itoa(conc), func(t *testing.T) {
			clk := newFakeClock()
			s := &twoBudgets{clk: clk, start: clk.Now(), window: time.Minute, orgLimit: 30, userLimit: 10, other: 25}
			srv := newServer(t, s.ServeHTTP)
			p := testPool(clk, 0.5, nil)
			c := mustClient(t, p, HostConfig{BaseURL: srv.URL, Retry: Retry{Attempts: 10}, Concurrency: conc,
				Budget: userBudget, OtherBudgets: []BudgetHeaders{orgBudget}})
			var wg sync.WaitGroup
			errs := make(chan error, conc)
			for range conc {
				wg.Go(func() {
					for range 24 / conc {
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
			t.Logf("%d passed, %d refused by the organization's budget, %d by the user's", s.ok, s.rejOrg, s.rejUser)
			if s.ok != 24 {
				t.Errorf("%d passed, want 24", s.ok)
			}
			if s.rejOrg != 0 || s.rejUser != 0 {
				t.Errorf("%d refused by the organization's budget, %d by the user's; want none", s.rejOrg, s.rejUser)
			}
		})
	}
}

// TestFurtherBudgetInFlight: a further budget counts the requests started
// after its answer, each on its own: with the organization's budget at 2
// and the user's at 9, the third request started after the answer waits
// for the organization's reset (10 s), not the user's (60 s).
func TestFurtherBudgetInFlight(t *testing.T) {
	clk := newFakeClock()
	a := newAdaptive(clk.Now, clk.Sleep)
	a.declare(userBudget, []BudgetHeaders{orgBudget})
	ctx := t.Context()
	seq, _ := a.wait(ctx)
	now := clk.Now()
	a.observe(http.Header{"Org-Remaining": {"2"}, "Org-Reset": {"10"}, "User-Remaining": {"9"}, "User-Reset": {"60"}},
		http.StatusOK, seq, now, now, time.Time{})
	a.wait(ctx)
	a.wait(ctx)
	if got := clk.Sleeps(); len(got) != 0 {
		t.Fatalf("the two requests the budgets leave waited %v", got)
	}
	a.wait(ctx)
	if got := clk.Sleeps(); len(got) != 1 || got[0] != 10*time.Second {
		t.Errorf("a request past the organization's budget waited %v, want its reset (10s)", got)
	}
}

// TestFurtherBudgetReadsItsOwnHeaders: a further budget is read from its
// own headers only; the standard ones (the first budget's, when its own
// are absent) do not stand for it: read as it, a standard budget spent
// held the host once more, in the further budget's name.
func TestFurtherBudgetReadsItsOwnHeaders(t *testing.T) {
	clk := newFakeClock()
	a := newAdaptive(clk.Now, clk.Sleep)
	a.declare(userBudget, []BudgetHeaders{orgBudget})
	ctx := t.Context()
	seq, _ := a.wait(ctx)
	now := clk.Now()
	// An answer with the standard headers only: the user's budget reads
	// them, the organization's does not.
	a.observe(http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"5"}}, http.StatusOK, seq, now, now, time.Time{})
	a.mu.Lock()
	n := len(a.more)
	has := n == 1 && a.more[0].hasBudget
	a.mu.Unlock()
	if n != 1 || has {
		t.Errorf("%d further budgets, known %v; want one, not known from the standard headers", n, has)
	}
}
