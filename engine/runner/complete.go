package runner

import (
	"slices"

	"github.com/ferry-etl/ferry/engine/spec"
)

// summary builds the run's outcome, and computes completeness once, for
// every stream and target, by one rule: a table or blueprint may be
// reconciled only when every chain and every record feeding it, and every
// ancestor of those, completed without failure, in a run that was not cut
// short, that read those streams in full, and that produced the target.
func (r *Runner) summary(f *failures, fatal error) *Summary {
	snaps, elapsed := r.stats.Snapshot()
	list := f.snapshot()
	f.mu.Lock()
	skips := slices.Clone(f.skips)
	f.mu.Unlock()
	sum := &Summary{Streams: snaps, Elapsed: elapsed, Failures: list, Skips: skips, Complete: map[string]bool{},
		Tables: map[string]bool{}, Blueprints: map[string]bool{}, Duplicates: r.targets.report(), Rewritten: rewritten(r.targets.tables),
		RewrittenEntities: rewritten(r.targets.blueprints)}
	complete, targetFailed := r.completeness(list, fatal)
	// full: the stream's targets saw every record, not only those changed
	// since a saved incremental cursor — nor only the children of the
	// parents (or batches) that changed: an ancestor read from a cursor
	// drives this stream's chains for some of its records only.
	var full func(st *stream) bool
	full = func(st *stream) bool {
		if st.stat.partialRead.Load() {
			return false
		}
		for _, up := range []string{nameOf(st.s.Parent()), nameOf(st.s.BatchOf())} {
			if u := r.streams[up]; u != nil && u != st && !full(u) {
				return false
			}
		}
		return true
	}
	for _, st := range r.order {
		sum.Complete[st.s.Name] = complete(st)
	}
	for _, it := range r.f.Tables.Items {
		// A table fed by several streams is the run's only when every one
		// of them was read in it, and complete when every one is. One of
		// which --streams left some out is not listed: the run ending its
		// part would end the table's sync generation, and the sync would
		// then mark deleted the rows the streams not read again wrote.
		all, ok := true, !targetFailed["table:"+it.Key]
		for _, name := range it.Value.Streams() {
			st := r.streams[name]
			if st == nil || !st.selected {
				all = false
				break
			}
			ok = ok && complete(st) && full(st)
		}
		if all {
			sum.Tables[it.Key] = ok
		}
	}
	if r.f.Port != nil {
		for _, e := range r.f.Port.Entities {
			st := r.streams[e.From.V]
			ok := st != nil && st.selected && complete(st) && full(st) && !targetFailed["blueprint:"+e.Blueprint.V]
			if prev, seen := sum.Blueprints[e.Blueprint.V]; seen {
				ok = ok && prev
			}
			sum.Blueprints[e.Blueprint.V] = ok
		}
	}
	return sum
}

// completeness reads failures into the rule's two parts: complete tells
// whether a stream read everything it should have (no chain of it or of an
// ancestor or batch source failed, no record of an ancestor or batch source
// failed, not skipped, the run not cut short); targetFailed names the
// tables ("table:x") and blueprints ("blueprint:x") that lost a record.
func (r *Runner) completeness(list []Failure, fatal error) (complete func(*stream) bool, targetFailed map[string]bool) {
	chainFailed := map[string]bool{}  // a request chain of the stream failed
	recordFailed := map[string]bool{} // a record of the stream failed a mapping
	targetFailed = map[string]bool{}
	for _, x := range list {
		if !x.Record() {
			chainFailed[x.Stream] = true
			continue
		}
		recordFailed[x.Stream] = true
		if x.Table != "" {
			targetFailed["table:"+x.Table] = true
		}
		if x.Blueprint != "" {
			targetFailed["blueprint:"+x.Blueprint] = true
		}
	}
	// A failed record of a parent (or batch source) counts against its
	// children: its data may have steered them (a `when` that skipped it, a
	// wrong path).
	memo := map[*stream]bool{}
	complete = func(st *stream) bool {
		if ok, done := memo[st]; done {
			return ok
		}
		memo[st] = false // against cycles, which validation refuses anyway
		// A request a rule skipped read nothing anyone knows of.
		ok := fatal == nil && st.skip == "" && !chainFailed[st.s.Name] && st.stat.ruleSkips.Load() == 0
		for _, up := range []string{nameOf(st.s.Parent()), nameOf(st.s.BatchOf())} {
			if u := r.streams[up]; ok && u != nil {
				ok = complete(u) && !recordFailed[up]
			}
		}
		memo[st] = ok
		return ok
	}
	return complete, targetFailed
}

// nameOf is a stream's name, "" for none.
func nameOf(s *spec.Stream) string {
	if s == nil {
		return ""
	}
	return s.Name
}
