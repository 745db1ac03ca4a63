package runner

import (
	"github.com/ferry-etl/ferry/engine/spec"
)

// identifyFields are the members identify reads of a record without a
// key program (see identify): they name the record in reports.
var identifyFields = []string{"id", "identifier", "uuid", "key", "name"}

// recordMembers returns the only members s's records need, when they are
// known: every program that sees a record of s reads it through member
// names alone (eval.JQ.InputMembers), so the members no program reads
// need not be decoded (decode.Options.Members). The answer is nil (the
// records whole) unless s is a leaf that only Port entity mappings read:
// a JSON list streamed without a program after the iteration; no stream
// below it (children see parent whole), no recursion, no table (a row
// may take the record whole), no lookup, no incremental cursor, no
// partitions or export job, no stop_when (it sees the page's records);
// and every program of its entity mappings, and its key program, known.
// A record that is not an object is decoded whole anyway.
func recordMembers(f *spec.File, s *spec.Stream, p *bodyPlan) map[string]bool {
	if !p.stream || p.format != spec.FormatJSON || p.each != nil || s.Recursive() ||
		s.Incremental != nil || s.Partitions != nil || s.Async != nil ||
		(s.Paginate != nil && s.Paginate.StopWhen.Set) || len(f.LookupsFrom(s.Name)) > 0 {
		return nil
	}
	for i := range f.Streams.Items {
		d := &f.Streams.Items[i].Value
		if d.Parent() == s || d.BatchOf() == s {
			return nil
		}
	}
	for i := range f.Tables.Items {
		for _, name := range f.Tables.Items[i].Value.Streams() {
			if name == s.Name {
				return nil
			}
		}
	}
	members := map[string]bool{}
	add := func(q *spec.JQ) bool {
		keys, ok := q.Code().InputMembers()
		for _, k := range keys {
			members[k] = true
		}
		return ok
	}
	// identify reads these also with a key program, where it gives null.
	for _, k := range identifyFields {
		members[k] = true
	}
	if s.Key.Set && !add(&s.Key) {
		return nil
	}
	if f.Port != nil {
		for i := range f.Port.Entities {
			e := &f.Port.Entities[i]
			if e.From.V != s.Name {
				continue
			}
			for _, q := range []*spec.JQ{&e.Selector, &e.Identifier, &e.Title, &e.Icon, &e.Team} {
				if !add(q) {
					return nil
				}
			}
			for j := range e.Properties.Items {
				if !add(&e.Properties.Items[j].Value) {
					return nil
				}
			}
			for j := range e.Relations.Items {
				if !add(&e.Relations.Items[j].Value) {
					return nil
				}
			}
		}
	}
	return members
}
