package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-etl/ferry/engine/eval"
	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/internal/panics"
	"github.com/ferry-etl/ferry/engine/sink"
	"github.com/ferry-etl/ferry/engine/spec"
)

// Output receives what the run produces, in deterministic order per stream.
// Row and Entity calls for one stream come from one goroutine; calls for
// different streams may be concurrent.
type Output interface {
	Row(ctx context.Context, r sink.Row) error
	Entity(ctx context.Context, e sink.Entity) error
}

// Checkpointer is implemented by Outputs that keep resumable state. After
// the records of a page have been passed to Row and Entity, the runner calls
// Checkpoint with where that request chain stands; an Output commits it with
// those rows, never before them. An incremental parent's cursor may come
// from another stream's goroutine (the one whose chain finished last below
// it): Checkpoint must be safe for concurrent use.
type Checkpointer interface {
	Checkpoint(ctx context.Context, cp sink.Checkpoint) error
}

// Options configure a Runner.
type Options struct {
	// State holds the checkpoints of an interrupted run, by stream and
	// partition; the run resumes from them (see Checkpoint).
	State map[string]map[string]json.RawMessage
	// SavedKeys are the primary keys of the rows the interrupted runs of
	// the sync committed: a row of this run with one of them is a
	// duplicate, unless it re-reads the partition that saved it.
	SavedKeys *SavedKeys
	// KeyTypes are, by table, the types of its primary-key columns as the
	// destination stores them (table.DB.KeyTypes; "" where the first value
	// written decides), which the duplicate check keys rows by. A table
	// not in it (a dry run: no table) is keyed by its declared types.
	KeyTypes map[string][]string

	Config  map[string]any // resolved config values, by name
	Pool    *fetch.Pool
	Streams []string // run only these (and what they need); empty: all
	Logger  *slog.Logger
	// Window is the number of runs of one stream fetched ahead of its
	// releaser; 0 means twice the stream's HTTP concurrency, at least 8
	// (see window).
	Window int
	Now    func() time.Time
	// Sleep waits between the polls of an async job; it must return
	// ctx.Err() as soon as ctx is done. Default: the pool's (a timer; none in a replay).
	Sleep func(ctx context.Context, d time.Duration) error
	// Probe reads one page of each stream (ferry check): the first of its
	// request chains to send a request reads its first page (of its last
	// time window) and stops; no other chain of the stream sends one.
	// Only for a run that saves nothing (its checkpoints would say chains
	// were read that were not).
	Probe bool
}

// Runner runs one spec.
type Runner struct {
	// secretTmpls holds, for each request template met (a header, a
	// query or body value, a path or URL), which of its parts read a
	// secret input (spec.File.SecretParts): parsed once a template, not
	// once a request.
	secretTmpls sync.Map // *eval.Template -> []bool
	// recordTmpls holds, for each request template met, the sources of
	// its parts that only read a record (spec.RecordOnlyParts), by index.
	recordTmpls sync.Map // *eval.Template -> map[int]string
	f           *spec.File
	opts        Options
	log         *slog.Logger
	streams     map[string]*stream
	order       []*stream
	stats       *Stats
	targets     *targets
	lookups     *lookups
	// exprReadsLookups: some stream's own programs read a lookup, so the
	// lookups are also kept normalized for expr.
	exprReadsLookups bool
	started          time.Time // the run's start: the end of the last time window by default
	// exprConfig is the config as expr sees it (typed dates and durations).
	exprConfig map[string]any

	linksOnce sync.Once
	links     *linkSecrets // see secretLinks
}

