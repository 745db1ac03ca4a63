package runner

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/ferry-etl/ferry/engine/fetch"
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
	// dupCollision: a duplicate under no on_duplicate that replaces
	// another record's row (other values, from another chain): written,
	// the last one wins as under warn, but the record it replaced is lost,
	// so the run fails.
	dupCollision
)

// target tracks the keys one table or blueprint received in this run, to
// find duplicates. Keys are kept as 64-bit hashes (KeyHash): about 13 bytes
// a key with their fingerprints (see keySet), and a false match among a million keys has odds of
// about 1 in 10^7. A table's rows are also checked against the keys the
// earlier runs of the sync committed (saved).
type target struct {
	kind, name string
	mode       string // the table's on_duplicate; entity mappings pass their own
	// appends: an append table, whose rows have no key; those of a token
	// stream are saved by their content instead (see contentKeyed).
	appends bool

	// merges is set when an entity mapping into this blueprint merges its
	// duplicates; delivering then holds deliver from deciding a key's
	// part first or a merge until the Output has it, so a merge never
	// reaches the Port sink before the part it merges into (which would
	// replace it there).
	merges     bool
	delivering sync.Mutex

	mu    sync.Mutex
	keys  keySet    // with each key, the fingerprint of its first row
	saved *savedSet // nil: no earlier run of the sync committed a row here
	parts map[partRef]uint32
	// dropped are the partitions (numbers of parts) this run reads afresh:
	// their saved keys belong to a reading that this run's replaces.
	dropped map[uint32]bool
	count   int
	modes   map[string]int // duplicates by the mode applied
	// earlier: duplicates whose key's first row an earlier run of the
	// sync committed, written by this one (not failed): its first of the key.
	earlier int
	// rewrites: rows that rewrote the row of an earlier reading of their
	// partition in this run (see replaces): no duplicates, but one row
	// of the table written twice.
	rewrites int
	examples []string
}

// maxExamples bounds the duplicates a report names.
const maxExamples = 5

// targets are every table and blueprint of the spec, made before the run
// so lookups need no lock.
type targets struct {
	tables, blueprints map[string]*target
	// keyed: the destination saves the keys of the rows it commits (the
	// sync's earlier runs' are in the tables' saved), so a key that no
	// partition saved was not committed.
	keyed bool
	// restarts are the streams a response rule may restart (see
	// canRestart), by name.
	restarts map[string]bool

	// appended are the record hashes (see appendSum) the sync's earlier
	// runs committed, by partition, sorted; appendedDropped the
	// partitions this run reads afresh or replaced the job of.
	appendMu        sync.Mutex
	appended        map[partRef][]uint64
	appendedDropped map[partRef]bool
}

