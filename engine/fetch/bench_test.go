package fetch

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkFanoutBound sends 2000 GETs at concurrency 16 to a handler that
// takes 20 ms, so the floor is 2000×20ms/16 = 2.5 s. It reports wall time
// as a ratio to that bound, for the pool and for a bare net/http client
// measured the same way.
func BenchmarkFanoutBound(b *testing.B) {
	const (
		requests    = 2000
		concurrency = 16
		delay       = 20 * time.Millisecond
	)
	bound := time.Duration(requests) * delay / concurrency
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay) // a benchmark: the delay is the point
		io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()

	run := func(b *testing.B, get func(ctx context.Context) error) {
		ctx := context.Background()
		for range 2 * concurrency { // warm the connection pool
			if err := get(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			var next atomic.Int64
			var wg sync.WaitGroup
			for range concurrency {
				wg.Go(func() {
					for next.Add(1) <= requests {
						if err := get(ctx); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
		}
		elapsed := time.Since(start) / time.Duration(b.N)
		b.ReportMetric(float64(elapsed)/float64(bound), "x-bound")
	}

	b.Run("pool", func(b *testing.B) {
		c, err := NewPool(Options{}).Client(HostConfig{BaseURL: srv.URL, Concurrency: concurrency})
		if err != nil {
			b.Fatal(err)
		}
		run(b, func(ctx context.Context) error {
			_, err := c.Do(ctx, &Request{URL: "/x"})
			return err
		})
	})
	b.Run("bare", func(b *testing.B) {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = concurrency
		hc := &http.Client{Transport: tr}
		defer tr.CloseIdleConnections()
		run(b, func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/x", nil)
			if err != nil {
				return err
			}
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, err = io.ReadAll(resp.Body)
			return err
		})
	})
}

// BenchmarkRequestCost sends one request at a time for a 10 KB answer
// (no latency, the server in this process) through a bare net/http client
// on a host's transport, through Do and through Download, interleaved, and
// reports each one's time and bytes allocated per request, and Do's and
// Download's over the bare client's: what ferry adds to a request.
func BenchmarkRequestCost(b *testing.B) {
	answer := strings.Repeat("x", 10_000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, answer)
	}))
	defer srv.Close()
	p := NewPool(Options{})
	c, err := p.Client(HostConfig{BaseURL: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	bare := &http.Client{Transport: p.hostTransport(1)}
	ways := []struct {
		name string
		send func() error
	}{
		{"bare", func() error {
			resp, err := bare.Get(srv.URL + "/x")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, err = io.ReadAll(resp.Body)
			return err
		}},
		{"do", func() error {
			_, err := c.Do(context.Background(), &Request{URL: "/x"})
			return err
		}},
		{"download", func() error {
			resp, err := c.Download(context.Background(), &Request{URL: "/x"}, Download{})
			if err == nil {
				resp.Spool.Close()
			}
			return err
		}},
	}
	const per = 500
	took := make([]time.Duration, len(ways))
	alloc := make([]uint64, len(ways))
	var ms runtime.MemStats
	for b.Loop() {
		for i, w := range ways {
			runtime.ReadMemStats(&ms)
			before, start := ms.TotalAlloc, time.Now()
			for range per {
				if err := w.send(); err != nil {
					b.Fatal(err)
				}
			}
			took[i] += time.Since(start)
			runtime.ReadMemStats(&ms)
			alloc[i] += ms.TotalAlloc - before
		}
	}
	n := float64(b.N * per)
	for i, w := range ways {
		b.ReportMetric(float64(took[i].Microseconds())/n, w.name+"-us/req")
		b.ReportMetric(float64(alloc[i])/n, w.name+"-B/req")
		if i > 0 {
			b.ReportMetric(float64(took[i])/float64(took[0]), w.name+"/bare")
		}
	}
}

// BenchmarkSecretPerRequest: a header derived from a secret and a parent's
// id is a new secret for each request (2,000 of them here), and each
// request redacts its URL (Do's shown URL), and at debug level a log line
// too. It reports the time per request with the newest secrets pending
// (the Replacer rebuilt when a text holds one, or every maxPending forms)
// and, as the baseline, rebuilt at every addition (eager), and their
// ratio.
func BenchmarkSecretPerRequest(b *testing.B) {
	const n = 2000
	run := func(eager, debug bool) time.Duration {
		r := newRedactor()
		start := time.Now()
		for i := range n {
			r.addSecrets(fmt.Sprintf("key-%08d-derived", i))
			if eager {
				r.fresh()
			}
			r.url(fmt.Sprintf("https://api.example.com/items/%d?page=2", i))
			if debug {
				r.text(fmt.Sprintf("http request GET https://api.example.com/items/%d status 200", i))
			}
		}
		r.text("the end of the run")
		return time.Since(start)
	}
	for _, debug := range []bool{false, true} {
		name := "info"
		if debug {
			name = "debug"
		}
		b.Run(name, func(b *testing.B) {
			var lazy, eager time.Duration
			for b.Loop() {
				lazy += run(false, debug)
				eager += run(true, debug)
			}
			b.ReportMetric(float64(lazy.Microseconds())/float64(b.N*n), "lazy-us/req")
			b.ReportMetric(float64(eager.Microseconds())/float64(b.N*n), "eager-us/req")
			b.ReportMetric(float64(lazy)/float64(eager), "lazy/eager")
		})
	}
}
