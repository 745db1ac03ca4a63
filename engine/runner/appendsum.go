package runner

import (
	"context"
	"slices"
	"time"

	"github.com/ferry-etl/ferry/engine/eval"
	"github.com/ferry-etl/ferry/engine/spec"
)

// appendSum hashes, in 64 bits, what tells a record's rows in the append
// tables of its stream: the keys of its rows in the keyed tables whose key
// is one record's (see ownKey), which say which record it is, and the
// values of its rows in the append tables, which are what an append writes.
// A partition saves it for each record it writes whole (AppendedTable), 8
// bytes a record until the sync ends, and a resumed run takes a record past
// the committed pages whose sum the partition saved for one committed as it
// is now (see appendedBefore): a new version differs in what an append
// table maps, whatever its keyed rows hold. Among a million saved sums a
// chance match is about 1 in 10^13.
type appendSum struct {
	sum   uint64
	keyed bool // a row of an ownKey table gave a key
}

// add counts a row of table t: its key in an ownKey table, its values in
// an append table; other tables' rows tell nothing.
func (a *appendSum) add(t *spec.Table, key string, data map[string]any) {
	name := fnvString(fnvOffset, t.Name)
	switch {
	case t.Mode.V == "append":
		a.sum += mix(name ^ valueHash(data))
	case ownKey(t) && key != "":
		a.sum += mix(name ^ 'k' ^ KeyHash(key))
		a.keyed = true
	}
}

// value is the sum, never 0; ok is false when no key tells the record.
func (a *appendSum) value() (h uint64, ok bool) {
	return max(mix(a.sum), 1), a.keyed
}

// sumRows are rec's rows in append table t as appendSum hashes them: as
// mapped, but that a row that reads the run's clock (jq's now: a load
// time) is mapped under one fixed clock, so that a record an earlier run
// appended is the same in every run, not a new version by the time alone.
func sumRows(ctx context.Context, t *spec.Table, keyTypes []string, stream string, rec any, vars []any) ([]keyedRow, []error) {
	if t.RowFor(stream).Code().ReadsClock() {
		ctx = eval.ContextWithClock(ctx, func() time.Time { return time.Unix(0, 0).UTC() })
	}
	return tableRows(ctx, t, keyTypes, stream, rec, vars)
}

// keepsAppended tells a stream whose partitions save their records'
// appendSum: one that feeds an append table and an ownKey table, and whose
// resumed chains ask appendedBefore (not an incremental one).
func keepsAppended(st *streamState) bool {
	return st.s.Incremental == nil &&
		slices.ContainsFunc(st.tables, func(t *spec.Table) bool { return t.Mode.V == "append" }) &&
		slices.ContainsFunc(st.tables, func(t *spec.Table) bool { return t.Mode.V != "append" && ownKey(t) })
}

// noteAppended keeps the appendSum of rec, mapped to tables (m), for the
// chain's next checkpoint: when every append table of its stream is
// among them. The stream's other tables whose key is one record's are
// either among them too or were committed before (a record of a committed
// page tried again for its append tables only: its sum tells it appended
// as it is now, or a later page meeting it again would append it twice);
// their keys are counted as appendedBefore counts them. Not a record
// whose append rows a mapping left out.
func (c *chainRun) noteAppended(m *mapped, rec any, tables []*spec.Table) (sum uint64, noted bool) {
	if m == nil || !keepsAppended(c.st) {
		return 0, false
	}
	written := func(t *spec.Table) bool { return slices.Contains(tables, t) }
	if slices.ContainsFunc(c.st.tables, func(t *spec.Table) bool { return t.Mode.V == "append" && !written(t) }) {
		return 0, false
	}
	if slices.ContainsFunc(m.fails, func(f Failure) bool {
		return slices.ContainsFunc(c.st.tables, func(t *spec.Table) bool { return t.Name == f.Table && t.Mode.V == "append" })
	}) {
		// Its append rows are not all written: no sum tells them.
		return 0, false
	}
	// A row that reads the clock is mapped again under sumRows' clock.
	clocked := func(t *spec.Table) bool { return t.Mode.V == "append" && t.RowFor(c.st.s.Name).Code().ReadsClock() }
	var a appendSum
	for _, row := range m.rows {
		if i := slices.IndexFunc(c.st.tables, func(t *spec.Table) bool { return t.Name == row.Table }); i >= 0 && !clocked(c.st.tables[i]) {
			a.add(c.st.tables[i], row.key, row.Data)
		}
	}
	for _, t := range c.st.tables {
		if !clocked(t) && (t.Mode.V == "append" || !ownKey(t) || written(t)) {
			continue
		}
		rows, errs := sumRows(c.ctx, t, c.r.opts.KeyTypes[t.Name], c.st.s.Name, rec, c.vars)
		if len(errs) > 0 {
			return 0, false
		}
		for _, row := range rows {
			a.add(t, row.key, row.data)
		}
	}
	h, ok := a.value()
	if ok {
		c.appended = append(c.appended, h)
	}
	return h, ok
}

