package runner

import (
	"context"
	"fmt"
	"strings"
)

// treeQueue holds the chains of a recursive stream below its own records,
// in release order. The first few are fetched ahead (as a stream's window
// of runs is), the rest wait as a parent chain and its record: a tree's
// memory grows with the records whose children are still to be read, never
// with what those children hold.
type treeQueue struct {
	runs    []*run // in release order; the first `started` are being fetched
	started int
	window  int
}

// waiting tells whether a chain is waiting for release (false for no queue).
func (q *treeQueue) waiting() bool { return q != nil && len(q.runs) > 0 }

// push queues a chain, and starts fetching it when the window has room.
func (q *treeQueue) push(rn *run, start func(*run)) {
	q.runs = append(q.runs, rn)
	q.fill(start)
}

// pop takes the next chain to release, fetching it (and the ones after it,
// up to the window) if not yet.
func (q *treeQueue) pop(start func(*run)) *run {
	q.fill(start)
	rn := q.runs[0]
	q.runs[0] = nil
	q.runs = q.runs[1:]
	q.started--
	q.fill(start)
	return rn
}

func (q *treeQueue) fill(start func(*run)) {
	for q.started < len(q.runs) && q.started < q.window {
		start(q.runs[q.started])
		q.started++
	}
}

// recurse decides whether a record of a recursive stream has children to
// read, and gives the chain that reads them (nil: none), and the record as
// a parent (here, when given; made when the record has children or
// fails). A record whose children cannot be read fails, never is passed
// over: one at max_depth whose when still holds (raise max_depth), one
// already among its own ancestors (a cycle: reading on would never end),
// or one whose when fails.
func (r *Runner) recurse(ctx context.Context, st *streamState, rn *run, rec any, vars []any, gates []*cursorGate, here *chain) (*run, *chain, error) {
	rc := st.s.Recurse
	v, ok, err := rc.When.Code().First(ctx, rec, vars...)
	if err == nil && (!ok || v == nil || v == false) {
		return nil, here, nil
	}
	if here == nil {
		here = r.parentChain(ctx, st, rn, rec, vars, gates)
	}
	if err != nil {
		return nil, here, fmt.Errorf("recurse.when: %w", err)
	}
	for x := rn.parent; x != nil; x = x.up {
		if x.stream == st.s.Name && x.key == here.key {
			return nil, here, fmt.Errorf("recurse: a cycle, the record is its own ancestor (%s): its children are not read", cycleOf(here, x))
		}
	}
	level := rn.depth + 1 // of the record
	if level >= rc.MaxDepth.V {
		return nil, here, fmt.Errorf("recurse: the record is at level %d, max_depth, and has children to read (recurse.when holds): they are not read; raise max_depth", level)
	}
	return &run{parent: here, gates: gates, depth: level}, here, nil
}

// cycleOf names the records of a cycle: from the ancestor the record
// repeats down to the record.
func cycleOf(here, ancestor *chain) string {
	var parts []string
	for x := here; x != nil; x = x.up {
		parts = append(parts, x.stream+x.label)
		if x == ancestor {
			break
		}
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, " > ")
}
