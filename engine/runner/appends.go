package runner

import (
	"slices"

	"github.com/ferry-etl/ferry/engine/spec"
)

// appendLedger keeps what one run's chain appended to its stream's
// content-keyed append tables (see targets.contentKeyed), for a restart:
// the chain read again from its start appends only the rows its refused
// reading did not. Rows are matched by content and counted, not as a set:
// the n-th alike row of the new reading is taken for one already there
// only when the refused reading (in this run, or committed by the sync's
// earlier runs) appended n of them. So two identical events the source
// gives in one reading are both in the table, as a replayed page's are
// (the rows a replay does not append again are those its partition
// committed, each once), and a row the refused reading had but the new one
// does not stays (appended rows are never taken back). It is kept only for
// a stream a response rule may restart, by the release goroutine alone:
// 8 bytes a row until the chain ends.
type appendLedger struct {
	reading uint32              // the again of the reading whose rows are in rows
	rows    map[string][]uint64 // by table: the content hash of each row that reading delivered
	// restarted: the chain was read again from its start; before holds
	// the refused reading's rows by table, sorted, and met how many of
	// each the new reading met again.
	restarted bool
	before    map[string][]uint64
	met       map[string]map[uint64]int
}

// newAppendLedger is the ledger of rn, a run of st, or nil when st cannot
// restart or appends to no content-keyed table.
func (r *Runner) newAppendLedger(st *streamState, rn *run) *appendLedger {
	if !r.targets.restarts[st.s.Name] {
		return nil
	}
	if !slices.ContainsFunc(st.tables, func(t *spec.Table) bool { return r.targets.contentKeyed(t.Name, st.s) }) {
		return nil
	}
	return &appendLedger{reading: rn.again, rows: map[string][]uint64{}}
}

// take takes out of m the rows a restarted chain's refused reading
// appended already, and notes the rows of a reading not restarted (yet).
// Rows come in release order: the refused reading's were all delivered
// before the first of the new reading's.
func (l *appendLedger) take(ts *targets, st *streamState, rn *run, m *mapped) {
	if l == nil || m == nil {
		return
	}
	m.rows = slices.DeleteFunc(m.rows, func(row mappedRow) bool {
		if row.key != "" || !ts.contentKeyed(row.Table, st.s) {
			return false
		}
		h := contentHash(row.Data)
		if row.again != l.reading && !l.restarted {
			// The first row of the reading after a restart (a chain is
			// restarted once a run): what is in the table already is
			// what the refused reading delivered in this run, and what
			// the partition committed in the sync's earlier runs (even
			// if its first checkpoint has dropped them since: the rows
			// stay).
			l.restarted, l.reading = true, row.again
			l.before, l.met = map[string][]uint64{}, map[string]map[uint64]int{}
			for table, rows := range l.rows {
				l.before[table] = rows
			}
			for _, t := range st.tables {
				if ts.contentKeyed(t.Name, st.s) {
					l.before[t.Name] = append(l.before[t.Name], ts.savedOf(t.Name, st.s.Name, rn.partition)...)
				}
			}
			for _, rows := range l.before {
				slices.Sort(rows)
			}
			l.rows = nil
		}
		if !l.restarted {
			l.rows[row.Table] = append(l.rows[row.Table], h)
			return false
		}
		before := l.before[row.Table]
		i, found := slices.BinarySearch(before, h)
		if !found {
			return false
		}
		n := 0
		for ; i+n < len(before) && before[i+n] == h; n++ {
		}
		met := l.met[row.Table]
		if met == nil {
			met = map[uint64]int{}
			l.met[row.Table] = met
		}
		if met[h] >= n {
			return false // one more than the refused reading had: new
		}
		met[h]++
		return true
	})
}
