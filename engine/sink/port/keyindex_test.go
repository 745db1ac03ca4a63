package port

import (
	"context"
	"fmt"
	"math/rand/v2"
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
