package fetch

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
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
