package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc64"
	"hash/fnv"
	"hash/maphash"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-etl/ferry/engine/eval"
	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/internal/jsonv"
	"github.com/ferry-etl/ferry/engine/internal/panics"
	"github.com/ferry-etl/ferry/engine/paginate"
	"github.com/ferry-etl/ferry/engine/spec"
)

// chain is a record and its ancestry: the parent a run fans out from.
type chain struct {
	stream string
	data   any
	key    string // identifies the record among its siblings (see recordKey)
	label  string // names the record in messages, e.g. "[id=a]"
	up     *chain
	gates  []*cursorGate // of the incremental chains this record descends from (or belongs to)
	// cursor is the record's incremental cursor, when its stream has one:
	// the chains below it save their ancestors' (see upCursors).
	cursor any
	// digest identifies the record and its ancestors by content (see
	// chainDigest).
	digest string
}

// chainDigest is a digest of c's records, its ancestors' included. Siblings
// that share a key (ids unique only per type, say) share their children's
// checkpoints: a chain's checkpoint holds its parents' digest, so a resumed
// chain never takes a sibling's progress for its own (it would skip what
// the sibling had read, and its own records were never asked).
func chainDigest(c *chain) string {
	h := fnv.New64a()
	if c.up != nil {
		h.Write([]byte(c.up.digest))
	}
	h.Write([]byte(c.stream))
	h.Write([]byte{0})
	b, _ := jsonv.Marshal(c.data)
	h.Write(b)
	return strconv.FormatUint(h.Sum64(), 36)
}

// digestOf is c's digest, "" for a root stream's run.
func digestOf(c *chain) string {
	if c == nil {
		return ""
	}
	return c.digest
}

// upCursors names the versions of the incremental records a chain descends
// from: their cursors, "" when it descends from none. A chain's checkpoint
// holds them; one of an earlier run below a record that changed since is
// not resumed, but read afresh, as any changed record's children are.
func upCursors(c *chain) string {
	var parts []any
	for x := c; x != nil; x = x.up {
		if x.cursor != nil {
			parts = append(parts, x.stream, x.cursor)
		}
	}
	if parts == nil {
		return ""
	}
	b, _ := json.Marshal(parts)
	return string(b)
}

// describe names a chain's ancestry, "" for a root stream's run.
func describe(c *chain) string {
	if c == nil {
		return ""
	}
	return c.describe()
}

func (c *chain) describe() string {
	var parts []string
	for x := c; x != nil; x = x.up {
		parts = append(parts, x.stream+x.label)
	}
	slices.Reverse(parts)
	return strings.Join(parts, " > ")
}

// run is one request chain of a stream: for one parent, or the only one of a
// root stream.
type run struct {
	parent      *chain
	batch       []any
	batchStream bool // the stream takes a batch (batch may still be empty)
	part        batchPart
	// list is listDigest of the batch's keys (a batch stream's run): the
	// cursor it saves answers for these items.
	list      string
	partition string
	parents   string // describe(), once: every entity of the run carries it
	out       chan item
	// gates are the cursor gates of the incremental ancestors' chains this
	// run descends from: each waits for it to finish (see cursorGate).
	gates []*cursorGate
	gate  *cursorGate // this run's own, when its stream is an incremental parent
	// depth is how many records of its own stream a recursive stream's
	// run descends from (0: a root chain, whose records are level 1).
	depth int
	// again counts the chains of the same partition that ran before this
	// one in the stage, for another version of its parent (see
	// chainOnce): this one reads the partition afresh, replacing theirs.
	again uint32
	// appends is what the chain appended, for a restart (nil unless its
	// stream may restart; see appendLedger).
	appends *appendLedger
	// resumed: the chain went on from an earlier run's checkpoint without
	// listing its committed pages again (done, or going on after them),
	// so what it lists in this run may not be all its rows came from (see
	// firstReadings). Set by the chain, read after its last item.
	resumed bool
}

// describe names the run in reports: its parents, and the chunk of its
// batch when the list was split (batch_size).
func (rn *run) describe() string {
	d := describe(rn.parent)
	if rn.part.of == 0 {
		return d
	}
	return d + " " + rn.part.label()
}

// batchPart is the chunk of its batch source's list one run of a batch
// stream with batch_size carries: items from..to (1-based) of of. Zero for
// a run that carries the whole list.
type batchPart struct {
	items        []any
	keys         []string // the items' keys (identify), in order
	index        int      // 0-based
	from, to, of int
}

func (p batchPart) label() string {
	if p.from == p.to {
		return fmt.Sprintf("[batch item %d of %d]", p.from, p.of)
	}
	return fmt.Sprintf("[batch items %d-%d of %d]", p.from, p.to, p.of)
}

// suffix keeps the checkpoints of a parent's chunks apart: each chunk is a
// chain of its own. The first keeps the parent's key, as an unsplit list
// does; the chunk's batch digest (pageState.Batch) still tells whether a
// checkpoint answers this very chunk.
func (p batchPart) suffix() string {
	if p.index == 0 {
		return ""
	}
	return fmt.Sprintf("#batch%d", p.index+1)
}

// batchParts splits a batch, and its items' keys, into consecutive chunks
// of at most size items; the whole list (even empty) is one part when size
// is 0 or it fits.
func batchParts(batch []any, keys []string, size int) []batchPart {
	if size <= 0 || len(batch) <= size {
		return []batchPart{{items: batch, keys: keys}}
	}
	var parts []batchPart
	for i := 0; i < len(batch); i += size {
		j := min(i+size, len(batch))
		parts = append(parts, batchPart{items: batch[i:j:j], keys: keys[i:j:j], index: len(parts), from: i + 1, to: j, of: len(batch)})
	}
	return parts
}

type item struct {
	rec  any
	out  *mapped // what rec maps to; nil for a record of a page committed before a restart, which only drives children
	err  error
	mark *pageState // end of a page: checkpoint
	// skip: a response rule skipped a request of the chain. Nothing
	// failed, but what it would have read is unknown: the cursors of the
	// incremental parents above it must not move past it, and the report
	// names it.
	skip *Skip
	// held: skip is a request skipped by an earlier run, still unread
	// (see pageState.Held): named again, not counted again.
	held bool
	// undelivered: a record of the chain failed on delivery in an
	// earlier run (see pageState.Undelivered): the chain's cursor, and
	// its parents', stay before it.
	undelivered bool
}

// env is the expr environment of a run of stream s.
func (r *Runner) env(s *spec.Stream, rn *run) map[string]any {
	env := map[string]any{spec.VarConfig: r.exprConfig, eval.ClockVar: r.opts.Now}
	switch {
	case rn.parent != nil:
		env[spec.VarParent] = eval.Normalize(rn.parent.data)
		parents := map[string]any{}
		for c := rn.parent; c != nil; c = c.up {
			// The nearest record of a stream, as in jq: a recursive
			// stream's chain holds many of its own.
			if _, ok := parents[c.stream]; !ok {
				parents[c.stream] = eval.Normalize(c.data)
			}
		}
		env[spec.VarParents] = parents
	case s.Recursive():
		// The root chain of a recursive stream without for_each: its
		// programs name parent, which is null here.
		env[spec.VarParent], env[spec.VarParents] = nil, map[string]any{}
	}
	if rn.batchStream {
		// Always a list, empty when the batch source had no records.
		env[spec.VarBatch] = eval.Normalize(nonNil(rn.batch))
	}
	if len(r.f.Lookups.Items) > 0 {
		env[spec.VarLookups] = r.lookups.expr
	}
	return env
}

// jqVars are the values of the stream's jq variables, in JQVars order.
func (r *Runner) jqVars(s *spec.Stream, rn *run) []any {
	byName := map[string]any{}
	for c := rn.parent; c != nil; c = c.up {
		if _, ok := byName[c.stream]; !ok {
			byName[c.stream] = c.data
		}
	}
	var parent any
	if rn.parent != nil {
		parent = rn.parent.data
	}
	return JQVars(s, r.opts.Config, parent, byName, rn.batch, r.lookups.jq)
}

