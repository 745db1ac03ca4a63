package runner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-etl/ferry/engine/eval"
	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/paginate"
	"github.com/ferry-etl/ferry/engine/sink"
	"github.com/ferry-etl/ferry/engine/spec"
)

// Output receives what the run produces, in deterministic order per stream.
// Calls for one stream come from one goroutine; calls for different streams
// may be concurrent.
type Output interface {
	Row(ctx context.Context, r sink.Row) error
	Entity(ctx context.Context, e sink.Entity) error
}

// Checkpointer is implemented by Outputs that keep resumable state. After
// the records of a page have been passed to Row and Entity, the runner calls
// Checkpoint with where that request chain stands; an Output commits it with
// those rows, never before them.
type Checkpointer interface {
	Checkpoint(ctx context.Context, cp sink.Checkpoint) error
}

// Options configure a Runner.
type Options struct {
	// State holds the checkpoints of an interrupted run, by stream and
	// partition; the run resumes from them (see Checkpoint).
	State map[string]map[string]json.RawMessage

	Config  map[string]any // resolved config values, by name
	Pool    *fetch.Pool
	Streams []string // run only these (and what they need); empty: all
	Logger  *slog.Logger
	Window  int // runs of one stream fetched ahead of its releaser (default 64)
	Now     func() time.Time
}

// Runner runs one spec.
type Runner struct {
	f       *spec.File
	opts    Options
	log     *slog.Logger
	streams map[string]*streamState
	order   []*streamState
	stats   *Stats
}

type streamState struct {
	s        *spec.Stream
	client   *fetch.Client
	method   string
	selected bool           // its tables/entities are produced
	children []*streamState // fan out per record (for_each, no batch)
	batchers []*streamState // run once per run of this stream, with its records
	tables   []*spec.Table  // mapped from this stream
	entities []*spec.Entity // mapped from this stream
	runs     chan *run      // in release order
	stat     *StreamStats
}

// chain is a record and its ancestry: the parent a run fans out from.
type chain struct {
	stream string
	data   any
	up     *chain
}

func (c *chain) describe() string {
	var parts []string
	for x := c; x != nil; x = x.up {
		parts = append(parts, x.stream+recordLabel(x.data))
	}
	slices.Reverse(parts)
	return strings.Join(parts, " > ")
}

// recordLabel names a record in errors by its id, when it has one.
func recordLabel(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	for _, k := range []string{"id", "identifier", "uuid", "key", "name"} {
		if x, ok := m[k]; ok && x != nil {
			if s := fmt.Sprint(x); len(s) <= 80 {
				return fmt.Sprintf("[%s=%s]", k, s)
			}
		}
	}
	return ""
}

// run is one request chain of a stream: for one parent, or the only one of a
// root stream.
type run struct {
	parent      *chain
	batch       []any
	batchStream bool // the stream takes a batch (batch may still be empty)
	partition   string
	out         chan item
}

type item struct {
	rec  any
	out  *mapped // what rec maps to; nil for a record of a page committed before a restart, which only drives children
	err  error
	mark *pageState // end of a page: checkpoint
}

// pageState is the checkpoint of a request chain: pages committed, where the
// next request goes, and whether the chain is finished.
type pageState struct {
	Pages int            `json:"pages"`
	Next  paginate.State `json:"next"`
	Done  bool           `json:"done,omitempty"`
	// Since is the incremental cursor the chain started from: a resumed
	// chain asks the same question. Max is the largest cursor seen so far.
	Since any `json:"since,omitempty"`
	Max   any `json:"max,omitempty"`
	// cursor is the largest incremental cursor of a finished chain; it is
	// saved under the stream's watermark key, not in the page state.
	cursor any
}

// WatermarkSuffix names the state key of a stream's incremental cursors:
// "<stream>@cursor". Page checkpoints are cleared when a run ends; these
// are kept until --full-refresh.
const WatermarkSuffix = "@cursor"