// stream is what a run knows of one stream, whatever the stage.
type stream struct {
	s           *spec.Stream
	client      *lazyClient
	method      string
	selected    bool           // its tables/entities are produced (--streams)
	skip        string         // not fetched in this run, and why ("" : fetched)
	allTables   []*spec.Table  // mapped from this stream, when selected
	allEntities []*spec.Entity // mapped from this stream, when selected
	fills       []*lookup      // lookups filled from this stream
	// unrunBelow names a stream below this one (for_each or batch, at
	// any depth) that --streams leaves out: it is not read for the
	// records this run reads, so this stream's cursor is not saved (the
	// next run would ask only what changed after them, and never read
	// their children). "": none. unrunWarned: said once.
	unrunBelow  string
	unrunWarned atomic.Bool
	stat        *StreamStats
	body        *bodyPlan // how its answers become records
	jobs        sync.Map  // an async stream's export jobs created in this run, by partition
	// firsts: a later stage reads the stream again; what its own stage
	// listed, to compare (nil: none does).
	firsts *firstReadings
	// replayable: some run of the spec may read the stream's committed
	// pages again (a stream is below it, it is recursive, feeds a Port
	// entity or fills a lookup), whatever this run's --streams reads:
	// its checkpoints hold their page's records (see pageRecs).
	replayable bool
}

// streamState is a stream's part in one stage of the run (see
// spec.Stream.Stage): in its own stage it produces its rows and entities
// and fills its lookups; in a later stage it is only read again, to drive
// the children that run there.
type streamState struct {
	*stream
	produce bool // writes rows, entities and checkpoints
	fill    bool // fills its lookups
	own     bool // the stream's own stage (else read again)
	// read counts what the stream reads (chains, pages' records, windows,
	// parents skipped by `when`, empty answers): its own counters in its
	// stage; in a later stage, which reads it again only to drive its
	// children, counters nobody shows, or its records and chains would be
	// counted twice. Requests (sent again), pages and failures always count.
	read     *StreamStats
	children []*streamState // fan out per record (for_each, no batch)
	batchers []*streamState // run once per run of this stream, with its records
	tables   []*spec.Table  // mapped in this stage
	entities []*spec.Entity // mapped in this stage
	runs     chan *run      // in release order
	// jobMarks carries the checkpoint of an export job just created, to
	// commit ahead of release order: it covers no records, and the job
	// must be in the state before it is polled (see chainRun.create).
	jobMarks chan jobMark
	// probed: a chain of the stream sent its request (Options.Probe);
	// probeUnbuilt: a chain could not build its request from the lookups
	// the probe read (logged once).
	probed, probeUnbuilt atomic.Bool
	// heldBack: a chain's cursor was held back before the one it started
	// from, and the run said so (see warnHeldBack).
	heldBack atomic.Bool
	// otherUnit: a number cursor in another unit than the initial epoch
	// cursor's was held at the run's start, and the run said so.
	otherUnit atomic.Bool
	// farAhead: a number cursor more than a day after the run began, in
	// the initial epoch cursor's unit, was held, and the run said so.
	farAhead atomic.Bool
	// epochUnheld: a number cursor that reads as an epoch time near the
	// run's start was saved as read (initial is no epoch), and the run
	// said so (see warnEpochUnheld).
	epochUnheld atomic.Bool
	// naive: a cursor saved was a time without a UTC offset, never held
	// at the run's start, and the run said so (see warnNaive).
	naive atomic.Bool
	// offOrigin: a chain's next page was on another origin, and the run
	// said so (see warnOffOrigin).
	offOrigin atomic.Bool
	// recsUnknown: a chain replayed a committed page whose records'
	// hashes its checkpoint did not hold, and the run said so (see
	// chainRun.resumeRecs).
	recsUnknown atomic.Bool
	// chains are the partitions this stage has run chains of, by hash
	// (see chainOnce).
	chainsMu sync.Mutex
	chains   map[uint64]chainsOf
}

// chainsOf is what a stage ran of one partition: the digest (hashed) of
// the parent records its latest chain ran for, and how many chains ran.
type chainsOf struct {
	digest uint64
	n      uint32
}

// jobMark is an export job's checkpoint and the run it belongs to.
type jobMark struct {
	rn   *run
	mark *pageState
}

// lazyClient resolves a stream's HTTP settings once, when first needed: a
// stream that is never requested (its `when` is false for every parent)
// needs no base URL and no credentials.
type lazyClient struct {
	once sync.Once
	make func() (*fetch.Client, error)
	c    *fetch.Client
	err  error
}

func (l *lazyClient) get() (*fetch.Client, error) {
	l.once.Do(func() { l.c, l.err = l.make() })
	return l.c, l.err
}