// newTargets makes the targets of f; saved (may be nil) holds the keys of
// the rows the sync's earlier runs committed.
func newTargets(f *spec.File, saved *SavedKeys) *targets {
	t := &targets{tables: map[string]*target{}, blueprints: map[string]*target{}, keyed: saved != nil, restarts: map[string]bool{}}
	if saved != nil {
		t.appended = saved.appended
		for _, hs := range t.appended {
			slices.Sort(hs)
		}
	}
	for _, it := range f.Streams.Items {
		if canRestart(f, &it.Value) {
			t.restarts[it.Key] = true
		}
	}
	for _, it := range f.Tables.Items {
		// No on_duplicate ("") is warn with a check for collisions.
		t.tables[it.Key] = &target{kind: "table", name: it.Key, mode: it.Value.OnDuplicate.V, appends: it.Value.Mode.V == "append"}
		if s := saved.table(it.Key); s != nil {
			sort.Sort(s)
			x := t.tables[it.Key]
			x.saved, x.parts = s, saved.parts
			for ref, p := range saved.parts {
				if isReplaced(ref.partition) {
					// A replaced reading's keys only tell what it
					// committed (see committedSame); the partition's
					// rows now are the new reading's.
					if x.dropped == nil {
						x.dropped = map[uint32]bool{}
					}
					x.dropped[p] = true
				}
			}
		}
	}
	if f.Port != nil {
		for _, e := range f.Port.Entities {
			if t.blueprints[e.Blueprint.V] == nil {
				t.blueprints[e.Blueprint.V] = &target{kind: "blueprint", name: e.Blueprint.V}
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

// origin is where a row comes from: its stream partition, and whether it
// re-reads records of that partition a committed checkpoint covers (the
// chain read afresh, or a committed page read again). A re-read rewrites
// its partition's own rows: the keys its partition saved are no
// duplicates of it; a chain that goes on after its checkpoint writes new
// records, which are.
type origin struct {
	stream, partition string
	reread            bool
	// again: the row's chain replaces again earlier chains of its
	// partition in this run, run for other versions of its parent (see
	// chainOnce): their rows are no duplicates of its own.
	again uint32
}

// reading is what the duplicate check keeps of a row of fingerprint fp
// (0: none, as under an on_duplicate mode) from `from`: its partition half
// names the row's reading of its partition (from.again), under every mode,
// so that a reading replacing an earlier one of the run tells that one's
// rows from another partition's (see seenAs). The first reading's is the
// fingerprint itself.
func (t *target) reading(from origin, fp uint32) uint32 {
	if t == nil {
		return 0
	}
	if from.again == 0 && fp != 0 {
		return fp // the first reading's half is the fingerprint's own
	}
	return readingHalf(from.stream, from.partition, from.again)<<16 | fp&0xffff
}

// readingHalf is the 16-bit hash of a partition's reading number again
// (0: its first in the run, which is the fingerprint's partition half).
// The chunks of one parent's batch list share it: they are one list split
// (batch_size), and an item that moved to another chunk since an earlier
// run of the sync (the list's order changed) is the same record read
// again on the same chain, not a collision.
func readingHalf(stream, partition string, again uint32) uint32 {
	partition, _, _ = strings.Cut(partition, "#batch") // keys are path-escaped: no '#' of theirs
	o := mix(fnvString(fnvString(fnvString(fnvOffset, stream), "\x00"), partition))
	if again > 0 {
		o = mix(o ^ uint64(again))
	}
	return uint32(o >> 48)
}

// replaces tells whether a row from `from` replaces the row the check
// keeps as first: one an earlier reading of its partition in this run
// gave. Told by 16 bits: a duplicate from another partition passes for
// one (and is written over, not failed) about once in 65,536, and only in
// a partition read again in the run.
func replaces(first uint32, from origin) bool {
	for n := range from.again {
		if readingHalf(from.stream, from.partition, n) == first>>16 {
			return true
		}
	}
	return false
}

// seen records key under the table's own mode.
func (t *target) seen(key string, from origin, fp uint32, place func() string) (dupResult, uint64) {
	return t.seenAs(key, from, fp, place, t.mode)
}

// seenAs records key and says what to do with its row or entity, and
// returns the key's hash: the first of a key in the sync is written; a
// later one follows mode. fp is the row's fingerprint (see fingerprint;
// 0: unknown), which tells a collision under no mode ("") from a record
// met twice; a table's row gives it as its reading (see reading). place
// names the record, for the report's examples. An empty key (a table
// without a primary key) is never a duplicate, nor is a row whose reading
// replaces the one that gave the key first (see replaces): it rewrites it,
// and is kept as first.
func (t *target) seenAs(key string, from origin, fp uint32, place func() string, mode string) (dupResult, uint64) {
	if t == nil || key == "" {
		return dupNone, 0
	}
	h := KeyHash(key)
	check := mode == ""
	mode = cmp.Or(mode, DupWarn)
	t.mu.Lock()
	defer t.mu.Unlock()
	first, met := t.keys.get(h)
	if met && from.again > 0 && replaces(first, from) {
		t.keys.set(h, fp)
		t.rewrites++
		return dupNone, h
	}
	if !met {
		saved, ok := t.savedFind(h, from)
		if !ok {
			t.keys.insert(h, fp)
			return dupNone, h
		}
		// An earlier run of the sync committed a row of this key: the
		// first of the sync, which this one meets as it would in one run
		// (0 when its fingerprint was not saved, by an older ferry: no
		// collision told). One failed here is not written: a later row of
		// the key meets the saved one, not this one.
		first = saved
		if mode != DupFail {
			t.keys.insert(h, first)
			t.earlier++
		}
	}
	t.count++
	if t.modes == nil {
		t.modes = map[string]int{}
	}
	collision := check && collides(first, fp)
	if collision {
		t.modes[dupCollisionMode]++
	} else {
		t.modes[mode]++
	}
	if len(t.examples) < maxExamples {
		t.examples = append(t.examples, key+" at "+place())
	}
	switch {
	case mode == DupFail:
		return dupFail, h
	case mode == DupMerge:
		return dupMerge, h
	case collision:
		return dupCollision, h
	}
	return dupWarn, h
}

// dupCollisionMode counts collisions in a report's duplicate modes: kept
// the last, as warn, and failed the run.
const dupCollisionMode = "collision"

// fingerprint is a row's fingerprint when the table's mode checks for
// collisions (no on_duplicate), else 0.
func (t *target) fingerprint(from origin, data map[string]any) uint32 {
	if t == nil {
		return 0
	}
	return t.fingerprintAs(t.mode, from, data)
}

// fingerprintAs is fingerprint under mode.
func (t *target) fingerprintAs(mode string, from origin, data map[string]any) uint32 {
	if t == nil || mode != "" {
		return 0
	}
	return fingerprintOf(from, data)
}

// collisionError says what a collision lost, and what to do about it.
func collisionError(target, what, key string) error {
	return fmt.Errorf("%s: %s %s already written by another record of this run (other values, from another parent or stream): this one replaced it, and that record is lost; make the key unique (add the parent's key), or set on_duplicate: warn (the last one wins), merge or fail", target, what, key)
}

// fingerprintOf packs where a row came from (its stream partition, the
// chain that read it) and its values, 16 bits of a hash each, to tell a
// record met twice from two records under one key; never 0 (unknown). A
// collision is missed when either half matches by chance (about 1 in
// 33,000); a key that leaves out its parent collides again and again, and
// 16 bits more a key would cost 1.6 MB at 200k keys.
// The values are hashed as they are, with no encoding: encoding each row
// to hash it cost 15–20% more CPU a row on the table path.
func fingerprintOf(from origin, data map[string]any) uint32 {
	// The value half is never 0, which marks no values (see collides).
	return readingHalf(from.stream, from.partition, 0)<<16 | uint32(max(uint16(valueHash(data)), 1))
}

const fnvOffset, fnvPrime = 14695981039346656037, 1099511628211

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// mix scrambles h (splitmix64's finalizer), so that sums of mixed hashes
// stay spread.
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

// valueHash hashes a JSON-shaped value: an object's members in any order
// (a sum of mixed member hashes), an array's elements in order, each kind
// tagged so that "1" and 1 differ.
func valueHash(v any) uint64 {
	switch x := v.(type) {
	case nil:
		return 1
	case bool:
		if x {
			return 2
		}
		return 3
	case string:
		return mix(fnvString(fnvOffset^'s', x))
	case json.Number:
		return mix(fnvString(fnvOffset^'n', string(x)))
	case float64:
		return mix(math.Float64bits(x) ^ 'f')
	case int:
		return mix(uint64(x) ^ 'i')
	case int64:
		return mix(uint64(x) ^ 'i')
	case []any:
		h := uint64(fnvOffset ^ 'a')
		for _, e := range x {
			h = (h ^ valueHash(e)) * fnvPrime
		}
		return mix(h)
	case map[string]any:
		var sum uint64
		for k, e := range x {
			sum += mix(fnvString(fnvOffset, k) ^ valueHash(e))
		}
		return mix(sum ^ 'o')
	default:
		return 4 // no other kind reaches a row
	}
}

// collides tells whether a row of fingerprint fp replaces another record's:
// its values differ from the first row of its key, which another chain
// read. A record listed twice has the same values (a shifted page, a
// child under two parents), and one met again on its own chain with new
// values is the same record changed while it was read (an incremental
// export lists it again): the latest version is what is wanted.
func collides(first, fp uint32) bool {
	if uint16(first) == 0 || fp == 0 {
		// Unknown: no fingerprint (saved by an older ferry), or a
		// reading's mark without values (see reading), as an entity
		// mapping with an on_duplicate mode gives it.
		return false
	}
	return first>>16 != fp>>16 && uint16(first) != uint16(fp)
}

// note records key as met, without a row: one its partition committed
// before, met again by a replay that does not write it; fp is the row's
// fingerprint, which a later row of the key from another chain is told a
// collision by.
func (t *target) note(key string, fp uint32) {
	if t == nil || key == "" {
		return
	}
	h := KeyHash(key)
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.keys.get(h); !ok {
		t.keys.insert(h, fp)
	}
}

// committedBy tells whether an earlier run of the sync committed a row of
// key from partition (stream, partition), which this run does not read
// afresh. Without saved keys to tell (no destination saving them), any.
func (ts *targets) committedBy(table, key, stream, partition string) bool {
	return ts.committedHash(table, KeyHash(key), stream, partition)
}

// committedSame tells whether the sync's earlier runs committed the row
// of key in table from this stream partition (or its replaced reading's,
// see ReplacedPartition), with these values as far as its saved
// fingerprint tells (none saved: taken as the same). Unlike committedBy,
// false when nothing is known (no saved keys). With dropped, keys the
// partition dropped (read afresh since, or its job replaced) count too.
// Only for a partition whose records' hashes were not saved (see
// appendedSame): by an older ferry.
func (ts *targets) committedSame(table, key, stream, partition string, data map[string]any, dropped bool) bool {
	t := ts.table(table)
	if !ts.keyed || t == nil || t.saved == nil {
		return false
	}
	h := KeyHash(key)
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.parts[partRef{stream, partition}]
	if ok && t.dropped[p] && !dropped {
		ok = false
	}
	r, rok := t.parts[partRef{stream, ReplacedPartition(partition)}]
	for i, _ := slices.BinarySearch(t.saved.hashes, h); i < len(t.saved.hashes) && t.saved.hashes[i] == h; i++ {
		if !(ok && t.saved.parts[i] == p || rok && t.saved.parts[i] == r) {
			continue
		}
		if t.saved.fps == nil || t.saved.fps[i] == 0 {
			return true
		}
		return uint16(t.saved.fps[i]) == max(uint16(valueHash(data)), 1)
	}
	return false
}

// appendedSame tells whether the sync's earlier runs committed, from this
// stream partition (or its replaced reading, see ReplacedPartition), the
// record whose appendSum is h: its rows in the append tables are the ones
// it would write now. known is false when the partition saved no such
// hash (an older ferry's state). With dropped, the hashes of a partition
// this run dropped (its job replaced) count too.
func (ts *targets) appendedSame(stream, partition string, h uint64, dropped bool) (same, known bool) {
	if !ts.keyed {
		return false, false
	}
	ts.appendMu.Lock()
	defer ts.appendMu.Unlock()
	for _, ref := range []partRef{{stream, partition}, {stream, ReplacedPartition(partition)}} {
		hs := ts.appended[ref]
		if len(hs) == 0 || ts.appendedDropped[ref] && !dropped {
			continue
		}
		known = true
		if _, ok := slices.BinarySearch(hs, h); ok {
			return true, true
		}
	}
	return false, known
}

// committedHash is committedBy for a key's hash (KeyHash, or contentHash
// for a row saved by its content).
func (ts *targets) committedHash(table string, h uint64, stream, partition string) bool {
	t := ts.table(table)
	if !ts.keyed || t == nil {
		return true
	}
	if t.saved == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.parts[partRef{stream, partition}]
	if !ok || t.dropped[p] {
		return false
	}
	for i, _ := slices.BinarySearch(t.saved.hashes, h); i < len(t.saved.hashes) && t.saved.hashes[i] == h; i++ {
		if t.saved.parts[i] == p {
			return true
		}
	}
	return false
}

// contentKeyed tells the rows of stream s in table `table` that are saved
// by their content (contentHash), in place of a key: an append table's
// rows from an incremental.token stream, or from a stream a response rule
// may restart. A resumed run writes a token chain's replayed records
// whole (the token it saves passes what changed since their pages were
// committed), and appends only the rows that its partition did not commit
// as they are: no row twice, and a record's new version as a new row. A
// chain read again from its start after a restart appends only the rows
// its refused reading did not (see appendLedger), in that run or in the
// sync's earlier ones.
func (ts *targets) contentKeyed(table string, s *spec.Stream) bool {
	t := ts.table(table)
	return t != nil && t.appends && (s.Incremental != nil && s.Incremental.Token.Set || ts.restarts[s.Name])
}

// canRestart tells whether a response rule (the stream's own or a
// top-level one) may restart the chains of stream s.
func canRestart(f *spec.File, s *spec.Stream) bool {
	rules := slices.Clone(f.HTTP.Rules)
	if s.HTTP != nil {
		rules = append(rules, s.HTTP.Rules...)
	}
	return slices.ContainsFunc(rules, func(r spec.Rule) bool { return r.Action.V == fetch.ActionRestart })
}

// savedOf is the content hashes (see contentKeyed) that stream partition
// (stream, partition) saved for table in the sync's earlier runs, one for
// each row, its replaced reading's too (see ReplacedPartition): those rows
// are in the table, even when this run reads the partition afresh
// (dropped: its keys are no longer the partition's, but an appended row
// stays).
func (ts *targets) savedOf(table, stream, partition string) []uint64 {
	t := ts.table(table)
	if t == nil || t.saved == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.parts[partRef{stream, partition}]
	r, rok := t.parts[partRef{stream, ReplacedPartition(partition)}]
	if !ok && !rok {
		return nil
	}
	var out []uint64
	for i, h := range t.saved.hashes {
		if ok && t.saved.parts[i] == p || rok && t.saved.parts[i] == r {
			out = append(out, h)
		}
	}
	return out
}

// contentHash stands for a row saved by its content (see contentKeyed):
// 64 bits of a hash of its values, never 0.
func contentHash(data map[string]any) uint64 {
	return max(valueHash(data), 1)
}

// savedFind tells whether an earlier run of the sync committed a row of
// key hash h that a row from `from` would duplicate, and that row's
// fingerprint (0 when not saved).
func (t *target) savedFind(h uint64, from origin) (fp uint32, ok bool) {
	if t.saved == nil {
		return 0, false
	}
	p, ok := t.parts[partRef{from.stream, from.partition}]
	if !ok {
		p = noPart
	}
	i, ok := t.saved.find(h, p, from.reread, t.dropped)
	if !ok || t.saved.fps == nil {
		return 0, ok
	}
	return t.saved.fps[i], true
}

// dropSaved forgets the keys a partition saved in the sync's earlier runs:
// this run reads it from its start again (its first checkpoint is on its
// way), and a key its new reading does not give is no longer the sync's.
// A stream's chains are released in order, so a later chain of the stream
// (a batch chunk, a sibling's child) no longer meets them; one released
// before it has already.
func (t *targets) dropSaved(stream, partition string) {
	t.appendMu.Lock()
	if t.appendedDropped == nil {
		t.appendedDropped = map[partRef]bool{}
	}
	t.appendedDropped[partRef{stream, partition}] = true
	t.appendMu.Unlock()
	for _, x := range t.tables {
		if x.saved == nil {
			continue
		}
		x.mu.Lock()
		if p, ok := x.parts[partRef{stream, partition}]; ok {
			if x.dropped == nil {
				x.dropped = map[uint32]bool{}
			}
			x.dropped[p] = true
		}
		x.mu.Unlock()
	}
}

// rewritten counts, by table (or blueprint), the rows (entities) that
// rewrote an earlier reading's of the same key in this run (see
// target.rewrites).
func rewritten(group map[string]*target) map[string]int {
	out := map[string]int{}
	for name, x := range group {
		x.mu.Lock()
		if x.rewrites > 0 {
			out[name] = x.rewrites
		}
		x.mu.Unlock()
	}
	return out
}

// Duplicate reports the repeated keys of one table or blueprint.
type Duplicate struct {
	Kind     string         // "table" or "blueprint"
	Name     string         // table or blueprint
	Count    int            // rows or entities whose key an earlier one of the run had
	Modes    map[string]int // Count by the on_duplicate mode applied
	Examples []string       // the first few: key and where the record came from
	// Earlier counts, of Count, those whose key an earlier run of the
	// sync committed first, written by this run (under any mode but
	// fail): the first of their key this run wrote.
	Earlier int
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
				out = append(out, Duplicate{Kind: x.kind, Name: x.name, Count: x.count, Modes: modes, Examples: append([]string(nil), x.examples...), Earlier: x.earlier})
			}
			x.mu.Unlock()
		}
	}
	slices.SortFunc(out, func(a, b Duplicate) int { return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name)) })
	return out
}