// New prepares a runner: it resolves every stream's HTTP client.
func New(f *spec.File, opts Options) (*Runner, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Window <= 0 {
		opts.Window = 64
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Runner{f: f, opts: opts, log: opts.Logger, streams: map[string]*streamState{}, stats: newStats(opts.Now)}
	cfgEnv := map[string]any{spec.VarConfig: eval.Normalize(opts.Config)}
	want, err := r.selection()
	if err != nil {
		return nil, err
	}
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		if !want.needed[s.Name] {
			r.order = append(r.order, nil)
			continue
		}
		hc, err := hostConfig(f, s, cfgEnv)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", s.Name, err)
		}
		client, err := opts.Pool.Client(hc)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", s.Name, err)
		}
		method := "GET"
		if s.Request.Method.Set {
			method = s.Request.Method.V
		}
		st := &streamState{s: s, client: client, method: method, selected: want.selected[s.Name],
			runs: make(chan *run, opts.Window), stat: r.stats.stream(s.Name)}
		r.streams[s.Name] = st
		r.order = append(r.order, st)
	}
	r.order = slices.DeleteFunc(r.order, func(st *streamState) bool { return st == nil })
	for _, st := range r.order {
		switch {
		case st.s.BatchOf() != nil:
			b := r.streams[st.s.BatchOf().Name]
			b.batchers = append(b.batchers, st)
		case st.s.Parent() != nil:
			p := r.streams[st.s.Parent().Name]
			p.children = append(p.children, st)
		}
	}
	for i := range f.Tables.Items {
		t := &f.Tables.Items[i].Value
		if st := r.streams[t.From.V]; st != nil && st.selected {
			st.tables = append(st.tables, t)
		}
	}
	if f.Port != nil {
		for i := range f.Port.Entities {
			e := &f.Port.Entities[i]
			if st := r.streams[e.From.V]; st != nil && st.selected {
				st.entities = append(st.entities, e)
			}
		}
	}
	return r, nil
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

// Run executes the spec. It returns a *Summary even on error; the error is a
// *RunError listing every failed request chain, or the first fatal error (an
// Output failure, cancellation).
func (r *Runner) Run(ctx context.Context, out Output) (*Summary, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var runs sync.WaitGroup
	g, gctx := errgroup.WithContext(ctx)
	fails := &failures{}
	for _, st := range r.order {
		g.Go(func() error { return r.release(gctx, st, out, &runs, fails) })
	}
	for _, st := range r.order {
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
	sum := r.stats.summary(fails)
	r.completeness(sum, err)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.Canceled) {
			err = context.Cause(gctx)
		}
		return sum, err
	}
	if len(fails.list) > 0 {
		return sum, &RunError{Failures: fails.list}
	}
	return sum, nil
}

// completeness marks a stream complete only when it, every ancestor and its
// batch source had no failure, and the run was not cut short: a missing
// parent means missing children.
func (r *Runner) completeness(sum *Summary, fatal error) {
	errs := map[string]int64{}
	for _, sn := range sum.Streams {
		errs[sn.Stream] = sn.Errors
	}
	for _, st := range r.order {
		ok := fatal == nil
		for s := st.s; s != nil && ok; s = s.Parent() {
			ok = errs[s.Name] == 0 && (s.BatchOf() == nil || errs[s.BatchOf().Name] == 0)
		}
		sum.Complete[st.s.Name] = ok
	}
}

// checkpoint hands a page's checkpoint to an Output that keeps state.
func (r *Runner) checkpoint(ctx context.Context, st *streamState, rn *run, ps *pageState, out Output) error {
	cp, ok := out.(Checkpointer)
	if !ok || !st.selected {
		// A stream fetched only to drive a --streams selection wrote no
		// rows: a checkpoint would make a later run skip writing them.
		return nil
	}
	if ps.Next.URL != "" {
		// A next link may echo a query API key; state never holds secrets.
		// The HTTP client puts the real key back on the resumed request.
		saved := *ps
		saved.Next.URL = r.opts.Pool.RedactURL(ps.Next.URL)
		ps = &saved
	}
	val, err := json.Marshal(ps)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := cp.Checkpoint(ctx, sink.Checkpoint{Stream: st.s.Name, Partition: rn.partition, Value: val}); err != nil {
		return fmt.Errorf("checkpoint %s: %w", st.s.Name, err)
	}
	if ps.cursor != nil {
		// Committed with the chain's last rows: a crash before it leaves
		// the old cursor, and the next run reads those records again.
		cur, err := json.Marshal(ps.cursor)
		if err != nil {
			return fmt.Errorf("cursor: %w", err)
		}
		if err := cp.Checkpoint(ctx, sink.Checkpoint{Stream: st.s.Name + WatermarkSuffix, Partition: rn.partition, Value: cur}); err != nil {
			return fmt.Errorf("cursor %s: %w", st.s.Name, err)
		}
	}
	return nil
}

