package port

import (
	"context"
	"fmt"
	"hash/maphash"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestAmongFromTheIndexMatchesTheSpool puts random batches of entities
// over a few hundred keys of two blueprints — some invalid, many put
// again, valid after invalid and invalid after valid — with outcomes
// recorded between the batches, and asks among about every key (and
// keys never put), with and without done, after every batch: each answer
// must be what the last put of the key and its outcome say.
func TestAmongFromTheIndexMatchesTheSpool(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 7))
		sp, err := openSpool(ctx, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		type last struct {
			n     int64
			valid bool
		}
		lasts := map[entityKey]last{}
		done := map[int64]bool{}
		bps := []string{"app", "env"}
		for batch := range 8 {
			var es []spooled
			seen := map[entityKey]bool{}
			for range 1 + rng.IntN(120) {
				k := entityKey{bps[rng.IntN(2)], fmt.Sprintf("k%03d", rng.IntN(300))}
				if seen[k] {
					continue // the sink's buffer holds a key once
				}
				seen[k] = true
				var data []byte
				if rng.IntN(4) > 0 {
					data = []byte(`{}`)
				}
				es = append(es, spooled{bp: k.blueprint, id: k.identifier, data: data})
			}
			if err := sp.put(ctx, es); err != nil {
				t.Fatal(err)
			}
			ns := make([]int64, len(es))
			for i, e := range es {
				ns[i] = ordinals(t, sp, e.bp, []string{e.id})[0]
			}
			for i, e := range es {
				lasts[entityKey{e.bp, e.id}] = last{n: ns[i], valid: e.data != nil}
			}
			// Some valid entities of the batch written or unchanged.
			for i, e := range es {
				if e.data != nil && rng.IntN(2) == 0 {
					state := stateWritten + rng.IntN(2)
					if err := sp.setState(ctx, e.bp, []string{e.id}, []int64{ns[i]}, state, nil); err != nil {
						t.Fatal(err)
					}
					done[ns[i]] = true
				}
			}
			for _, bp := range bps {
				var ask []string
				for i := range 320 {
					ask = append(ask, fmt.Sprintf("k%03d", i))
				}
				for _, withDone := range []bool{false, true} {
					got, err := sp.among(ctx, bp, withDone, ask)
					if err != nil {
						t.Fatal(err)
					}
					for _, id := range ask {
						l, put := lasts[entityKey{bp, id}]
						want := put && l.valid && (!withDone || done[l.n])
						if got[id] != want {
							t.Fatalf("seed %d batch %d: among(%s, done=%v) says %s is %v, want %v (put %v, last %+v)", seed, batch, bp, withDone, id, got[id], want, put, l)
						}
					}
				}
			}
		}
		sp.close()
	}
}

// amongByScan is among's answer from reading bp's run whole, without its
// hash index: the last put of the key, valid, and with done written or
// unchanged.
func amongByScan(t *testing.T, sp *spool, bp string, done bool, ids []string) map[string]bool {
	t.Helper()
	entries := runEntries(t, sp, bp)
	sp.mu.Lock()
	defer sp.mu.Unlock()
	out := map[string]bool{}
	for _, id := range ids {
		if e, ok := entries[id]; ok && e.valid() && (!done || sp.stateAt(e.n) != stateWaiting) {
			out[id] = true
		}
	}
	return out
}

// runEntries reads bp's run, settled, whole, in order: every entry must
// come after the one before it.
func runEntries(t *testing.T, sp *spool, bp string) map[string]runEntry {
	t.Helper()
	if err := sp.lockRead(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer sp.mu.Unlock()
	out := map[string]runEntry{}
	rs := sp.runs[bp]
	if len(rs) == 0 {
		return out
	}
	if len(rs) > 1 {
		t.Fatalf("%s has %d runs after settling", bp, len(rs))
	}
	s := newScanner(sp.jsonFile, rs[0], 0, &sp.bufs, 100)
	last := ""
	for i := 0; ; i++ {
		e, ok, err := s.next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			if i != rs[0].count {
				t.Fatalf("%s: %d entries read, the run counts %d", bp, i, rs[0].count)
			}
			return out
		}
		if i > 0 && e.id <= last {
			t.Fatalf("%s: entry %q after %q", bp, e.id, last)
		}
		last = e.id
		out[e.id] = e
	}
}

