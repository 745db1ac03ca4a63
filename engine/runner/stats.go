package runner

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-etl/ferry/engine/fetch"
)

// StreamStats are the live counters of one stream.
type StreamStats struct {
	Name                                 string
	requests, retries, pages, recs, outs atomic.Int64
	errors, skips                        atomic.Int64
	chains, chainsDone                   atomic.Int64 // request chains queued, and released to the end
	done                                 atomic.Bool  // every chain of the stream was released
	ruleSkips, empties                   atomic.Int64 // requests a response rule skipped, or answered "no data"
	replacedStrings                      atomic.Int64 // strings of its answers read with U+FFFD in place of invalid UTF-8
	partialRead                          atomic.Bool  // some chain read only what changed since a saved cursor
	windowsDone, windowsTotal            atomic.Int64
	skipReason                           string // set before the run starts: the whole stream is skipped
	unbuilt                              atomic.Pointer[string]
}

func (s *StreamStats) request(attempts int) {
	s.requests.Add(int64(attempts))
	if attempts > 1 {
		s.retries.Add(int64(attempts - 1))
	}
}

// answered counts a request's attempts: its answer's, or for a request that
// failed without an answer (network errors, timeouts), its error's: they
// count all the same.
func (s *StreamStats) answered(answerAttempts int, err error) {
	if answerAttempts == 0 {
		answerAttempts = fetch.Attempts(err)
	}
	if answerAttempts > 0 {
		s.request(answerAttempts)
	}
}

func (s *StreamStats) page()              { s.pages.Add(1) }
func (s *StreamStats) records(n int)      { s.recs.Add(int64(n)) }
func (s *StreamStats) output()            { s.outs.Add(1) }
func (s *StreamStats) failed()            { s.errors.Add(1) }
func (s *StreamStats) skipped()           { s.skips.Add(1) }
func (s *StreamStats) emptied()           { s.empties.Add(1) }
func (s *StreamStats) replaced(n int)     { s.replacedStrings.Add(int64(n)) }
func (s *StreamStats) partial()           { s.partialRead.Store(true) }
func (s *StreamStats) skip(reason string) { s.skipReason = reason }

// unbuiltFirst keeps the first error of a check's chain whose request
// could not be built (see Snapshot.Unbuilt).
func (s *StreamStats) unbuiltFirst(msg string) { s.unbuilt.CompareAndSwap(nil, &msg) }
func (s *StreamStats) windows(done, total int) {
	s.windowsDone.Add(int64(done))
	s.windowsTotal.Add(int64(total))
}
func (s *StreamStats) chainQueued()   { s.chains.Add(1) }
func (s *StreamStats) chainReleased() { s.chainsDone.Add(1) }
func (s *StreamStats) finished()      { s.done.Store(true) }

// unread: a request a rule skipped, in this run or before the chain
// stopped (see pageState.Held), is unread: the stream is not complete. It
// is counted as skipped where it is listed (see failures.skipped).
func (s *StreamStats) unread() { s.ruleSkips.Add(1) }

// Snapshot is a copy of one stream's counters.
type Snapshot struct {
	Stream                                                      string
	Requests, Retries, Pages, Records, Outputs, Errors, Skipped int64
	// Empty counts answers a response rule read as "no data" (the chain
	// done, complete); Skipped includes the requests a rule skipped.
	Empty int64
	// Replaced counts the strings of its JSON and NDJSON answers (keys
	// included) that held invalid UTF-8 or a lone surrogate escape, read
	// with U+FFFD in their place: not written as the source wrote them.
	Replaced int64
	// SkipReason is set when the whole stream was not fetched, and says
	// why (e.g. its `when` is false with this run's config).
	SkipReason string
	// Unbuilt is, in a check (Options.Probe), the first error of a chain
	// whose request could not be built from the lookups' values read.
	Unbuilt string
	// WindowsDone of WindowsTotal: the time windows of a windowed stream.
	WindowsDone, WindowsTotal int64
	// Chains are the request chains queued so far (one per parent record,
	// or one for a root stream); ChainsDone those whose records were all
	// released. Done is set once no more can come.
	Chains, ChainsDone int64
	Done               bool
}

