package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/ferry-etl/ferry/engine/internal/jsonv"
	"github.com/ferry-etl/ferry/engine/sink"
	"github.com/ferry-etl/ferry/engine/sink/table"
	"github.com/ferry-etl/ferry/engine/spec"
)

// mapped is what one record becomes: rows, entities, and the failures of
// mappings that could not be applied to it.
type mapped struct {
	rows    []mappedRow
	ents    []mappedEntity
	entries []lookupEntry
	fails   []Failure
	place   func() string // names the record and its ancestors, for reports
	// seen are the primary keys of the rows a replayed record committed
	// before and does not write again, by table: noted by the duplicate
	// check in their place, as an uninterrupted run would have met them.
	seen []seenKey
}

type seenKey struct {
	table, key string
	fp         uint32 // the row's fingerprint as its reading (see target.reading)
}

// lookupEntry is what one record adds to a lookup.
type lookupEntry struct {
	l     *lookup
	key   string
	value any
}

type mappedRow struct {
	sink.Row
	key string // the primary key's values as JSON; "" without a primary key
	// reread: the record is one a committed checkpoint of its partition
	// covers, read again (see origin).
	reread bool
	again  uint32 // the run's (see run.again)
}

type mappedEntity struct {
	sink.Entity
	key   string // the identifier
	onDup string // the mapping's on_duplicate
	again uint32 // the run's (see run.again)
}

// mapRecord applies every table and entity mapping of the record's stream.
// It runs in the fetching goroutine, so records of different request chains
// are mapped in parallel; the releaser only delivers in order. A mapping
// error, a row without its primary key or an entity without an identifier
// is a failure of that record and of that mapping only, reported with its
// place: the record's other rows and entities, and every other record, are
// still written. The only error returned is cancellation (which must not
// pass for a mapping failure, or the page's checkpoint would commit
// without the record).
//
// tables are the table mappings to apply: all of the stream's, or for a
// record re-read after a restart only those that failed before (its other
// rows were committed; its entities, sent only when a run ends, were not).
func (r *Runner) mapRecord(ctx context.Context, st *streamState, rn *run, rec any, vars []any, tables []*spec.Table) (*mapped, error) {
	var fills []*lookup
	if st.fill {
		fills = st.fills
	}
	if len(tables) == 0 && len(st.entities) == 0 && len(fills) == 0 {
		return nil, nil
	}
	m := &mapped{place: func() string {
		c := &chain{stream: st.s.Name, data: rec, up: rn.parent}
		_, c.label = r.identify(ctx, st.s, rec, vars)
		return c.describe()
	}}
	fail := func(f Failure, err error) {
		f.Stream, f.Parents, f.Err = st.s.Name, m.place(), err
		m.fails = append(m.fails, f)
	}
	for _, l := range fills {
		key, value, err := fillLookup(ctx, l, rec, vars)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		switch {
		case err != nil:
			fail(Failure{Lookup: l.spec.Name}, fmt.Errorf("lookup %s: %w", l.spec.Name, err))
		case key != nil:
			m.entries = append(m.entries, lookupEntry{l: l, key: *key, value: value})
		}
	}
	for _, t := range tables {
		if err := r.lookups.failure(t.Reads()); err != nil {
			fail(Failure{Table: t.Name}, fmt.Errorf("table %s: %w", t.Name, err))
			continue
		}
		rows, errs := tableRows(ctx, t, r.opts.KeyTypes[t.Name], st.s.Name, rec, vars)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		for _, err := range errs {
			fail(Failure{Table: t.Name}, err)
		}
		for _, row := range rows {
			m.rows = append(m.rows, mappedRow{Row: sink.Row{Table: t.Name, Stream: st.s.Name, Partition: rn.partition, Data: row.data}, key: row.key, again: rn.again})
		}
	}
	for _, e := range st.entities {
		if err := r.lookups.failure(e.Reads()); err != nil {
			fail(Failure{Blueprint: e.Blueprint.V}, fmt.Errorf("blueprint %s: %w", e.Blueprint.V, err))
			continue
		}
		ent, ok, err := mapEntity(ctx, e, rec, vars)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			fail(Failure{Blueprint: e.Blueprint.V}, fmt.Errorf("blueprint %s: %w", e.Blueprint.V, err))
			continue
		}
		if ok {
			m.ents = append(m.ents, mappedEntity{
				Entity: sink.Entity{Blueprint: e.Blueprint.V, Stream: st.s.Name, Partition: rn.partition, Parents: rn.parents, Data: ent},
				key:    ent["identifier"].(string), onDup: e.OnDuplicate.V, again: rn.again,
			})
		}
	}
	return m, nil
}