// keySet is a set of key hashes, each with a fingerprint of its first row
// (see fingerprint), that grows by 12 bytes a key (plus the slack of a
// growing slice), where a map takes 24 to 32: the latest keys sit in a
// small map, and every compactAt of them are merged into sorted slices,
// searched by bisection. The duplicate check is the one memory cost of a
// run that grows with its rows, so it is kept small.
type keySet struct {
	recent map[uint64]uint32
	sorted []uint64
	fps    []uint32 // the fingerprint of sorted[i]; none when bare
	// bare: no fingerprints, 8 bytes a key (the total check's repeats,
	// which only ask whether an item was listed).
	bare bool
}

// reserve makes room for n keys in all, so that the sorted part grows by
// no copy (at its peak a copy holds two to three times the keys).
func (s *keySet) reserve(n int) {
	if n -= len(s.recent); n > cap(s.sorted) {
		s.sorted = slices.Grow(s.sorted, n-len(s.sorted))
		if !s.bare {
			s.fps = slices.Grow(s.fps, n-len(s.fps))
		}
	}
}

// compactAt bounds the map part of a keySet (about 200 kB). A merge is a
// pass over the sorted part: a million keys take 244 merges of half a
// million keys on average, about a millisecond each.
const compactAt = 4096

// add inserts h with no fingerprint and reports whether it is new.
func (s *keySet) add(h uint64) bool {
	if _, ok := s.get(h); ok {
		return false
	}
	s.insert(h, 0)
	return true
}

