package runner

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// firstReadings are the records a stream listed in its own stage, where
// its rows were written, kept for the later stages that read it again to
// drive their children (a child that reads a lookup): a source that lists
// other records the second time (a search index that changed) would
// otherwise leave the children of a record it left out unread, and write
// the children of a record it added under a parent row never written,
// both with exit 0. Per request chain (partition), the key hashes of its
// records (8 bytes a record, see identify and KeyHash), sorted, for the
// run's lifetime.
type firstReadings struct {
	mu sync.Mutex
	of map[uint64]*firstReading // by KeyHash of the partition
}

type firstReading struct {
	keys []uint64 // sorted, without repeats
	// partial: the chain resumed from a checkpoint of an earlier run (its
	// committed pages may not have been listed in this run), failed or
	// skipped a request: what it listed is not all its rows came from,
	// and a later stage's reading is not compared with it.
	partial bool
}

// add records a chain's reading in its own stage. A partition read more
// than once (a parent listed again, changed; a restart) wrote the rows of
// every reading: their keys are joined.
func (f *firstReadings) add(partition string, keys []uint64, partial bool) {
	p := KeyHash(partition)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.of == nil {
		f.of = map[uint64]*firstReading{}
	}
	fr := f.of[p]
	if fr == nil {
		fr = &firstReading{}
		f.of[p] = fr
	}
	// The run's own slice, no longer used by it.
	fr.keys = append(fr.keys, keys...)
	slices.Sort(fr.keys)
	fr.keys = slices.Clip(slices.Compact(fr.keys))
	fr.partial = fr.partial || partial
}

// get returns the keys the partition's chains listed in the stream's own
// stage; ok is false when none ran whole in this run (a run resuming one
// finished in an earlier run, or a chain below a record that stage never
// listed): nothing to compare with.
func (f *firstReadings) get(partition string) (keys []uint64, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fr := f.of[KeyHash(partition)]
	if fr == nil || fr.partial {
		return nil, false
	}
	return fr.keys, true
}

// markReadAgain gives every stream that a later stage reads again (an
// ancestor or batch source, at any depth, of a stream of that stage) its
// firstReadings. Not in a probe, which reads a page of a chain, any
// chain, in each stage.
func (r *Runner) markReadAgain() {
	if r.opts.Probe {
		return
	}
	for _, st := range r.order {
		if st.skip != "" {
			continue
		}
		k := st.s.Stage()
		var up func(u *stream)
		up = func(u *stream) {
			for _, s := range []*stream{r.upstream(u, true), r.upstream(u, false)} {
				if s == nil {
					continue
				}
				if s.s.Stage() < k && s.firsts == nil {
					s.firsts = &firstReadings{}
				}
				up(s)
			}
		}
		up(st)
	}
}

// upstream is u's parent (parent) or batch source, nil without one.
func (r *Runner) upstream(u *stream, parent bool) *stream {
	s := u.s.BatchOf()
	if parent {
		s = u.s.Parent()
	}
	if s == nil {
		return nil
	}
	return r.streams[s.Name]
}

// errListedOnlyAgain is the failure of a record that a later stage's
// reading lists and the stream's own stage did not.
var errListedOnlyAgain = fmt.Errorf("read again in a later stage to drive its children, the source lists this record, which it did not list when the stream's rows were written: its rows (and those of the streams read again below it) are not written, its children are")

// missingAgain fails each record the chain listed in the stream's own
// stage that its reading in a later stage (listed: its key hashes) does
// not list: its rows were written, its children in that stage never read.
func missingAgain(st *streamState, rn *run, first, listed []uint64, fails *failures) bool {
	slices.Sort(listed)
	bad := false
	for _, h := range first {
		if _, found := slices.BinarySearch(listed, h); found {
			continue
		}
		bad = true
		st.stat.failed()
		fails.add(Failure{Stream: st.s.Name, Parents: rn.describe(), Err: fmt.Errorf("a record the stream listed when its rows were written (key hash %016x) is not listed when read again in a later stage to drive its children: its children there (%s) were not read", h, childNames(st))})
	}
	return bad
}

// childNames lists the streams a stage reads per record of st.
func childNames(st *streamState) string {
	var names []string
	for _, c := range st.children {
		names = append(names, c.s.Name)
	}
	for _, b := range st.batchers {
		names = append(names, b.s.Name)
	}
	return strings.Join(names, ", ")
}
