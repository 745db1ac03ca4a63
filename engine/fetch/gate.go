package fetch

import (
	"context"
	"sync"
)

// gate is a FIFO counting semaphore whose limit can be lowered while in use,
// so that a later, stricter config for the same host can tighten it.
type gate struct {
	mu      sync.Mutex
	limit   int
	inUse   int
	peak    int
	waiters []chan struct{}
}

func newGate(limit int) *gate { return &gate{limit: limit} }

// acquire blocks until a slot is free or ctx is done.
func (g *gate) acquire(ctx context.Context) error {
	g.mu.Lock()
	if g.inUse < g.limit && len(g.waiters) == 0 {
		g.take()
		g.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	g.waiters = append(g.waiters, ch)
	g.mu.Unlock()

	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		for i, w := range g.waiters {
			if w == ch {
				g.waiters = append(g.waiters[:i], g.waiters[i+1:]...)
				g.mu.Unlock()
				return ctx.Err()
			}
		}
		g.mu.Unlock()
		// The slot was granted while ctx fired: hand it back.
		g.release()
		return ctx.Err()
	}
}

func (g *gate) release() {
	g.mu.Lock()
	g.inUse--
	g.grant()
	g.mu.Unlock()
}

// setLimit changes the limit; slots already held drain naturally.
func (g *gate) setLimit(n int) {
	g.mu.Lock()
	g.limit = n
	g.grant()
	g.mu.Unlock()
}

func (g *gate) take() {
	g.inUse++
	if g.inUse > g.peak {
		g.peak = g.inUse
	}
}

// grant wakes waiters in order while slots are free; g.mu must be held.
func (g *gate) grant() {
	for g.inUse < g.limit && len(g.waiters) > 0 {
		ch := g.waiters[0]
		g.waiters = g.waiters[1:]
		g.take()
		close(ch)
	}
}

func (g *gate) stats() (limit, peak int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limit, g.peak
}
