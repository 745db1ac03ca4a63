package port

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
	"github.com/ferry-etl/ferry/engine/sink"
)

// Several streams each give part of one entity (on_duplicate: merge), the
// parts written from their own goroutines at once: the many-relation is
// the union of every part, none lost to another part's write.
func TestAuditConcurrentMergeKeepsEveryPart(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	s := e.sink()
	ctx := t.Context()
	if err := s.EnsureBlueprints(ctx, humanitecBlueprints(t, bpApp, bpEnv, bpGraph)); err != nil {
		t.Fatal(err)
	}
	const keys, parts = 200, 16
	node := func(k, p int) sink.Entity {
		return sink.Entity{Blueprint: bpGraph, Merge: true, Data: map[string]any{
			"identifier": fmt.Sprintf("n%d", k), "properties": map[string]any{},
			"relations": map[string]any{bpGraph: []any{fmt.Sprintf("n%d", (k+p)%keys)}},
		}}
	}
	// The first part of each key, as the engine sends it (not a merge).
	for k := range keys {
		first := node(k, 0)
		first.Merge = false
		if err := s.Write(ctx, first); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for p := 1; p < parts; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				if err := s.Write(ctx, node(k, p)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if _, err := s.Finish(ctx, nil); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for k := range keys {
		got := e.srv.Entity(bpGraph, fmt.Sprintf("n%d", k))["relations"].(map[string]any)[bpGraph].([]any)
		var want []any
		for p := range parts {
			want = append(want, fmt.Sprintf("n%d", (k+p)%keys))
		}
		slices.SortFunc(want, byString)
		slices.SortFunc(got, byString)
		if !slices.Equal(got, want) {
			if lost++; lost <= 3 {
				t.Errorf("n%d relates to %v, want %v", k, got, want)
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d entities lost parts", lost, keys)
	}
}

func byString(a, b any) int { return strings.Compare(a.(string), b.(string)) }

// A merging stream's parts come far apart: every key's first part, then
// every key's second, and so on, so that the spool has merged the earlier
// parts' runs (a level up) by the time a later part looks its key up.
// Each entity in Port is the union of its parts' relations, with the last
// part's title.
func TestMergeFindsPartsInMergedRuns(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	s := e.sink()
	ctx := t.Context()
	if err := s.EnsureBlueprints(ctx, humanitecBlueprints(t, bpApp, bpEnv, bpGraph)); err != nil {
		t.Fatal(err)
	}
	const keys, parts = 5000, 4
	for p := range parts {
		for k := range keys {
			en := sink.Entity{Blueprint: bpGraph, Merge: p > 0, Data: map[string]any{
				"identifier": fmt.Sprintf("n%04d", k), "title": fmt.Sprintf("part %d", p), "properties": map[string]any{},
				"relations": map[string]any{bpGraph: []any{fmt.Sprintf("n%04d", (k+p+1)%keys)}},
			}}
			if err := s.Write(ctx, en); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.mu.Lock()
	level := 0
	for _, rn := range s.spool.runs[bpGraph] {
		level = max(level, rn.level)
	}
	s.mu.Unlock()
	if level < 1 {
		t.Fatalf("the spool's runs reached level %d: the lookups never met a merged run", level)
	}
	if _, err := s.Finish(ctx, nil); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for k := range keys {
		got := e.srv.Entity(bpGraph, fmt.Sprintf("n%04d", k))
		rels, _ := got["relations"].(map[string]any)[bpGraph].([]any)
		var want []any
		for p := range parts {
			want = append(want, fmt.Sprintf("n%04d", (k+p+1)%keys))
		}
		slices.SortFunc(want, byString)
		slices.SortFunc(rels, byString)
		if !slices.Equal(rels, want) || got["title"] != fmt.Sprintf("part %d", parts-1) {
			if lost++; lost <= 3 {
				t.Errorf("n%04d: title %v, relations %v; want part %d, %v", k, got["title"], rels, parts-1, want)
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d entities lost parts", lost, keys)
	}
}
