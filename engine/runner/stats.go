package runner

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// StreamStats are the live counters of one stream.
type StreamStats struct {
	Name                                 string
	requests, retries, pages, recs, outs atomic.Int64
	errors, skips                        atomic.Int64
}

func (s *StreamStats) request(attempts int) {
	s.requests.Add(int64(attempts))
	if attempts > 1 {
		s.retries.Add(int64(attempts - 1))
	}
}
func (s *StreamStats) page()         { s.pages.Add(1) }
func (s *StreamStats) records(n int) { s.recs.Add(int64(n)) }
func (s *StreamStats) output()       { s.outs.Add(1) }
func (s *StreamStats) failed()       { s.errors.Add(1) }
func (s *StreamStats) skipped()      { s.skips.Add(1) }

// Snapshot is a copy of one stream's counters.
type Snapshot struct {
	Stream                                                      string
	Requests, Retries, Pages, Records, Outputs, Errors, Skipped int64
}

func (s *StreamStats) snapshot() Snapshot {
	return Snapshot{Stream: s.Name, Requests: s.requests.Load(), Retries: s.retries.Load(), Pages: s.pages.Load(),
		Records: s.recs.Load(), Outputs: s.outs.Load(), Errors: s.errors.Load(), Skipped: s.skips.Load()}
}

// Stats holds the counters of every stream of a run.
type Stats struct {
	mu      sync.Mutex
	order   []*StreamStats
	started time.Time
	now     func() time.Time
}

func newStats(now func() time.Time) *Stats { return &Stats{started: now(), now: now} }

func (s *Stats) stream(name string) *StreamStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &StreamStats{Name: name}
	s.order = append(s.order, st)
	return st
}

// Snapshot copies every stream's counters, in spec order, and the elapsed time.
func (s *Stats) Snapshot() ([]Snapshot, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Snapshot, len(s.order))
	for i, st := range s.order {
		out[i] = st.snapshot()
	}
	return out, s.now().Sub(s.started)
}

// Summary is the outcome of a run.
type Summary struct {
	Streams  []Snapshot
	Elapsed  time.Duration
	Failures []Failure
	// Complete lists streams whose every request chain succeeded, as did
	// every ancestor's: only their targets may have stale rows marked
	// deleted or stale entities removed.
	Complete map[string]bool
}

func (s *Stats) summary(f *failures) *Summary {
	snaps, elapsed := s.Snapshot()
	sum := &Summary{Streams: snaps, Elapsed: elapsed, Failures: f.list, Complete: map[string]bool{}}
	for _, sn := range snaps {
		sum.Complete[sn.Stream] = sn.Errors == 0
	}
	return sum
}

// Failure is one failed request chain or record.
type Failure struct {
	Stream  string
	Parents string // ancestor chain, e.g. apps[id=a] > envs[id=dev]
	Err     error
}

func (f Failure) Error() string {
	if f.Parents == "" {
		return fmt.Sprintf("stream %s: %v", f.Stream, f.Err)
	}
	return fmt.Sprintf("stream %s (%s): %v", f.Stream, f.Parents, f.Err)
}

func (f Failure) Unwrap() error { return f.Err }

type failures struct {
	mu   sync.Mutex
	list []Failure
}

func (f *failures) add(x Failure) {
	f.mu.Lock()
	f.list = append(f.list, x)
	f.mu.Unlock()
}

// RunError reports every failure of a run that otherwise went to the end.
type RunError struct{ Failures []Failure }

func (e *RunError) Error() string {
	const show = 10
	var b strings.Builder
	fmt.Fprintf(&b, "%d failure(s)", len(e.Failures))
	for i, f := range e.Failures {
		if i == show {
			fmt.Fprintf(&b, "\n  … and %d more", len(e.Failures)-show)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(f.Error())
	}
	return b.String()
}

func (e *RunError) Unwrap() []error {
	out := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		out[i] = f
	}
	return out
}

var _ = errors.New