func (s *StreamStats) snapshot() Snapshot {
	var unbuilt string
	if p := s.unbuilt.Load(); p != nil {
		unbuilt = *p
	}
	return Snapshot{Unbuilt: unbuilt, Stream: s.Name, Requests: s.requests.Load(), Retries: s.retries.Load(), Pages: s.pages.Load(),
		Records: s.recs.Load(), Outputs: s.outs.Load(), Errors: s.errors.Load(), Skipped: s.skips.Load(), Empty: s.empties.Load(), Replaced: s.replacedStrings.Load(), SkipReason: s.skipReason,
		WindowsDone: s.windowsDone.Load(), WindowsTotal: s.windowsTotal.Load(),
		Chains: s.chains.Load(), ChainsDone: s.chainsDone.Load(), Done: s.done.Load()}
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
	// Skips are the requests a response rule skipped.
	Skips []Skip
	// Complete says, per stream, whether everything it should have read was
	// read: see [Runner.Run] and complete.go.
	Complete map[string]bool
	// Tables and Blueprints say, per target, whether it may be reconciled
	// (replace tables' unseen rows marked deleted, stale Port entities
	// deleted): every stream feeding it is complete, read in full (not
	// from an incremental cursor), produced by this run (--streams), and
	// none of its own records failed. Tables lists only the tables this
	// run produced.
	Tables, Blueprints map[string]bool
	// Duplicates lists, per table and blueprint, the rows or entities whose
	// key an earlier one of this run had.
	Duplicates []Duplicate
	// Rewritten counts, by table, the rows that rewrote the row of an
	// earlier reading of their partition in this run (a parent listed
	// again, changed; a chain restarted by a rule): one row each, written
	// twice.
	Rewritten map[string]int
	// RewrittenEntities counts so, by blueprint, the entities of such a
	// reading: one entity each, produced twice.
	RewrittenEntities map[string]int
}

// Failure is one failed request chain or record.
type Failure struct {
	Stream  string
	Parents string // ancestor chain, e.g. apps[id=a] > envs[id=dev]; for a record, ending with it
	// Table, Blueprint or Lookup is set for a record that failed one
	// mapping: only that target misses it.
	Table, Blueprint, Lookup string
	Err                      error
}

// Record reports whether the failure is one record's, not a request chain's.
func (f Failure) Record() bool { return f.Table != "" || f.Blueprint != "" || f.Lookup != "" }

func (f Failure) Error() string {
	if f.Parents == "" {
		return fmt.Sprintf("stream %s: %v", f.Stream, f.Err)
	}
	return fmt.Sprintf("stream %s (%s): %v", f.Stream, f.Parents, f.Err)
}

func (f Failure) Unwrap() error { return f.Err }

type failures struct {
	// redact hides the secrets the pool knows: a failure is printed, logged
	// and reported, and what failed may quote a secret (a jq error previews
	// the value it failed on; an export job's answer may echo a key).
	redact func(string) string // nil: nothing to hide

	mu       sync.Mutex
	list     []Failure
	skips    []Skip
	skipSeen map[Skip]bool
}

// Skip is a request a response rule skipped: not a failure, but what it
// would have read is unknown and was not written.
type Skip struct {
	Stream  string
	Parents string // the ancestor chain it was for, e.g. apps[id=a] > envs[id=dev]; "" for a root stream
	Window  string // a windowed stream's window, "start..end"
	Page    int
	Reason  string
}

// skipped lists x, redacted, once: added is false when the same request
// was listed already (a stream read again in a later stage asks it again).
func (f *failures) skipped(x Skip) (added bool) {
	if f.redact != nil {
		x.Parents, x.Reason = f.redact(x.Parents), f.redact(x.Reason)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.skipSeen[x] {
		return false
	}
	if f.skipSeen == nil {
		f.skipSeen = map[Skip]bool{}
	}
	f.skipSeen[x] = true
	f.skips = append(f.skips, x)
	return true
}

// add records x, redacted, and returns it as recorded.
func (f *failures) add(x Failure) Failure {
	if f.redact != nil {
		x.Parents, x.Err = f.redact(x.Parents), redactErr(x.Err, f.redact)
	}
	f.mu.Lock()
	f.list = append(f.list, x)
	f.mu.Unlock()
	return x
}

// redactedError is an error whose message had secrets; it keeps the cause
// for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactErr is err with every secret redact knows hidden from its message;
// err itself when there was none.
func redactErr(err error, redact func(string) string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := redact(msg); clean != msg {
		return &redactedError{msg: clean, err: err}
	}
	return err
}

// snapshot copies the failures so far.
func (f *failures) snapshot() []Failure {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Failure(nil), f.list...)
}

// RunError reports every failure of a run that otherwise went to the end.
type RunError struct{ Failures []Failure }

// shownFailures bounds the failures an error message lists.
const shownFailures = 10

func (e *RunError) Error() string {
	var chains, records int
	for _, f := range e.Failures {
		if f.Record() {
			records++
		} else {
			chains++
		}
	}
	var b strings.Builder
	switch {
	case records == 0:
		fmt.Fprintf(&b, "%d failed request chain(s)", chains)
	case chains == 0:
		fmt.Fprintf(&b, "%d failed record(s)", records)
	default:
		fmt.Fprintf(&b, "%d failed request chain(s), %d failed record(s)", chains, records)
	}
	for i, f := range e.Failures {
		if i == shownFailures {
			fmt.Fprintf(&b, "\n  … and %d more", len(e.Failures)-shownFailures)
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
