package fetch

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestConcurrencyCapPerHost(t *testing.T) {
	tests := []struct {
		name    string
		configs []int // Concurrency of each HostConfig for the same host
		per     int   // goroutines per config
		want    int
	}{
		{name: "one config", configs: []int{4}, per: 32, want: 4},
		{name: "two configs share the cap", configs: []int{4, 4}, per: 16, want: 4},
		{name: "strictest wins", configs: []int{10, 4}, per: 16, want: 4},
		{name: "strictest wins in any order", configs: []int{3, 6}, per: 12, want: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cur, peak atomic.Int32
			total := len(tc.configs) * tc.per
			arrived := make(chan struct{}, total)
			release := make(chan struct{})
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				n := cur.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				arrived <- struct{}{}
				<-release
				cur.Add(-1)
			})
			p := testPool(newFakeClock(), 0, nil)
			var clients []*Client
			for i, conc := range tc.configs {
				// Different paths and headers, same scheme and host.
				base := srv.URL + "/v" + string(rune('1'+i))
				clients = append(clients, mustClient(t, p, HostConfig{BaseURL: base, Concurrency: conc}))
			}
			var wg sync.WaitGroup
			for _, c := range clients {
				for range tc.per {
					wg.Go(func() {
						if _, err := c.Do(t.Context(), &Request{URL: "/x"}); err != nil {
							t.Errorf("Do: %v", err)
						}
					})
				}
			}
			// Fill every slot, then let one request finish per arrival.
			for range tc.want {
				<-arrived
			}
			for range total - tc.want {
				release <- struct{}{}
				<-arrived
			}
			close(release)
			wg.Wait()
			if got := int(peak.Load()); got != tc.want {
				t.Errorf("peak in flight = %d, want %d", got, tc.want)
			}
			hs := p.Stats().Hosts[strings.ToLower(srv.URL)]
			if hs.PeakInFlight != tc.want || hs.Concurrency != tc.want || hs.Requests != int64(total) {
				t.Errorf("host stats = %+v, want peak and concurrency %d, %d requests", hs, tc.want, total)
			}
		})
	}
}

// The slot is released while a request backs off, so another request to
// the same host with Concurrency 1 runs during the wait.
func TestSlotNotHeldDuringBackoff(t *testing.T) {
	var n atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/flaky" && n.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	var c *Client
	var inner error
	var once sync.Once
	p := NewPool(Options{Sleep: func(ctx context.Context, d time.Duration) error {
		// Would deadlock if the flaky request still held the only slot.
		// Once: the 503 also slows the host, so the inner request may
		// wait (sleep) itself.
		once.Do(func() {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, inner = c.Do(ctx, &Request{URL: "/other"})
		})
		return nil
	}})
	c = mustClient(t, p, HostConfig{BaseURL: srv.URL, Concurrency: 1})
	if _, err := c.Do(t.Context(), &Request{URL: "/flaky"}); err != nil {
		t.Fatalf("Do: %v", err)
	}
	if inner != nil {
		t.Fatalf("request during backoff: %v", inner)
	}
}

func TestRateLimit(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name    string
		configs []HostConfig
		n       int
		want    []time.Duration
	}{
		{name: "2/s burst 1", configs: []HostConfig{{RatePerSecond: 2}}, n: 5, want: []time.Duration{500 * ms, 500 * ms, 500 * ms, 500 * ms}},
		{name: "2/s burst 3", configs: []HostConfig{{RatePerSecond: 2, Burst: 3}}, n: 5, want: []time.Duration{500 * ms, 500 * ms}},
		{name: "shared by two configs, strictest rate", configs: []HostConfig{{RatePerSecond: 4}, {RatePerSecond: 2}}, n: 5, want: []time.Duration{500 * ms, 500 * ms, 500 * ms, 500 * ms}},
		{name: "unlimited config does not loosen", configs: []HostConfig{{RatePerSecond: 10}, {}}, n: 3, want: []time.Duration{100 * ms, 100 * ms}},
		{name: "unlimited", configs: []HostConfig{{}}, n: 5, want: nil},
		// A stream's own ceiling paces that client alone (the second
		// client's requests wait for nothing), and the host's still holds.
		{name: "own ceiling, its client only", configs: []HostConfig{{OwnRatePerSecond: 2}, {}}, n: 6, want: []time.Duration{500 * ms, 500 * ms}},
		// Two clients of one group share its bucket; apart, each has its own.
		{name: "own ceiling, one group", configs: []HostConfig{{OwnRatePerSecond: 2, OwnRateGroup: "search"}, {OwnRatePerSecond: 2, OwnRateGroup: "search"}}, n: 4, want: []time.Duration{500 * ms, 500 * ms, 500 * ms}},
		{name: "own ceiling, two groups", configs: []HostConfig{{OwnRatePerSecond: 2, OwnRateGroup: "a"}, {OwnRatePerSecond: 2, OwnRateGroup: "b"}}, n: 4, want: []time.Duration{500 * ms}},
		{name: "own ceiling besides the host's", configs: []HostConfig{{RatePerSecond: 1, OwnRatePerSecond: 2}}, n: 3, want: []time.Duration{500 * ms, 500 * ms, time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
			clk := newFakeClock()
			p := testPool(clk, 0, nil)
			var clients []*Client
			for _, cfg := range tc.configs {
				cfg.BaseURL = srv.URL
				clients = append(clients, mustClient(t, p, cfg))
			}
			for i := range tc.n {
				if _, err := clients[i%len(clients)].Do(t.Context(), &Request{URL: "/x"}); err != nil {
					t.Fatalf("Do: %v", err)
				}
			}
			if d := cmp.Diff(tc.want, clk.Sleeps()); d != "" {
				t.Errorf("rate waits (-want +got):\n%s", d)
			}
		})
	}
}