type keyedRow struct {
	data map[string]any
	key  string // see primaryKey
}

// tableRows runs a table mapping on a record: the rows it gives with their
// primary keys, and an error for the program or for each row that cannot
// be written (not an object, no value for a primary-key column). stream is
// the record's: a table fed by several has a row program compiled for each.
// keyTypes are the key columns' types in the destination (see
// Options.KeyTypes), nil for the declared ones.
func tableRows(ctx context.Context, t *spec.Table, keyTypes []string, stream string, rec any, vars []any) ([]keyedRow, []error) {
	out, err := t.RowFor(stream).Code().Run(ctx, rec, vars...)
	if err != nil {
		return nil, []error{fmt.Errorf("table %s: row: %w", t.Name, err)}
	}
	var rows []keyedRow
	var errs []error
	for _, row := range out {
		obj, ok := row.(map[string]any)
		if !ok {
			errs = append(errs, fmt.Errorf("table %s: row: want an object, got %s", t.Name, jsonv.Kind(row)))
			continue
		}
		key, err := primaryKey(t, keyTypes, obj)
		if err != nil {
			errs = append(errs, fmt.Errorf("table %s: %w", t.Name, err))
			continue
		}
		rows = append(rows, keyedRow{data: obj, key: key})
	}
	return rows, errs
}

// fillLookup runs a lookup's key and value programs on a record; key is
// nil when the record adds nothing (a null key).
func fillLookup(ctx context.Context, l *lookup, rec any, vars []any) (*string, any, error) {
	kv, _, err := l.spec.Key.Code().First(ctx, rec, vars...)
	if err != nil {
		return nil, nil, fmt.Errorf("key: %w", err)
	}
	key, ok, err := lookupKey(kv)
	if err != nil || !ok {
		if err != nil {
			err = fmt.Errorf("key: %w", err)
		}
		return nil, nil, err
	}
	value, _, err := l.spec.Value.Code().First(ctx, rec, vars...)
	if err != nil {
		return nil, nil, fmt.Errorf("value: %w", err)
	}
	return &key, value, nil
}

// primaryKey checks that a row has a value for every primary-key column and
// returns the values as JSON (scalars as text, see storedKey), which
// identifies the row within its table. keyTypes are the columns' types in
// the destination, nil for the declared ones.
func primaryKey(t *spec.Table, keyTypes []string, row map[string]any) (string, error) {
	if len(t.PrimaryKey) == 0 || t.Mode.V == "append" {
		return "", nil
	}
	vals := make([]any, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		v, ok := row[k.V]
		if !ok || v == nil {
			return "", fmt.Errorf("row has no value for primary key column %q", k.V)
		}
		typ := ""
		switch {
		case keyTypes != nil:
			if i < len(keyTypes) {
				typ = keyTypes[i]
			}
		case t.Columns.Get(k.V) != nil:
			typ = t.Columns.Get(k.V).V
		}
		vals[i] = storedKey(typ, v)
	}
	var b []byte
	var err error
	if len(vals) == 1 {
		b, err = json.Marshal(vals[0])
	} else {
		b, err = json.Marshal(vals)
	}
	if err != nil {
		return "", fmt.Errorf("primary key: %w", err)
	}
	return string(b), nil
}

// storedKey is a key value as a column of type typ ("" unknown: the first
// value written decides) tells rows apart, as text: the database dedupes
// by that, not by the form the record gave, so the duplicate check must
// too, or one record's row replaces another's with no word. Where the
// column may store two forms as one, they are one key: a false duplicate
// is said, a missed one loses a record.
//
//   - STRING (it never widens): the text the column stores, a number as
//     written (2.0 and 2 two keys, 2.50 and "2.50" one).
//   - JSON: keyText (a number by its value, a string as given), the
//     numbers inside an object or array by value too (nestedByValue).
//   - UTC_DATETIME: a time the column takes as its UTC instant to the
//     microsecond (table.StoredValue).
//   - any other type, unknown too, and a value a UTC_DATETIME does not
//     take: a number, or a string holding one, by its value (numberValue):
//     a number column (or one made of a first value that is a number)
//     stores "2.50" as 2.5, and one that widens (INT to DECIMAL or STRING,
//     DOUBLE to DECIMAL) may store the two forms as one number or as one
//     text; else keyText (a BOOLEAN's true as "true").
//   - table.KeyLower, KeyNoCase, KeyRTrim (a text column compared its
//     way): the text STRING keys, as the column compares it (textFold).
func storedKey(typ string, v any) any {
	u := strings.ToUpper(strings.TrimSpace(typ))
	if fold := textFold(u); fold != nil {
		k := storedKey("STRING", v)
		if s, ok := k.(string); ok {
			return fold(s)
		}
		return k
	}
	if k, ok := nativeKey(u, v); ok {
		return k
	}
	switch u {
	case "STRING":
		if s, ok := table.StoredValue("STRING", v); ok && !composite(v) {
			return s
		}
		return keyText(v)
	case "JSON":
		return keyText(nestedByValue(v))
	case "UTC_DATETIME":
		if s, ok := table.StoredValue(typ, v); ok {
			return s
		}
	}
	if s, ok := table.StoredValue("DECIMAL", v); ok {
		return numberValue(string(s.(json.Number)))
	}
	return keyText(nestedByValue(v))
}

