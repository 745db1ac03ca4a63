package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ferry-etl/ferry/engine/eval"
	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/internal/panics"
	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink"
	"github.com/ferry-etl/ferry/engine/sink/port"
	"github.com/ferry-etl/ferry/engine/spec"
)

// CheckOptions configure a check.
type CheckOptions struct {
	// Dest and StateFile are where a run keeps rotated credentials (an
	// OAuth2 refresh token the token call replaces): a check that renews
	// one saves it there too, or the next run would send a spent one.
	Dest, StateFile string
	Port            PortOptions // Port's credentials, when the spec writes entities
	Streams         []string    // only these streams (and what drives them)
	Logger          *slog.Logger
	Now             func() time.Time
	// Transport, when set, is the network (tests route it to simulators).
	Transport http.RoundTripper
}

// Check outcomes of a stream.
const (
	CheckOK         = "ok"          // its request answered and its first page was read
	CheckFailed     = "failed"      // its request, or reading its answer, failed
	CheckNotReached = "not reached" // it sent no request (no parent record led to one, or `when` was false)
	CheckLeftOut    = "left out"    // not asked: it would change the source, or needs a stream that would
	// CheckSkipped: its request was answered, but a response rule skipped
	// the answer or read it as no data: it proves nothing of the endpoint
	// (a wrong base URL answers 404 too). Not a failure: a run reads it so.
	CheckSkipped = "skipped"
)

// StreamCheck is what a check learnt of one stream.
type StreamCheck struct {
	Stream   string `json:"stream"`
	Status   string `json:"status"`
	Requests int64  `json:"requests"`
	Records  int64  `json:"records"` // on the page read
	// Detail is the failure (with the request and status, secrets
	// redacted), or why the stream was not reached or left out.
	Detail string `json:"detail,omitempty"`
}

// PortCheck is what a check learnt of Port: its token and blueprints.
type PortCheck struct {
	Status string `json:"status"` // CheckOK or CheckFailed
	Detail string `json:"detail,omitempty"`
	// Blueprints a run would create or update (the rest are as the spec
	// has them).
	Changes []string `json:"changes,omitempty"`
}

// CheckResult is the outcome of a check.
type CheckResult struct {
	Streams []StreamCheck `json:"streams"`
	Port    *PortCheck    `json:"port,omitempty"`
}

// Failed reports whether any stream or Port failed.
func (r *CheckResult) Failed() bool {
	for _, s := range r.Streams {
		if s.Status == CheckFailed {
			return true
		}
	}
	return r.Port != nil && r.Port.Status == CheckFailed
}

// Proved reports whether anything answered: a stream's request (ok), or
// Port. A check in which every stream was left out, not reached or
// skipped tried no credential against any endpoint.
func (r *CheckResult) Proved() bool {
	for _, s := range r.Streams {
		if s.Status == CheckOK && s.Requests > 0 {
			return true
		}
	}
	return r.Port != nil && r.Port.Status == CheckOK
}

// ErrCheckFailed is Check's error when a stream or Port failed: the
// result says which.
var ErrCheckFailed = errors.New("check failed")

// ErrCheckedNothing is Check's error when no request answered (see
// CheckResult.Proved): passing, the check would vouch for nothing.
var ErrCheckedNothing = errors.New("nothing was checked: every stream was left out, not reached or skipped")

