package table

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/big"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-etl/ferry/engine/sink"
)

// Reader reads what a table destination holds, for plans: it writes
// nothing — no schema, no state table, no lock (SQLite opens the file
// read-only) — and a destination that does not exist yet reads as empty.
type Reader struct {
	d      *DB
	absent bool // the SQLite file does not exist
	// ended: the sync generations the run would end before writing (see
	// EndGenerations); endedAll, all of them.
	ended    map[string]bool
	endedAll bool
}

// EndGenerations makes the plans count as if the sync generations of
// tables (of every table with all) had ended, as DB.Restart and
// DB.Refresh end them: the run planned would begin a sync anew, counting
// the rows live when it does. Nothing is written.
func (r *Reader) EndGenerations(all bool, tables []string) {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	r.endedAll = r.endedAll || all
	for _, t := range tables {
		if r.ended == nil {
			r.ended = map[string]bool{}
		}
		r.ended[t] = true
	}
}

// OpenReader opens dest (as Open takes it) for reading.
func OpenReader(ctx context.Context, dest string, opts Options) (*Reader, error) {
	d, err := newDB(opts)
	if err != nil {
		return nil, err
	}
	kind, target, err := parseDest(dest)
	if err != nil {
		return nil, err
	}
	r := &Reader{d: d}
	switch kind {
	case "sqlite":
		_, serr := os.Stat(target)
		if errors.Is(serr, fs.ErrNotExist) {
			r.absent = true
			d.be = &sqliteBackend{path: target, schema: opts.Schema} // names only: never opened
			break
		}
		d.be, err = openSQLiteDSN(ctx, target, sqliteURI(target)+"?mode=ro&_pragma=busy_timeout(10000)", opts.Schema, d.log)
	default:
		d.be, err = openPostgres(ctx, target, opts.Schema, d.log)
		d.conv.text, d.conv.pg = true, true
	}
	if err != nil {
		return nil, err
	}
	if d.cfgs, err = d.tableConfigs(opts.Tables); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close releases the connection.
func (r *Reader) Close() error {
	if r.absent {
		return nil
	}
	return r.d.Close()
}

// KeyTypes is DB.KeyTypes; none when the destination does not exist yet
// (every table is new: the declared types decide).
func (r *Reader) KeyTypes(ctx context.Context) (map[string][]string, error) {
	if r.absent {
		return nil, nil
	}
	return r.d.KeyTypes(ctx)
}

// State returns the committed checkpoints, as DB.State; none when the
// destination holds no state yet.
func (r *Reader) State(ctx context.Context) (map[string]map[string]json.RawMessage, error) {
	if r.absent {
		return map[string]map[string]json.RawMessage{}, nil
	}
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	if ok, err := r.d.be.hasState(ctx); err != nil || !ok {
		return map[string]map[string]json.RawMessage{}, err
	}
	return r.d.be.state(ctx)
}

// TablePlan is what writing a table's rows would do to the table.
type TablePlan struct {
	Table string
	// Create are the keys of rows the table does not hold (an append
	// table: every row, by its _ferry_id); Update the rows that differ
	// from the stored ones, column by column; Unchanged counts rows equal
	// to the stored ones.
	Create    []Key
	Update    []RowUpdate
	Unchanged int
	// Delete are the rows a complete sync of a replace table did not see:
	// marked _ferry_deleted, or deleted with HardDelete. Refused, when not
	// empty, is why such rows would be kept (the sync is not complete, or
	// more of the rows live when the sync began than the table's delete
	// threshold would go).
	Delete     []Key
	HardDelete bool
	Refused    string
	Kept       int // rows Refused keeps
}

// Key is a row's primary key (or _ferry_id): column -> value.
type Key map[string]any

// RowUpdate is one stored row a write would change.
type RowUpdate struct {
	Key     Key
	Changes []ColumnChange
}

// ColumnChange is one column of a row that would change; nil is NULL.
type ColumnChange struct {
	Column   string
	Old, New any
}

// Changes reports whether applying the plan would change the table.
func (p *TablePlan) Changes() bool { return len(p.Create)+len(p.Update)+len(p.Delete) > 0 }

// planChunk is how many keys one lookup asks for.
const planChunk = 500

// Plan compares rows (all of one table's rows of a run) with what the
// table holds, as a Write would: the values converted to the columns'
// types, one row per key (the last, or merged in a merge table), a stored
// row marked deleted counting as changed (it would be un-deleted).
// complete is whether a sync would reconcile the table (replace tables:
// rows it did not see are deleted).
func (r *Reader) Plan(ctx context.Context, table string, rows []sink.Row, complete bool) (*TablePlan, error) {
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()
	var t *tbl
	var err error
	if r.absent {
		cfg, ok := d.cfgs[table]
		if !ok {
			cfg = &tableCfg{name: table, mode: ModeUpsert, declared: map[string]colType{}}
		}
		t = &tbl{cfg: cfg, byFold: map[string]int{}, keyCache: map[string]int{}}
	} else if t, err = d.table(ctx, table); err != nil {
		return nil, err
	}
	tp := &TablePlan{Table: table, HardDelete: t.cfg.hard}
	if len(rows) == 0 && !t.exists {
		return tp, nil
	}
	p, err := d.plan(t, rows)
	if err != nil {
		return nil, err
	}
	n := p.next
	keyCols := n.keys
	idCol := -1
	if n.cfg.hasID() {
		idCol = len(n.cols)
	}
	keyOf := func(args []any) (Key, string) {
		k := Key{}
		var parts []string
		if idCol >= 0 {
			v := fmt.Sprint(args[idCol])
			k[ColID] = v
			return k, v
		}
		for _, ki := range keyCols {
			c := n.cols[ki]
			cv := normValue(c, args[ki])
			k[c.name] = cv.show
			parts = append(parts, cv.cmp)
		}
		return k, strings.Join(parts, "\x00")
	}
	// One row per key, in order: the last one, or merged (later non-null
	// values win).
	w := p.width
	type planned struct {
		key  Key
		args []any
	}
	var order []string
	byKey := map[string]*planned{}
	for i := range p.n {
		args := p.args[i*w : (i+1)*w]
		if n.cfg.mode == ModeAppend {
			k, _ := keyOf(args)
			tp.Create = append(tp.Create, k)
			continue
		}
		k, ks := keyOf(args)
		prev, seen := byKey[ks]
		switch {
		case !seen:
			byKey[ks] = &planned{key: k, args: slices.Clone(args)}
			order = append(order, ks)
		case n.cfg.merge:
			for c, v := range args {
				if v != nil {
					prev.args[c] = v
				}
			}
		default:
			prev.args = slices.Clone(args)
		}
	}
	if n.cfg.mode == ModeAppend {
		return tp, nil
	}
	stored := map[string][]any{}
	if t.exists && !r.absent {
		for chunk := range slices.Chunk(order, planChunk) {
			keys := make([][]any, len(chunk))
			for i, ks := range chunk {
				keys[i] = byKey[ks].args
			}
			got, err := r.held(ctx, p, keys, keyOf)
			if err != nil {
				return nil, fmt.Errorf("table %q: %w", table, err)
			}
			maps.Copy(stored, got)
		}
	}
	for _, ks := range order {
		pr := byKey[ks]
		old, held := stored[ks]
		if !held {
			tp.Create = append(tp.Create, pr.key)
			continue
		}
		var changes []ColumnChange
		for ci, c := range n.cols {
			var was any
			if ci < len(old)-1 {
				was = old[ci]
			}
			a, b := normValue(c, was), normValue(c, pr.args[ci])
			if a.cmp != b.cmp {
				changes = append(changes, ColumnChange{Column: c.name, Old: a.show, New: b.show})
			}
		}
		if del := old[len(old)-1]; del != nil && normValue(column{typ: typeBool}, del).show == true {
			changes = append(changes, ColumnChange{Column: ColDeleted, Old: true, New: false})
		}
		if len(changes) == 0 {
			tp.Unchanged++
			continue
		}
		tp.Update = append(tp.Update, RowUpdate{Key: pr.key, Changes: changes})
	}
	if n.cfg.mode == ModeReplace && t.exists && !r.absent {
		// The run goes on with an open generation (an unfinished sync it
		// resumes) unless it ends it first: then what it already wrote
		// counts as seen, and the share is of the rows live when it began.
		var gen syncGen
		open := false
		if !r.endedAll && !r.ended[table] {
			if gen, open, err = d.be.openGeneration(ctx, table); err != nil {
				return nil, fmt.Errorf("table %q: %w", table, err)
			}
		}
		var since *time.Time
		if open {
			since = &gen.started
		}
		live, err := r.liveKeys(ctx, p.t, len(n.cols), keyOf, since)
		if err != nil {
			return nil, fmt.Errorf("table %q: %w", table, err)
		}
		var stale []string
		for ks, lk := range live {
			if _, seen := byKey[ks]; !seen && !lk.synced {
				stale = append(stale, ks)
			}
		}
		slices.Sort(stale)
		// Without a generation the run begins one, counting the rows live
		// now; a generation without a count (an older ferry's) falls back
		// to them, as finishIn does.
		held := len(live)
		if open && gen.counted {
			held = gen.live
		}
		switch sk := n.cfg.skipDelete(len(stale), held); {
		case len(stale) == 0:
		case !complete:
			tp.Refused, tp.Kept = "not every stream feeding it completed, or a record of it failed: no row is marked deleted", len(stale)
		case sk != nil:
			tp.Refused, tp.Kept = sk.Reason+": no row is marked deleted", len(stale)
		default:
			for _, ks := range stale {
				tp.Delete = append(tp.Delete, live[ks].key)
			}
		}
	}
	return tp, nil
}

// held reads the stored rows of keys (rows of converted arguments): each
// by its key string, the plan's columns in order (NULL for those the plan
// adds), then _ferry_deleted.
func (r *Reader) held(ctx context.Context, p *plan, keys [][]any, keyOf func([]any) (Key, string)) (map[string][]any, error) {
	be := r.d.be
	n := p.next
	var sel []string
	for i, c := range n.cols {
		if i >= len(p.t.cols) {
			sel = append(sel, "NULL")
			continue
		}
		sel = append(sel, be.display(c))
	}
	if n.cfg.hasID() {
		sel = append(sel, quoteIdent(ColID))
	}
	sel = append(sel, quoteIdent(ColDeleted))
	var cond string
	var args []any
	if n.cfg.hasID() {
		var ph []string
		for _, k := range keys {
			args = append(args, k[len(n.cols)])
			ph = append(ph, be.param(len(args), column{typ: typeString}))
		}
		cond = quoteIdent(ColID) + " IN (" + strings.Join(ph, ", ") + ")"
	} else {
		var cols, tuples []string
		for _, ki := range n.keys {
			cols = append(cols, quoteIdent(n.cols[ki].name))
		}
		for _, k := range keys {
			var ph []string
			for _, ki := range n.keys {
				args = append(args, k[ki])
				ph = append(ph, be.param(len(args), n.cols[ki]))
			}
			tuples = append(tuples, "("+strings.Join(ph, ", ")+")")
		}
		cond = "(" + strings.Join(cols, ", ") + ") IN (VALUES " + strings.Join(tuples, ", ") + ")"
	}
	rows, err := be.query(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+n.ident+" WHERE "+cond, args)
	if err != nil {
		return nil, fmt.Errorf("read stored rows: %w", err)
	}
	out := make(map[string][]any, len(rows))
	for _, row := range rows {
		vals := row
		if n.cfg.hasID() {
			// _ferry_id rows: data identical by construction; the id is
			// the key, and the deleted flag is what may differ.
			vals = append(slices.Clone(row[:len(n.cols)]), row[len(row)-1])
			out[fmt.Sprint(row[len(n.cols)])] = vals
			continue
		}
		_, ks := keyOf(row)
		out[ks] = vals
	}
	return out, nil
}

// liveKey is a stored row not marked deleted: its key, and whether the
// open sync generation wrote it (counted as seen).
type liveKey struct {
	key    Key
	synced bool
}

// liveKeys reads the keys of every stored row not marked deleted, and
// with since (an open generation's start) which of them it wrote. keyOf
// reads rows of width columns (the plan's, n's and those it adds).
func (r *Reader) liveKeys(ctx context.Context, n *tbl, width int, keyOf func([]any) (Key, string), since *time.Time) (map[string]liveKey, error) {
	be := r.d.be
	sel := make([]string, width)
	for i := range sel {
		sel[i] = "NULL"
	}
	for _, ki := range n.keys {
		sel[ki] = be.display(n.cols[ki])
	}
	if n.cfg.hasID() {
		sel = append(sel, quoteIdent(ColID))
	}
	var args []any
	if since != nil {
		args = append(args, since.UTC().Format(datetimeFormat))
		sel = append(sel, "("+quoteIdent(ColSynced)+" >= "+be.param(1, column{typ: typeDatetime})+")")
	}
	rows, err := be.query(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+n.ident+" WHERE "+quoteIdent(ColDeleted)+" IS NOT "+be.trueLit(), args)
	if err != nil {
		return nil, fmt.Errorf("read stored keys: %w", err)
	}
	out := make(map[string]liveKey, len(rows))
	for _, row := range rows {
		k, ks := keyOf(row)
		lk := liveKey{key: k}
		if since != nil {
			lk.synced = normValue(column{typ: typeBool}, row[len(row)-1]).show == true
		}
		out[ks] = lk
	}
	return out, nil
}

// norm is a value as a plan compares (cmp) and shows it (show).
type norm struct {
	cmp  string
	show any
}

// normValue reads a value of column c — a converted argument (typed, or
// text for PostgreSQL) or a stored one as read back — into one form, so a
// value and its stored copy compare equal exactly when a write would
// leave the row as it is.
func normValue(c column, v any) norm {
	if v == nil {
		return norm{cmp: "null"}
	}
	if b, ok := v.([]byte); ok {
		v = string(b)
	}
	s, isText := v.(string)
	if c.native != "" {
		return norm{cmp: "s:" + fmt.Sprint(v), show: fmt.Sprint(v)}
	}
	switch c.typ {
	case typeBool:
		b := false
		switch x := v.(type) {
		case bool:
			b = x
		case int64:
			b = x != 0
		case string:
			b = x == "true" || x == "t" || x == "1"
		}
		return norm{cmp: strconv.FormatBool(b), show: b}
	case typeInt, typeLong:
		switch x := v.(type) {
		case int64:
			return norm{cmp: strconv.FormatInt(x, 10), show: x}
		case int32:
			return norm{cmp: strconv.FormatInt(int64(x), 10), show: int64(x)}
		case float64:
			return norm{cmp: strconv.FormatInt(int64(x), 10), show: int64(x)}
		case string:
			if i, err := strconv.ParseInt(x, 10, 64); err == nil {
				return norm{cmp: strconv.FormatInt(i, 10), show: i}
			}
		}
	case typeDouble:
		var f float64
		var err error
		switch x := v.(type) {
		case float64:
			f = x
		case int64:
			f = float64(x)
		case string:
			f, err = strconv.ParseFloat(x, 64)
		}
		if err == nil {
			return norm{cmp: strconv.FormatFloat(f, 'g', -1, 64), show: f}
		}
	case typeDecimal:
		lit := fmt.Sprint(v)
		if f, ok := v.(float64); ok {
			lit = strconv.FormatFloat(f, 'g', -1, 64)
		}
		if q, ok := new(big.Rat).SetString(lit); ok {
			return norm{cmp: "n:" + q.RatString(), show: json.Number(lit)}
		}
	case typeJSON:
		if isText {
			dec := json.NewDecoder(strings.NewReader(s))
			dec.UseNumber()
			var x any
			if err := dec.Decode(&x); err == nil {
				var b bytes.Buffer
				enc := json.NewEncoder(&b)
				enc.SetEscapeHTML(false)
				if err := enc.Encode(x); err == nil {
					return norm{cmp: "j:" + strings.TrimSpace(b.String()), show: x}
				}
			}
		}
	case typeDatetime:
		switch x := v.(type) {
		case time.Time:
			f := x.UTC().Format(datetimeFormat)
			return norm{cmp: f, show: f}
		case string:
			if tm, ok := parseDatetime(x); ok {
				f := tm.Format(datetimeFormat)
				return norm{cmp: f, show: f}
			}
		}
	}
	return norm{cmp: "s:" + fmt.Sprint(v), show: fmt.Sprint(v)}
}