// textFold is how a text column of key type typ compares values, nil for
// another type.
func textFold(typ string) func(string) string {
	switch typ {
	case table.KeyLower:
		// PostgreSQL's lower() in a database of a UTF-8 LC_CTYPE maps
		// each character alone, as unicode.ToLower does (ß stays ß).
		return strings.ToLower
	case table.KeyNoCase:
		return asciiLower
	case table.KeyRTrim:
		return func(s string) string { return strings.TrimRight(s, " ") }
	}
	return nil
}

// asciiLower is s with its ASCII letters lower-cased, and nothing else.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// nestedByValue is v with the numbers inside an object or array written
// by their value (numberValue): PostgreSQL's jsonb, a JSON column's type
// there (or one an object made), compares them so ({"a": 1.0} and
// {"a": 1} are one row). SQLite keeps the text: a false duplicate there.
// A scalar is v as it is (keyText keys it).
func nestedByValue(v any) any {
	var walk func(x any) any
	walk = func(x any) any {
		switch y := x.(type) {
		case map[string]any:
			out := make(map[string]any, len(y))
			for k, e := range y {
				out[k] = walk(e)
			}
			return out
		case []any:
			out := make([]any, len(y))
			for i, e := range y {
				out[i] = walk(e)
			}
			return out
		case string, bool, nil:
			return x
		}
		if b, err := json.Marshal(x); err == nil && len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9') {
			return json.Number(numberValue(string(b)))
		}
		return x
	}
	if !composite(v) {
		return v
	}
	return walk(v)
}

// KeyTypeOf is the type to key a column by that a sync saved as saved
// (Options.KeyTypes) and the destination now has as cur: saved, so that
// the keys the sync's earlier runs saved still match, unless cur merges
// forms saved keys apart (a table made anew with another type while the
// sync is open: its rows are gone, and the new column must not store two
// keys as one row unsaid). Then the type of storedKey that merges what
// either does. Ferry's own widening never gets there: a widened column
// merges no more than it did.
func KeyTypeOf(saved, cur string) string {
	// How much each kind of type merges: STRING and JSON least (each
	// merges forms the other keeps apart), any other by value, and
	// UTC_DATETIME a time's zones too.
	rank := func(typ string) int {
		switch u := strings.ToUpper(strings.TrimSpace(typ)); {
		case u == "STRING", u == "JSON":
			return 0
		case u == "UTC_DATETIME", u == "UUID", strings.Contains(u, "("), textFold(u) != nil:
			// A time's zones, a native column's forms (nativeKey), or a
			// text column's comparison.
			return 2
		}
		return 1
	}
	rs, rc := rank(saved), rank(cur)
	switch {
	case rs > rc, rs == rc && (rs > 0 || strings.EqualFold(strings.TrimSpace(saved), strings.TrimSpace(cur))):
		return saved
	case rc > rs:
		return cur
	}
	return "" // STRING and JSON: by value merges what both do
}

// nativeKey is storedKey for the key types of a PostgreSQL column that
// stores more forms as one than ferry's type of it (see table.KeyTypes):
//
//   - UUID: 32 hex digits in lower case, the braces and hyphens dropped;
//   - DECIMAL(p,s), DECIMAL(p): the value rounded to s digits (0), half
//     away from zero;
//   - UTC_DATETIME(p), LOCAL_DATETIME(p): table.StoredKeyDatetime.
//
// ok is false for another type, or a value not of that kind (the column
// refuses it, or it is keyed as storedKey's other types key it).
func nativeKey(typ string, v any) (string, bool) {
	if typ == "UUID" {
		s, ok := v.(string)
		if !ok {
			return "", false
		}
		if len(s) > 1 && s[0] == '{' && s[len(s)-1] == '}' {
			s = s[1 : len(s)-1]
		}
		s = strings.ToLower(strings.ReplaceAll(s, "-", ""))
		if len(s) != 32 || strings.Trim(s, "0123456789abcdef") != "" {
			return "", false
		}
		return s, true
	}
	base, args, ok := strings.Cut(typ, "(")
	if !ok {
		return "", false
	}
	var p, scale int
	if _, err := fmt.Sscanf(strings.TrimSuffix(args, ")"), "%d,%d", &p, &scale); err != nil {
		if _, err := fmt.Sscanf(strings.TrimSuffix(args, ")"), "%d", &p); err != nil {
			return "", false
		}
	}
	switch base {
	case "DECIMAL":
		n, ok := table.StoredValue("DECIMAL", v)
		if !ok {
			return "", false
		}
		return numberValue(roundDecimal(string(n.(json.Number)), scale)), true
	case "UTC_DATETIME", "LOCAL_DATETIME":
		return table.StoredKeyDatetime(v, p, base == "LOCAL_DATETIME")
	}
	return "", false
}