// A stream's own ceiling is an endpoint's limit of its API: a link to
// another host (an export's storage) does not wait on it.
func TestOwnRateLimitOnlyItsHost(t *testing.T) {
	api := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	storage := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	clk := newFakeClock()
	c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: api.URL, OwnRatePerSecond: 1})
	for range 3 {
		if _, err := c.Do(t.Context(), &Request{URL: storage.URL + "/export.ndjson"}); err != nil {
			t.Fatalf("Do: %v", err)
		}
	}
	if s := clk.Sleeps(); len(s) != 0 {
		t.Errorf("requests to another host waited %v on the stream's own limit", s)
	}
	for range 2 {
		if _, err := c.Do(t.Context(), &Request{URL: "/x"}); err != nil {
			t.Fatalf("Do: %v", err)
		}
	}
	if s := clk.Sleeps(); len(s) != 1 || s[0] != time.Second {
		t.Errorf("two requests to its own host waited %v; want one second once", s)
	}
}

func TestStats(t *testing.T) {
	var n atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/missing":
			w.WriteHeader(404)
		case n.Add(1) == 1:
			w.WriteHeader(502)
		}
	})
	p := testPool(newFakeClock(), 0, nil)
	c := mustClient(t, p, HostConfig{BaseURL: srv.URL, RatePerSecond: 5})
	_, _ = c.Do(t.Context(), &Request{URL: "/ok"})      // 502 then 200
	_, _ = c.Do(t.Context(), &Request{URL: "/missing"}) // 404
	got := p.Stats()
	want := Stats{Requests: 3, Retries: 1, Errors: 1, Hosts: map[string]HostStats{
		strings.ToLower(srv.URL): {Requests: 3, Retries: 1, Errors: 1, Concurrency: DefaultConcurrency, PeakInFlight: 1, RatePerSecond: 5},
	}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Stats (-want +got):\n%s", d)
	}
}

func TestGate(t *testing.T) {
	g := newGate(2)
	ctx := t.Context()
	g.acquire(ctx)
	g.acquire(ctx)
	// A cancelled waiter leaves the queue without taking a slot.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := g.acquire(cctx); err == nil {
		t.Fatal("acquire on a full gate with a cancelled ctx succeeded")
	}
	g.setLimit(1)
	g.release()
	got := make(chan struct{})
	go func() { g.acquire(ctx); close(got) }()
	g.release()
	<-got
	if limit, peak := g.stats(); limit != 1 || peak != 2 || g.inUse != 1 {
		t.Errorf("gate limit %d peak %d in use %d, want 1, 2, 1", limit, peak, g.inUse)
	}
}

func TestCloseIdleConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	p := testPool(newFakeClock(), 0, nil)
	c := mustClient(t, p, HostConfig{BaseURL: srv.URL})
	for range 2 {
		if _, err := c.Do(t.Context(), &Request{URL: "/x"}); err != nil {
			t.Fatal(err)
		}
	}
	p.CloseIdleConnections()
	if _, err := c.Do(t.Context(), &Request{URL: "/x"}); err != nil {
		t.Fatal(err)
	}
	// One connection reused by the first two requests, a new one after.
	if got := conns.Load(); got != 2 {
		t.Errorf("connections opened = %d, want 2", got)
	}
}
