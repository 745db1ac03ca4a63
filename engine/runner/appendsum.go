package runner

import (
	"slices"

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
// whose rows a mapping left out.
func (c *chainRun) noteAppended(m *mapped, rec any, tables []*spec.Table) {
	if m == nil || !keepsAppended(c.st) {
		return
	}
	written := func(t *spec.Table) bool { return slices.Contains(tables, t) }
	if slices.ContainsFunc(c.st.tables, func(t *spec.Table) bool { return t.Mode.V == "append" && !written(t) }) {
		return
	}
	var a appendSum
	for _, row := range m.rows {
		if i := slices.IndexFunc(c.st.tables, func(t *spec.Table) bool { return t.Name == row.Table }); i >= 0 {
			a.add(c.st.tables[i], row.key, row.Data)
		}
	}
	for _, t := range c.st.tables {
		if t.Mode.V == "append" || !ownKey(t) || written(t) {
			continue
		}
		rows, errs := tableRows(c.ctx, t, c.st.s.Name, rec, c.vars)
		if len(errs) > 0 {
			return
		}
		for _, row := range rows {
			a.add(t, row.key, row.data)
		}
	}
	if h, ok := a.value(); ok {
		c.appended = append(c.appended, h)
	}
}