// Check tries the spec's credentials and endpoints with as few requests
// as tell whether a run could read them: each stream reads one page (that
// of the first request chain to send a request: under the first parent
// record that leads to one, in the latest time window) and Port, when the
// spec writes entities, gives a token and lists its blueprints. Nothing is
// written, no checkpoint or cursor is saved; requests that would change
// the source (export jobs, PUT and PATCH) are not sent, and neither are
// those of streams below them or reading a lookup they fill. Records whose mapping fails are not a
// failed check (a page of a lookup is not the whole of it): the run
// reports them.
func Check(ctx context.Context, sp *Spec, cfg *Config, opts CheckOptions) (_ *CheckResult, err error) {
	f := sp.f
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	var logs *logRedaction
	opts.Logger, logs = redactingLogger(opts.Logger, Redactor(cfg, opts.Port))
	// A panic on this goroutine (the runner's and the Port sink's recover
	// theirs) is the error, redacted as the logs are: by the pool's
	// redaction once it exists, which knows the tokens fetched (Port's),
	// as a run's is (see runGuarded).
	defer panics.Recover(&err, logs.text, opts.Logger)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ctx = eval.ContextWithClock(ctx, opts.Now)
	for _, name := range opts.Streams {
		if f.Stream(name) == nil {
			return nil, usage("--streams: unknown stream %q%s (the spec has: %s)", name, didYouMean(name, f.Streams.Keys()), strings.Join(f.Streams.Keys(), ", "))
		}
	}
	res := &CheckResult{}
	leftOut := map[string]string{}
	var asked []string
	for _, name := range f.Streams.Keys() {
		if len(opts.Streams) > 0 && !slices.Contains(opts.Streams, name) {
			continue
		}
		if why := changesSource(f, f.Stream(name)); why != "" {
			leftOut[name] = why
			continue
		}
		asked = append(asked, name)
	}

	ro := RunOptions{DryRun: true, Dest: opts.Dest, StateFile: opts.StateFile, Logger: opts.Logger, Now: opts.Now}
	creds := newCredentials(f, ro)
	defer creds.close()
	secrets := runSecrets(cfg, opts.Port)
	pool := fetch.NewPool(fetch.Options{Logger: opts.Logger, Secrets: secrets, Now: newPoolClock(opts.Now).now, Credentials: creds, Transport: opts.Transport})
	logs.use(pool.Redact)

	var sum *runner.Summary
	if len(asked) > 0 {
		r, err := runner.New(f, runner.Options{Config: cfg.Values, Pool: pool, Streams: asked, Logger: opts.Logger, Now: opts.Now, Probe: true})
		if err != nil {
			return nil, err
		}
		var runErr error
		sum, runErr = r.Run(ctx, discard{})
		if runErr != nil && !isRunError(runErr) {
			return nil, runErr
		}
	}
	failures := map[string][]string{}
	if sum != nil {
		for _, fl := range sum.Failures {
			if !fl.Record() {
				failures[fl.Stream] = append(failures[fl.Stream], pool.Redact(fl.Error()))
			}
		}
	}
	stats := map[string]runner.Snapshot{}
	skips := map[string][]string{}
	if sum != nil {
		for _, s := range sum.Streams {
			stats[s.Stream] = s
		}
		for _, sk := range sum.Skips {
			skips[sk.Stream] = append(skips[sk.Stream], pool.Redact(sk.Reason))
		}
	}
	for _, name := range f.Streams.Keys() {
		st := stats[name]
		if len(opts.Streams) > 0 && !slices.Contains(opts.Streams, name) && st.Requests == 0 && len(failures[name]) == 0 {
			continue // neither asked for nor asked to drive one that was
		}
		sc := StreamCheck{Stream: name}
		sc.Requests, sc.Records = st.Requests, st.Records
		switch {
		case leftOut[name] != "":
			sc.Status, sc.Detail = CheckLeftOut, leftOut[name]
		case len(failures[name]) > 0:
			sc.Status, sc.Detail = CheckFailed, strings.Join(failures[name], "; ")
		case f.Stream(name).Partitions != nil:
			sc.Status, sc.Detail = CheckOK, "partitions: values from the spec, no request"
		case len(skips[name]) > 0:
			sc.Status, sc.Detail = CheckSkipped, "a response rule skipped its answer: "+strings.Join(skips[name], "; ")
		case st.Empty > 0:
			sc.Status, sc.Detail = CheckSkipped, "a response rule read its answer as no data"
		case st.Requests == 0:
			st.Unbuilt = pool.Redact(st.Unbuilt)
			sc.Status, sc.Detail = CheckNotReached, notReached(f.Stream(name), st)
		default:
			sc.Status = CheckOK
		}
		res.Streams = append(res.Streams, sc)
	}

	if sp.WritesPort() {
		res.Port = checkPort(ctx, f, cfg, opts, pool)
	}
	switch {
	case res.Failed():
		return res, ErrCheckFailed
	case !res.Proved():
		return res, ErrCheckedNothing
	}
	return res, nil
}

