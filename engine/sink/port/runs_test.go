package port

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// spoolModel is what a spool must answer, kept in maps: each key's last
// put, its outcome, and the owned listing with the targets kept (ref).
type spoolModel struct {
	last   map[entityKey]modelPut
	states map[int64]int // by n: stateWritten (+stateCycle) or stateUnchanged
	owned  map[entityKey]string
	ref    map[entityKey]bool
}

type modelPut struct {
	n    int64
	data []byte // nil: invalid
}

// TestSpoolMatchesAModel puts random batches of a few blueprints' keys —
// valid and invalid, many put again, enough batches that runs merge over
// three levels — and, between them, looks entities up as a merging
// stream does (the runs unmerged), and now and then reads everything a
// Finish reads: pages of every selector at odd sizes, among, counts,
// blueprints, stateOf, ownedBy, stale and kept. Every answer must be the
// model's.
func TestSpoolMatchesAModel(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(3) {
		rng := rand.New(rand.NewPCG(seed, 99))
		sp, err := openSpool(ctx, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		m := spoolModel{last: map[entityKey]modelPut{}, states: map[int64]int{}, owned: map[entityKey]string{}, ref: map[entityKey]bool{}}
		bps := []string{"app", "env", "wl"}
		keys := 900 + rng.IntN(400)
		key := func() entityKey {
			// Skewed: low numbers come back often.
			i := min(rng.IntN(keys), rng.IntN(keys))
			return entityKey{bps[rng.IntN(len(bps))], fmt.Sprintf("k%04d", i)}
		}
		var n int64
		batches := 2*runFanout*runFanout + rng.IntN(60)
		levels := map[int]bool{}
		for batch := range batches {
			var es []spooled
			for range 1 + rng.IntN(12) {
				k := key()
				var data []byte
				if rng.IntN(5) > 0 {
					data = fmt.Appendf(nil, `{"identifier":%q,"b":%d}`, k.identifier, batch)
				}
				es = append(es, spooled{bp: k.blueprint, id: k.identifier, data: data})
			}
			if err := sp.put(ctx, es); err != nil {
				t.Fatal(err)
			}
			// The spool numbers the batch's keys in key order, a key twice
			// in a batch once (its later put).
			sorted := slices.Clone(es)
			slices.SortStableFunc(sorted, func(a, b spooled) int {
				return cmp.Or(strings.Compare(a.bp, b.bp), strings.Compare(a.id, b.id))
			})
			for i, e := range sorted {
				if i+1 < len(sorted) && sorted[i+1].bp == e.bp && sorted[i+1].id == e.id {
					continue
				}
				m.last[entityKey{e.bp, e.id}] = modelPut{n: n, data: e.data}
				n++
			}
			// Lookups between puts, as on_duplicate: merge makes them.
			for range 3 {
				k := key()
				got, err := sp.data(ctx, k.blueprint, k.identifier)
				if err != nil {
					t.Fatal(err)
				}
				if want := m.last[k].data; !bytes.Equal(got, want) {
					t.Fatalf("seed %d batch %d: data(%v) = %s, want %s", seed, batch, k, got, want)
				}
			}
			if batch == 100 || batch == 420 || batch == batches-1 {
				for _, rs := range sp.runs {
					for _, rn := range rs {
						levels[rn.level] = true
					}
				}
				// Outcomes only after the last put, as in Finish: a state
				// is by put, and a later put of the key starts waiting.
				m.record(t, rng, sp, batch == batches-1)
				m.check(t, sp, fmt.Sprintf("seed %d batch %d", seed, batch))
			}
		}
		if !levels[2] {
			t.Fatalf("seed %d: no run reached level 2 (levels %v): the merges were not all tested", seed, slices.Sorted(maps.Keys(levels)))
		}
		sp.close()
	}
}

// record gives some valid entities an outcome (with outcomes) and lists some keys as
// owned in Port (some of them not produced, some kept by a relation), in
// the spool and in the model.
func (m *spoolModel) record(t *testing.T, rng *rand.Rand, sp *spool, outcomes bool) {
	t.Helper()
	ctx := context.Background()
	for k, p := range m.last {
		if !outcomes {
			break
		}
		if p.data == nil || rng.IntN(3) > 0 {
			continue
		}
		state, cycle := stateWritten+rng.IntN(2), rng.IntN(3) == 0
		if err := sp.setState(ctx, k.blueprint, []string{k.identifier}, []int64{p.n}, state, []bool{cycle}); err != nil {
			t.Fatal(err)
		}
		if state == stateWritten && cycle {
			state |= stateCycle
		}
		m.states[p.n] = state
	}
	for _, bp := range []string{"app", "env", "wl"} {
		if err := sp.dropOwned(ctx, bp); err != nil {
			t.Fatal(err)
		}
		maps.DeleteFunc(m.owned, func(k entityKey, _ string) bool { return k.blueprint == bp })
		var rows []ownedRow
		for i := range 1400 {
			if rng.IntN(3) > 0 {
				continue
			}
			k := entityKey{bp, fmt.Sprintf("k%04d", i)}
			owner := "us"
			if rng.IntN(4) == 0 {
				owner = "them"
			}
			rows = append(rows, ownedRow{id: k.identifier, owner: owner, body: []byte(k.identifier)})
			m.owned[k] = owner
			if rng.IntN(4) == 0 && !m.ref[k] {
				m.ref[k] = true
				if err := sp.addRefs(ctx, []entityKey{k}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := sp.putOwned(ctx, bp, rows); err != nil {
			t.Fatal(err)
		}
	}
}

func (m *spoolModel) check(t *testing.T, sp *spool, at string) {
	t.Helper()
	ctx := context.Background()
	counts := map[string][3]int{}
	for k, p := range m.last {
		if p.data == nil {
			continue
		}
		c := counts[k.blueprint]
		c[m.states[p.n]&^stateCycle]++
		counts[k.blueprint] = c
	}
	gotCounts, err := sp.counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(gotCounts, counts) {
		t.Fatalf("%s: counts %v, want %v", at, gotCounts, counts)
	}
	gotBPs, err := sp.blueprints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Sorted(maps.Keys(counts)); !slices.Equal(gotBPs, want) {
		t.Fatalf("%s: blueprints %v, want %v", at, gotBPs, want)
	}
	for _, bp := range []string{"app", "env", "wl", "none"} {
		var all []string
		for k := range m.last {
			if k.blueprint == bp {
				all = append(all, k.identifier)
			}
		}
		slices.Sort(all)
		sels := map[selector]func(id string) bool{
			selAll:   func(string) bool { return true },
			selValid: func(id string) bool { return m.last[entityKey{bp, id}].data != nil },
			selValidUnowned: func(id string) bool {
				_, owned := m.owned[entityKey{bp, id}]
				return m.last[entityKey{bp, id}].data != nil && !owned
			},
			selCycleWritten: func(id string) bool {
				p := m.last[entityKey{bp, id}]
				return p.data != nil && m.states[p.n]&stateCycle != 0
			},
		}
		for sel, keep := range sels {
			want := slices.DeleteFunc(slices.Clone(all), func(id string) bool { return !keep(id) })
			for _, limit := range []int{1, 7, 500} {
				var got []spoolRow
				after := ""
				for {
					rows, err := sp.rowsAfter(ctx, bp, sel, after, limit)
					if err != nil {
						t.Fatal(err)
					}
					if len(rows) > limit {
						t.Fatalf("%s: a page of %d rows, limit %d", at, len(rows), limit)
					}
					if len(rows) == 0 {
						break
					}
					got = append(got, rows...)
					after = rows[len(rows)-1].id
				}
				var ids []string
				for _, r := range got {
					ids = append(ids, r.id)
					k := entityKey{bp, r.id}
					p := m.last[k]
					if r.n != p.n || !bytes.Equal(r.data, p.data) {
						t.Fatalf("%s: %v read n %d %s, want n %d %s", at, k, r.n, r.data, p.n, p.data)
					}
					if owner := m.owned[k]; r.owner != owner || (owner != "" && string(r.body) != r.id) {
						t.Fatalf("%s: %v read owner %q body %q, want owner %q", at, k, r.owner, r.body, owner)
					}
				}
				if !slices.Equal(ids, want) {
					t.Fatalf("%s: %s selector %d limit %d: %d ids, want %d", at, bp, sel, limit, len(ids), len(want))
				}
			}
		}
		var ask []string
		for i := range 1400 {
			ask = append(ask, fmt.Sprintf("k%04d", i))
		}
		for _, done := range []bool{false, true} {
			got, err := sp.among(ctx, bp, done, ask)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]bool{}
			for _, id := range ask {
				if p, ok := m.last[entityKey{bp, id}]; ok && p.data != nil && (!done || m.states[p.n] != 0) {
					want[id] = true
				}
			}
			if !maps.Equal(got, want) {
				t.Fatalf("%s: among(%s, done=%v): %d, want %d", at, bp, done, len(got), len(want))
			}
		}
		var stale, kept []string
		adopted := map[string]string{}
		for k, owner := range m.owned {
			if k.blueprint != bp {
				continue
			}
			p, produced := m.last[k]
			switch {
			case !produced && m.ref[k]:
				kept = append(kept, k.identifier)
			case !produced:
				stale = append(stale, k.identifier)
			case owner != "us" && p.data != nil:
				adopted[k.identifier] = owner
			}
		}
		slices.Sort(stale)
		slices.Sort(kept)
		gotStale, err := sp.stale(ctx, bp)
		if err != nil {
			t.Fatal(err)
		}
		gotKept, err := sp.kept(ctx, bp)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(gotStale, stale) || !slices.Equal(gotKept, kept) {
			t.Fatalf("%s: %s stale %d kept %d, want %d and %d", at, bp, len(gotStale), len(gotKept), len(stale), len(kept))
		}
		gotAdopted, err := sp.ownedBy(ctx, bp, "us")
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(gotAdopted, adopted) {
			t.Fatalf("%s: %s adopted %v, want %v", at, bp, gotAdopted, adopted)
		}
		for i := range 1400 {
			k := entityKey{bp, fmt.Sprintf("k%04d", i)}
			want := -1
			if p, ok := m.last[k]; ok && p.data != nil {
				want = m.states[p.n] &^ stateCycle
			}
			if got, err := sp.stateOf(ctx, k); err != nil || got != want {
				t.Fatalf("%s: stateOf(%v) = %d, %v, want %d", at, k, got, err, want)
			}
		}
	}
}

// TestAmongLooksUpWhatTheIndexCannotTell makes every hash of a settled
// run ambiguous, as a collision would: among must then answer each key
// from the run itself, exactly as before.
func TestAmongLooksUpWhatTheIndexCannotTell(t *testing.T) {
	ctx := context.Background()
	sp := newTestSpool(t)
	var es []spooled
	var ask []string
	for i := range 300 {
		id := fmt.Sprintf("k%03d", i)
		ask = append(ask, id, id+"-never")
		var data []byte
		if i%4 != 0 {
			data = []byte(`{}`)
		}
		es = append(es, spooled{bp: "b", id: id, data: data})
	}
	for i := 0; i < len(es); i += 100 {
		if err := sp.put(ctx, es[i:i+100]); err != nil {
			t.Fatal(err)
		}
	}
	want, err := sp.among(ctx, "b", false, ask)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 225 {
		t.Fatalf("among: %d keys, want the 225 valid ones", len(want))
	}
	sp.mu.Lock()
	x := sp.runs["b"][0].index
	hashes := append(slices.Clone(x.hashes), x.hashes...)
	places := append(slices.Clone(x.places), x.places...)
	sp.runs["b"][0].index = buildIndex(hashes, places)
	sp.mu.Unlock()
	got, err := sp.among(ctx, "b", false, ask)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Fatalf("among with every hash ambiguous: %d keys, want %d", len(got), len(want))
	}
}
