package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink/jsonl"
	"github.com/ferry-etl/ferry/engine/spec"
)

// RunOptions configure one run.
type RunOptions struct {
	DryRun  bool
	Dest    string   // destination URL; "" means the default
	Streams []string // only these streams (and what drives them)
	Stdout  io.Writer
	Logger  *slog.Logger
	// OnStart, when set, receives the live counters once the run starts
	// (the CLI draws progress from them).
	OnStart func(*runner.Stats)
	Now     func() time.Time
}

// ErrNoDestination is returned by a real (non dry-run) run for a spec
// output this build cannot write yet.
var ErrNoDestination = errors.New("no destination")

// Run extracts the spec and writes its outputs. It returns the summary even
// when it also returns an error.
func Run(ctx context.Context, f *spec.File, cfg *Config, opts RunOptions) (*runner.Summary, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if !opts.DryRun {
		return nil, fmt.Errorf("%w: only --dry-run is available in this build", ErrNoDestination)
	}
	pool := fetch.NewPool(fetch.Options{Logger: opts.Logger, Secrets: cfg.Secrets, Now: opts.Now})
	r, err := runner.New(f, runner.Options{Config: cfg.Values, Pool: pool, Streams: opts.Streams, Logger: opts.Logger, Now: opts.Now})
	if err != nil {
		return nil, err
	}
	if opts.OnStart != nil {
		opts.OnStart(r.Stats())
	}
	out := jsonl.New(opts.Stdout, cfg.Secrets...)
	sum, err := r.Run(ctx, out)
	if ferr := out.Flush(); ferr != nil && err == nil {
		err = ferr
	}
	return sum, err
}
