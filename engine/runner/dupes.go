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
// find duplicates. Keys are kept as 64-bit hashes: about 9 bytes a key (see
// keySet), and a false match among a million keys has odds of about 1 in
// 10^7.
type target struct {
	kind, name string
	mode       string // the table's on_duplicate; entity mappings pass their own

	// merges is set when an entity mapping into this blueprint merges its
	// duplicates; delivering then holds deliver from deciding a key's
	// part first or a merge until the Output has it, so a merge never
	// reaches the Port sink before the part it merges into (which would
	// replace it there).
	merges     bool
	delivering sync.Mutex

	mu       sync.Mutex
	keys     keySet
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
			if e.OnDuplicate.V == DupMerge {
				t.blueprints[e.Blueprint.V].merges = true
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
	if t.keys.add(h) {
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

// keySet is a set of key hashes that grows by 8 bytes a key (plus the
// slack of a growing slice), where a map takes 16 to 20: the latest keys
// sit in a small map, and every compactAt of them are merged into one
// sorted slice, searched by bisection. The duplicate check is the one
// memory cost of a run that grows with its rows, so it is kept small.
type keySet struct {
	recent map[uint64]struct{}
	sorted []uint64
}

// compactAt bounds the map part of a keySet (about 100 kB). A merge is a
// pass over the sorted part: a million keys take 244 merges of half a
// million keys on average, about a millisecond each.
const compactAt = 4096

// add inserts h and reports whether it is new.
func (s *keySet) add(h uint64) bool {
	if _, ok := s.recent[h]; ok {
		return false
	}
	if _, ok := slices.BinarySearch(s.sorted, h); ok {
		return false
	}
	if s.recent == nil {
		s.recent = map[uint64]struct{}{}
	}
	s.recent[h] = struct{}{}
	if len(s.recent) >= compactAt {
		s.compact()
	}
	return true
}

// compact merges the map part into the sorted part, in place from the end.
func (s *keySet) compact() {
	add := make([]uint64, 0, len(s.recent))
	for h := range s.recent {
		add = append(add, h)
	}
	slices.Sort(add)
	clear(s.recent)
	i, j := len(s.sorted)-1, len(add)-1
	s.sorted = append(s.sorted, add...) // grows; the tail is overwritten below
	for k := len(s.sorted) - 1; j >= 0; k-- {
		if i >= 0 && s.sorted[i] > add[j] {
			s.sorted[k] = s.sorted[i]
			i--
		} else {
			s.sorted[k] = add[j]
			j--
		}
	}
}

// len is the number of keys in the set.
func (s *keySet) len() int { return len(s.recent) + len(s.sorted) }