// nearSums are the appendSums of the records a chain released on the
// page it reads (cur) and the page before (prev), in their order (0: a
// record without one), at most nearMax of each, the last. starts are the
// places in prev where a run of records equal to those released on this
// page so far begins (see metNear); lead: there are such places.
type nearSums struct {
	at        position
	prev, cur []uint64
	starts    []int
	lead      bool
	released  int // records released on the page
}

// nearMax bounds the sums kept of a page (a streamed page may hold
// millions of records): a shift of more records than that, which no
// paging that lists records added meanwhile makes, is appended twice,
// never lost.
const nearMax = 4096

// metNear tells whether a record released on the page at, of sum h (ok:
// it has one), repeats the page before as offset paging does when records
// are added ahead: the page begins with the last records of the one before,
// in their order, each with the same sum there. Its one-record keys and
// append rows are those of the first: the keyed tables count it a
// duplicate of itself, and its append rows would be there twice. A record
// changed in between (another sum) is a new version. Not one met again on
// its own page, past the page's first record that is not such a repeat,
// or out of the order the page before listed them in: a shift does not put
// it there, and two identical records both real may (a key several
// records share with the same row, such as a page two views name): left
// out, one would be lost. (Two such records, the second beginning the next
// page, are taken for a repeat: nothing the run sees tells them apart.)
func (c *chainRun) metNear(h uint64, ok bool, at position) bool {
	if !keepsAppended(c.st) {
		return false
	}
	ns := &c.near
	if ns.cur == nil || at != ns.at {
		ns.prev, ns.cur = ns.cur, ns.prev[:0]
		if len(ns.prev) > nearMax {
			ns.prev = ns.prev[len(ns.prev)-nearMax:]
		}
		ns.at, ns.starts, ns.lead, ns.released = at, ns.starts[:0], true, 0
	}
	if !ok {
		h = 0
	}
	j := ns.released
	ns.released++
	if len(ns.cur) == 2*nearMax {
		ns.cur = append(ns.cur[:0], ns.cur[nearMax:]...)
	}
	ns.cur = append(ns.cur, h)
	if !ns.lead {
		return false
	}
	if j == 0 {
		for s, p := range ns.prev {
			if p == h && h != 0 {
				ns.starts = append(ns.starts, s)
			}
		}
	} else {
		ns.starts = slices.DeleteFunc(ns.starts, func(s int) bool { return s+j >= len(ns.prev) || ns.prev[s+j] != h || h == 0 })
	}
	ns.lead = len(ns.starts) > 0
	return ns.lead
}

// dropAppendRows takes m's rows of append tables out: they were written
// with the record's first listing (see metNear).
func (c *chainRun) dropAppendRows(m *mapped) {
	m.rows = slices.DeleteFunc(m.rows, func(row mappedRow) bool {
		i := slices.IndexFunc(c.st.tables, func(t *spec.Table) bool { return t.Name == row.Table })
		return i >= 0 && c.st.tables[i].Mode.V == "append"
	})
}
