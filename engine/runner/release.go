package runner

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/ferry-etl/ferry/engine/internal/stack"
	"github.com/ferry-etl/ferry/engine/sink"
)

// runBuffer is how many records (mapped) a run may send ahead of its
// releaser: a typical page, so the run asks for its next page while the
// releaser works through this one.
const runBuffer = 128

// submit queues a run in release order and starts fetching it. It blocks
// while the stream's window is full: that is the back-pressure.
func (r *Runner) submit(ctx context.Context, st *streamState, rn *run, runs *sync.WaitGroup) error {
	if !r.prepare(st, rn) {
		return nil
	}
	// Made before the releaser can take the run.
	rn.out = make(chan item, runBuffer)
	select {
	case st.runs <- rn:
	case <-ctx.Done():
		return ctx.Err()
	}
	st.read.chainQueued()
	r.start(ctx, st, rn, runs)
	return nil
}

// prepare readies a run for its queue, and tells whether it is to run at
// all (see chainOnce).
func (r *Runner) prepare(st *streamState, rn *run) bool {
	rn.partition = partitionKey(rn.parent) + rn.part.suffix()
	rn.parents = rn.describe()
	if rn.batchStream {
		rn.list = listDigest(rn.part.keys)
	}
	if !st.chainOnce(rn) {
		// Its parent was listed twice, the same both times (a shifted
		// page repeats a record): the chain already ran in this stage.
		// Run again, it would ask the same question, meet its own rows as
		// duplicates, and its checkpoints would overwrite the first
		// reading's (which may be further on, with the keys it saved).
		r.log.Debug("a parent record listed again: its chain already ran", "stream", st.s.Name, "parents", rn.describe())
		return false
	}
	if rn.again > 0 {
		// Said, not silent: two records of one key (a key too narrow)
		// look the same as one that changed, and the later reading's
		// rows write over the earlier's.
		r.log.Warn("a parent record listed again with other values (changed while its list was read, or another record of the same key): its children are read again and replace the first reading's", "stream", st.s.Name, "parents", rn.describe())
	}
	rn.appends = r.newAppendLedger(st, rn)
	for _, g := range rn.gates {
		g.add()
	}
	return true
}

// start fetches a prepared run's chain. A tree's queued run gets its
// buffer only now (see treeQueue): a buffer is made whole, and a wide
// level may queue many runs.
func (r *Runner) start(ctx context.Context, st *streamState, rn *run, runs *sync.WaitGroup) {
	if rn.out == nil {
		rn.out = make(chan item, runBuffer)
	}
	runs.Add(1)
	go func() {
		defer runs.Done()
		defer close(rn.out)
		stack.Ahead() // see there: the chain sends requests
		r.fetch(ctx, st, rn)
	}()
}

// chainOnce records that rn's chain runs in this stage and tells whether
// it is to run: not when the latest chain of its partition ran for the
// same parent records (by their digest, see chainDigest). A parent that
// changed between its listings (an update moved it to a later page) asks
// again, of children that may have changed with it: the chain runs, and
// rn.again counts the chains of the partition before it, whose reading it
// replaces. A partition is kept as two 64-bit hashes and a count (about
// 50 bytes with the map's own), for the stage's lifetime.
func (st *streamState) chainOnce(rn *run) bool {
	p, d := KeyHash(rn.partition), KeyHash(digestOf(rn.parent))
	st.chainsMu.Lock()
	defer st.chainsMu.Unlock()
	prev, ok := st.chains[p]
	if ok && prev.digest == d {
		return false
	}
	if st.chains == nil {
		st.chains = map[uint64]chainsOf{}
	}
	rn.again = prev.n
	st.chains[p] = chainsOf{digest: d, n: prev.n + 1}
	return true
}