// changesSource says why a check does not ask the stream: its own
// requests, or those of a stream it needs, would change the source. It
// needs what a run reads with it (see runner's selection): its parent, its
// batch source, and the streams filling the lookups that it, its tables'
// rows or its entities read.
func changesSource(f *spec.File, s *spec.Stream) string {
	return changesSourceSeen(f, s, map[string]bool{})
}

func changesSourceSeen(f *spec.File, s *spec.Stream, seen map[string]bool) string {
	if seen[s.Name] {
		return "" // a cycle is the spec's to refuse; told once is enough
	}
	seen[s.Name] = true
	if se := s.SideEffect(); se != "" {
		return se
	}
	type need struct {
		s   *spec.Stream
		via string // how s needs it
	}
	var needs []need
	for _, up := range []*spec.Stream{s.Parent(), s.BatchOf()} {
		if up != nil {
			needs = append(needs, need{up, "stream " + up.Name})
		}
	}
	for _, name := range lookupsReadBy(f, s) {
		if l := f.Lookups.Get(name); l != nil {
			if from := f.Stream(l.From.V); from != nil {
				needs = append(needs, need{from, "lookup " + name + " of stream " + from.Name})
			}
		}
	}
	for _, n := range needs {
		if why := changesSourceSeen(f, n.s, seen); why != "" {
			if !strings.HasPrefix(why, "needs ") {
				why = fmt.Sprintf("needs %s, whose %s", n.via, why)
			}
			return why
		}
	}
	return ""
}

// lookupsReadBy lists the lookups a stream's own programs, its tables'
// rows and its Port entities read.
func lookupsReadBy(f *spec.File, s *spec.Stream) []string {
	names := slices.Clone(s.Reads())
	for i := range f.Tables.Items {
		if t := &f.Tables.Items[i].Value; t.FedBy(s.Name) {
			names = append(names, t.Reads()...)
		}
	}
	if f.Port != nil {
		for i := range f.Port.Entities {
			if e := &f.Port.Entities[i]; e.From.V == s.Name {
				names = append(names, e.Reads()...)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// notReached says why a stream sent no request.
func notReached(s *spec.Stream, st runner.Snapshot) string {
	switch {
	case st.SkipReason != "":
		return st.SkipReason
	case len(s.Reads()) > 0 && st.Skipped == 0 && st.Unbuilt != "":
		return "no request could be built from the lookups' values the check read (one page of each lookup's stream; a run reads every page and may find them): the first error, " + st.Unbuilt
	case len(s.Reads()) > 0 && st.Skipped == 0:
		return "no request could be built from the lookups' values the check read (one page of each lookup's stream), or no parent led to one"
	case s.BatchOf() != nil && st.Skipped == 0:
		return fmt.Sprintf("the page of stream %s read held no record for its batch (a check sends no empty batch)", s.BatchOf().Name)
	case s.Parent() != nil:
		return fmt.Sprintf("no record of stream %s led to a request (none on the page read, or `when` false for it)", s.Parent().Name)
	case st.Skipped > 0:
		return "`when` is false"
	}
	return "no request was sent"
}

// checkPort asks Port for a token and its blueprints.
func checkPort(ctx context.Context, f *spec.File, cfg *Config, opts CheckOptions, pool *fetch.Pool) *PortCheck {
	if opts.Port.ClientID == "" || opts.Port.ClientSecret == "" {
		return &PortCheck{Status: CheckFailed, Detail: ErrNoPortCredentials.Error()}
	}
	ps, err := newPortSink(f, cfg, opts.Port, pool, opts.Logger)
	if err != nil {
		return &PortCheck{Status: CheckFailed, Detail: pool.Redact(err.Error())}
	}
	defer ps.Close()
	changes, err := ps.PlanBlueprints(ctx, f.Blueprints())
	if err != nil {
		return &PortCheck{Status: CheckFailed, Detail: pool.Redact(err.Error())}
	}
	pc := &PortCheck{Status: CheckOK}
	for _, c := range changes {
		if c.Action != port.ActionUnchanged {
			pc.Changes = append(pc.Changes, c.Blueprint+": "+c.Action)
		}
	}
	return pc
}

// discard is a check's Output: what the page read maps to goes nowhere.
type discard struct{}

func (discard) Row(context.Context, sink.Row) error       { return nil }
func (discard) Entity(context.Context, sink.Entity) error { return nil }
