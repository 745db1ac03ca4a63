package engine

import "time"

// poolClock is the clock the HTTP pool waits by (Retry-After holds, the
// adaptive rate, backoff), which sleeps in real time: it starts at the
// run's time and moves on in real time, so a run whose own clock stands
// still (a `ferry test` case's now:, a pinned RunOptions.Now) still sees
// a wait end. With the run's clock itself a hold's end stayed ahead for
// ever and the run hung.
func poolClock(runNow func() time.Time) func() time.Time {
	base, start := runNow(), time.Now()
	return func() time.Time { return base.Add(time.Since(start)) }
}
