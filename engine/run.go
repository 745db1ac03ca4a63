package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink/jsonl"
)

// DefaultResumeWithin is how long an unfinished sync stays resumable.
const DefaultResumeWithin = 24 * time.Hour

// RunOptions configure one run.
type RunOptions struct {
	DryRun  bool
	Dest    string      // table destination URL; "" means DefaultDest
	Port    PortOptions // Port credentials, when the spec has entities
	Streams []string    // only these streams (and what drives them)
	// FullRefresh ignores and discards saved checkpoints.
	FullRefresh bool
	// ResumeWithin is how old an unfinished sync may be and still be
	// resumed; an older one is abandoned and a new sync starts. Zero means
	// DefaultResumeWithin; negative means always resume.
	ResumeWithin time.Duration
	// StateFile is where a spec without tables keeps its state (a rotated
	// OAuth2 refresh token); "" means DefaultStateFile, beside the spec.
	StateFile string
	Stdout    io.Writer
	Logger    *slog.Logger
	// OnStart, when set, receives the live counters once the run starts
	// (the CLI draws progress from them).
	OnStart func(*runner.Stats)
	Now     func() time.Time
}

// Result is the outcome of a run.
type Result struct {
	Summary *runner.Summary
	Dest    *Report // nil on a dry run
}

// Run extracts the spec and writes its outputs: to stdout as JSON Lines on a
// dry run, else to the table database and Port. It returns the result even
// when it also returns an error.
func Run(ctx context.Context, sp *Spec, cfg *Config, opts RunOptions) (*Result, error) {
	f := sp.f
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ResumeWithin == 0 {
		opts.ResumeWithin = DefaultResumeWithin
	}
	res := &Result{}
	for _, name := range opts.Streams {
		if f.Stream(name) == nil {
			return res, usage("--streams: unknown stream %q%s (the spec has: %s)", name, didYouMean(name, f.Streams.Keys()), strings.Join(f.Streams.Keys(), ", "))
		}
	}
	// One pool serves the sources and Port: one client, one set of limits
	// per host, one redactor.
	creds := newCredentials(f, opts)
	defer creds.close()
	pool := fetch.NewPool(fetch.Options{Logger: opts.Logger, Secrets: cfg.Secrets, Now: opts.Now, Credentials: creds})
	ropts := runner.Options{Config: cfg.Values, Pool: pool, Streams: opts.Streams, Logger: opts.Logger, Now: opts.Now}
	if opts.DryRun {
		for _, se := range f.SideEffects() {
			// A dry run reads the source as a run does: what it changes
			// there is said before it starts.
			opts.Logger.Warn("dry run: this request changes the source", "request", se)
		}
		r, err := runner.New(f, ropts)
		if err != nil {
			return res, err
		}
		printer := jsonl.New(opts.Stdout, cfg.Secrets...)
		out, err := newCheckedOutput(f, printer)
		if err != nil {
			return res, err
		}
		if opts.OnStart != nil {
			opts.OnStart(r.Stats())
		}
		res.Summary, err = r.Run(ctx, out)
		if ferr := printer.Flush(); ferr != nil && err == nil {
			err = ferr
		}
		return res, errors.Join(err, out.err())
	}
	dests, err := openDestinations(ctx, f, opts, pool)
	if err != nil {
		return res, err
	}
	defer dests.close()
	if dests.tables != nil {
		creds.useDB(dests.tables)
	}
	if ropts.State, err = dests.state(ctx, opts.Now(), opts.ResumeWithin); err != nil {
		return res, err
	}
	if dests.resuming {
		opts.Logger.Info("resuming an unfinished sync from its checkpoints", "spec", f.Name.V)
	}
	r, err := runner.New(f, ropts)
	if err != nil {
		return res, err
	}
	if opts.OnStart != nil {
		opts.OnStart(r.Stats())
	}
	res.Summary, err = r.Run(ctx, dests)
	// Finishing must happen even after an interrupt, so what was fetched is
	// written: it gets its own context.
	fctx := context.WithoutCancel(ctx)
	rep, ferr := dests.finish(fctx, res.Summary, err)
	res.Dest = rep
	return res, errors.Join(err, ferr)
}