// get reports whether h is in the set, and its fingerprint.
func (s *keySet) get(h uint64) (fp uint32, ok bool) {
	if fp, ok := s.recent[h]; ok {
		return fp, true
	}
	if i, ok := slices.BinarySearch(s.sorted, h); ok {
		if s.bare {
			return 0, true
		}
		return s.fps[i], true
	}
	return 0, false
}

// insert adds h, which is not in the set, with fingerprint fp.
func (s *keySet) insert(h uint64, fp uint32) {
	if s.recent == nil {
		s.recent = map[uint64]uint32{}
	}
	s.recent[h] = fp
	if len(s.recent) >= compactAt {
		s.compact()
	}
}

// compact merges the map part into the sorted part, in place from the end.
func (s *keySet) compact() {
	add := make([]uint64, 0, len(s.recent))
	for h := range s.recent {
		add = append(add, h)
	}
	slices.Sort(add)
	i, j := len(s.sorted)-1, len(add)-1
	s.sorted = append(s.sorted, add...) // grows (unless reserved); the tail is overwritten below
	if !s.bare {
		s.fps = append(s.fps, make([]uint32, len(add))...)
	}
	for k := len(s.sorted) - 1; j >= 0; k-- {
		if i >= 0 && s.sorted[i] > add[j] {
			s.sorted[k] = s.sorted[i]
			if !s.bare {
				s.fps[k] = s.fps[i]
			}
			i--
		} else {
			s.sorted[k] = add[j]
			if !s.bare {
				s.fps[k] = s.recent[add[j]]
			}
			j--
		}
	}
	clear(s.recent)
}