// JQVars are the values of a stream's jq variables, in [spec.Stream.JQVars]
// order: config, the direct parent, every ancestor by stream name, the
// batch (a list, empty when nil) and the lookups.
func JQVars(s *spec.Stream, config map[string]any, parent any, parents map[string]any, batch []any, lookups map[string]any) []any {
	names := s.JQVars()
	vals := make([]any, 0, len(names))
	for _, n := range names {
		switch n {
		case spec.VarConfig:
			vals = append(vals, config)
		case spec.VarParent:
			vals = append(vals, parent)
		case spec.VarParents:
			vals = append(vals, parents)
		case spec.VarBatch:
			vals = append(vals, nonNil(batch))
		case spec.VarLookups:
			vals = append(vals, lookups)
		default:
			vals = append(vals, parents[n])
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

// fetch runs one request chain and sends its records, page by page. A page
// is sent whole or not at all: every record of it, then its checkpoint. A
// failure ends the chain with a failure item; what was sent before it is
// covered by the checkpoints sent before it. A windowed stream's chain is
// its windows one after the other, each a chain of pages.
func (r *Runner) fetch(ctx context.Context, st *streamState, rn *run) {
	c := &chainRun{r: r, st: st, rn: rn, ctx: ctx, seed: maphash.MakeSeed()}
	err := r.readChain(ctx, &c)
	if err != nil && ctx.Err() == nil {
		c.send(item{err: err})
	}
}

// readChain reads the chain *c, and again from its start (a new *c) when
// the API refused where it stood. A panic here is its error too: each
// reading recovers its own (runGuarded), this recovers what runs between
// them (a log line, which a CLI draws with its live block).
func (r *Runner) readChain(ctx context.Context, cp **chainRun) (err error) {
	defer panics.Recover(&err, r.opts.Pool.Redact, r.log)
	c := *cp
	st, rn := c.st, c.rn
	err = c.runGuarded()
	if errors.Is(err, fetch.ErrRestart) && ctx.Err() == nil {
		// The API refused where the chain stood (a delta token or cursor
		// saved by an earlier run, expired since): read it all again,
		// as a first sync would. Once: refused again, the chain fails.
		r.log.Warn("the API refused the chain's saved position: reading it again from its start, with the initial cursor", "stream", st.s.Name, "parents", rn.describe(), "reason", err.Error())
		// A new reading of the partition: its rows rewrite the refused
		// one's (pages it wrote before the refusal), as those of a parent
		// listed again, changed, do (see chainOnce); an append table
		// gets only the rows the refused one did not append (see
		// appendLedger).
		st.readAgain(rn)
		// Its windows are counted again: the refused reading's are not
		// windows left unread.
		st.read.windows(-c.windowsDone, -c.windowsTotal)
		c = &chainRun{r: r, st: st, rn: rn, ctx: ctx, seed: c.seed, restarted: true}
		*cp = c
		if err = c.runGuarded(); errors.Is(err, fetch.ErrRestart) {
			err = fmt.Errorf("refused again when read from its start: %w", err)
		}
	}
	return err
}

// chainRun is one request chain being fetched.
type chainRun struct {
	r   *Runner
	st  *streamState
	rn  *run
	ctx context.Context

	env              map[string]any
	vars             []any
	cp               *pageState // where an earlier run left the chain, or nil
	since, maxCursor any
	maxKey           cursorKey // maxCursor read for comparing (see cursors)
	floor            any       // the saved cursor a lookback asked from before: the new one is later or none
	// began is when the run that started the chain started, or the
	// API's Date on an answer of the chain if earlier (a resumed chain
	// keeps it): a time cursor is saved no later than that.
	began       time.Time
	windows     []window // nil: one pass, no windows
	from, until string   // start of the first window, end of the last
	// spanSkipped: a response rule skipped a request of a window (or of an
	// export's download); what it holds is unknown, so the cursor stays
	// before it (the windows or downloads after it are still read, and
	// the windows read again by the next run).
	spanSkipped bool
	// entityFailed: a record's entity failed its mapping in this run; it
	// never reaches Port, so the cursor stays before it (a new sync reads
	// it again; a resumed one maps every entity again anyway).
	entityFailed bool
	batch        string // batchDigest of the run, saved with every checkpoint

	replayUntil position           // pages up to here were committed before: written again only where they failed
	retry       map[recordPos]bool // records whose table mappings failed before, saved without their key
	retryKeys   map[retryKey]bool  // records whose table mappings failed before, by key
	retried     map[retryKey]bool  // of retryKeys, those this run tried again
	failed      []recordPos        // records whose table mappings failed in this run
	// committedMax is the largest cursor of the pages committed before
	// (replayed): a replayed record with a later one changed since, and is
	// written again, or the cursor saved at the end would pass its change.
	committedMax any
	committedKey cursorKey // committedMax read for comparing
	// checkpointed: the sync committed a checkpoint of this chain's
	// partition; one read from its start all the same (c.cp nil) replaces
	// what that reading committed (see pageState.fresh).
	checkpointed bool
	freshSent    bool // a checkpoint of this chain went out fresh (see send)

	// restarted: the API refused the chain's saved position (see fetch);
	// it reads from its start, with the stream's initial cursor.
	restarted bool
	// wholeBefore: the sync's reading of this partition asked from the
	// initial cursor (its first, or a --full-refresh): read afresh, it asks
	// from there again, not from a cursor that reading saved, so that its
	// stream's tables are still reconciled when the sync ends.
	wholeBefore bool
	// windowsDone and windowsTotal are what the chain counted in its
	// stream's windows (see windowsRead).
	windowsDone, windowsTotal int
	// seed hashes the chain's page bodies (see pageRead.bodySum).
	seed maphash.Seed
	// listedTwice finds the records a page lists again, for the total
	// check (nil without a total).
	listedTwice *repeats
	// unsaved are the items listedTwice met on pages whose marks were not
	// sent yet (see repeats.listed): send gives them to the next mark.
	unsaved []uint64
	// savedListed are the items the partition's checkpoints saved in the
	// sync's earlier runs, sorted (see notSaved); made when first needed.
	savedListed []uint64

	job       *jobState // an async stream's export job, saved with every checkpoint
	downloads []string  // an async stream's result URLs: one chain of pages each, in place of windows
	results   []string  // resultsDigests(downloads): each checkpoint's Results
	// recs are the hashes of the records of the last page read whole and
	// of those the resumed checkpoint's page held (see pageRecs).
	recs chainRecs
	// jobReplaced: an async chain whose earlier run committed results of
	// a job it no longer reads (gone, expired, listing fewer) reads a new
	// job's from the start.
	jobReplaced bool
	// replacedRetry: the retry lists of the checkpoints the replaced jobs'
	// chains had (see failedThen), kept in the new job's checkpoints.
	replacedRetry []recordPos
	// appended are the appendSums of the records released since the last
	// checkpoint sent (see noteAppended); near those of the page read and
	// the one before (see metNear).
	appended []uint64
	near     nearSums
}

// replayed tells a stream whose committed pages a resumed run reads again
// (but for a checkpoint's own reasons: records to retry, a page to redo):
// children (a recursive stream's own chains below its records too) need
// the parent records again, Port entities are only sent when a run ends,
// lookups are filled anew, and a later stage that reads the stream again
// compares its listing with this run's whole one (see firstReadings): a
// record listed only since, whose rows this replay writes, would otherwise
// drive children there with no row of its own.
func (c *chainRun) replayed() bool {
	st := c.st
	return len(st.children) > 0 || len(st.batchers) > 0 || st.s.Recursive() || len(st.entities) > 0 || (st.fill && len(st.fills) > 0) || st.firsts != nil
}

// position is a page in a chain: (window, page), ordered.
type position struct{ window, page int }

func (a position) atMost(b position) bool {
	return a.window < b.window || a.window == b.window && a.page <= b.page
}

// window is one time window of a windowed stream: [start, end).
type window struct{ start, end time.Time }

// errCancelled ends a chain whose context is done: nothing more is sent.
var errCancelled = errors.New("cancelled")

func (c *chainRun) send(it item) bool {
	if it.mark != nil && len(c.unsaved) > 0 {
		// Every checkpoint carries the items the total check met on the
		// pages before it that no checkpoint sent yet carried (a replayed
		// page's), whichever checkpoint it is (a part of a page, a page
		// read again from its start): one that dropped them left a run
		// resuming after it unable to tell their repeats.
		m := *it.mark
		m.listed = append(slices.Clip(m.listed), c.unsaved...)
		it.mark, c.unsaved = &m, nil
	}
	if it.mark != nil && len(c.appended) > 0 {
		// Committed with the rows of the records they hash.
		m := *it.mark
		m.appended = append(slices.Clip(m.appended), c.appended...)
		it.mark, c.appended = &m, nil
	}
	if it.mark != nil && it.mark.fresh {
		// Only the chain's first checkpoint replaces what its partition
		// saved before (keys, in the destination): the later ones follow
		// it, and must keep the keys of the pages before them.
		if c.freshSent {
			m := *it.mark
			m.fresh = false
			it.mark = &m
		}
		c.freshSent = true
	}
	select {
	case c.rn.out <- it:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// runGuarded is run on the chain's own goroutine, a panic in it (a
// program, a request) the chain's error rather than the end of the
// process with an unredacted message (see package panics).
func (c *chainRun) runGuarded() (err error) {
	defer panics.Recover(&err, c.r.opts.Pool.Redact, c.r.log)
	return c.run()
}

func (c *chainRun) run() error {
	r, st, rn := c.r, c.st, c.rn
	s := st.s
	c.env = r.env(s, rn)
	c.cp = r.resumePoint(st, rn.partition)
	_, c.checkpointed = r.opts.State[s.Name][rn.partition]
	if inc := s.Incremental; inc != nil && c.cp != nil && c.cp.Since != nil {
		c.wholeBefore = fmt.Sprint(c.cp.Since) == fmt.Sprint(inc.Initial.Tree())
	}
	if up := upCursors(rn.parent); c.cp != nil && c.cp.Up != "" && c.cp.Up != up {
		// A record above changed since this chain was checkpointed: what
		// it reads may have changed too (the comment that moved a ticket's
		// updated_at), and the cursor saved above will pass that change.
		r.log.Info("a parent record changed since the chain's checkpoint: reading it afresh", "stream", s.Name, "parents", rn.describe())
		c.cp = nil
	}
	if c.restarted {
		// Its first checkpoint replaces what the refused reading saved,
		// in this run or before (fresh): the keys of its rows too.
		c.cp, c.checkpointed = nil, true
	}
	if c.cp != nil && c.cp.Afresh {
		r.log.Info("the chain ended short of the total its pages reported: reading it afresh", "stream", s.Name, "parents", rn.describe())
		c.cp = nil
	}
	if of := digestOf(rn.parent); c.cp != nil && c.cp.Of != "" && c.cp.Of != of {
		// The checkpoint is of another record of the same key (a sibling),
		// or of this one before it changed: read afresh.
		r.log.Info("the chain's checkpoint is of another parent record, or of this one before it changed: reading it afresh", "stream", s.Name, "parents", rn.describe())
		c.cp = nil
	}
	if c.batch = batchDigest(rn); c.cp != nil && c.cp.Batch != "" && c.cp.Batch != c.batch {
		// The batch source's records changed since: the saved pages
		// answer another list, and the new answer's pages may differ.
		r.log.Info("a batch changed since the chain's checkpoint: reading it afresh", "stream", s.Name, "parents", rn.describe())
		c.cp = nil
	}
	if rn.again > 0 && !c.restarted {
		// The parent changed between two listings of this run: the chain
		// of its earlier version ran (and may have committed), so this one
		// reads afresh and replaces that reading, its checkpoint and saved
		// keys (fresh), as a chain whose parent changed since an earlier
		// run does.
		r.log.Info("a parent record listed again in this run, changed: its chain reads afresh", "stream", s.Name, "parents", rn.describe())
		c.cp, c.checkpointed = nil, true
	}
	if inc := s.Incremental; c.cp != nil && c.cp.From != "" && inc != nil && inc.Window != nil && c.cp.Step != inc.Window.Step.V.String() {
		// A resumed chain plans its windows again from the checkpoint's
		// first: numbered by another step, the checkpoint's window is
		// another time range, and those between were never asked while
		// the cursor moved past them. Read afresh from the saved cursor,
		// which stays before the window the chain stopped in. So too a
		// checkpoint from before the step was saved: its step is unknown.
		was := c.cp.Step
		if was == "" {
			was = "not saved"
		}
		r.log.Info("the window step changed since the chain's checkpoint, or the checkpoint does not say it: reading the chain afresh from the saved cursor", "stream", s.Name, "parents", rn.describe(), "was", was, "now", inc.Window.Step.V.String())
		c.cp = nil
	}
	if err := c.planIncremental(); err != nil {
		return err
	}
	if w := s.When.Program(); w != nil {
		ok, err := w.EvalBool(c.env)
		if err != nil {
			return fmt.Errorf("when: %w", err)
		}
		if !ok {
			st.read.skipped()
			return nil
		}
	}
	if err := r.lookups.failure(s.Reads()); err != nil {
		return err
	}
	c.vars = r.jqVars(s, rn)
	if s.Partitions != nil {
		rn.resumed = rn.resumed || c.cp != nil
		return c.partitions()
	}
	if r.opts.Probe {
		if rn.batchStream && len(rn.batch) == 0 {
			// The probe read the batch's source under another parent (or
			// none): this list is empty for want of reading it, and a run
			// would not send it so. The parent whose list was read probes.
			return nil
		}
		// A stream reading lookups probes with the first chain whose
		// request can be built (see below); any other, with the first.
		if len(s.Reads()) == 0 && !st.probed.CompareAndSwap(false, true) {
			return nil // another chain of the stream is its probe
		}
	}
	client, err := st.client.get()
	if err != nil {
		return err
	}
	start := position{0, 1}
	restore := false
	c.recs.keep = keepsRecs(st)
	if cp := c.cp; cp != nil {
		c.committedMax, c.committedKey = cp.Max, keyOf(cp.Max)
		if cp.Held {
			c.spanSkipped = true
			st.stat.unread()
			const why = "a request a rule skipped before the chain stopped is still unread: the cursor stays before it, and the next run asks for it again"
			r.log.Warn(why, "stream", s.Name, "parents", rn.describe())
			// Its parents' cursors stay too, and the report names it.
			if !c.send(item{skip: &Skip{Stream: s.Name, Parents: rn.describe(), Page: cp.Pages, Reason: why}, held: true}) {
				return errCancelled
			}
		}
		if cp.Undelivered {
			const why = "a record that failed on delivery before the chain stopped is not written: the cursor stays before it, and the next sync asks for it again"
			r.log.Warn(why, "stream", s.Name, "parents", rn.describe())
			if !c.send(item{undelivered: true}) {
				return errCancelled
			}
		}
		switch {
		case c.replayed() || len(cp.Retry) > 0:
			// Children (a recursive stream's own chains below its records
			// too) need the parent records again, Port entities are only
			// sent when a run ends, lookups are filled anew, and records
			// that failed their mapping are tried again: re-read the
			// committed pages, writing rows only for those records.
			c.replayUntil = position{cp.Window, cp.Pages}
			c.retry = map[recordPos]bool{}
			c.retryKeys, c.retried = map[retryKey]bool{}, map[retryKey]bool{}
			for _, rp := range cp.Retry {
				if rp.Key != "" {
					c.retryKeys[retryKey{rp.Key, rp.Table}] = true
				} else {
					c.retry[rp] = true
				}
			}
		case cp.Done:
			rn.resumed = true
			c.windowsRead(len(c.windows), len(c.windows))
			return nil
		default:
			rn.resumed = true
			// Pages 0: the chain stands at the start of a window.
			start, restore, c.maxCursor, c.maxKey = position{cp.Window, cp.Pages + 1}, cp.Pages > 0, cp.Max, keyOf(cp.Max)
			if cp.Redo {
				// The last committed page's records were delivered, but
				// what follows it was never learnt: ask for it again,
				// without writing it twice.
				start.page, c.replayUntil = cp.Pages, position{cp.Window, cp.Pages}
			}
		}
		c.resumeRecs(cp)
	}
	if s.Async != nil {
		return c.async(client, start, restore)
	}
	if c.windows != nil && len(c.windows) == 0 {
		return nil // no time has passed since the cursor: nothing to ask
	}
	n := max(1, len(c.windows))
	c.windowsRead(0, len(c.windows))
	if r.opts.Probe {
		start.window = n - 1 // the latest window: the one likeliest to hold records
	}
	c.windowsRead(start.window, 0)
	for w := start.window; w < n; w++ {
		env := c.env
		if c.windows != nil {
			env = maps.Clone(c.env)
			env[spec.VarWindow] = map[string]any{"start": c.windows[w].start.Format(time.RFC3339), "end": c.windows[w].end.Format(time.RFC3339)}
		}
		req, target, err := r.buildRequest(c.ctx, s, &s.Request, rn, env, c.vars)
		var nullRead *nullReadError
		if r.opts.Probe && len(s.Reads()) > 0 && !(errors.As(err, &nullRead) && !nullRead.lookup) {
			// A null field of the parent is no partial lookup: a run fails
			// the chain as well, and so does the check (as the first
			// chain of a stream reading no lookup).
			if err != nil {
				// The probe read one page of each lookup's stream: this
				// parent's value may be on another (a run reads them all).
				// No failure of the endpoint; another parent's may build.
				// The first error is the stream's check detail if none does.
				if st.probeUnbuilt.CompareAndSwap(false, true) {
					st.read.unbuiltFirst(fmt.Sprintf("under %s: %v", rn.describe(), err))
					r.log.Warn("check: a request could not be built from the lookups' values the check read (one page of each lookup's stream); trying other parents", "stream", s.Name, "parents", rn.describe(), "error", err)
				}
				return nil
			}
			if !st.probed.CompareAndSwap(false, true) {
				return nil // another chain of the stream is its probe
			}
		}
		if err != nil {
			return err
		}
		if err := c.paged(client, w, start, restore, env, &req, target); err != nil {
			return err
		}
		if c.windows != nil {
			c.windowsRead(1, 0)
		}
	}
	return nil
}

// windowsRead counts windows of the chain in its stream's: done of total.
func (c *chainRun) windowsRead(done, total int) {
	c.windowsDone += done
	c.windowsTotal += total
	c.st.read.windows(done, total)
}

// planIncremental sets the cursor the chain starts from (the saved one, or
// the spec's initial value; a resumed chain asks the same question it
// started with) and, for a windowed stream, its windows.
func (c *chainRun) planIncremental() error {
	inc := c.st.s.Incremental
	if inc == nil {
		return nil
	}
	wm, wmSaved, list := c.r.watermark(c.st.stream, c.rn.partition)
	if c.restarted || c.wholeBefore && c.cp == nil {
		wm, wmSaved = inc.Initial.Tree(), false
	}
	if wmSaved && c.rn.batchStream && list != c.rn.list {
		// The saved cursor answers for other items: one added since (or
		// moved here from another chunk) asked only for what changed after
		// it would never have its older records read.
		why := "the batch is not the list the saved cursor answers for (an item was added, removed or moved to another chunk): this chain starts from the initial cursor"
		if list == "" {
			why = "the saved cursor was saved without the batch it answers for: this chain starts from the initial cursor"
		}
		wm, wmSaved = inc.Initial.Tree(), false
		if c.cp != nil && c.cp.Since != nil && (later(c.cp.Since, wm) || later(wm, c.cp.Since)) {
			// Resumed, but started from that cursor (by a ferry that did
			// not save lists): its question is as wrong.
			c.cp = nil
		}
		if c.cp == nil || c.cp.Since == nil {
			c.r.log.Info(why, "stream", c.st.s.Name, "parents", c.rn.describe())
		}
	}
	since, saved := wm, wmSaved
	if c.cp != nil && c.cp.Since != nil {
		// A resumed chain asks what it asked before: only what changed,
		// unless that was from the initial cursor (a sync's first reading,
		// or a --full-refresh), which is everything. Told by its text:
		// where in doubt, it read what changed (nothing is marked deleted).
		since, saved = c.cp.Since, fmt.Sprint(c.cp.Since) != fmt.Sprint(inc.Initial.Tree())
	}
	if saved {
		// This chain reads only what changed: its stream's targets cannot
		// tell a deleted record from an unchanged one.
		c.st.stat.partial()
	}
	if wmSaved && inc.Lookback.V > 0 {
		// Ask again from a while before the saved cursor (a resumed chain
		// asks what it asked before); the cursor saved at the end never
		// goes back before it (floor).
		// Read as cursors compare times: RFC 3339, or an offset without
		// its colon (Salesforce's +0000, Jira's +0200) or of hours only,
		// or a space for the T (see instant).
		// Or a number in the unit of an initial cursor that is a time
		// written as one (see epochUnit), asked in that unit.
		t, ok := instant(wm)
		unit := epochUnit(inc.Initial.Tree())
		var back any
		switch {
		case ok:
			back = t.Add(-inc.Lookback.V).UTC().Format(time.RFC3339Nano)
		case unit != 0:
			if t, ok = epochTime(wm, unit); ok {
				back = epochLike(t.Add(-inc.Lookback.V), unit, wm)
			}
		}
		if !ok {
			return fmt.Errorf("incremental.lookback: the saved cursor %v is not a time with a UTC offset (RFC 3339, or +hhmm, +hh, a space for the T), nor a number in the unit of an initial cursor in epoch seconds, milliseconds, microseconds or nanoseconds", wm)
		}
		c.floor = wm
		if c.cp == nil || c.cp.Since == nil {
			since = back
		}
	}
	c.since = since
	c.env[spec.VarCursor] = eval.Normalize(since)
	c.began = c.r.started
	if c.cp != nil && c.cp.Began != "" {
		if t, err := time.Parse(time.RFC3339Nano, c.cp.Began); err == nil {
			c.began = t
		}
	}
	w := inc.Window
	if w == nil {
		return nil
	}
	if c.cp != nil && c.cp.From != "" {
		// A resumed chain reads the same windows as before.
		return c.windowsFrom(c.cp.From, c.cp.Until)
	}
	start, err := time.Parse(time.RFC3339, fmt.Sprint(since))
	if err != nil {
		return fmt.Errorf("incremental: cursor %v is not an RFC 3339 time: %w", since, err)
	}
	if saved {
		start = start.Add(-w.Lookback.V)
	}
	end := c.r.started
	switch {
	case w.End.Template() != nil:
		var v string
		if v, err = w.End.Template().RenderString(c.env); err == nil {
			end, err = time.Parse(time.RFC3339, v)
		}
	}
	if err != nil {
		return fmt.Errorf("incremental.window.end: %w", err)
	}
	return c.windowsFrom(start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339))
}

// windowsFrom plans the windows from from to until (RFC 3339 times).
func (c *chainRun) windowsFrom(from, until string) error {
	start, err := time.Parse(time.RFC3339, from)
	if err != nil {
		return fmt.Errorf("incremental.window: %w", err)
	}
	end, err := time.Parse(time.RFC3339, until)
	if err != nil {
		return fmt.Errorf("incremental.window: %w", err)
	}
	step := c.st.s.Incremental.Window.Step.V
	c.from, c.until = from, until
	c.windows = []window{}
	for t := start.UTC(); t.Before(end); t = t.Add(step) {
		c.windows = append(c.windows, window{start: t, end: minTime(t.Add(step), end.UTC())})
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// partitions sends the records of a partitions stream: one per value.
func (c *chainRun) partitions() error {
	st := c.st
	pt := st.s.Partitions
	var values []any
	if pt.Range != nil {
		step := 1
		if pt.Range.Step.Set {
			step = pt.Range.Step.V
		}
		for v := pt.Range.From.V; step > 0 && v <= pt.Range.To.V || step < 0 && v >= pt.Range.To.V; v += step {
			values = append(values, v)
		}
	} else {
		v, err := spec.RenderValue(pt.Values.Tree(), c.env)
		if err != nil {
			return fmt.Errorf("partitions.values: %w", err)
		}
		// A value built from a secret input is a credential: it goes out
		// in its children's requests and is named in their messages.
		c.r.secretValue(pt.Values.Tree(), v)
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("partitions.values: want a list, got %s", jsonv.Kind(v))
		}
		values = list
		if len(list) == 0 {
			// Maybe meant (no accounts yet), maybe a config left empty by
			// mistake: either way the tables fed by it read nothing, and a
			// replace table marks every row deleted. Said, not failed.
			c.r.log.Warn("partitions: the values are an empty list, so this stream and its children read nothing (and a replace table they feed marks its rows deleted)", "stream", st.s.Name)
		}
	}
	replay := c.cp != nil && c.cp.Done
	// On replay, the values whose rows were committed; nil for all (a
	// checkpoint from before they were saved). A value added since (the
	// config edited, a template reading the date) is written now.
	var committed map[string]bool
	keys := []string{}
	if replay && c.cp.Values != nil {
		committed = map[string]bool{}
		for _, k := range *c.cp.Values {
			committed[k] = true
		}
		keys = append(keys, *c.cp.Values...)
	}
	recs := make([]map[string]any, len(values))
	fresh := make([]bool, len(values))
	added := false
	for i, v := range values {
		recs[i] = map[string]any{"value": v}
		key, _ := c.r.identify(c.ctx, st.s, recs[i], c.vars)
		if fresh[i] = !replay || committed != nil && !committed[key]; fresh[i] {
			added = added || replay
			keys = append(keys, key)
		}
	}
	if replay && !added && len(st.children) == 0 && len(st.batchers) == 0 && len(st.entities) == 0 && !(st.fill && len(st.fills) > 0) {
		return nil
	}
	for i, rec := range recs {
		var tables []*spec.Table
		if fresh[i] {
			tables = st.tables
		}
		m, err := c.r.mapRecord(c.ctx, st, c.rn, rec, c.vars, tables)
		if err != nil {
			return errCancelled
		}
		if m != nil && c.cp == nil {
			// Read from the start: maybe afresh, writing again the rows
			// it committed before. (A replay writes only values added
			// since: new records.)
			for i := range m.rows {
				m.rows[i].reread = true
			}
		}
		if !c.send(item{rec: rec, out: m}) {
			return errCancelled
		}
	}
	st.read.records(len(values))
	if !replay || added {
		c.send(item{mark: &pageState{Pages: 1, Done: true, Values: &keys, Of: digestOf(c.rn.parent), fresh: c.cp == nil && c.checkpointed}})
	}
	return nil
}

// pages reads the pages of one window (or of the whole chain, or of one
// download of an async stream).
// paged reads window w's chain of pages from its first request: from the
// page saved at start when the chain resumes there, else from page 1.
func (c *chainRun) paged(client *fetch.Client, w int, start position, restore bool, env map[string]any, req *paginate.Request, target string) error {
	pager := paginate.New(c.st.s.Paginate, c.vars, env)
	if err := pager.Init(c.ctx, req); err != nil {
		return err
	}
	if pg := c.st.s.Paginate; pg != nil && (pg.Total.Set || pg.TotalHeader.Set) {
		c.listedTwice = newRepeats(w)
	}
	first := 1
	if restore && w == start.window {
		if err := pager.Restore(c.ctx, c.cp.Next, req); err != nil {
			return fmt.Errorf("resume: %w", err)
		}
		first = start.page
		if c.listedTwice != nil {
			c.knowListed()
		}
	}
	return c.pages(client, w, first, pager, req, target)
}

// knowListed gives the total check of a chain resumed mid-list the items
// its pages listed before (saved with their checkpoints). A checkpoint
// that counted items but saved none of them (written by a ferry from
// before they were saved) leaves the check unable to tell their repeats:
// said, not passed silently.
func (c *chainRun) knowListed() {
	known := c.r.opts.SavedKeys.listedBy(c.st.s.Name, c.rn.partition)
	if len(known) == 0 && c.cp.Next.Listed > 0 {
		c.r.log.Warn("paginate.total: the items the chain's pages listed before this resume are unknown, so a later page that lists one of them again is counted as new and can make up for an item lost; the total check cannot vouch for this chain (--full-refresh reads it whole)",
			"stream", c.st.s.Name, "parents", c.rn.describe(), "listed_before", c.cp.Next.Listed)
		return
	}
	c.listedTwice.know(known)
}

// notSaved takes out of hs, the items a page listed, those the sync's
// earlier runs saved for the partition: a resumed chain (its checkpoints
// add to what they saved, none replaces it) that reads committed pages
// again would otherwise save their items again, a copy for every run
// until the sync ends.
func (c *chainRun) notSaved(hs []uint64) []uint64 {
	if c.cp == nil || len(hs) == 0 {
		return hs // read from the start: its first checkpoint drops them
	}
	if c.savedListed == nil {
		c.savedListed = slices.Sorted(slices.Values(c.r.opts.SavedKeys.listedBy(c.st.s.Name, c.rn.partition)))
		if c.savedListed == nil {
			c.savedListed = []uint64{}
		}
	}
	return slices.DeleteFunc(hs, func(h uint64) bool {
		_, ok := slices.BinarySearch(c.savedListed, h)
		return ok
	})
}

func (c *chainRun) pages(client *fetch.Client, w, first int, pager *paginate.Pager, req *paginate.Request, target string) error {
	st, s := c.st, c.st.s
	last := w == c.spans()-1
	for page := first; ; page++ {
		at := position{w, page}
		replay := at.atMost(c.replayUntil)
		// The request, its body decoded and its records released (see
		// readPage): what is left here is where the chain goes next.
		pg, err := c.readPage(client, req, target, at, replay, pager.State())
		if err != nil {
			return err
		}
		if pg.skipped {
			c.spanSkipped = true
			return nil
		}
		resp, empty, retried := pg.resp, pg.empty, pg.retried
		// A 204 is no records too, and there the server's own answer.
		noContent := !empty && resp.Status == http.StatusNoContent
		if (empty || noContent) && (page > 1 && serverLinked(s.Paginate) || page == 1 && c.downloads != nil) {
			// The server named this page (a next URL or link, a
			// cursor, an export job's result file): there was more. A
			// rule's "no data" here (a 404 read as none, right for a
			// first page of a list) would end the chain (or the
			// download) complete with the rest unread. Failed, a
			// resumed run asks this page again.
			if !replay {
				// None of its records went out: the checkpoint is the
				// page's start, so a resumed run writes what it holds
				// then (a redo mark, "its records went out", made the
				// resumed run skip them: an append table lost them).
				mark := c.mark(at, pager.State(), false, false)
				mark.Pages = page - 1
				c.send(item{mark: mark})
			}
			what, cause := "the rule's \"no data\"", pg.emptyBy
			if noContent {
				what, cause = "its 204 No Content", errNoContent
			}
			why := "the previous page linked to it, so " + what + " would lose the rest of the list"
			if page == 1 {
				why = "it is a result of the export job, which is done, so " + what + " would lose its records"
			}
			return fmt.Errorf("%spage %d: %s: %w", c.windowLabel(w), page, why, cause)
		}
		// The page's records were all released: checkpoints from now on
		// hold them.
		c.pageDone(at)
		if d, err := dateOf(resp); err == nil && d.Before(c.began) {
			// By the API's clock, which stamps what changes while the
			// chain reads, the chain began no later than this answer.
			c.began = d
		}
		state := pager.State()
		var more bool
		if empty {
			// A rule's "no data" ends the chain: short of a total a page
			// reported, that is the server stopping early.
			err = pager.EndedAt(page)
		} else {
			more, err = pager.Next(c.ctx, paginate.Page{Number: page, Body: pg.body, Header: resp.Header, URL: resp.URL, Records: pg.records, Listed: pg.listed, ListedKnown: pg.known, Repeats: pg.repeats, Sum: pg.bodySum, Summed: pg.summed}, req)
			if total, ok := pager.Total(); ok && c.listedTwice != nil {
				c.listedTwice.expect(total)
			}
		}
		if err != nil {
			var short *paginate.ShortError
			var shortPages *paginate.PagesShortError
			var copied *paginate.CopyError
			switch {
			case errors.As(err, &copied) && !replay:
				// Its records were the page before's, not its own: the
				// checkpoint goes back to its start, so a resumed run asks
				// it again and writes what it holds then (taken as read, it
				// was asked only to learn what follows, writing nothing).
				mark := c.mark(at, state, false, false)
				mark.Pages = page - 1
				c.send(item{mark: mark})
			case errors.As(err, &short) || errors.As(err, &shortPages):
				// The items missing are on pages already passed, where
				// asking this page again would never find them: a resumed
				// run reads the chain afresh. Short of total_pages, it
				// learns the total anew: asking the page again with the
				// saved one failed every run once the list had shrunk.
				mark := c.mark(at, state, false, true)
				mark.Afresh = true
				c.send(item{mark: mark})
			case !replay:
				// The page's records went out; what follows it is
				// unknown. The checkpoint says so, so a resumed run asks
				// this page again (writing nothing from it) rather than
				// losing or doubling it.
				mark := c.mark(at, state, false, true)
				c.send(item{mark: mark})
			}
			return fmt.Errorf("%spage %d: %s %s: %w", c.windowLabel(w), page, st.method, resp.URL, err)
		}
		if !more && last && !empty {
			// Before a probe's return too: a check that read the last page
			// must fail where the run would.
			if err := c.token(pg.body); err != nil {
				// The page's records went out; the chain's last page gave
				// no usable token: the cursor stays where it was.
				return fmt.Errorf("%spage %d: %s %s: incremental.token: %w", c.windowLabel(w), page, st.method, resp.URL, err)
			}
		}
		if c.r.opts.Probe {
			return nil // its first page answered and was read: enough
		}
		var mark *pageState
		if more {
			c.warnOffOrigin(resp.URL, req.URL)
			mark = c.mark(at, pager.State(), false, false)
		} else {
			// The window (or chain) is done: the next position is the
			// next window's first page.
			mark = c.mark(position{w + 1, 0}, paginate.State{}, last, false)
			if last {
				mark.Window, mark.Pages, mark.Next = w, page, pager.State()
			}
		}
		if replay {
			// The chain got further before: keep its position, with the
			// records tried again that succeeded taken off the list.
			saved := *c.cp
			saved.Retry, saved.Held = mark.Retry, mark.Held
			if r := saved.Recs; mark.Recs != nil && (at == position{saved.Window, saved.Pages} || r != nil && at == position{r.Window, r.Page}) {
				// The page whose records it holds, as committed now (a
				// record shifted onto it was written).
				saved.Recs = mark.Recs
			}
			mark = &saved
		}
		switch {
		case more:
		case len(mark.Retry) > 0:
			// Records of the chain failed their mapping: the cursor stays
			// before them. A resumed run tries them again and then moves
			// it; a new sync (the unfinished one too old to resume) asks
			// for them again rather than starting after them.
		case c.entityFailed:
			// So with an entity that failed: the cursor stays before it.
		case c.windows != nil:
			// A window is done: the cursor moves to its end, unless a
			// window before it was skipped.
			if !c.spanSkipped {
				// No later than the chain began (by the API's Date when
				// earlier): a window ending in the API's future, its clock
				// behind ferry's, holds events stamped after it answered.
				end := c.windows[w].end
				if !c.began.IsZero() && c.began.Before(end) {
					end = c.began.UTC()
					c.warnHeldBack()
				}
				mark.cursor = end.Format(time.RFC3339)
			}
		case s.Incremental != nil && c.maxCursor != nil && last && !c.spanSkipped && (c.floor == nil || later(c.capped(c.maxCursor), c.floor)):
			// (With a lookback, the records read may all be older than
			// the cursor saved before: it stays. After a skipped download
			// it stays too: the skipped file's records may be older.)
			if s.Incremental.Token.Set {
				// The API's own token, not a time read from records.
				mark.cursor = c.maxCursor
				break
			}
			mark.cursor = c.capped(c.maxCursor)
			c.warnNaive(c.maxCursor)
			c.warnEpochUnheld(c.maxCursor)
			if c.afterBegan(c.maxCursor) {
				c.warnHeldBack()
			}
		}
		if c.listedTwice != nil {
			// The page's items, counted in the position the mark saves
			// (see knowListed); those of a replayed page whose mark is not
			// sent go with the next one that is (see send).
			c.unsaved = append(c.unsaved, c.notSaved(c.listedTwice.listed())...)
		}
		if !replay || retried || mark.cursor != nil {
			if !c.send(item{mark: mark}) {
				return errCancelled
			}
		}
		if !more {
			return nil
		}
	}
}

// token takes the next sync's token from the body of the chain's last
// page (incremental.token). Only the last page's counts: an API hands it
// out when the list is read to its end (Graph's deltaLink), and an earlier
// page's would start the next sync inside this one. A last page without
// one leaves the cursor where it was, with a warning; a token that is not a
// string or a number fails the chain rather than be saved as something the
// next request cannot send.
func (c *chainRun) token(body any) error {
	inc := c.st.s.Incremental
	if inc == nil || inc.Token.Code() == nil {
		return nil
	}
	v, _, err := inc.Token.Code().First(c.ctx, body, c.vars...)
	if err != nil {
		return err
	}
	switch x := v.(type) {
	case nil:
	case string:
		if x != "" {
			c.maxCursor = x
			return nil
		}
	case json.Number, float64, int, int64:
		c.maxCursor = x
		return nil
	default:
		return fmt.Errorf("want a string or a number, got %s", jsonv.Kind(v))
	}
	c.r.log.Warn("the chain's last page gave no incremental.token: the cursor stays where it was, and the next run asks the same again", "stream", c.st.s.Name, "parents", c.rn.describe())
	return nil
}

// windowName is window w as "start..end", "" for a chain without windows.
func (c *chainRun) windowName(w int) string {
	if c.windows == nil || c.downloads != nil {
		return ""
	}
	return c.windows[w].start.Format(time.RFC3339) + ".." + c.windows[w].end.Format(time.RFC3339)
}

func (c *chainRun) windowLabel(w int) string {
	if c.downloads != nil {
		return fmt.Sprintf("download %d of %d: ", w+1, len(c.downloads))
	}
	if c.windows == nil {
		return ""
	}
	return fmt.Sprintf("window %s..%s: ", c.windows[w].start.Format(time.RFC3339), c.windows[w].end.Format(time.RFC3339))
}

// mark is the checkpoint after the page at pos: next is where the chain
// goes on from there.
func (c *chainRun) mark(at position, next paginate.State, done, redo bool) *pageState {
	ps := &pageState{Window: at.window, Pages: at.page, Next: next, Done: done, Redo: redo, Up: upCursors(c.rn.parent), Of: digestOf(c.rn.parent), Batch: c.batch,
		Since: c.since, From: c.from, Until: c.until, Max: c.maxCursor, Retry: pending(c.failed, c.cp, at, c.retried), Held: c.spanSkipped, Job: c.job,
		ReplacedRetry: c.replacedRetry, Results: c.resultsAt(at.window), fresh: c.cp == nil && c.checkpointed}
	if c.st.replayable || c.replayed() || redo || len(ps.Retry) > 0 {
		// Only a checkpoint whose pages a resumed run reads again needs
		// them: the others' would sit in each partition's state, unread.
		// Any resumed run: one without --streams reads a parent again for
		// a child this run leaves out.
		ps.Recs = c.markRecs()
	}
	if !c.began.IsZero() {
		ps.Began = c.began.Format(time.RFC3339Nano)
	}
	if inc := c.st.s.Incremental; c.from != "" && inc != nil && inc.Window != nil {
		ps.Step = inc.Window.Step.V.String()
	}
	return ps
}

// capped is cursor cur, when it is a time (see afterBegan) after a second
// before the run that started the chain began, moved back there, written as cur is
// (its offset and fraction digits; a number in the initial cursor's
// unit). A record changed while the run read may move to a page already
// read (a list sorted by creation, newest first, takes a new issue on its
// first page; one sorted by update moves a changed record to the end, past
// one not read yet): stamped before the latest one read, it is passed by a
// cursor taken from the records; the next run asks again for what changed
// since the run began (less a second).
func (c *chainRun) capped(cur any) any {
	if c.began.IsZero() || !c.afterBegan(cur) {
		return cur
	}
	t, ok := instant(cur)
	if !ok {
		// A time written as a number (see epochUnit), in the initial
		// cursor's unit: a cursor in a larger one (milliseconds among
		// seconds) is held too, rather than ask from millennia ahead.
		initial := c.st.s.Incremental.Initial.Tree()
		unit := epochUnit(initial)
		switch {
		case epochUnit(cur) != unit:
			if !c.st.otherUnit.Swap(true) {
				// Or the initial cursor is in the wrong unit, and every
				// run reads again from its start: said, not silent.
				c.r.log.Warn("a number cursor read is not in the unit of the initial cursor: read in that unit it is after the run began, so the cursor is held there; if the API's times are in the records' unit, write initial in it too, or each run reads again from when the last began",
					"stream", c.st.s.Name, "cursor", cur, "initial", initial, "unit", unit.String())
			}
		default:
			// A day ahead is no skewed clock: ids with as many digits as
			// the initial one (snowflakes are 19), read as times, are
			// years ahead, and every run reads again all after its start.
			if far, _ := epochAfter(cur, unit, c.began.Add(24*time.Hour)); far && !c.st.farAhead.Swap(true) {
				c.r.log.Warn("a number cursor read is more than a day after the run began, read as a time in the unit of the initial cursor: held there, so each run reads again from when the last began; if the cursor is an id, not a time, write initial with other than 10, 13, 16 or 19 digits (0)",
					"stream", c.st.s.Name, "cursor", cur, "initial", initial, "unit", unit.String())
			}
		}
		return epochLike(c.began.Add(-time.Second), unit, cur)
	}
	// A second before: a record changed as the run began is stamped with
	// that second when the API cuts its stamps to seconds, which a since
	// filtering exclusively would leave out.
	// In cur's offset, not its location: Go parses "+00:00" into the local
	// zone when that is its offset then, and the cap, in another season,
	// came out in the other offset.
	_, offset := t.Zone()
	return stampLike(c.began.Add(-time.Second).In(time.FixedZone("", offset)), cur.(string))
}

// afterBegan reports whether cursor cur is a time after a second before
// the chain began (where capped holds it): one with a UTC offset (see
// instant), or a number when the initial cursor is a time written as one
// (see epochUnit). Not after the start itself: a record changed in the
// run's first second, onto a page already read, is stamped with the same
// whole second as one read before it, and a since filtering exclusively
// would leave it out were that stamp saved.
func (c *chainRun) afterBegan(cur any) bool {
	hold := c.began.Add(-time.Second)
	if t, ok := instant(cur); ok {
		return t.After(hold)
	}
	unit := epochUnit(c.st.s.Incremental.Initial.Tree())
	if unit == 0 {
		return false
	}
	after, _ := epochAfter(cur, unit, hold)
	return after
}

// warnHeldBack says, once for the stream, that a cursor held at when its
// chain began (see capped) is before the cursor the chain started from: a
// clock is behind, this machine's or the API's Date. Nothing is lost, but
// every run would read again from there, unsaid.
func (c *chainRun) warnHeldBack() {
	if !c.afterBegan(c.since) || c.st.heldBack.Swap(true) {
		return
	}
	c.r.log.Warn("the saved cursor is held at when the chain began, before the cursor the run started from: this machine's clock, or the API's (its Date header), is behind; the next run reads again from there",
		"stream", c.st.s.Name, "began", c.began.UTC().Format(time.RFC3339), "since", c.since)
}

// warnNaive says, once for the stream, that cursor cur is a time without a
// UTC offset ("2026-03-05T10:00:06"): it compares as text and cannot be
// held at when the chain began (its zone is unknown), so a record changed
// while the run read, onto a page already read, is passed by it, and no
// lookback takes it. Where the API's times are UTC, a cursor program that
// adds the offset makes it one that is.
func (c *chainRun) warnNaive(cur any) {
	if !naiveTime(cur) || c.st.naive.Swap(true) {
		return
	}
	c.r.log.Warn(`the cursor is a time without a UTC offset: it cannot be held at when the run began, so a record changed while the run read, onto a page already read, is passed by it; if the API's times are UTC, give the offset in the cursor program (cursor: '.updated_at + "Z"')`,
		"stream", c.st.s.Name, "cursor", cur)
}

// warnEpochUnheld says, once for the stream, that number cursor cur reads
// as a time in epoch seconds, milliseconds, microseconds or nanoseconds
// (by its digits, see epochUnit) within a day of when the chain began,
// while the initial cursor is no such number (0, or none): saved as read,
// as an id is, it is never held at when the chain began (see capped), so
// a record changed while the run read, onto a page already read, is
// passed by it. An id seldom falls within that day.
func (c *chainRun) warnEpochUnheld(cur any) {
	initial := c.st.s.Incremental.Initial.Tree()
	unit := epochUnit(cur)
	if c.began.IsZero() || unit == 0 || epochUnit(initial) != 0 {
		return
	}
	t, ok := epochTime(cur, unit)
	if !ok || t.Before(c.began.Add(-24*time.Hour)) || t.After(c.began.Add(24*time.Hour)) || c.st.epochUnheld.Swap(true) {
		return
	}
	c.r.log.Warn("the number cursor looks like a time in epoch "+unitName(unit)+" near when the run began, but the initial cursor is not one (10, 13, 16 or 19 digits): it is saved as read, not held at when the run began, so a record changed while the run read, onto a page already read, is passed by it; if it is a time, write initial in its unit (1000000000 for seconds)",
		"stream", c.st.s.Name, "cursor", cur, "initial", initial)
}

// warnOffOrigin says, once per stream, that a chain's next page is on
// another origin than the page that linked to it: the client sends it
// without the credentials and config headers (base_url's origin only),
// and records from there are written all the same, so the change of
// source must not pass unsaid.
func (c *chainRun) warnOffOrigin(from, next string) {
	f, err1 := url.Parse(from)
	n, err2 := url.Parse(next)
	if err1 != nil || err2 != nil || !n.IsAbs() || sameOrigin(f, n) || c.st.offOrigin.Swap(true) {
		return
	}
	c.r.log.Warn("a next page is on another origin: the list goes on there, asked without the credentials and headers of base_url",
		"stream", c.st.s.Name, "parents", c.rn.describe(), "from", f.Scheme+"://"+f.Host, "to", n.Scheme+"://"+n.Host)
}

// sameOrigin compares scheme and host (with its port; a default port
// written out is the same origin).
func sameOrigin(a, b *url.URL) bool {
	host := func(u *url.URL) string {
		h := strings.ToLower(u.Host)
		switch {
		case strings.EqualFold(u.Scheme, "https"):
			h = strings.TrimSuffix(h, ":443")
		case strings.EqualFold(u.Scheme, "http"):
			h = strings.TrimSuffix(h, ":80")
		}
		return h
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && host(a) == host(b)
}

// spans is the number of sub-chains: windows, an async stream's
// downloads, or the one chain.
func (c *chainRun) spans() int {
	if c.downloads != nil {
		return len(c.downloads)
	}
	return max(1, len(c.windows))
}

// release maps and sends records of a page, the first of them at index
// first. On a page committed before, only the table mappings that failed
// are applied again.
func (c *chainRun) release(recs []any, at position, first int, replay bool) (retried bool, err error) {
	st := c.st
	for j, rec := range recs {
		i := first + j
		c.noteRec(rec)
		tables := st.tables
		key := ""
		// failedBefore: tables this record's mapping failed for before, so
		// its partition committed no row of it there.
		var failedBefore map[string]bool
		whole := false // a record of a replayed page written whole
		// committedThen: a record past the committed pages that its
		// partition committed (shifted onto a later page): its keyed rows
		// are its own, not duplicates of them.
		committedThen := false
		if replay {
			if len(c.retryKeys) > 0 {
				key, _ = c.r.identify(c.ctx, st.s, rec, c.vars)
			}
			for _, t := range st.tables {
				if key != "" && c.retryKeys[retryKey{key, t.Name}] || c.retry[recordPos{Window: at.window, Page: at.page, Index: i, Table: t.Name}] {
					if failedBefore == nil {
						failedBefore = map[string]bool{}
					}
					failedBefore[t.Name] = true
				}
			}
		}
		switch {
		case !replay:
			if (c.cp != nil || c.jobReplaced) && st.s.Incremental == nil {
				// A page past those the resumed chain committed holds a
				// record a committed page held (the server pages it
				// otherwise now: a short page, or a done chain read again
				// for the records below), or a new export job's results
				// hold one the replaced job's did: its rows were
				// committed, and an append table would get it twice.
				// Not one its mapping failed for then: that row was never
				// committed. A saved sum tells that itself (it holds the
				// record's append rows as they are now), and a retry list
				// kept for the rest of the sync (a replaced job's) may
				// name a record a later job appended since.
				if done, bySum := c.appendedBefore(rec); done {
					committedThen = !c.jobReplaced
					tables = slices.DeleteFunc(slices.Clone(tables), func(t *spec.Table) bool {
						return t.Mode.V == "append" && (bySum || !c.failedThen(t.Name, rec))
					})
				}
			}
		case c.changed(rec):
			// Written whole: its page's checkpoint must follow.
			retried, whole = true, true
		default:
			// Rows were committed before, but for the tables whose
			// mapping of this record failed, and those where the page
			// did not hold it when committed (a server that cut that
			// page short, or a record added since): its partition saved
			// no key of its row.
			tables = nil
			// A table without a primary key is told by the records the
			// checkpoint's page held, where they tell (see pageHeld).
			held, heldKnown := c.pageHeld(rec, at)
			for _, t := range st.tables {
				done := false
				switch {
				case failedBefore[t.Name]:
				case len(t.PrimaryKey) == 0 && heldKnown:
					done = held || c.committedByOwnKey(rec, failedBefore)
				default:
					done = c.committed(t, rec, failedBefore)
				}
				if done {
					continue
				}
				if key != "" && c.retryKeys[retryKey{key, t.Name}] {
					c.retried[retryKey{key, t.Name}] = true
				}
				tables = append(tables, t)
			}
			retried = retried || len(tables) > 0
		}
		m, err := c.r.mapRecord(c.ctx, st, c.rn, rec, c.vars, tables)
		if err != nil {
			return retried, errCancelled
		}
		if h, ok := c.noteAppended(m, rec, tables); c.metNear(h, ok, at) {
			c.dropAppendRows(m)
		}
		if whole {
			c.dropAppended(m)
		}
		if replay && !whole && c.changes() {
			// A record written whole on a replayed page (it changed since)
			// rewrites its own saved key; the committed records around it
			// are met in their order, so that one that changed to another
			// record's key is a duplicate still.
			m = c.noteCommitted(m, rec, tables)
		}
		if m != nil && (replay || c.cp == nil || committedThen) {
			// A chain read from its start (afresh, or for the first time),
			// or a record of a committed page written again: its rows may
			// be the ones its partition committed before. Not a row whose
			// mapping failed before: its partition's key is another
			// record's, which this row duplicates.
			for i := range m.rows {
				m.rows[i].reread = c.cp == nil || !failedBefore[m.rows[i].Table]
			}
		}
		if m != nil {
			for _, f := range m.fails {
				c.entityFailed = c.entityFailed || f.Blueprint != ""
				if f.Table != "" {
					if key == "" {
						key, _ = c.r.identify(c.ctx, st.s, rec, c.vars)
					}
					c.failed = append(c.failed, recordPos{Window: at.window, Page: at.page, Index: i, Table: f.Table, Key: key})
				}
			}
		}
		if !c.send(item{rec: rec, out: m}) {
			return retried, errCancelled
		}
	}
	return retried, nil
}

// dropAppended takes out of m, a replayed record written whole, the rows
// of append tables that its partition committed as they are now (see
// target.contentKeyed): appended again, they would be there twice.
func (c *chainRun) dropAppended(m *mapped) {
	if m == nil {
		return
	}
	m.rows = slices.DeleteFunc(m.rows, func(row mappedRow) bool {
		return row.key == "" && c.r.targets.contentKeyed(row.Table, c.st.s) &&
			c.r.targets.committedHash(row.Table, contentHash(row.Data), c.st.s.Name, c.rn.partition)
	})
}

// committed tells whether the rows of rec in table t were committed by
// this chain's partition in the sync's earlier runs, as far as the keys
// they saved say (all are, when no keys are saved: no table destination).
// A table without a primary key saves none: its rows were committed with
// the page's checkpoint as the record's rows in the stream's keyed tables
// were, so those tell (a record the page did not hold when committed, one
// shifted onto it since, is appended, not taken for committed and lost),
// but those its mapping failed for before (failedBefore: no key saved, the
// page committed all the same); without such a table its rows are taken
// as committed (writing them again would append them twice).
func (c *chainRun) committed(t *spec.Table, rec any, failedBefore map[string]bool) bool {
	if len(t.PrimaryKey) == 0 {
		for _, k := range c.st.tables {
			if len(k.PrimaryKey) == 0 || failedBefore[k.Name] {
				continue
			}
			// One whose mapping fails now tells nothing.
			if done, known := c.committedKeys(k, rec); known && (done || c.maps(k, rec)) {
				return done
			}
		}
		return true
	}
	done, _ := c.committedKeys(t, rec)
	return done
}

// appendedBefore tells whether the sync's earlier runs committed rec's
// rows in this chain's partition as it would write them now: by its
// appendSum, which the partition saved (none: not known, so not). A
// chain whose job was replaced asks of the sums its partition saved
// before the new job's start dropped them, and of those of the jobs
// replaced before (ReplacedPartition): they are rows in the tables all
// the same. A partition that saved no sums (an older ferry's) is told by
// its keyed tables' keys and 16-bit fingerprints, which miss a change in
// what only an append table maps. bySum: the sums told.
func (c *chainRun) appendedBefore(rec any) (done, bySum bool) {
	if !slices.ContainsFunc(c.st.tables, func(t *spec.Table) bool { return t.Mode.V == "append" }) {
		return false, false
	}
	var sum appendSum
	type keyed struct {
		t    *spec.Table
		rows []keyedRow
	}
	var keys []keyed
	for _, t := range c.st.tables {
		if t.Mode.V != "append" && !ownKey(t) {
			continue
		}
		rows, errs := sumRows(c.ctx, t, c.r.opts.KeyTypes[t.Name], c.st.s.Name, rec, c.vars)
		if len(errs) > 0 {
			return false, false
		}
		for _, row := range rows {
			sum.add(t, row.key, row.data)
		}
		if t.Mode.V != "append" {
			keys = append(keys, keyed{t, rows})
		}
	}
	h, ok := sum.value()
	if !ok {
		return false, false
	}
	if same, known := c.r.targets.appendedSame(c.st.s.Name, c.rn.partition, h, c.jobReplaced); known {
		return same, true
	}
	for _, k := range keys {
		for _, row := range k.rows {
			if row.key != "" && !c.r.targets.committedSame(k.t.Name, row.key, c.st.s.Name, c.rn.partition, row.data, c.jobReplaced) {
				return false, false
			}
		}
	}
	return true, false
}

// failedThen tells whether rec's mapping to table may have failed in the
// sync's earlier runs, by the retry list of the checkpoint the chain
// resumed and those of the export jobs it replaced: an entry for table
// that the replay of the committed pages did not meet (tried again there,
// its row is written) with rec's key, with a key of its content (a record
// without a key or id, which a change since makes another), or with none
// (a place only). Such a record past the committed pages is taken for
// it: a duplicate rather than a loss.
func (c *chainRun) failedThen(table string, rec any) bool {
	retry := c.replacedRetry
	if c.cp != nil {
		retry = append(slices.Clip(retry), c.cp.Retry...)
	}
	key, keyed := "", false
	for _, rp := range retry {
		if rp.Table != table || rp.Key != "" && c.retried[retryKey{rp.Key, rp.Table}] {
			continue
		}
		if rp.Key == "" {
			return true
		}
		if !keyed {
			key, _ = c.r.identify(c.ctx, c.st.s, rec, c.vars)
			keyed = true
		}
		if key == rp.Key || key == contentKey(rec) {
			return true
		}
	}
	return false
}

// maps tells whether rec maps to table t without an error.
func (c *chainRun) maps(t *spec.Table, rec any) bool {
	_, errs := tableRows(c.ctx, t, c.r.opts.KeyTypes[t.Name], c.st.s.Name, rec, c.vars)
	return len(errs) == 0
}

// committedKeys is committed for a keyed table, and whether rec has a row
// there to tell by.
func (c *chainRun) committedKeys(t *spec.Table, rec any) (done, known bool) {
	rows, errs := tableRows(c.ctx, t, c.r.opts.KeyTypes[t.Name], c.st.s.Name, rec, c.vars)
	if len(errs) > 0 {
		// A mapping that fails now: mapped again, it fails the record.
		return false, true
	}
	for _, row := range rows {
		if row.key == "" {
			continue
		}
		known = true
		if !c.r.targets.committedBy(t.Name, row.key, c.st.s.Name, c.rn.partition) {
			return false, true
		}
	}
	return true, known
}

// changes tells a chain whose replayed records may be written whole
// (changed): an incremental one with a cursor.
func (c *chainRun) changes() bool {
	inc := c.st.s.Incremental
	return inc != nil && inc.Cursor.Code() != nil
}

// noteCommitted adds to m (made when nil) the primary keys of rec's rows
// its chain committed before and does not write again (the tables but
// written, those its mapping failed for or that did not hold it): a
// mapping that fails now notes nothing.
func (c *chainRun) noteCommitted(m *mapped, rec any, written []*spec.Table) *mapped {
	for _, t := range c.st.tables {
		if slices.Contains(written, t) || len(t.PrimaryKey) == 0 {
			continue
		}
		rows, _ := tableRows(c.ctx, t, c.r.opts.KeyTypes[t.Name], c.st.s.Name, rec, c.vars)
		for _, row := range rows {
			if row.key == "" {
				continue
			}
			if m == nil {
				m = &mapped{place: func() string { return "" }}
			}
			x := c.r.targets.table(t.Name)
			from := origin{stream: c.st.s.Name, partition: c.rn.partition, again: c.rn.again}
			m.seen = append(m.seen, seenKey{t.Name, row.key, x.reading(from, x.fingerprint(from, row.data))})
		}
	}
	return m
}

// changed tells a record of a replayed page of an incremental chain whose
// cursor is later than any the committed pages held: it changed after they
// were committed, so its rows are written again. (A resumed chain asks the
// same question; the answer holds records' new versions.)
func (c *chainRun) changed(rec any) bool {
	inc := c.st.s.Incremental
	if inc != nil && inc.Token.Set {
		// A record carries no cursor to tell: the token saved at the end,
		// from the answer as it is now, passes whatever changed since the
		// page was committed, so every record is written again.
		return true
	}
	if inc == nil || inc.Cursor.Code() == nil {
		return false
	}
	cur := c.r.cursorOf(c.ctx, c.st.s, rec, c.vars)
	return cur != nil && keyOf(cur).after(c.committedKey)
}

// cursorOf is a record's incremental cursor, nil without one.
func (r *Runner) cursorOf(ctx context.Context, s *spec.Stream, rec any, vars []any) any {
	inc := s.Incremental
	if inc == nil || inc.Cursor.Code() == nil {
		return nil
	}
	cur, _, err := inc.Cursor.Code().First(ctx, rec, vars...)
	if err != nil {
		return nil
	}
	return cur
}

// pagingText gives a text body's template the paging values with a
// numeric token as its text: the template reads a JSON number as a float64
// (see eval.Normalize), and 0.29999999999999999 went out as 0.3, a
// position the server never gave, past what lies between. A query or a
// JSON body sends it digit for digit; so does a text body now.
func pagingText(paging any) any {
	m, ok := paging.(map[string]any)
	if !ok {
		return paging
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if n, ok := v.(json.Number); ok {
			v = n.String()
		}
		out[k] = v
	}
	return out
}

// resultsAt is the Results of a checkpoint at window w (resultsDigest).
func (c *chainRun) resultsAt(w int) string {
	if len(c.results) == 0 || w < 0 {
		return ""
	}
	return c.results[min(w, len(c.results)-1)]
}

// buildRequest renders the first request of a run (rq: s's request, or
// one of its export job's). target is the URL or path the HTTP client
// resolves against the base URL.
func (r *Runner) buildRequest(ctx context.Context, s *spec.Stream, rq *spec.Request, rn *run, env map[string]any, vars []any) (paginate.Request, string, error) {
	req := paginate.Request{Query: url.Values{}, Header: http.Header{}}
	var target string
	var err error
	// The parts of a request that a template built from a secret input
	// are credentials: the pool learns them before the request is sent
	// or logged (a path segment, a query value, a body field, a header).
	if t := rq.URL.Template(); t != nil {
		v, err := t.RenderParts(env, r.nullRecordEach(t, r.secretEach(t)))
		if err != nil {
			return req, "", fmt.Errorf("request url %s: %w", rq.URL.V, err)
		}
		target = eval.FormatScalar(v)
	} else if t := rq.Path.Template(); t != nil {
		if target, err = t.RenderPathParts(env, r.nullRecordPathEach(t, r.secretEach(t))); err != nil {
			return req, "", fmt.Errorf("request path %s: %w", rq.Path.V, err)
		}
	}
	for _, it := range rq.Query.Items {
		// A part that only reads the record and is null fails: left out,
		// the request would ask for more than this parent's (an
		// unfiltered list, written under it).
		v, err := spec.RenderValueParts(it.Value.Tree(), env, r.repeatedRecordHook)
		if err != nil {
			return req, "", fmt.Errorf("request query %s: %w", it.Key, err)
		}
		r.secretValue(it.Value.Tree(), v)
		for _, sv := range queryValues(v) {
			req.Query.Add(it.Key, sv)
		}
	}
	for _, it := range rq.Headers.Items {
		v, err := r.renderHeader(it.Value.Template(), env)
		if err != nil {
			return req, "", fmt.Errorf("request header %s: %w", it.Key, err)
		}
		r.secretHeader(it.Value.Template(), v)
		req.Header.Set(it.Key, v)
	}
	switch {
	case rq.Body.Set && rq.BodyFormat.V == spec.BodyText:
		// Rendered for each request with the paging values it carries,
		// which the pager puts in Body (see paginate.Request.Text).
		tree := rq.Body.Tree()
		if t, ok := tree.(*eval.Template); ok {
			if err := r.nullRecordCheck(t, env); err != nil {
				return req, "", fmt.Errorf("request body: %w", err)
			}
		}
		req.Body = map[string]any{}
		req.Text = func(paging any) (string, error) {
			e := maps.Clone(env)
			e[spec.VarPaging] = pagingText(paging)
			var v any
			var err error
			if t, ok := tree.(*eval.Template); ok {
				v, err = t.RenderParts(e, r.nullRecordEach(t, r.secretEach(t)))
			} else {
				v, err = spec.RenderValueParts(tree, e, r.nullRecordHook)
			}
			if err != nil {
				return "", fmt.Errorf("request body: %w", err)
			}
			text, ok := v.(string)
			if !ok {
				// A body that is one ${ } gives its value: text only.
				return "", fmt.Errorf("request body: body_format text wants a string, the template gave %T", v)
			}
			return text, nil
		}
	case rq.Body.Set:
		hook := r.nullRecordHook
		if rq.BodyFormat.V == "form" {
			hook = r.repeatedRecordHook // a list repeats the field
		}
		req.Body, err = spec.RenderValueParts(rq.Body.Tree(), env, hook)
		if err != nil {
			return req, "", fmt.Errorf("request body: %w", err)
		}
		r.secretValue(rq.Body.Tree(), req.Body)
	case rq.BodyJQ.Code() != nil:
		var input any
		if rn.parent != nil {
			input = rn.parent.data
		}
		// One now for the program and bodyJQSecrets' second run of it: a
		// time it reads is no value a secret input decides (taught, it
		// was redacted, and each request's added to the secrets).
		jctx := eval.ContextWithFrozenClock(ctx)
		v, _, err := rq.BodyJQ.Code().First(jctx, input, vars...)
		if err != nil {
			return req, "", fmt.Errorf("request body_jq: %w", err)
		}
		r.bodyJQSecrets(jctx, &rq.BodyJQ, s.JQVars(), input, vars, v)
		req.Body = v
	}
	return req, target, nil
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

// dateOf is the Date header of an answer (none: an error).
func dateOf(resp *fetch.Response) (time.Time, error) {
	if resp == nil {
		return time.Time{}, errors.New("no answer")
	}
	return http.ParseTime(resp.Header.Get("Date"))
}

// errNoContent is a 204 where records were due (see serverLinked).
var errNoContent = errors.New("the server answered 204 No Content")

// serverLinked reports whether a chain's later pages are ones the server
// named (next_url, link_header, cursor), not positions ferry counts
// (page, offset), past whose end some APIs answer 404.
func serverLinked(p *spec.Paginate) bool {
	if p == nil {
		return false
	}
	switch p.Type.V {
	case "next_url", "link_header", "cursor":
		return true
	}
	return false
}

// repeats remembers the items of a chain's pages, so that the total check
// counts once an item a page lists again: a list that shifts as it is read
// (an item added before the read position) repeats the last item of one
// page at the top of the next, and one read in an order that is not
// stable (offset or page paging over rows sorted by no unique key) lists
// an item again pages later in place of one it never lists; counted twice,
// the repeat would make up for the item lost. Any earlier page of the
// chain counts, not only the one before, nor only this run's: a repeat
// from further back hid a loss as well, and so did one of an item a page
// before a resume listed (the pages' items are saved with their
// checkpoints, see listed). Two alike items on one page are the list's
// own. Items are told apart by their JSON text, hashed to 64 bits (the
// same in every run: CRC-64, mixed); the hashes of a chain's items are
// held until it ends (only for a stream with a total), 8 bytes an item:
// the latest in a small map, the rest merged into one sorted slice,
// reserved for the total the pages report (grown by copies, it took two to
// three times that at its peak, and a 200,000-item chain's peak memory
// grew by 3.5 MB).
type repeats struct {
	salt uint64 // the window's: each window is a list of its own
	seen keySet // items of earlier pages, bare: 8 bytes an item
	// cur holds the items of this page, each true when no earlier page
	// listed it: turn and listed need not look it up again.
	cur map[uint64]bool
}

// repeatsReserveMax bounds what a reported total reserves (a slice's
// capacity costs memory only as it fills, but a total is the API's word).
const repeatsReserveMax = 1 << 24

// crcTable hashes items' text (see repeats): fixed, so that a run that
// resumes a chain hashes them as the run that saved them did.
var crcTable = crc64.MakeTable(crc64.ECMA)

func newRepeats(window int) *repeats {
	r := &repeats{seen: keySet{bare: true}, cur: map[uint64]bool{}}
	if window > 0 {
		r.salt = KeyHash("window " + strconv.Itoa(window))
	}
	return r
}

// expect reserves room for the items of a list of total items.
func (r *repeats) expect(total int) { r.seen.reserve(min(total, repeatsReserveMax)) }

// turn starts a new page.
func (r *repeats) turn() {
	for h, isNew := range r.cur {
		if isNew {
			r.seen.insert(h, 0)
		}
	}
	clear(r.cur)
}

// again tells whether the item (its JSON text) was listed on an earlier
// page of the chain, and remembers it on this one.
func (r *repeats) again(item []byte) bool {
	h := mix(crc64.Update(uint64(len(item)), crcTable, item) ^ r.salt)
	_, before := r.seen.get(h)
	r.cur[h] = !before
	return before
}

// listed are the items of this page no earlier page listed: saved with the
// page's checkpoint, as the pages before a resume listed them (see know).
func (r *repeats) listed() []uint64 {
	var out []uint64
	for h, isNew := range r.cur {
		if isNew {
			out = append(out, h)
		}
	}
	return out
}

// know takes the items the chain's pages listed before a resume as
// listed by earlier pages.
func (r *repeats) know(hashes []uint64) {
	for _, h := range hashes {
		r.seen.add(h)
	}
}