// roundDecimal rounds the number literal lit to scale digits after the
// point, half away from zero, as PostgreSQL's numeric(p,scale) stores it.
// A literal whose exponent is far past any precision is kept: the column
// refuses it, or (a tiny one) stores 0.
func roundDecimal(lit string, scale int) string {
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		if e, err := strconv.Atoi(lit[i+1:]); err != nil || e > 2000 {
			return lit
		} else if e < -2000 {
			return "0"
		}
	}
	r, ok := new(big.Rat).SetString(lit)
	if !ok {
		return lit
	}
	pow := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(max(scale, -scale))), nil)
	if scale >= 0 {
		r.Mul(r, new(big.Rat).SetInt(pow))
	} else {
		r.Quo(r, new(big.Rat).SetInt(pow))
	}
	// Half away from zero: |r| + 1/2, truncated, signed back.
	neg := r.Sign() < 0
	r.Abs(r)
	r.Add(r, big.NewRat(1, 2))
	q := new(big.Int).Quo(r.Num(), r.Denom())
	if neg {
		q.Neg(q)
	}
	out := new(big.Rat).SetInt(q)
	if scale >= 0 {
		out.Quo(out, new(big.Rat).SetInt(pow))
	} else {
		out.Mul(out, new(big.Rat).SetInt(pow))
	}
	return out.FloatString(max(scale, 0))
}

