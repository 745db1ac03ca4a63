package table

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/sink"
)

// BenchmarkReload measures the change-only upsert against rewriting every
// row, on BenchmarkLoad's 200k rows (FERRY_BENCH_ROWS overrides): both
// destinations are loaded once, then loaded again, one after the other
// (alternating which goes first between iterations) — first with every
// row unchanged (the usual periodic sync of an upsert table), then with
// every row changed (the comparison's cost). unchanged_ratio and
// changed_ratio are change-only time over rewrite time in the same
// iteration (below 1: change-only is faster); the _cpu ratios are the
// same for this process's CPU time (SQLite's whole work, PostgreSQL's
// client side only). Run with -benchtime=4x or more: the box is shared.
func BenchmarkReload(b *testing.B) {
	nrows := 200000
	if s := os.Getenv("FERRY_BENCH_ROWS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		nrows = v
	}
	b.Run("sqlite", func(b *testing.B) {
		runReload(b, nrows, func(b *testing.B) string { return "sqlite:" + filepath.Join(b.TempDir(), "ferry.db") })
	})
	b.Run("postgres", func(b *testing.B) {
		url := os.Getenv(pgEnv)
		if url == "" {
			b.Skip("PostgreSQL benchmark skipped: set " + pgEnv)
		}
		runReload(b, nrows, func(*testing.B) string { return url })
	})
}

func runReload(b *testing.B, nrows int, dest func(*testing.B) string) {
	ctx := context.Background()
	var sums, cpus [2][2]time.Duration // pass (unchanged, changed) × side (change-only, rewrite)
	var unchanged int64
	for iter := 0; b.Loop(); iter++ {
		b.StopTimer()
		rows, _ := benchRows(nrows)
		var dbs [2]*DB
		var schemas [2]string
		var urls [2]string
		for k := range dbs {
			side := (iter + 1 + k) % 2 // the one loaded last reloads first: neither starts warm
			urls[side] = dest(b)
			schemas[side] = benchSchema(b)
			d, err := Open(ctx, urls[side], Options{Schema: schemas[side], rewriteUnchanged: side == 1,
				Tables: []Table{{Name: "res", PrimaryKey: []string{"id"}, Columns: map[string]string{"data": "JSON"}}}})
			if err != nil {
				b.Fatal(err)
			}
			dbs[side] = d
			for j := 0; j < nrows; j += benchBatch {
				if err := d.Write(ctx, rows[j:min(j+benchBatch, nrows)], nil); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StartTimer()
		for pass := range 2 {
			if pass == 1 {
				b.StopTimer()
				touch(rows)
				b.StartTimer()
			}
			// Whole passes, one side after the other (the order alternating
			// between iterations): interleaving batch by batch lets one
			// database's work (page cache, checkpoints) land on the other's
			// clock.
			for k := range 2 {
				side := (iter + k) % 2
				t0, c0 := time.Now(), cpuTime()
				for j := 0; j < nrows; j += benchBatch {
					end := min(j+benchBatch, nrows)
					cp := sink.Checkpoint{Stream: "res", Value: json.RawMessage(strconv.Itoa(j))}
					if err := dbs[side].Write(ctx, rows[j:end], []sink.Checkpoint{cp}); err != nil {
						b.Fatal(err)
					}
				}
				sums[pass][side] += time.Since(t0)
				cpus[pass][side] += cpuTime() - c0
			}
			if pass == 0 {
				unchanged = dbs[0].Unchanged()["res"]
			}
		}
		b.StopTimer()
		for side, d := range dbs {
			d.Close()
			dropBench(b, ctx, urls[side], schemas[side])
		}
		b.StartTimer()
	}
	if unchanged != int64(nrows) {
		b.Fatalf("the unchanged reload found %d unchanged rows of %d", unchanged, nrows)
	}
	rate := func(d time.Duration) float64 { return float64(nrows*b.N) / d.Seconds() }
	b.ReportMetric(rate(sums[0][0]), "changeonly_unchanged_rows/s")
	b.ReportMetric(rate(sums[0][1]), "rewrite_unchanged_rows/s")
	b.ReportMetric(float64(sums[0][0])/float64(sums[0][1]), "unchanged_ratio")
	b.ReportMetric(float64(sums[1][0])/float64(sums[1][1]), "changed_ratio")
	b.ReportMetric(float64(cpus[0][0])/float64(cpus[0][1]), "unchanged_cpu_ratio")
	b.ReportMetric(float64(cpus[1][0])/float64(cpus[1][1]), "changed_cpu_ratio")
}
