package runner_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/sink"
)

// mergeProbe is an Output that lets the first (non-merge) part of an
// entity wait a while for another part of it, as a slow Write would, and
// records the order the parts reach it.
type mergeProbe struct {
	*collector
	mu      sync.Mutex
	arrived chan struct{} // closed when a merge part arrives
	order   []bool        // Merge of each part, in arrival order
}

func (p *mergeProbe) Entity(ctx context.Context, e sink.Entity) error {
	if !e.Merge {
		select {
		case <-p.arrived:
		case <-time.After(500 * time.Millisecond): // the runner made the merge wait: right
		case <-ctx.Done():
		}
	}
	p.mu.Lock()
	p.order = append(p.order, e.Merge)
	if e.Merge {
		select {
		case <-p.arrived:
		default:
			close(p.arrived)
		}
	}
	p.mu.Unlock()
	return p.collector.Entity(ctx, e)
}

// TestMergeReachesOutputAfterItsFirstPart: two streams give parts of one
// entity (on_duplicate: merge), released by their own goroutines. The part
// the runner calls first (not a merge) reaches the Output before the part
// merged into it, however slow its delivery: the other way round, the
// Port sink would queue the merge alone and the first part would then
// replace it, losing its relations.
func TestMergeReachesOutputAfterItsFirstPart(t *testing.T) {
	s, _ := jsonAPI(t, map[string]string{
		"/one": `[{"id": "g", "m": "a"}]`,
		"/two": `[{"id": "g", "m": "b"}]`,
	})
	f := mustSpec(t, `
version: 1
name: t
http: {base_url: `+s.URL+`, retry: {attempts: 1}}
streams:
  one:
    request: {path: /one}
  two:
    request: {path: /two}
port:
  entities:
    - {blueprint: group, from: one, identifier: .id, on_duplicate: merge, relations: {members: '[.m]'}}
    - {blueprint: group, from: two, identifier: .id, on_duplicate: merge, relations: {members: '[.m]'}}
`)
	p := &mergeProbe{collector: newCollector(), arrived: make(chan struct{})}
	if _, err := runSpec(t, f, nil, p); err != nil {
		t.Fatal(err)
	}
	if len(p.order) != 2 || p.order[0] || !p.order[1] {
		t.Errorf("parts reached the output as merge=%v, want the first part, then the merge", p.order)
	}
}
