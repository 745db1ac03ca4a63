package engine

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ferry-etl/ferry/engine/eval"
	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/internal/panics"
	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink/jsonl"
	"github.com/ferry-etl/ferry/engine/sink/port"
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
	// OnStart, when set, receives the run's live counters once it starts
	// (the CLI draws progress from them).
	OnStart func(*Live)
	Now     func() time.Time
	// Record writes every HTTP exchange of the run to a cassette in this
	// directory; Replay answers every request from the cassette in this
	// directory, without the network (see package cassette).
	Record, Replay string
	// Transport, when set, is the network under the run (and under a
	// recording): tests route it to simulators.
	Transport http.RoundTripper
}

// Result is the outcome of a run.
type Result struct {
	Summary *runner.Summary
	Dest    *Report // nil on a dry run

	Started, Ended time.Time
	// Rows counts, per table, the rows written (on a dry run, printed);
	// Entities, per blueprint, the entities produced for Port (the Port
	// report says how many it accepted).
	Rows, Entities map[string]int64
	Hosts          []HostProgress // HTTP attempts per host, Port's included

	// redact is the run's redaction (its pool's, which knows the tokens
	// fetched during the run), for the report made of the result (see
	// NewRunReport); nil: nothing to hide.
	redact func(string) string
}

// Run extracts the spec and writes its outputs: to stdout as JSON Lines on a
// dry run, else to the table database and Port. It returns the result even
// when it also returns an error.
func Run(ctx context.Context, sp *Spec, cfg *Config, opts RunOptions) (*Result, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	var logs *logRedaction
	opts.Logger, logs = redactingLogger(opts.Logger, Redactor(cfg, opts.Port))
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// jq's now reads the run's clock too (ferry test's now), not only the
	// runner's windows and expiries.
	ctx = eval.ContextWithClock(ctx, opts.Now)
	if opts.ResumeWithin == 0 {
		opts.ResumeWithin = DefaultResumeWithin
	}
	nw, err := newNetwork(sp.f, cfg, opts)
	if err != nil {
		return &Result{Started: opts.Now(), redact: Redactor(cfg, opts.Port)}, err
	}
	res, err := runGuarded(ctx, sp, cfg, opts, nw, logs)
	res.redact = nw.redactor(cfg, opts.Port)
	// A failed or interrupted run is recorded too: its answers are what
	// happened.
	return res, errors.Join(err, nw.save(opts, err))
}

// runGuarded is run, a panic on the caller's goroutine (the runner's and
// the sinks' own goroutines recover theirs) the run's error, redacted by
// every secret the run knows, rather than the end of the process with an
// unredacted message.
func runGuarded(ctx context.Context, sp *Spec, cfg *Config, opts RunOptions, nw *network, logs *logRedaction) (res *Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panics.New(p, nw.redactor(cfg, opts.Port), opts.Logger)
			if res == nil {
				res = &Result{Started: opts.Now()}
			}
		}
	}()
	return run(ctx, sp, cfg, opts, nw, logs)
}

// redactor is the run's redaction: its pool's once made (it knows the
// tokens fetched during the run), else that of cfg's secrets and Port's
// credentials po.
func (n *network) redactor(cfg *Config, po PortOptions) func(string) string {
	if n.pool != nil {
		return n.pool.Redact
	}
	return Redactor(cfg, po)
}

// InternalError is the error of a panic p that a caller of the engine
// recovered (ferry's CLI, around a command): its text redacted by redact,
// its stack logged at debug level on log (nil: not logged).
func InternalError(p any, redact func(string) string, log *slog.Logger) error {
	return panics.New(p, redact, log)
}

// Redactor hides the values of cfg's secret inputs and Port's credentials
// po from a text made outside a run (a run's own redaction knows more: the
// tokens it fetched).
func Redactor(cfg *Config, po PortOptions) func(string) string {
	return fetch.NewPool(fetch.Options{Secrets: runSecrets(cfg, po)}).Redact
}