// New prepares a runner. A stream that fans out from nothing and whose
// `when` is false with the run's config is skipped whole (with its
// descendants), before anything about its requests is resolved. Streams
// that will certainly be requested have their HTTP settings resolved here,
// so a missing credential stops the run before the first request; a stream
// with a per-parent `when` resolves them on its first request.
func New(f *spec.File, opts Options) (_ *Runner, err error) {
	defer func() {
		// Resolving a template may fail on the secret it renders, and an
		// expr or jq message quotes the value.
		err = redactErr(err, opts.Pool.Redact)
	}()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = opts.Pool.Sleep
	}
	r := &Runner{f: f, opts: opts, log: opts.Logger, streams: map[string]*stream{}, stats: newStats(opts.Now),
		targets: newTargets(f, opts.SavedKeys), lookups: newLookups(f), started: opts.Now().UTC(),
		exprConfig: eval.Normalize(f.ExprValues(opts.Config)).(map[string]any)}
	// The run's clock answers now() in templates (ferry test pins it).
	cfgEnv := map[string]any{spec.VarConfig: r.exprConfig, eval.ClockVar: opts.Now}
	want, err := r.selection()
	if err != nil {
		return nil, err
	}
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		if !want.needed[s.Name] {
			continue
		}
		method := "GET"
		if s.Request.Method.Set {
			method = s.Request.Method.V
		}
		st := &stream{s: s, method: method, selected: want.selected[s.Name], stat: r.stats.stream(s.Name),
			fills: r.lookups.from(s.Name), body: planBody(s)}
		st.client = &lazyClient{make: func() (*fetch.Client, error) {
			hc, err := hostConfig(f, s, cfgEnv)
			if err != nil {
				return nil, err
			}
			return opts.Pool.Client(hc)
		}}
		st.body.members = recordMembers(f, s, st.body)
		r.streams[s.Name] = st
		r.order = append(r.order, st)
		r.exprReadsLookups = r.exprReadsLookups || len(s.Reads()) > 0
	}
	for i := range f.Streams.Items {
		d := &f.Streams.Items[i].Value
		if want.needed[d.Name] {
			continue
		}
		for _, up := range d.Upstream() {
			if st := r.streams[up.Name]; st != nil && st.unrunBelow == "" {
				st.unrunBelow = d.Name
			}
		}
	}
	for i := range f.Streams.Items {
		d := &f.Streams.Items[i].Value
		for _, up := range []*spec.Stream{d.Parent(), d.BatchOf()} {
			if st := r.streams[nameOf(up)]; st != nil {
				st.replayable = true
			}
		}
	}
	for _, st := range r.order {
		st.replayable = st.replayable || st.s.Recursive() || len(f.LookupsFrom(st.s.Name)) > 0
	}
	if f.Port != nil {
		for _, e := range f.Port.Entities {
			if st := r.streams[e.From.V]; st != nil {
				st.replayable = true
			}
		}
	}
	decided := map[*stream]bool{}
	for _, st := range r.order {
		if err := r.decideSkip(st, cfgEnv, decided); err != nil {
			return nil, err
		}
	}
	r.markReadAgain()
	for _, st := range r.order {
		if st.skip != "" {
			st.stat.skip(st.skip)
			continue
		}
		if st.s.When.Program() == nil || st.s.Parent() == nil {
			// Requested for sure: a missing credential fails now.
			if _, err := st.client.get(); err != nil {
				return nil, fmt.Errorf("stream %s: %w", st.s.Name, err)
			}
		}
	}
	for i := range f.Tables.Items {
		t := &f.Tables.Items[i].Value
		for _, name := range t.Streams() {
			if st := r.streams[name]; st != nil && st.selected {
				st.allTables = append(st.allTables, t)
			}
		}
	}
	if f.Port != nil {
		for i := range f.Port.Entities {
			e := &f.Port.Entities[i]
			if st := r.streams[e.From.V]; st != nil && st.selected {
				st.allEntities = append(st.allEntities, e)
			}
		}
	}
	return r, nil
}