// TestAmongAnswersAsTheEntityTableForAnyBytes puts keys of odd bytes —
// empty, NUL (a blueprint ending in NUL next to an identifier starting
// with one), a blueprint that is another's prefix, unicode in two
// normal forms, invalid UTF-8 — valid and not, again in later batches,
// with outcomes between them, and asks among about every blueprint and
// identifier after each batch: every answer must be what reading the
// blueprint's run says.
func TestAmongAnswersAsTheEntityTableForAnyBytes(t *testing.T) {
	ctx := context.Background()
	bps := []string{"a", "a\x00", "", "ab", "é", "e\u0301"}
	ids := []string{"", "\x00", "\x00b", "b", "a", "ab", "x\x00y", "é", "e\u0301", "\xff\xfe", "\xff", strings.Repeat("long", 100)}
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 11))
		sp, err := openSpool(ctx, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		for batch := range 6 {
			var es []spooled
			seen := map[entityKey]bool{}
			// The first batch always holds the pair whose bytes a NUL
			// between blueprint and identifier would make the same.
			if batch == 0 {
				es = append(es, spooled{bp: "a\x00", id: "b", data: []byte(`{}`)})
				seen[entityKey{"a\x00", "b"}] = true
			}
			for range rng.IntN(30) {
				k := entityKey{bps[rng.IntN(len(bps))], ids[rng.IntN(len(ids))]}
				if seen[k] {
					continue
				}
				seen[k] = true
				var data []byte
				if rng.IntN(3) > 0 {
					data = []byte(`{}`)
				}
				es = append(es, spooled{bp: k.blueprint, id: k.identifier, data: data})
			}
			if err := sp.put(ctx, es); err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				if e.data != nil && rng.IntN(2) == 0 {
					n := ordinals(t, sp, e.bp, []string{e.id})
					if err := sp.setState(ctx, e.bp, []string{e.id}, n, stateWritten+rng.IntN(2), nil); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, bp := range bps {
				for _, done := range []bool{false, true} {
					got, err := sp.among(ctx, bp, done, ids)
					if err != nil {
						t.Fatal(err)
					}
					if want := amongByScan(t, sp, bp, done, ids); !maps.Equal(got, want) {
						t.Fatalf("seed %d batch %d: among(%q, done=%v) = %s, reading the run says %s", seed, batch, bp, done, quoted(got), quoted(want))
					}
				}
			}
		}
		sp.close()
	}
}