// run is a run; logs is the redaction of opts.Logger, the pool's once it
// exists.
func run(ctx context.Context, sp *Spec, cfg *Config, opts RunOptions, nw *network, logs *logRedaction) (*Result, error) {
	f := sp.f
	res := &Result{Started: opts.Now()}
	for _, name := range opts.Streams {
		if f.Stream(name) == nil {
			return res, usage("--streams: unknown stream %q%s (the spec has: %s)", name, didYouMean(name, f.Streams.Keys()), strings.Join(f.Streams.Keys(), ", "))
		}
	}
	// One pool serves the sources and Port: one client, one set of limits
	// per host, one redactor.
	creds := newCredentials(f, opts)
	defer creds.close()
	secrets := runSecrets(cfg, opts.Port)
	clock := newPoolClock(opts.Now)
	pool := fetch.NewPool(fetch.Options{Logger: opts.Logger, Secrets: secrets, Now: clock.now, Credentials: creds,
		Transport: nw.transport, WrapTransport: nw.wrap, Sleep: nw.sleep(clock)})
	nw.pool = pool
	logs.use(pool.Redact)
	ropts := runner.Options{Config: cfg.Values, Pool: pool, Streams: opts.Streams, Logger: opts.Logger, Now: opts.Now}
	if opts.DryRun {
		if sp.WritesPort() {
			// The owner a real run would use: a bad port.owner fails here too.
			if _, err := PortOwner(sp, cfg); err != nil {
				return res, err
			}
		}
		for _, se := range f.SideEffects() {
			// A dry run reads the source as a run does: what it changes
			// there is said before it starts.
			opts.Logger.Warn("dry run: this request changes the source", "request", se)
		}
		r, err := runner.New(f, ropts)
		if err != nil {
			return res, err
		}
		// The pool's redaction: tokens fetched during the run and presigned
		// links' signatures too, not only the secret inputs.
		printer := jsonl.NewRedact(opts.Stdout, pool.Redact)
		out, err := newCheckedOutput(f, printer)
		if err != nil {
			return res, err
		}
		counted, counts := newCounting(out)
		live := newLive(r.Stats(), pool, counts, "")
		if opts.OnStart != nil {
			opts.OnStart(live)
		}
		res.Summary, err = r.Run(ctx, counted)
		if ferr := printer.Flush(); ferr != nil && err == nil {
			err = ferr
		}
		res.finish(live, opts.Now())
		return res, errors.Join(err, out.err())
	}
	dests, err := openDestinations(ctx, f, cfg, opts, pool)
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
	if opts.FullRefresh && len(opts.Streams) > 0 {
		// The streams that drive those refreshed are read in full too (from
		// an incremental parent's cursor, the children of the parents it
		// leaves out would not be read again); their state stays in the
		// destination for the runs that produce them.
		for _, name := range opts.Streams {
			for _, up := range f.Stream(name).Upstream() {
				for key := range ropts.State {
					if stateStream(key) == up.Name {
						delete(ropts.State, key)
					}
				}
			}
		}
	}
	if dests.resuming {
		opts.Logger.Info("resuming an unfinished sync from its checkpoints", "spec", f.Name.V, "saved_keys", dests.saved.Len())
	}
	ropts.SavedKeys, ropts.KeyTypes = dests.saved, dests.KeyTypes()
	r, err := runner.New(f, ropts)
	if err != nil {
		return res, err
	}
	counted, counts := newCounting(dests)
	portBase := ""
	if dests.port != nil {
		portBase = cmp.Or(opts.Port.BaseURL, port.DefaultBaseURL)
	}
	live := newLive(r.Stats(), pool, counts, portBase)
	if opts.OnStart != nil {
		opts.OnStart(live)
	}
	res.Summary, err = r.Run(ctx, counted)
	live.phase.Store(PhaseWriting)
	// Finishing must happen even after an interrupt, so what was fetched is
	// written: it gets its own context.
	fctx := context.WithoutCancel(ctx)
	rep, ferr := dests.finish(fctx, res.Summary, err)
	err = dests.addRefused(res.Summary, err)
	res.Dest = rep
	res.finish(live, opts.Now())
	return res, errors.Join(err, ferr)
}

// finish copies the final counts into the result.
func (res *Result) finish(live *Live, now time.Time) {
	p := live.Progress()
	res.Ended, res.Rows, res.Entities, res.Hosts = now, p.Rows, p.Entities, p.Hosts
}
