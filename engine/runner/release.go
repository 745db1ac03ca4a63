package runner

import (
	"context"
	"fmt"
	"sync"
)

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
	st.stat.chainQueued()
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
			st.stat.finished()
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
			if len(st.children) > 0 {
				here := &chain{stream: st.s.Name, data: it.rec, up: rn.parent}
				here.key, here.label = r.identify(ctx, st.s, it.rec, r.jqVars(st.s, rn))
				for _, c := range st.children {
					if err := r.submit(ctx, c, &run{parent: here}, runs); err != nil {
						return err
					}
				}
			}
			if len(st.batchers) > 0 {
				batch = append(batch, it.rec)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		st.stat.chainReleased()
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

// deliver hands a mapped record to the Output, in release order, after the
// duplicate rules of its targets. An Output error stops the run.
func (r *Runner) deliver(ctx context.Context, st *streamState, m *mapped, out Output, fails *failures) error {
	if m == nil {
		return nil
	}
	for _, f := range m.fails {
		fails.add(f)
		st.stat.failed()
	}
	for i := range m.rows {
		row := &m.rows[i]
		switch r.targets.table(row.Table).seen(r.seed, row.key, m.place) {
		case dupFail:
			fails.add(Failure{Stream: st.s.Name, Parents: m.place(), Table: row.Table, Err: fmt.Errorf("table %s: primary key %s already written by this run (on_duplicate: fail)", row.Table, row.key)})
			st.stat.failed()
			continue
		case dupMerge:
			row.Merge = true
		}
		if err := out.Row(ctx, row.Row); err != nil {
			return fmt.Errorf("table %s: %w", row.Table, err)
		}
		st.stat.output()
	}
	for i := range m.ents {
		e := &m.ents[i]
		switch r.targets.blueprint(e.Blueprint).seenAs(r.seed, e.key, m.place, e.onDup) {
		case dupFail:
			fails.add(Failure{Stream: st.s.Name, Parents: m.place(), Blueprint: e.Blueprint, Err: fmt.Errorf("blueprint %s: identifier %q already produced by this run (on_duplicate: fail)", e.Blueprint, e.key)})
			st.stat.failed()
			continue
		case dupMerge:
			e.Merge = true
		}
		if err := out.Entity(ctx, e.Entity); err != nil {
			return fmt.Errorf("blueprint %s: %w", e.Blueprint, err)
		}
		st.stat.output()
	}
	return nil
}