// TestAmongWhileOutcomesAreRecorded asks among from several goroutines
// while another records outcomes, as Finish's batches do (run it with
// -race): without done every answer is the table's, with done a key
// whose outcome was recorded before the question must be yes, and no
// key without one.
func TestAmongWhileOutcomesAreRecorded(t *testing.T) {
	ctx := context.Background()
	sp := newTestSpool(t)
	const keys = 3000
	var es []spooled
	ids := make([]string, keys)
	for i := range keys {
		ids[i] = fmt.Sprintf("k%05d", i)
		var data []byte
		if i%5 != 0 {
			data = []byte(`{}`)
		}
		es = append(es, spooled{bp: "b", id: ids[i], data: data})
	}
	// A fifth of the keys put again, valid and invalid, so that the table
	// answers for them.
	var again []spooled
	for i := range keys {
		if i%10 <= 1 {
			again = append(again, es[i])
		}
	}
	for _, b := range [][]spooled{es, again} {
		if err := sp.put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	ns := ordinals(t, sp, "b", ids)
	valid := func(i int) bool { return i%5 != 0 }
	// ids[:recorded] have their outcome; no key from ids[begun:] has one.
	var recorded, begun atomic.Int64
	var asked atomic.Int64 // questions answered, so outcomes go in between them
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	stop := make(chan struct{})
	var quit atomic.Int64 // askers that stopped on a wrong answer
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer quit.Add(1)
			for round := 0; ; round++ {
				select {
				case <-stop:
					return
				default:
				}
				done := (g+round)%2 == 0
				before := int(recorded.Load())
				got, err := sp.among(ctx, "b", done, ids)
				if err != nil {
					errs <- err
					return
				}
				after := int(begun.Load())
				asked.Add(1)
				for i, id := range ids {
					switch {
					case !valid(i) && got[id]:
						errs <- fmt.Errorf("among(done=%v) says invalid %s is there", done, id)
					case valid(i) && !done && !got[id]:
						errs <- fmt.Errorf("among says valid %s is not there", id)
					case valid(i) && done && i < before && !got[id]:
						errs <- fmt.Errorf("among(done) says %s, written before the question, is not done", id)
					case done && got[id] && i >= after:
						errs <- fmt.Errorf("among(done) says %s is done before its outcome", id)
					default:
						continue
					}
					return
				}
			}
		}()
	}
	for from := 0; from < keys; from += 50 {
		for seen := asked.Load(); asked.Load() < seen+2 && quit.Load() == 0; {
			runtime.Gosched()
		}
		var bid []string
		var bn []int64
		for i := from; i < from+50; i++ {
			if valid(i) {
				bid, bn = append(bid, ids[i]), append(bn, ns[i])
			}
		}
		begun.Store(int64(from + 50))
		if err := sp.setState(ctx, "b", bid, bn, stateWritten, nil); err != nil {
			t.Fatal(err)
		}
		recorded.Store(int64(from + 50))
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// quoted lists the identifiers of an answer, sorted, each quoted and cut
// at 12 characters.
func quoted(answer map[string]bool) string {
	var out []string
	for _, id := range slices.Sorted(maps.Keys(answer)) {
		out = append(out, fmt.Sprintf("%.12q", id))
	}
	return "[" + strings.Join(out, " ") + "]"
}

// TestHashIndexFindsEveryKey indexes lists of keys of many lengths,
// around the bucket directory's threshold and its powers of two, and
// finds every key, at its place, and none of as many keys not in it.
func TestHashIndexFindsEveryKey(t *testing.T) {
	seed := maphash.MakeSeed()
	for _, n := range []int{1, 63, 64, 65, 127, 128, 129, 1000, 4096, 20_000} {
		var hashes []uint64
		var places []uint32
		for i := range n {
			hashes = append(hashes, idHash(seed, fmt.Sprintf("id-%d", i)))
			places = append(places, place(runEntry{n: int64(i), off: int64(i%5) - 1}))
		}
		x := buildIndex(hashes, places)
		for i := range n {
			got, valid, found, ambiguous := x.find(idHash(seed, fmt.Sprintf("id-%d", i)))
			if !found || ambiguous || got != int64(i) || valid != (i%5 != 0) {
				t.Fatalf("%d keys: id-%d found %v ambiguous %v at %d valid %v, want found at %d valid %v", n, i, found, ambiguous, got, valid, i, i%5 != 0)
			}
			if _, _, found, _ := x.find(idHash(seed, fmt.Sprintf("other-%d", i))); found {
				t.Fatalf("%d keys: other-%d found, never put", n, i)
			}
		}
	}
	// Two entries of one hash: ambiguous, whatever their order.
	x := buildIndex([]uint64{7, 3, 7, 9}, []uint32{2, 4, 7, 8})
	if _, _, found, ambiguous := x.find(7); !found || !ambiguous {
		t.Fatalf("a shared hash: found %v ambiguous %v", found, ambiguous)
	}
	if n, valid, found, ambiguous := x.find(3); !found || ambiguous || n != 2 || valid {
		t.Fatalf("hash 3: %d %v %v %v", n, valid, found, ambiguous)
	}
}