// resumePoint is the saved state of a chain, or nil to start afresh.
func (r *Runner) resumePoint(st *streamState, partition string) *pageState {
	raw, ok := r.opts.State[st.s.Name][partition]
	if !ok || len(raw) == 0 {
		return nil
	}
	var ps pageState
	if err := json.Unmarshal(raw, &ps); err != nil {
		r.log.Warn("ignoring unreadable checkpoint", "stream", st.s.Name, "error", err)
		return nil
	}
	return &ps
}

// partitionKey names a run by its ancestor records, stably across runs:
// by each record's id-like field, else by a hash of its content.
func partitionKey(c *chain) string {
	var parts []string
	for x := c; x != nil; x = x.up {
		parts = append(parts, x.stream+"="+recordKey(x.data))
	}
	slices.Reverse(parts)
	return strings.Join(parts, "/")
}

func recordKey(v any) string {
	if m, ok := v.(map[string]any); ok {
		// Fields that name one record among its siblings; "key" or "name"
		// often do not (key/value lists), and then the content decides.
		for _, k := range []string{"id", "identifier", "uuid", "guresid"} {
			if x, ok := m[k]; ok && x != nil {
				return url.PathEscape(fmt.Sprint(x))
			}
		}
	}
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// submit queues a run in release order and starts fetching it. It blocks
// while the stream's window is full: that is the back-pressure.
func (r *Runner) submit(ctx context.Context, st *streamState, rn *run, runs *sync.WaitGroup) error {
	rn.out = make(chan item, 256)
	rn.partition = partitionKey(rn.parent)
	select {
	case st.runs <- rn:
	case <-ctx.Done():
		return ctx.Err()
	}
	runs.Add(1)
	go func() {
		defer runs.Done()
		defer close(rn.out)
		r.fetch(ctx, st, rn)
	}()
	return nil
}

// release takes the stream's runs in order and releases their records:
// mapping, output, child runs. It closes the runs queues it feeds once done.
func (r *Runner) release(ctx context.Context, st *streamState, out Output, runs *sync.WaitGroup, fails *failures) error {
	defer func() {
		for _, c := range st.children {
			close(c.runs)
		}
		for _, b := range st.batchers {
			close(b.runs)
		}
	}()
	for {
		var rn *run
		var ok bool
		select {
		case rn, ok = <-st.runs:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return nil
		}
		var batch []any
		failed := false
		for it := range rn.out {
			if ctx.Err() != nil {
				// Interrupted: release nothing more, above all no checkpoint
				// that could cover records not written.
				return ctx.Err()
			}
			if it.mark != nil {
				if err := r.checkpoint(ctx, st, rn, it.mark, out); err != nil {
					return err
				}
				continue
			}
			if it.err != nil {
				failed = true
				st.stat.failed()
				fails.add(Failure{Stream: st.s.Name, Parents: rn.parent.describe(), Err: it.err})
				r.log.Error("stream failed", "stream", st.s.Name, "parents", rn.parent.describe(), "error", it.err)
				continue
			}
			if err := r.deliver(ctx, st, it.out, out, fails); err != nil {
				return err
			}
			here := &chain{stream: st.s.Name, data: it.rec, up: rn.parent}
			for _, c := range st.children {
				if err := r.submit(ctx, c, &run{parent: here}, runs); err != nil {
					return err
				}
			}
			if len(st.batchers) > 0 {
				batch = append(batch, it.rec)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for _, b := range st.batchers {
			if failed {
				// A partial batch would send a wrong list: skip, and say so.
				fails.add(Failure{Stream: b.s.Name, Parents: rn.parent.describe(), Err: fmt.Errorf("skipped: batch stream %s failed for this parent", st.s.Name)})
				b.stat.failed()
				continue
			}
			if err := r.submit(ctx, b, &run{parent: rn.parent, batch: batch, batchStream: true}, runs); err != nil {
				return err
			}
		}
	}
}

// env is the expr environment of a run.
func (r *Runner) env(rn *run) map[string]any {
	env := map[string]any{spec.VarConfig: eval.Normalize(r.opts.Config)}
	if rn.parent != nil {
		env[spec.VarParent] = eval.Normalize(rn.parent.data)
		parents := map[string]any{}
		for c := rn.parent; c != nil; c = c.up {
			parents[c.stream] = eval.Normalize(c.data)
		}
		env[spec.VarParents] = parents
	}
	if rn.batchStream {
		// Always a list, empty when the batch source had no records.
		env[spec.VarBatch] = eval.Normalize(nonNil(rn.batch))
	}
	return env
}

// watermark is the cursor an incremental chain starts from: the one saved by
// the last run, else the spec's initial value.
func (r *Runner) watermark(st *streamState, partition string) any {
	inc := st.s.Incremental
	if raw, ok := r.opts.State[st.s.Name+WatermarkSuffix][partition]; ok && len(raw) > 0 {
		if v, err := decodeJSON(raw); err == nil {
			return v
		}
		r.log.Warn("ignoring unreadable cursor", "stream", st.s.Name)
	}
	return inc.Initial.Tree()
}

// later reports whether cursor a is after b: numbers by value, anything else
// as text (ISO-8601 timestamps sort as text).
func later(a, b any) bool {
	if b == nil {
		return a != nil
	}
	if a == nil {
		return false
	}
	fa, aok := toFloat(a)
	fb, bok := toFloat(b)
	if aok && bok {
		return fa > fb
	}
	return fmt.Sprint(a) > fmt.Sprint(b)
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	return 0, false
}

// jqVars are the values of the stream's jq variables, in JQVars order.
func (r *Runner) jqVars(s *spec.Stream, rn *run) []any {
	names := s.JQVars()
	vals := make([]any, 0, len(names))
	byName := map[string]any{}
	for c := rn.parent; c != nil; c = c.up {
		if _, ok := byName[c.stream]; !ok {
			byName[c.stream] = c.data
		}
	}
	for _, n := range names {
		switch n {
		case spec.VarConfig:
			vals = append(vals, r.opts.Config)
		case spec.VarParent:
			vals = append(vals, rn.parent.data)
		case spec.VarParents:
			vals = append(vals, byName)
		case spec.VarBatch:
			vals = append(vals, nonNil(rn.batch))
		default:
			vals = append(vals, byName[n])
		}
	}
	return vals
}

func nonNil(l []any) []any {
	if l == nil {
		return []any{}
	}
	return l
}

// fetch runs one request chain and sends its records, page by page.
func (r *Runner) fetch(ctx context.Context, st *streamState, rn *run) {
	send := func(it item) bool {
		select {
		case rn.out <- it:
			return true
		case <-ctx.Done():
			return false
		}
	}
	fail := func(err error) { send(item{err: err}) }
	s := st.s
	env := r.env(rn)
	cp := r.resumePoint(st, rn.partition)
	var since, maxCursor any
	if s.Incremental != nil {
		since = r.watermark(st, rn.partition)
		if cp != nil && cp.Since != nil {
			since = cp.Since
		}
		env[spec.VarCursor] = eval.Normalize(since)
	}
	if w := s.When.Program(); w != nil {
		ok, err := w.EvalBool(env)
		if err != nil {
			fail(fmt.Errorf("when: %w", err))
			return
		}
		if !ok {
			st.stat.skipped()
			return
		}
	}
	vars := r.jqVars(s, rn)
	req, target, err := r.buildRequest(ctx, s, rn, env, vars)
	if err != nil {
		fail(err)
		return
	}
	pager := paginate.New(s.Paginate, vars, env)
	if err := pager.Init(&req); err != nil {
		fail(err)
		return
	}
	first, replayUntil := 1, 0
	if cp != nil {
		switch {
		case len(st.children) > 0 || len(st.batchers) > 0 || len(st.entities) > 0:
			// Children need the parent records again, and Port entities
			// are only sent when a run ends: re-read the committed pages,
			// writing no row from them.
			replayUntil = cp.Pages
		case cp.Done:
			return
		default:
			if err := pager.Restore(cp.Next, &req); err != nil {
				fail(fmt.Errorf("resume: %w", err))
				return
			}
			first, maxCursor = cp.Pages+1, cp.Max
		}
	}
	for page := first; ; page++ {
		u := target
		if req.URL != "" {
			u = req.URL
		}
		resp, err := st.client.Do(ctx, &fetch.Request{Method: st.method, URL: u, Query: req.Query, Header: req.Header, Body: req.Body})
		if resp != nil {
			st.stat.request(resp.Attempts)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			fail(fmt.Errorf("page %d: %w", page, err))
			return
		}
		st.stat.page()
		body, err := decodeJSON(resp.Body)
		if err != nil {
			fail(fmt.Errorf("page %d: %s %s: %d: response is not valid JSON: %w", page, st.method, resp.URL, resp.Status, err))
			return
		}
		recs, err := s.Records.Code().Run(ctx, body, vars...)
		if err != nil {
			fail(fmt.Errorf("page %d: %s %s: records: %w", page, st.method, resp.URL, err))
			return
		}
		replay := page <= replayUntil
		for _, rec := range recs {
			if inc := s.Incremental; inc != nil {
				c, _, err := inc.Cursor.Code().First(ctx, rec, vars...)
				if err != nil {
					fail(fmt.Errorf("page %d: incremental.cursor: %w", page, err))
					return
				}
				if later(c, maxCursor) {
					maxCursor = c
				}
			}
			m, err := r.mapRecord(ctx, st, rn, rec, vars, !replay)
			if err != nil {
				return // cancelled
			}
			if !send(item{rec: rec, out: m}) {
				return
			}
		}
		st.stat.records(len(recs))
		more, err := pager.Next(ctx, paginate.Page{Number: page, Body: body, Header: resp.Header, URL: resp.URL, Records: len(recs)}, &req)
		if err != nil {
			fail(fmt.Errorf("page %d: %s %s: %w", page, st.method, resp.URL, err))
			return
		}
		mark := &pageState{Pages: page, Next: pager.State(), Done: !more, Since: since, Max: maxCursor}
		if !more && s.Incremental != nil && maxCursor != nil {
			mark.cursor = maxCursor
		}
		if (!replay || mark.cursor != nil) && !send(item{mark: mark}) {
			return
		}
		if !more {
			return
		}
	}
}

func decodeJSON(b []byte) (any, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

// buildRequest renders the first request of a run. target is the URL or
// path the HTTP client resolves against the base URL.
func (r *Runner) buildRequest(ctx context.Context, s *spec.Stream, rn *run, env map[string]any, vars []any) (paginate.Request, string, error) {
	rq := &s.Request
	req := paginate.Request{Query: url.Values{}, Header: http.Header{}}
	var target string
	var err error
	if t := rq.URL.Template(); t != nil {
		target, err = t.RenderString(env)
	} else if t := rq.Path.Template(); t != nil {
		target, err = renderPath(t, env)
	}
	if err != nil {
		return req, "", fmt.Errorf("request path: %w", err)
	}
	for _, it := range rq.Query.Items {
		v, err := spec.RenderValue(it.Value.Tree(), env)
		if err != nil {
			return req, "", fmt.Errorf("request query %s: %w", it.Key, err)
		}
		for _, sv := range queryValues(v) {
			req.Query.Add(it.Key, sv)
		}
	}
	for _, it := range rq.Headers.Items {
		v, err := it.Value.Template().RenderString(env)
		if err != nil {
			return req, "", fmt.Errorf("request header %s: %w", it.Key, err)
		}
		req.Header.Set(it.Key, v)
	}
	switch {
	case rq.Body.Set:
		req.Body, err = spec.RenderValue(rq.Body.Tree(), env)
		if err != nil {
			return req, "", fmt.Errorf("request body: %w", err)
		}
	case rq.BodyJQ.Code() != nil:
		var input any
		if rn.parent != nil {
			input = rn.parent.data
		}
		v, _, err := rq.BodyJQ.Code().First(ctx, input, vars...)
		if err != nil {
			return req, "", fmt.Errorf("request body_jq: %w", err)
		}
		req.Body = v
	}
	return req, target, nil
}

// renderPath renders a path template with every interpolated value
// path-escaped, so an identifier holding "/" stays one segment.
func renderPath(t *eval.Template, env map[string]any) (string, error) {
	return t.RenderEscaped(env, url.PathEscape)
}

// queryValues turns a rendered query value into parameter values: a list
// repeats the parameter, null omits it.
func queryValues(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, queryValues(e)...)
		}
		return out
	case string:
		return []string{x}
	case map[string]any:
		b, _ := json.Marshal(x)
		return []string{string(b)}
	}
	return []string{eval.FormatScalar(v)}
}