// set gives h, which is in the set, the fingerprint fp.
func (s *keySet) set(h uint64, fp uint32) {
	if _, ok := s.recent[h]; ok {
		s.recent[h] = fp
		return
	}
	if i, ok := slices.BinarySearch(s.sorted, h); ok && !s.bare {
		s.fps[i] = fp
	}
}

// len is the number of keys in the set.
func (s *keySet) len() int { return len(s.recent) + len(s.sorted) }

// KeyHash is the hash the duplicate check keeps of a primary key or an
// identifier: FNV-1a, 64 bits. It is the same in every process, so the
// keys a run commits (sink.Row.KeyHash) are read back by the run that
// resumes its sync (SavedKeys).
func KeyHash(key string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= prime
	}
	return h
}

// SavedKeys are the key hashes of the rows the earlier runs of a sync
// committed, by table and by the stream partition that wrote them. They
// are kept in 16 bytes a key: a hash, the number of its partition, and
// its row's fingerprint (0: unknown).
type SavedKeys struct {
	parts  map[partRef]uint32
	tables map[string]*savedSet
	// listed are the items the chains' pages listed (ListedTable), by
	// partition: only the chain of that partition reads them (8 bytes an
	// item).
	listed map[partRef][]uint64
	// appended are the record hashes saved under AppendedTable, by
	// partition (8 bytes a record).
	appended map[partRef][]uint64
}

