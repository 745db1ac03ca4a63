// Command ferry runs declarative extraction specs: it reads APIs described in
// YAML and loads tables and Port entities. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// defaultGCPercent: ferry's live heap is small and bounded (a window of
// pages per stream), so the default 100% makes the collector run constantly
// and cost more than the mapping; 400% nearly halves CPU per record and lets
// the second core add throughput (BenchmarkMapEntity, *_gogc400). GOGC in
// the environment still wins.
const defaultGCPercent = 400

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