// readAgain makes rn a new reading of its partition, which replaces the
// readings before it in this run (see chainOnce): its chain is read again
// from its start, after the API refused its position (a restart rule).
func (st *streamState) readAgain(rn *run) {
	p := KeyHash(rn.partition)
	st.chainsMu.Lock()
	defer st.chainsMu.Unlock()
	if st.chains == nil {
		st.chains = map[uint64]chainsOf{}
	}
	prev := st.chains[p]
	rn.again = max(prev.n, 1)
	st.chains[p] = chainsOf{digest: prev.digest, n: rn.again + 1}
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
	// An export job's checkpoint, from any run of the stream, is committed
	// whenever it comes (see chainRun.create).
	commitJob := func(jm jobMark) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.checkpoint(ctx, st, jm.rn, jm.mark, out); err != nil {
			return err
		}
		close(jm.mark.committed)
		return nil
	}
	// A recursive stream's chains below its own records, released after
	// the chain they descend from and before the next root chain: each
	// root's tree level by level, in the order its records came.
	var tree *treeQueue
	if st.s.Recursive() {
		tree = &treeQueue{window: r.window(st.s)}
	}
	for {
		var rn *run
		var ok bool
		if tree.waiting() {
			rn, ok = tree.pop(func(rn *run) { r.start(ctx, st, rn, runs) }), true
		} else {
			select {
			case rn, ok = <-st.runs:
			case jm := <-st.jobMarks:
				if err := commitJob(jm); err != nil {
					return err
				}
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if !ok {
			st.stat.finished()
			return nil
		}
		if st.s.Incremental != nil && st.produce && (len(st.children) > 0 || len(st.batchers) > 0) {
			// Batch chains are submitted when the run is over: a gate
			// with batchers waits for that.
			rn.gate = &cursorGate{waitClose: len(st.batchers) > 0}
		}
		// The gates of the chains below: the ancestors' and this run's own.
		gates := rn.gates
		if rn.gate != nil {
			gates = append(slices.Clone(gates), rn.gate)
		}
		var batch []any
		var keys []string // of the batch's records
		var vars []any    // of this run, for identify and cursorOf
		failed, skipped, bad, undelivered := false, false, false, false
		// listed are the key hashes of the run's records when a later
		// stage reads the stream again, or this is such a stage; first is
		// what its own stage listed then (see firstReadings).
		var listed, first []uint64
		compare := false
		if st.firsts != nil && !st.own {
			first, compare = st.firsts.get(rn.partition)
		}
		for {
			var it item
			var open bool
			select {
			case it, open = <-rn.out:
			case jm := <-st.jobMarks:
				if err := commitJob(jm); err != nil {
					return err
				}
				continue
			}
			if !open {
				break
			}
			if ctx.Err() != nil {
				// Interrupted: release nothing more, above all no checkpoint
				// that could cover records not written.
				return ctx.Err()
			}
			if it.mark != nil {
				if undelivered {
					// A record failed on delivery (a duplicate under
					// on_duplicate: fail) is not written: as for one whose
					// mapping failed, the cursor stays before it, and the
					// next sync asks for it again. The checkpoint says so,
					// for a run that resumes the chain.
					held := *it.mark
					held.cursor, held.Undelivered = nil, true
					it.mark = &held
				}
				if err := r.checkpoint(ctx, st, rn, it.mark, out); err != nil {
					return err
				}
				continue
			}
			if it.undelivered {
				// Failed on delivery in the run that stopped the chain.
				bad, undelivered = true, true
				continue
			}
			if it.skip != nil {
				skipped, bad = true, true
				// A stream read again to drive its children (a later
				// stage) is skipped again: the same request, once.
				if fails.skipped(*it.skip) && !it.held {
					st.stat.skipped()
				}
				continue
			}
			if it.err != nil {
				failed, bad = true, true
				st.stat.failed()
				f := fails.add(Failure{Stream: st.s.Name, Parents: rn.describe(), Err: it.err})
				r.log.Error("stream failed", "stream", f.Stream, "parents", f.Parents, "error", f.Err)
				continue
			}
			rn.appends.take(r.targets, st, rn, it.out)
			ok, err := r.deliver(ctx, st, it.out, out, fails)
			if err != nil {
				return err
			}
			bad, undelivered = bad || !ok, undelivered || !ok
			if vars == nil && (len(st.children) > 0 || len(st.batchers) > 0 || tree != nil) {
				vars = r.jqVars(st.s, rn)
			}
			if st.firsts != nil {
				if vars == nil {
					vars = r.jqVars(st.s, rn)
				}
				k, label := r.identify(ctx, st.s, it.rec, vars)
				h := KeyHash(k)
				listed = append(listed, h)
				if _, found := slices.BinarySearch(first, h); compare && !found {
					bad = true
					st.stat.failed()
					c := &chain{stream: st.s.Name, data: it.rec, up: rn.parent, label: label}
					fails.add(Failure{Stream: st.s.Name, Parents: c.describe(), Err: errListedOnlyAgain})
				}
			}
			var here *chain // the record as a parent
			if len(st.children) > 0 {
				here = r.parentChain(ctx, st, rn, it.rec, vars, gates)
			}
			if tree != nil {
				var below *run
				var err error
				below, here, err = r.recurse(ctx, st, rn, it.rec, vars, gates, here)
				if err != nil {
					bad = true
					st.stat.failed()
					f := fails.add(Failure{Stream: st.s.Name, Parents: here.describe(), Err: err})
					r.log.Error("record failed", "stream", f.Stream, "parents", f.Parents, "error", f.Err)
				}
				if below != nil && r.prepare(st, below) {
					st.read.chainQueued()
					tree.push(below, func(rn *run) { r.start(ctx, st, rn, runs) })
				}
			}
			if len(st.children) > 0 {
				for _, c := range st.children {
					if err := r.submit(ctx, c, &run{parent: here, gates: gates}, runs); err != nil {
						return err
					}
				}
			}
			if len(st.batchers) > 0 {
				batch = append(batch, it.rec)
				k, _ := r.identify(ctx, st.s, it.rec, vars)
				keys = append(keys, k)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if st.firsts != nil {
			if st.own {
				st.firsts.add(rn.partition, listed, rn.resumed || failed || skipped)
			} else if compare && !failed && !skipped && missingAgain(st, rn, first, listed, fails) {
				bad = true
			}
		}
		st.read.chainReleased()
		for _, b := range st.batchers {
			if failed {
				// A partial batch would send a wrong list: skip, and say so.
				fails.add(Failure{Stream: b.s.Name, Parents: rn.parent.describe(), Err: fmt.Errorf("skipped: batch stream %s failed for this parent", st.s.Name)})
				b.stat.failed()
				bad = true
				continue
			}
			if skipped {
				// What the skipped request held is unknown: the list would
				// be partial too, and its answer written as if whole.
				if fails.skipped(Skip{Stream: b.s.Name, Parents: rn.parent.describe(), Page: 1, Reason: fmt.Sprintf("batch stream %s skipped a request for this parent: the batch would be partial", st.s.Name)}) {
					b.stat.skipped()
				}
				bad = true
				continue
			}
			if len(batch) == 0 {
				// No item to ask about: a request built from the list
				// (ids: []) would lose its filter, and an API that reads
				// an empty filter as none answers for every item.
				continue
			}
			for _, part := range batchParts(batch, keys, b.s.BatchSize.V) {
				if err := r.submit(ctx, b, &run{parent: rn.parent, batch: part.items, part: part, batchStream: true, gates: gates}, runs); err != nil {
					return err
				}
			}
		}
		// This run is over: the gates above it may open, and its own can
		// once its children are over too.
		if err := r.finished(ctx, out, rn, bad); err != nil {
			return err
		}
	}
}

// parentChain is a record of st's run rn as the parent of the chains below it.
func (r *Runner) parentChain(ctx context.Context, st *streamState, rn *run, rec any, vars []any, gates []*cursorGate) *chain {
	here := &chain{stream: st.s.Name, data: rec, up: rn.parent, gates: gates}
	here.key, here.label = r.identify(ctx, st.s, rec, vars)
	here.digest = chainDigest(here)
	here.cursor = r.cursorOf(ctx, st.s, rec, vars)
	return here
}

// finished tells the gates a run descends from (and its own) that it is
// over, bad when any of its chain or records failed.
func (r *Runner) finished(ctx context.Context, out Output, rn *run, bad bool) error {
	for _, g := range rn.gates {
		if err := g.done(ctx, out, bad); err != nil {
			return err
		}
	}
	if rn.gate != nil {
		return rn.gate.close(ctx, out, bad)
	}
	return nil
}

// cursorGate holds back the incremental cursor of a parent stream's request
// chain until every chain below its records (children, their children,
// batches) has finished without a failure: a cursor saved before would let
// the next run skip the records whose children failed. The cursor offered
// last is committed when nothing is pending; after a failure below, never
// (the next run asks the same question again).
type cursorGate struct {
	mu        sync.Mutex
	pending   int  // chains below, submitted and not finished
	closed    bool // the parent chain itself is over
	waitClose bool // commit only once closed (its batch chains come last)
	failed    bool
	offer     *sink.Checkpoint // the latest cursor waiting to be committed
}

func (g *cursorGate) add() {
	g.mu.Lock()
	g.pending++
	g.mu.Unlock()
}

// offered holds a cursor checkpoint until the gate may commit it.
func (g *cursorGate) offered(ctx context.Context, out Output, cp sink.Checkpoint) error {
	g.mu.Lock()
	g.offer = &cp
	g.mu.Unlock()
	return g.commit(ctx, out)
}

func (g *cursorGate) done(ctx context.Context, out Output, bad bool) error {
	g.mu.Lock()
	g.pending--
	g.failed = g.failed || bad
	g.mu.Unlock()
	return g.commit(ctx, out)
}

func (g *cursorGate) close(ctx context.Context, out Output, bad bool) error {
	g.mu.Lock()
	g.closed = true
	g.failed = g.failed || bad
	g.mu.Unlock()
	return g.commit(ctx, out)
}

// commit writes the waiting cursor when nothing below is pending and
// nothing failed. The chains below committed their rows before finishing,
// so the cursor is committed with or after them.
func (g *cursorGate) commit(ctx context.Context, out Output) error {
	g.mu.Lock()
	if g.pending > 0 || g.failed || g.offer == nil || g.waitClose && !g.closed {
		g.mu.Unlock()
		return nil
	}
	cp := *g.offer
	g.offer = nil
	g.mu.Unlock()
	if c, ok := out.(Checkpointer); ok {
		if err := c.Checkpoint(ctx, cp); err != nil {
			return fmt.Errorf("cursor %s: %w", cp.Stream, err)
		}
	}
	return nil
}

// deliver hands a mapped record to the Output, in release order, after the
// duplicate rules of its targets; ok is false when some of it failed. An
// Output error stops the run.
func (r *Runner) deliver(ctx context.Context, st *streamState, m *mapped, out Output, fails *failures) (ok bool, err error) {
	if m == nil {
		return true, nil
	}
	ok = len(m.fails) == 0
	for _, f := range m.fails {
		fails.add(f)
		st.stat.failed()
	}
	for _, e := range m.entries {
		if err := e.l.add(e.key, e.value); err != nil {
			fails.add(Failure{Stream: st.s.Name, Parents: m.place(), Lookup: e.l.spec.Name, Err: err})
			st.stat.failed()
			ok = false
		}
	}
	for _, sk := range m.seen {
		r.targets.table(sk.table).note(sk.key, sk.fp)
	}
	for i := range m.rows {
		row := &m.rows[i]
		t := r.targets.table(row.Table)
		from := origin{row.Stream, row.Partition, row.reread, row.again}
		fp := t.fingerprint(from, row.Data)
		dup, h := t.seen(row.key, from, t.reading(from, fp), m.place)
		switch dup {
		case dupFail:
			fails.add(Failure{Stream: st.s.Name, Parents: m.place(), Table: row.Table, Err: fmt.Errorf("table %s: primary key %s%s already written by this sync (on_duplicate: fail)", row.Table, row.key, r.keyNote(row.Table, row.Data))})
			st.stat.failed()
			ok = false
			continue
		case dupCollision:
			// Written (the last one wins), but the record whose row it
			// replaces is lost: the run fails, naming both.
			fails.add(Failure{Stream: st.s.Name, Parents: m.place(), Table: row.Table, Err: collisionError("table "+row.Table, "primary key", row.key+r.keyNote(row.Table, row.Data))})
			st.stat.failed()
			ok = false
		case dupMerge:
			row.Merge = true
		}
		if row.key == "" && r.targets.contentKeyed(row.Table, st.s) {
			// Saved by its content: the hash is the row, and a
			// fingerprint would tell nothing more.
			h, fp = contentHash(row.Data), 0
		}
		// Committed with the row, so that a run resuming the sync knows it.
		row.KeyHash, row.Fingerprint = h, fp
		if err := out.Row(ctx, row.Row); err != nil {
			return false, fmt.Errorf("table %s: %w", row.Table, err)
		}
		st.stat.output()
	}
	for i := range m.ents {
		delivered, err := r.deliverEntity(ctx, st, m, &m.ents[i], out, fails)
		if err != nil {
			return false, err
		}
		ok = ok && delivered
	}
	return ok, nil
}

// deliverEntity hands one entity to the Output after the duplicate rules
// of its blueprint; delivered is false when they fail it.
func (r *Runner) deliverEntity(ctx context.Context, st *streamState, m *mapped, e *mappedEntity, out Output, fails *failures) (delivered bool, err error) {
	t := r.targets.blueprint(e.Blueprint)
	if t != nil && t.merges {
		// Another stream's part of this entity must not overtake this one
		// between the decision and the Output.
		t.delivering.Lock()
		defer t.delivering.Unlock()
	}
	// Identifiers are never saved: a resumed run reads every chain that
	// feeds Port again (entities reach Port only when a run ends), so the
	// run meets every entity of the sync itself. The origin tells a
	// reading that replaces an earlier one of its partition (see replaces).
	from := origin{stream: e.Stream, partition: e.Partition, again: e.again}
	dup, _ := t.seenAs(e.key, from, t.reading(from, t.fingerprintAs(e.onDup, from, e.Data)), m.place, e.onDup)
	switch dup {
	case dupFail:
		fails.add(Failure{Stream: st.s.Name, Parents: m.place(), Blueprint: e.Blueprint, Err: fmt.Errorf("blueprint %s: identifier %q already produced by this run (on_duplicate: fail)", e.Blueprint, e.key)})
		st.stat.failed()
		return false, nil
	case dupCollision:
		// Sent (the last one wins), but the entity it replaces is lost.
		fails.add(Failure{Stream: st.s.Name, Parents: m.place(), Blueprint: e.Blueprint, Err: collisionError("blueprint "+e.Blueprint, "identifier", strconv.Quote(e.key))})
		st.stat.failed()
	case dupMerge:
		e.Merge = true
	}
	if err := out.Entity(ctx, e.Entity); err != nil {
		return false, fmt.Errorf("blueprint %s: %w", e.Blueprint, err)
	}
	st.stat.output()
	return dup != dupCollision, nil
}