// AppendedTable is the name the hashes of the records a partition wrote
// to append tables (see appendSum) are saved under, with its keys (see
// sink.Checkpoint.Appended): no table's name.
const AppendedTable = "@appended"

// ReplacedTable names the mark a destination saves with a partition's
// keys when its reading is replaced (sink.Checkpoint.Replaced): the keys
// saved before it are the replaced reading's, which it gives the runner
// under ReplacedPartition.
const ReplacedTable = "@replaced"

// ReplacedPartition is the partition the keys of partition's replaced
// readings are saved under (see ReplacedTable): they tell what is in the
// tables, not what the partition's reading now wrote.
func ReplacedPartition(partition string) string { return partition + replacedMark }

const replacedMark = "\x00replaced"

func isReplaced(partition string) bool { return strings.HasSuffix(partition, replacedMark) }

// ListedTable is the name the hashes of the items a chain's pages listed
// are saved under, with its partition's keys, for the total check (see
// sink.Checkpoint.Listed): no table's name (table names have no "@").
const ListedTable = "@listed"

// listedBy is what partition (stream, partition) saved under ListedTable.
func (s *SavedKeys) listedBy(stream, partition string) []uint64 {
	if s == nil {
		return nil
	}
	return s.listed[partRef{stream, partition}]
}

