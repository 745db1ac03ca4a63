package runner

import (
	"cmp"
	"hash/maphash"
	"slices"
	"sync"

	"github.com/ferry-etl/ferry/engine/spec"
)

// On_duplicate modes of a table or entity mapping.
const (
	DupWarn  = "warn"  // written; the last one wins; counted and reported
	DupFail  = "fail"  // the later one is a failed record, not written
	DupMerge = "merge" // written as a merge into the earlier one
)

// dupResult is what deliver does with one row or entity.
type dupResult int

const (
	dupNone  dupResult = iota // first of its key: write
	dupWarn                   // a duplicate: write, counted
	dupFail                   // a duplicate: do not write, fail the record
	dupMerge                  // a duplicate: write as a merge
)

// target tracks the keys one table or blueprint received in this run, to
// find duplicates. Keys are kept as 64-bit hashes: 8 bytes a key, and a
// false match among a million keys has odds of about 1 in 10^7.
type target struct {
	kind, name string
	mode       string // the table's on_duplicate; entity mappings pass their own

	mu       sync.Mutex
	keys     map[uint64]struct{}
	count    int
	modes    map[string]int // duplicates by the mode applied
	examples []string
}

// maxExamples bounds the duplicates a report names.
const maxExamples = 5

// targets are every table and blueprint of the spec, made before the run
// so lookups need no lock.
type targets struct {
	tables, blueprints map[string]*target
}

func newTargets(f *spec.File) *targets {
	t := &targets{tables: map[string]*target{}, blueprints: map[string]*target{}}
	for _, it := range f.Tables.Items {
		t.tables[it.Key] = &target{kind: "table", name: it.Key, mode: cmp.Or(it.Value.OnDuplicate.V, DupWarn)}
	}
	if f.Port != nil {
		for _, e := range f.Port.Entities {
			if t.blueprints[e.Blueprint.V] == nil {
				t.blueprints[e.Blueprint.V] = &target{kind: "blueprint", name: e.Blueprint.V, mode: DupWarn}
			}
		}
	}
	return t
}

func (t *targets) table(name string) *target     { return t.tables[name] }
func (t *targets) blueprint(name string) *target { return t.blueprints[name] }

// seen records key under the table's own mode.
func (t *target) seen(seed maphash.Seed, key string, place func() string) dupResult {
	return t.seenAs(seed, key, place, t.mode)
}

// seenAs records key and says what to do with its row or entity: the first
// of a key is written; a later one follows mode. place names the record,
// for the report's examples. An empty key (a table without a primary key)
// is never a duplicate.
func (t *target) seenAs(seed maphash.Seed, key string, place func() string, mode string) dupResult {
	if t == nil || key == "" {
		return dupNone
	}
	h := maphash.String(seed, key)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.keys == nil {
		t.keys = map[uint64]struct{}{}
	}
	if _, dup := t.keys[h]; !dup {
		t.keys[h] = struct{}{}
		return dupNone
	}
	t.count++
	if t.modes == nil {
		t.modes = map[string]int{}
	}
	mode = cmp.Or(mode, DupWarn)
	t.modes[mode]++
	if len(t.examples) < maxExamples {
		t.examples = append(t.examples, key+" at "+place())
	}
	switch mode {
	case DupFail:
		return dupFail
	case DupMerge:
		return dupMerge
	}
	return dupWarn
}

// Duplicate reports the repeated keys of one table or blueprint.
type Duplicate struct {
	Kind     string         // "table" or "blueprint"
	Name     string         // table or blueprint
	Count    int            // rows or entities whose key an earlier one of the run had
	Modes    map[string]int // Count by the on_duplicate mode applied
	Examples []string       // the first few: key and where the record came from
}

func (t *targets) report() []Duplicate {
	var out []Duplicate
	for _, group := range []map[string]*target{t.tables, t.blueprints} {
		for _, x := range group {
			x.mu.Lock()
			if x.count > 0 {
				modes := make(map[string]int, len(x.modes))
				for k, v := range x.modes {
					modes[k] = v
				}
				out = append(out, Duplicate{Kind: x.kind, Name: x.name, Count: x.count, Modes: modes, Examples: append([]string(nil), x.examples...)})
			}
			x.mu.Unlock()
		}
	}
	slices.SortFunc(out, func(a, b Duplicate) int { return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name)) })
	return out
}
