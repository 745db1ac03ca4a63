package port

import (
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
	"github.com/ferry-etl/ferry/engine/sink"
)

// benchEntities builds n entities over three blueprints (apps → envs →
// workloads, 1:3:6), so ordering and relations are exercised.
func benchEntities(n int) []sink.Entity {
	var out []sink.Entity
	apps := n / 10
	for a := range apps {
		app := fmt.Sprintf("app-%05d", a)
		out = append(out, sink.Entity{Blueprint: bpApp, Data: map[string]any{
			"identifier": app, "title": app, "properties": map[string]any{"createdAt": "2025-01-01T00:00:00Z"}, "relations": map[string]any{},
		}})
		for _, envName := range []string{"dev", "staging", "prod"} {
			env := app + "/" + envName
			out = append(out, sink.Entity{Blueprint: bpEnv, Data: map[string]any{
				"identifier": env, "title": envName,
				"properties": map[string]any{"type": envName, "lastDeploymentStatus": "succeeded", "lastDeploymentDate": "2025-06-01T08:30:00Z"},
				"relations":  map[string]any{"humanitecApplication": app},
			}})
			for _, w := range []string{"api", "worker"} {
				out = append(out, sink.Entity{Blueprint: bpWork, Data: map[string]any{
					"identifier": env + "/" + w, "title": w,
					"properties": map[string]any{"class": "default", "status": "Running", "updatedAt": "2025-06-01T08:31:00Z"},
					"relations":  map[string]any{"humanitecEnvironment": env},
				}})
			}
		}
	}
	return out
}

// BenchmarkLoad20k loads 20,000 entities into the Port simulator limited to 1,000
// requests per minute, scaled to 50 requests per 3 s windows (same rate),
// with 30 ms latency per request. The ceiling is 20 entities per request ×
// 50/3 requests per second = 333.3 entities/s; ceiling-ratio is the measured
// entity rate divided by it (target ≥ 0.9). Each iteration takes about a
// minute of wall time: run with -benchtime=1x.
func BenchmarkLoad20k(b *testing.B) {
	const (
		n       = 20_000
		limit   = 50
		window  = 3 * time.Second
		latency = 30 * time.Millisecond
	)
	for _, epoch := range []bool{false, true} {
		b.Run(fmt.Sprintf("reset-epoch=%v", epoch), func(b *testing.B) {
			benchLoad(b, n, portsim.Options{RateLimit: limit, Window: window, Latency: latency, ResetEpoch: epoch},
				20*float64(limit)/window.Seconds())
		})
	}
}

// BenchmarkLoad20kRerun is BenchmarkLoad20k's load run a second time, the
// entities already the sink's own, every one of them changed (a new
// title): the ownership check then costs one listing page per 1,000 owned
// entities instead of a lookup per 100, and every entity is written.
func BenchmarkLoad20kRerun(b *testing.B) {
	const limit, window, latency = 50, 3 * time.Second, 30 * time.Millisecond
	benchLoad(b, 20_000, portsim.Options{RateLimit: limit, Window: window, Latency: latency},
		20*float64(limit)/window.Seconds(), rerunChanged)
}

// BenchmarkLoad20kUnlimited is the same load with no rate limit: the ceiling
// is then Concurrency requests per latency (8 / 30 ms × 20 entities).
// The first load creates everything; a rerun over a changed source
// rewrites everything; a rerun over an unchanged source (a periodic
// sync's usual case) writes nothing: it lists the owned entities and
// compares.
func BenchmarkLoad20kUnlimited(b *testing.B) {
	const latency = 30 * time.Millisecond
	for _, mode := range []loadMode{firstLoad, rerunChanged, rerunUnchanged} {
		b.Run(mode.String(), func(b *testing.B) {
			benchLoad(b, 20_000, portsim.Options{RateLimit: -1, Latency: latency}, 20*8/latency.Seconds(), mode)
		})
	}
}

// loadMode is what a benchmarked load finds in Port.
type loadMode int

const (
	firstLoad      loadMode = iota // nothing
	rerunChanged                   // every entity, each with another title
	rerunUnchanged                 // every entity as the load maps it
)

func (m loadMode) String() string {
	return [...]string{"first", "rerun-changed", "rerun-unchanged"}[m]
}

func benchLoad(b *testing.B, n int, opts portsim.Options, ceiling float64, mode ...loadMode) {
	ents := benchEntities(n)
	m := firstLoad
	if len(mode) > 0 {
		m = mode[0]
	}
	bps := humanitecBlueprints(b, bpApp, bpEnv, bpWork)
	var rate, ratio float64
	var requests, n429, searches int
	for b.Loop() {
		b.StopTimer()
		srv := portsim.New(opts)
		s, err := New(Config{BaseURL: srv.URL(), ClientID: srv.ClientID(), ClientSecret: srv.ClientSecret(), Owner: "bench", Concurrency: 8})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.EnsureBlueprints(b.Context(), bps); err != nil {
			b.Fatal(err)
		}
		if m != firstLoad {
			for _, e := range ents {
				if m == rerunChanged {
					e = sink.Entity{Blueprint: e.Blueprint, Data: maps.Clone(e.Data)}
					e.Data["title"] = "before"
				}
				if err := s.Write(b.Context(), e); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := s.Finish(b.Context(), nil); err != nil {
				b.Fatal(err)
			}
			srv.ResetRequests()
		}
		b.StartTimer()
		start := time.Now()
		for _, e := range ents {
			if err := s.Write(b.Context(), e); err != nil {
				b.Fatal(err)
			}
		}
		rep, err := s.Finish(b.Context(), nil)
		el := time.Since(start)
		b.StopTimer()
		if err != nil || m != rerunUnchanged && rep.Upserted != n || m == rerunUnchanged && rep.Unchanged != n {
			b.Fatalf("err %v upserted %d unchanged %d", err, rep.Upserted, rep.Unchanged)
		}
		rate = float64(n) / el.Seconds()
		ratio = rate / ceiling
		requests, n429, searches = 0, 0, 0
		for _, r := range srv.Requests() {
			if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/entities/search") {
				searches++
			}
			if r.Method == http.MethodPost && len(r.Path) > 5 && r.Path[len(r.Path)-5:] == "/bulk" {
				requests++
				if r.Status == http.StatusTooManyRequests {
					n429++
				}
			}
		}
		srv.Close()
		b.StartTimer()
	}
	b.ReportMetric(rate, "entities/s")
	b.ReportMetric(ratio, "ceiling-ratio")
	b.ReportMetric(float64(requests), "bulk-requests")
	b.ReportMetric(float64(n429), "429s")
	b.ReportMetric(float64(searches), "searches")
}