// keyNote is said with a duplicate key of table name: for each key column
// compared otherwise than as written (storedKey: a number by its value, a
// time by its instant), its value as the record gave it and the type it
// was compared by, since the earlier record may have given another form
// that the table keeps apart after all (an INT column made STRING by
// "2.0" stores "2.0" and 2 as two rows): such a duplicate is false.
func (r *Runner) keyNote(name string, row map[string]any) string {
	var t *spec.Table
	for i := range r.f.Tables.Items {
		if r.f.Tables.Items[i].Value.Name == name {
			t = &r.f.Tables.Items[i].Value
		}
	}
	if t == nil {
		return ""
	}
	types := r.opts.KeyTypes[t.Name]
	var parts []string
	for i, k := range t.PrimaryKey {
		typ := ""
		switch {
		case types != nil:
			if i < len(types) {
				typ = types[i]
			}
		case t.Columns.Get(k.V) != nil:
			typ = t.Columns.Get(k.V).V
		}
		v := row[k.V]
		if u := strings.ToUpper(strings.TrimSpace(typ)); u == "STRING" || u == "JSON" {
			continue
		}
		// As JSON: a key of an object or array is a map, not comparable.
		asWritten, _ := json.Marshal(storedKey("STRING", v))
		compared, _ := json.Marshal(storedKey(typ, v))
		if _, num := table.StoredValue("DECIMAL", v); !num && string(compared) == string(asWritten) {
			continue // compared as written
		}
		how := "by value, as a column its first value types may store it"
		if typ != "" {
			how = "as a column of type " + typ + " stores it"
		}
		given, _ := json.Marshal(v)
		parts = append(parts, fmt.Sprintf("%s given as %s, compared %s", k.V, given, how))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ": another form of the same value is the same key, so if the earlier record gave another form that the table keeps apart, this duplicate is false)"
}

// composite reports an object or an array.
func composite(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

// keyText is a scalar key value as text: 1 and "1" (true and "true") are
// one row to every column type but JSON, the table storing "1" as 1 in a
// number column and 1 as "1" in a text one, so they must be one key here.
func keyText(v any) any {
	switch x := v.(type) {
	case string, map[string]any, []any:
		return v
	case json.Number:
		return numberText(string(x))
	}
	if b, err := json.Marshal(v); err == nil {
		if len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9') {
			return numberText(string(b))
		}
		return string(b)
	}
	return v
}

// numberText writes a JSON number by its value: 1.0, 1e0 and 1 (or -0 and
// 0) are one row to a number column, as the table dedupes them, so they
// must be one key here. An integer is written plainly (1, as "1" is). A
// number whose plain form would be long (1e400) keeps its text: the table
// stores it as text too.
func numberText(s string) string { return writeNumber(s, false) }

// numberValue is numberText for a column declared a number type, which
// stores every number it takes by its value: a long one too is written by
// its value, in the shortest scientific form (1e50 and 10e49 are 1e50).
func numberValue(s string) string { return writeNumber(s, true) }

// writeNumber is numberText, or with long numberValue.
func writeNumber(s string, long bool) string {
	const maxZeros = 40
	if u := strings.TrimPrefix(s, "-"); u != "" && u[0] != '0' && !strings.ContainsAny(u, ".eE") && (!long || len(u) <= maxZeros) {
		return s // an integer as written: the common case
	}
	neg := strings.HasPrefix(s, "-")
	m, e := strings.TrimPrefix(s, "-"), "0"
	if i := strings.IndexAny(m, "eE"); i >= 0 {
		m, e = m[:i], m[i+1:]
	}
	exp, err := strconv.Atoi(e)
	whole, frac, _ := strings.Cut(m, ".")
	all := whole + frac
	if err != nil || all == "" || strings.Trim(all, "0123456789") != "" {
		return s
	}
	digits := strings.TrimLeft(all, "0")
	if digits == "" {
		return "0" // -0 and 0.0 too
	}
	trimmed := strings.TrimRight(digits, "0")
	exp += len(digits) - len(trimmed) - len(frac)
	digits = trimmed
	var out string
	switch {
	case exp > maxZeros || exp < -len(digits)-maxZeros:
		if !long {
			return s
		}
		out = digits + "e" + strconv.Itoa(exp)
	case exp >= 0:
		out = digits + strings.Repeat("0", exp)
	case -exp < len(digits):
		out = digits[:len(digits)+exp] + "." + digits[len(digits)+exp:]
	default:
		out = "0." + strings.Repeat("0", -exp-len(digits)) + digits
	}
	if neg {
		out = "-" + out
	}
	return out
}

// mapEntity applies one Port mapping. ok is false when the selector
// rejects the record.
func mapEntity(ctx context.Context, e *spec.Entity, rec any, vars []any) (map[string]any, bool, error) {
	sel, _, err := e.Selector.Code().First(ctx, rec, vars...)
	if err != nil {
		return nil, false, fmt.Errorf("selector: %w", err)
	}
	if sel != true {
		return nil, false, nil
	}
	// The field's name is joined only for an error: joined ahead, it
	// cost two allocations an entity for every property and relation.
	one := func(section, name string, q *spec.JQ) (any, error) {
		if q.Code() == nil {
			return nil, nil
		}
		v, _, err := q.Code().First(ctx, rec, vars...)
		if err != nil {
			return nil, fmt.Errorf("%s%s: %w", section, name, err)
		}
		return v, nil
	}
	id, err := one("", "identifier", &e.Identifier)
	if err != nil {
		return nil, false, err
	}
	ids, ok := id.(string)
	if !ok || ids == "" {
		return nil, false, fmt.Errorf("identifier: want a non-empty string, got %s", describeValue(id))
	}
	ent := map[string]any{"identifier": ids}
	for _, f := range [...]struct {
		name string
		q    *spec.JQ
	}{{"title", &e.Title}, {"icon", &e.Icon}, {"team", &e.Team}} {
		if f.q.Code() == nil {
			continue
		}
		v, err := one("", f.name, f.q)
		if err != nil {
			return nil, false, err
		}
		ent[f.name] = v
	}
	props := make(map[string]any, len(e.Properties.Items))
	for i := range e.Properties.Items {
		it := &e.Properties.Items[i]
		v, err := one("properties.", it.Key, &it.Value)
		if err != nil {
			return nil, false, err
		}
		props[it.Key] = v
	}
	rels := make(map[string]any, len(e.Relations.Items))
	for i := range e.Relations.Items {
		it := &e.Relations.Items[i]
		v, err := one("relations.", it.Key, &it.Value)
		if err != nil {
			return nil, false, err
		}
		rels[it.Key] = v
	}
	ent["properties"] = props
	ent["relations"] = rels
	return ent, true, nil
}

// describeValue names a value's kind for messages ("" reads as an empty
// string, not as nothing).
func describeValue(v any) string {
	if v == "" {
		return "an empty string"
	}
	return jsonv.Kind(v)
}