// decideSkip sets st.skip when the stream is not fetched in this run: its
// parent or batch source is skipped, or it is a root stream whose `when` is
// false with the run's config. Parents are decided first, wherever they
// are in the spec.
func (r *Runner) decideSkip(st *stream, cfgEnv map[string]any, decided map[*stream]bool) error {
	if decided[st] {
		return nil
	}
	decided[st] = true
	s := st.s
	for _, up := range []*spec.Stream{s.Parent(), s.BatchOf()} {
		if up == nil {
			continue
		}
		u := r.streams[up.Name]
		if err := r.decideSkip(u, cfgEnv, decided); err != nil {
			return err
		}
		if u.skip != "" {
			st.skip = "stream " + up.Name + " is skipped"
			return nil
		}
	}
	w := s.When.Program()
	if w == nil || s.Parent() != nil {
		return nil
	}
	env := cfgEnv
	if s.Incremental != nil {
		cur, _, _ := r.watermark(st, "")
		env = map[string]any{spec.VarConfig: cfgEnv[spec.VarConfig], eval.ClockVar: cfgEnv[eval.ClockVar], spec.VarCursor: eval.Normalize(cur)}
	}
	if s.Recursive() {
		// Its when may name parent: null for the root chain, as the
		// chain's own environment has it (see Runner.env).
		env = maps.Clone(env)
		env[spec.VarParent], env[spec.VarParents] = nil, map[string]any{}
	}
	ok, err := w.EvalBool(env)
	if err != nil {
		return fmt.Errorf("stream %s: when: %w", s.Name, err)
	}
	if !ok {
		st.skip = "when is false: " + s.When.V
	}
	return nil
}

type selection struct{ needed, selected map[string]bool }

// selection resolves --streams: the named streams are produced; their
// ancestors and batch sources are fetched too, because they drive them.
func (r *Runner) selection() (selection, error) {
	sel := selection{needed: map[string]bool{}, selected: map[string]bool{}}
	names := r.opts.Streams
	if len(names) == 0 {
		names = r.f.Streams.Keys()
	}
	var need func(s *spec.Stream)
	need = func(s *spec.Stream) {
		if sel.needed[s.Name] {
			return
		}
		sel.needed[s.Name] = true
		if p := s.Parent(); p != nil {
			need(p)
		}
		if b := s.BatchOf(); b != nil {
			need(b)
		}
		// The streams that fill the lookups it (or its mappings) read.
		for _, name := range r.readsOf(s) {
			if l := r.f.Lookups.Get(name); l != nil {
				need(r.f.Stream(l.From.V))
			}
		}
	}
	for _, n := range names {
		s := r.f.Stream(n)
		if s == nil {
			return sel, fmt.Errorf("unknown stream %q (the spec has: %s)", n, strings.Join(r.f.Streams.Keys(), ", "))
		}
		sel.selected[n] = true
		need(s)
	}
	return sel, nil
}

// Stats returns the live counters of the run, for progress displays.
func (r *Runner) Stats() *Stats { return r.stats }

// Run executes the spec, stage by stage (see spec.Stream.Stage): a stage
// starts once the lookups it reads are complete. It returns a *Summary even
// on error; the error is a *RunError listing every failed request chain and
// record, or the first fatal error (an Output failure, cancellation).
func (r *Runner) Run(ctx context.Context, out Output) (*Summary, error) {
	fails := &failures{redact: r.opts.Pool.Redact}
	var err error
	for k := 0; k <= r.lastStage() && err == nil; k++ {
		sts := r.stage(k)
		if len(sts) == 0 {
			continue
		}
		err = r.runStage(ctx, sts, out, fails)
		if err == nil {
			r.lookups.freeze(k, r, fails)
		}
	}
	sum := r.summary(fails, err)
	for _, d := range sum.Duplicates {
		r.log.Warn("duplicate keys", "kind", d.Kind, "name", d.Name, "count", d.Count, "examples", strings.Join(d.Examples, "; "))
	}
	for _, s := range sum.Streams {
		if s.Replaced > 0 {
			// Once a stream, not once a string: an API that sends such
			// text sends it often.
			r.log.Warn("strings of the answers held invalid UTF-8 or a lone surrogate escape: read and written with U+FFFD in their place",
				"stream", s.Stream, "strings", s.Replaced)
		}
	}
	if err != nil {
		return sum, redactErr(err, fails.redact)
	}
	if len(fails.list) > 0 {
		return sum, &RunError{Failures: fails.list}
	}
	return sum, nil
}