// partRef names a stream partition (see sink.Checkpoint).
type partRef struct{ stream, partition string }

// noPart is the partition number of a row whose partition saved no key.
const noPart = ^uint32(0)

// Add records hashes as committed into table by a stream partition, with
// their rows' fingerprints when known (fps: none, or one for each hash).
func (s *SavedKeys) Add(table, stream, partition string, hashes []uint64, fps ...uint32) {
	switch table {
	case ListedTable:
		if s.listed == nil {
			s.listed = map[partRef][]uint64{}
		}
		ref := partRef{stream, partition}
		s.listed[ref] = append(s.listed[ref], hashes...)
		return
	case AppendedTable:
		if s.appended == nil {
			s.appended = map[partRef][]uint64{}
		}
		ref := partRef{stream, partition}
		s.appended[ref] = append(s.appended[ref], hashes...)
		return
	case ReplacedTable:
		return
	}
	if s.parts == nil {
		s.parts, s.tables = map[partRef]uint32{}, map[string]*savedSet{}
	}
	ref := partRef{stream, partition}
	p, ok := s.parts[ref]
	if !ok {
		p = uint32(len(s.parts))
		s.parts[ref] = p
	}
	set := s.tables[table]
	if set == nil {
		set = &savedSet{}
		s.tables[table] = set
	}
	if len(fps) > 0 && set.fps == nil {
		set.fps = make([]uint32, len(set.hashes))
	}
	set.hashes = append(set.hashes, hashes...)
	for i := range hashes {
		set.parts = append(set.parts, p)
		if set.fps != nil {
			var fp uint32
			if i < len(fps) {
				fp = fps[i]
			}
			set.fps = append(set.fps, fp)
		}
	}
}

// Len is the number of keys saved.
func (s *SavedKeys) Len() int {
	if s == nil {
		return 0
	}
	n := 0
	for _, t := range s.tables {
		n += len(t.hashes)
	}
	return n
}

// Has reports whether the partition saved h for table (tests use it).
func (s *SavedKeys) Has(table, stream, partition string, h uint64) bool {
	set, p, ok := s.table(table), uint32(0), false
	if set != nil {
		p, ok = s.parts[partRef{stream, partition}]
	}
	if !ok {
		return false
	}
	for i, x := range set.hashes {
		if x == h && set.parts[i] == p {
			return true
		}
	}
	return false
}

func (s *SavedKeys) table(name string) *savedSet {
	if s == nil {
		return nil
	}
	return s.tables[name]
}

// savedSet is one table's saved keys, sorted by hash once the run starts.
type savedSet struct {
	hashes []uint64
	parts  []uint32 // the partition of each hash
	fps    []uint32 // nil, or each row's fingerprint (0: unknown)
}

func (s *savedSet) Len() int           { return len(s.hashes) }
func (s *savedSet) Less(i, j int) bool { return s.hashes[i] < s.hashes[j] }
func (s *savedSet) Swap(i, j int) {
	s.hashes[i], s.hashes[j] = s.hashes[j], s.hashes[i]
	s.parts[i], s.parts[j] = s.parts[j], s.parts[i]
	if s.fps != nil {
		s.fps[i], s.fps[j] = s.fps[j], s.fps[i]
	}
}

// find tells whether (and where) h was saved by another partition than p,
// or by p itself when the row does not re-read p's committed records; the
// keys of the dropped partitions do not count.
func (s *savedSet) find(h uint64, p uint32, reread bool, dropped map[uint32]bool) (int, bool) {
	for i, _ := slices.BinarySearch(s.hashes, h); i < len(s.hashes) && s.hashes[i] == h; i++ {
		if (s.parts[i] != p || !reread) && !dropped[s.parts[i]] {
			return i, true
		}
	}
	return 0, false
}
