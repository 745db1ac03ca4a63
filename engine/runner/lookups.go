package runner

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unique"

	"github.com/ferry-etl/ferry/engine/eval"
	"github.com/ferry-etl/ferry/engine/spec"
)

// lookup is one spec lookup being filled, then frozen for the stages that
// read it. It holds its keys and values only.
type lookup struct {
	spec *spec.Lookup

	mu     sync.Mutex
	single map[string]any   // key -> value
	multi  map[string][]any // key -> values in arrival order (many; sorted and de-duplicated when frozen)
	failed string           // why the lookup is incomplete; "" when complete
}

// add records one record's key and value; a single-valued lookup refuses a
// second, different value for a key.
func (l *lookup) add(key string, value any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := value.(string); ok {
		// Values repeat across keys (a group id in every member's list):
		// one copy of each.
		value = unique.Make(s).Value()
	}
	if l.spec.Many.V {
		l.multi[key] = append(l.multi[key], value)
		return nil
	}
	if prev, ok := l.single[key]; ok {
		a, _ := json.Marshal(prev)
		b, _ := json.Marshal(value)
		if string(a) != string(b) {
			return fmt.Errorf("lookup %s: key %q has two values (%s and %s); set many: true to keep every one", l.spec.Name, key, a, b)
		}
		return nil
	}
	l.single[key] = value
	return nil
}

// lookups are the spec's lookups. Their frozen values are read by the
// programs of later stages: between stages nothing writes them.
type lookups struct {
	byName map[string]*lookup
	order  []*lookup
	jq     map[string]any // name -> key -> value, for $lookups
	expr   map[string]any // the same, normalized for expr (lookups)
}

func newLookups(f *spec.File) *lookups {
	ls := &lookups{byName: map[string]*lookup{}, jq: map[string]any{}, expr: map[string]any{}}
	for i := range f.Lookups.Items {
		l := &lookup{spec: &f.Lookups.Items[i].Value, single: map[string]any{}, multi: map[string][]any{}}
		ls.byName[l.spec.Name] = l
		ls.order = append(ls.order, l)
	}
	return ls
}

// from lists the lookups filled from stream.
func (ls *lookups) from(stream string) []*lookup {
	var out []*lookup
	for _, l := range ls.order {
		if l.spec.From.V == stream {
			out = append(out, l)
		}
	}
	return out
}

// freeze ends the filling of the lookups whose streams ran in stage k: a
// lookup is complete only when its stream is (no chain of it or of its
// ancestors failed, it was not skipped) and none of its records failed to
// give a key or value. Many-valued lists are sorted.
func (ls *lookups) freeze(k int, r *Runner, fails *failures) {
	complete, _ := r.completeness(fails.snapshot(), nil)
	failedRecords := map[string]int{}
	for _, f := range fails.snapshot() {
		if f.Lookup != "" {
			failedRecords[f.Lookup]++
		}
	}
	for _, l := range ls.order {
		st := r.streams[l.spec.From.V]
		if st == nil || st.s.Stage() != k {
			continue
		}
		switch {
		case st.skip != "":
			l.failed = fmt.Sprintf("stream %s was skipped (%s)", st.s.Name, st.skip)
		case !complete(st):
			l.failed = fmt.Sprintf("stream %s (or a stream it fans out from) failed", st.s.Name)
		case failedRecords[l.spec.Name] > 0:
			l.failed = fmt.Sprintf("%d record(s) of stream %s gave no key or value", failedRecords[l.spec.Name], st.s.Name)
		}
		vals := map[string]any{}
		if l.spec.Many.V {
			for key, list := range l.multi {
				vals[key] = sortedSet(list)
			}
			l.multi = nil
		} else {
			vals = l.single
		}
		ls.jq[l.spec.Name] = vals
		if r.exprReadsLookups {
			ls.expr[l.spec.Name] = eval.Normalize(vals)
		}
		if l.failed != "" {
			r.log.Warn("lookup incomplete: what reads it fails", "lookup", l.spec.Name, "reason", l.failed)
		}
	}
}

// sortedSet sorts values by their JSON text and drops repeats, in place.
func sortedSet(list []any) []any {
	type item struct {
		js string
		v  any
	}
	if len(list) < 2 {
		return list
	}
	items := make([]item, len(list))
	for i, v := range list {
		b, _ := json.Marshal(v)
		items[i] = item{js: string(b), v: v}
	}
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.js, b.js) })
	out := list[:0]
	for i, it := range items {
		if i > 0 && it.js == items[i-1].js {
			continue
		}
		out = append(out, it.v)
	}
	return slices.Clip(out)
}

// failure is the error of a program reading names when one of those
// lookups is incomplete, else nil.
func (ls *lookups) failure(names []string) error {
	var bad []string
	for _, n := range names {
		if l := ls.byName[n]; l != nil && l.failed != "" {
			bad = append(bad, fmt.Sprintf("lookup %s is incomplete: %s", n, l.failed))
		}
	}
	if bad == nil {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(bad, "; "))
}

// lookupKey turns a key program's result into a lookup key: a string, or
// a number as written; ok is false for null (the record adds nothing).
func lookupKey(v any) (key string, ok bool, err error) {
	switch x := v.(type) {
	case nil:
		return "", false, nil
	case string:
		return x, true, nil
	case json.Number:
		return x.String(), true, nil
	case int, int64, float64:
		return eval.FormatScalar(x), true, nil
	}
	return "", false, fmt.Errorf("want a string or a number, got %T", v)
}