func (r *Runner) lastStage() int {
	last := 0
	for _, st := range r.order {
		last = max(last, st.s.Stage())
	}
	return last
}

// stage returns the streams taking part in stage k, in spec order, linked
// to each other: those of stage k, and the ancestors and batch sources
// they need from earlier stages, which are read again without writing.
func (r *Runner) stage(k int) []*streamState {
	byName := map[string]*streamState{}
	var add func(st *stream) *streamState
	add = func(st *stream) *streamState {
		if n, ok := byName[st.s.Name]; ok {
			return n
		}
		own := st.s.Stage() == k
		n := &streamState{stream: st, produce: own && st.selected, fill: own, own: own, read: st.stat, runs: make(chan *run, r.window(st.s)), jobMarks: make(chan jobMark)}
		if !own {
			n.read = &StreamStats{Name: st.s.Name}
		}
		if n.produce {
			n.tables, n.entities = st.allTables, st.allEntities
		}
		byName[st.s.Name] = n
		for _, up := range []*spec.Stream{st.s.Parent(), st.s.BatchOf()} {
			if up != nil {
				add(r.streams[up.Name])
			}
		}
		return n
	}
	for _, st := range r.order {
		if st.s.Stage() == k && st.skip == "" {
			add(st)
		}
	}
	var out []*streamState
	for _, st := range r.order {
		if n, ok := byName[st.s.Name]; ok {
			out = append(out, n)
		}
	}
	for _, n := range out {
		switch {
		case n.s.BatchOf() != nil:
			b := byName[n.s.BatchOf().Name]
			b.batchers = append(b.batchers, n)
		case n.s.Parent() != nil:
			p := byName[n.s.Parent().Name]
			p.children = append(p.children, n)
		}
	}
	return out
}

// window is how many runs of a stream are fetched ahead of its releaser:
// twice the concurrency its HTTP settings ask for, so that a slow run does
// not leave the host idle, and no more, because every run ahead holds up to
// a page of records and what they map to (memory grows with the window,
// never with the data).
func (r *Runner) window(s *spec.Stream) int {
	if r.opts.Window > 0 {
		return r.opts.Window
	}
	c := fetch.DefaultConcurrency
	if r.f.HTTP.Concurrency.Set {
		c = r.f.HTTP.Concurrency.V
	}
	if s.HTTP != nil && s.HTTP.Concurrency.Set {
		c = s.HTTP.Concurrency.V
	}
	return max(8, 2*c)
}

// runStage runs the streams of one stage, streaming them together.
func (r *Runner) runStage(ctx context.Context, sts []*streamState, out Output, fails *failures) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var runs sync.WaitGroup
	g, gctx := errgroup.WithContext(sctx)
	for _, st := range sts {
		// A panic in a release (a mapping, a sink's write) fails the
		// stage, redacted, as the Output's errors do.
		g.Go(panics.Guard(func() error { return r.release(gctx, st, out, &runs, fails) }, r.opts.Pool.Redact, r.log))
	}
	for _, st := range sts {
		if st.s.Parent() == nil && st.s.BatchOf() == nil {
			if err := r.submit(gctx, st, &run{}, &runs); err != nil {
				break
			}
			close(st.runs)
		}
	}
	err := g.Wait()
	cancel()
	runs.Wait()
	if err != nil && ctx.Err() == nil && errors.Is(err, context.Canceled) {
		err = context.Cause(gctx)
	}
	return err
}

// readsOf lists the lookups a stream and its mappings read.
func (r *Runner) readsOf(s *spec.Stream) []string {
	names := map[string]bool{}
	for _, n := range s.Reads() {
		names[n] = true
	}
	for i := range r.f.Tables.Items {
		if t := &r.f.Tables.Items[i].Value; t.FedBy(s.Name) {
			for _, n := range t.Reads() {
				names[n] = true
			}
		}
	}
	if r.f.Port != nil {
		for i := range r.f.Port.Entities {
			if e := &r.f.Port.Entities[i]; e.From.V == s.Name {
				for _, n := range e.Reads() {
					names[n] = true
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(names))
}
