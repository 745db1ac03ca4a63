package engine

import (
	"context"
	"sync"
	"time"
)

// poolClock is the clock the HTTP pool waits by (Retry-After holds, the
// adaptive rate, backoff), which sleeps in real time: it starts at the
// run's time and moves on in real time, so a run whose own clock stands
// still (a `ferry test` case's now:, a pinned RunOptions.Now) still sees
// a wait end. With the run's clock itself a hold's end stayed ahead for
// ever and the run hung. A replay does not wait: its sleep moves this
// clock on instead (skip), or the waits, which look at the clock again
// after sleeping, would spin until the hold ended in real time.
type poolClock struct {
	base, start time.Time
	mu          sync.Mutex
	skipped     time.Duration
}

func newPoolClock(runNow func() time.Time) *poolClock {
	return &poolClock{base: runNow(), start: time.Now()}
}

func (c *poolClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base.Add(time.Since(c.start) + c.skipped)
}

// skip is a sleep that does not wait: the clock jumps by d.
func (c *poolClock) skip(ctx context.Context, d time.Duration) error {
	if d > 0 {
		c.mu.Lock()
		c.skipped += d
		c.mu.Unlock()
	}
	return ctx.Err()
}
