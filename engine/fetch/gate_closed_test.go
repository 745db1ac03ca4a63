package fetch

import (
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"
)

// waitingForSlot is how many requests to the host of base wait for a
// concurrency slot.
func waitingForSlot(p *Pool, base string) int {
	u, _ := url.Parse(base)
	p.mu.Lock()
	h := p.hosts[u.Scheme+"://"+u.Host]
	p.mu.Unlock()
	if h == nil {
		return 0
	}
	h.gate.mu.Lock()
	defer h.gate.mu.Unlock()
	return len(h.gate.waiters)
}

// TestQueuedRequestsSeeHostClose: requests that wait for a concurrency
// slot when an answer closes the host (a 429's Retry-After, a spent
// budget's reset) are not sent before it opens. At concurrency 1, as
// GitHub asks for, each request queued behind the one refused was sent
// at once, refused in turn and retried. Only the waits for the host move
// the fake clock, so a request sent too soon arrives before the reset.
func TestQueuedRequestsSeeHostClose(t *testing.T) {
	for _, tc := range []struct {
		name        string
		status      int
		header      func(now time.Time) map[string]string
		rateHeaders bool
	}{
		{"Retry-After", http.StatusTooManyRequests, func(time.Time) map[string]string { return map[string]string{"Retry-After": "30"} }, false},
		{"spent budget", http.StatusOK, func(now time.Time) map[string]string {
			return map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(now.Add(30*time.Second).Unix(), 10)}
		}, false},
		{"Retry-After, rate headers", http.StatusTooManyRequests, func(time.Time) map[string]string { return map[string]string{"Retry-After": "30"} }, true},
		{"spent budget, rate headers", http.StatusOK, func(now time.Time) map[string]string {
			return map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(now.Add(30*time.Second).Unix(), 10)}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			start := clk.Now()
			p := testPool(clk, 0, nil)
			var base string
			var mu sync.Mutex
			var arrivals []time.Time
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				n := len(arrivals)
				arrivals = append(arrivals, clk.Now())
				mu.Unlock()
				if n == 0 {
					// Answer once the three others wait for the slot.
					for waitingForSlot(p, base) < 3 {
						time.Sleep(time.Millisecond)
					}
					for k, v := range tc.header(clk.Now()) {
						w.Header().Set(k, v)
					}
					w.WriteHeader(tc.status)
					return
				}
				_, _ = w.Write([]byte("{}"))
			})
			base = srv.URL
			c := mustClient(t, p, HostConfig{BaseURL: base, Concurrency: 1, RateHeaders: tc.rateHeaders, Retry: Retry{Attempts: 1}})
			var wg sync.WaitGroup
			wg.Go(func() { _, _ = c.Do(t.Context(), &Request{URL: "/first"}) })
			for {
				mu.Lock()
				n := len(arrivals)
				mu.Unlock()
				if n == 1 {
					break
				}
				time.Sleep(time.Millisecond)
			}
			for i := range 3 {
				wg.Go(func() {
					if _, err := c.Do(t.Context(), &Request{URL: "/next/" + strconv.Itoa(i)}); err != nil {
						t.Errorf("Do: %v", err)
					}
				})
			}
			wg.Wait()
			if len(arrivals) != 4 {
				t.Fatalf("%d requests arrived, want 4", len(arrivals))
			}
			for i, at := range arrivals[1:] {
				if at.Sub(start) < 30*time.Second {
					t.Errorf("request %d queued behind the closing answer arrived %v after it, before the host opened (30s)", i+2, at.Sub(start))
				}
			}
		})
	}
}
