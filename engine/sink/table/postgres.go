package table

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ferry-etl/ferry/engine/sink"
)

// pgMaxIdent is PostgreSQL's identifier limit in bytes (NAMEDATALEN-1);
// longer names are cut, as PostgreSQL itself would.
const pgMaxIdent = 63

type pgBackend struct {
	conn   *pgx.Conn // one session: the advisory lock belongs to it
	schema string
	log    *slog.Logger
	stages map[string]string // table + width -> temp staging table
	nstage int
	locked bool

	schemaQ, stateT, syncT, lockT string
}

func openPostgres(ctx context.Context, url, schema string, log *slog.Logger) (*pgBackend, error) {
	if len(schema) > pgMaxIdent {
		return nil, fmt.Errorf("postgres: schema name %q is longer than %d bytes", schema, pgMaxIdent)
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx redacts the password in its parse errors.
		return nil, fmt.Errorf("postgres: %w", err)
	}
	cfg.RuntimeParams["timezone"] = "UTC"
	// float8 as text (a DOUBLE column widened to STRING, DECIMAL or JSON)
	// keeps every digit only with extra_float_digits > 0 (3 before
	// PostgreSQL 12); a server may default to 0.
	cfg.RuntimeParams["extra_float_digits"] = "3"
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "ferry"
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &pgBackend{conn: conn, schema: schema, log: log, stages: map[string]string{}}
	s.schemaQ = quoteIdent(schema)
	s.stateT = s.schemaQ + "." + quoteIdent("_ferry_state")
	s.syncT = s.schemaQ + "." + quoteIdent("_ferry_sync")
	s.lockT = s.schemaQ + "." + quoteIdent("_ferry_lock")
	return s, nil
}

func pgName(s string) string {
	if len(s) <= pgMaxIdent {
		return s
	}
	cut := pgMaxIdent
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func (s *pgBackend) tableNames(table string) (ident, phys string) {
	phys = pgName(table)
	return s.schemaQ + "." + quoteIdent(phys), phys
}

func (s *pgBackend) colName(key string) string { return pgName(key) }
func (s *pgBackend) fold(name string) string   { return name }

func (s *pgBackend) setup(ctx context.Context) (err error) {
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: setup: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	// Serialise concurrent setups of one schema: CREATE … IF NOT EXISTS
	// races otherwise.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "ferry-setup:"+s.schema); err != nil {
		return fmt.Errorf("postgres: setup: %w", err)
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, s.schema).Scan(&exists); err != nil {
		return fmt.Errorf("postgres: setup: %w", err)
	}
	qs := []string{
		`CREATE TABLE IF NOT EXISTS ` + s.stateT + ` (stream text NOT NULL, "partition" text NOT NULL, value text NOT NULL, updated_at timestamptz NOT NULL, PRIMARY KEY (stream, "partition"))`,
		`CREATE TABLE IF NOT EXISTS ` + s.syncT + ` (tbl text PRIMARY KEY, started_at timestamptz NOT NULL, ` + colLiveAtStart + ` bigint)`,
		`CREATE TABLE IF NOT EXISTS ` + s.lockT + ` (id int PRIMARY KEY, holder text NOT NULL, pid int NOT NULL, host text NOT NULL, acquired_at timestamptz NOT NULL)`,
	}
	if !exists {
		qs = append([]string{`CREATE SCHEMA ` + s.schemaQ}, qs...)
	}
	for _, q := range qs {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("postgres: setup schema %q: %w", s.schema, err)
		}
	}
	// A _ferry_sync made before the count was kept gets the column (its
	// open generations have none: NULL, see finishIn). Checked first: an
	// ALTER TABLE locks the table even when it has the column.
	if _, counted, err := s.syncLayout(ctx, tx); err != nil {
		return err
	} else if !counted {
		if _, err := tx.Exec(ctx, `ALTER TABLE `+s.syncT+` ADD COLUMN IF NOT EXISTS `+colLiveAtStart+` bigint`); err != nil {
			return fmt.Errorf("postgres: setup schema %q: %w", s.schema, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: setup schema %q: %w", s.schema, err)
	}
	return nil
}

func pgType(t colType) string {
	switch t {
	case typeBool:
		return "boolean"
	case typeInt:
		return "integer"
	case typeLong:
		return "bigint"
	case typeDouble:
		return "double precision"
	case typeDecimal:
		return "numeric"
	case typeJSON:
		return "jsonb"
	case typeDatetime:
		return "timestamptz"
	case typeDate:
		return "date"
	}
	return "text"
}

func pgLogical(native string) (colType, bool) {
	switch {
	case native == "text":
		return typeString, true
	case native == "boolean":
		return typeBool, true
	case native == "integer":
		return typeInt, true
	case native == "bigint":
		return typeLong, true
	case native == "double precision":
		return typeDouble, true
	case native == "numeric" || strings.HasPrefix(native, "numeric("):
		return typeDecimal, true
	case native == "jsonb":
		return typeJSON, true
	case native == "timestamp with time zone":
		return typeDatetime, true
	case native == "date":
		return typeDate, true
	}
	return typeString, false
}

// citextKey is how the duplicate check keys a citext column: citext
// compares its values lower-cased by the database's LC_CTYPE, whatever
// the column's collation; a C or POSIX one lower-cases ASCII letters only.
func citextKey(ctype string) string {
	if ctype == "C" || ctype == "POSIX" {
		return KeyNoCase
	}
	return KeyLower
}

// pgKeyType is how the duplicate check keys a column of PostgreSQL type
// native (column.keyAs) where it stores as one value forms that the
// column's type in ferry's terms keeps apart: a uuid any case, braces or
// hyphens; a numeric of a scale its value rounded to it; a timestamp of a
// precision its instant rounded to it, and one without a zone its wall
// clock, whatever offset is given; a character(n) its text without
// trailing spaces (citext: see citextKey). "" for any other.
func pgKeyType(native string) string {
	switch {
	case native == "uuid":
		return "UUID"
	case strings.HasPrefix(native, "numeric("):
		return "DECIMAL" + strings.TrimPrefix(native, "numeric")
	case native == "timestamp without time zone":
		return "LOCAL_DATETIME(6)"
	case strings.HasPrefix(native, "character("):
		// bpchar: trailing spaces are not part of the value.
		return KeyRTrim
	}
	for _, z := range [...]struct{ suffix, typ string }{{" with time zone", "UTC_DATETIME"}, {" without time zone", "LOCAL_DATETIME"}} {
		if p, ok := strings.CutPrefix(native, "timestamp("); ok {
			if p, ok = strings.CutSuffix(p, ")"+z.suffix); ok {
				return z.typ + "(" + p + ")"
			}
		}
	}
	return ""
}

func (s *pgBackend) load(ctx context.Context, phys string) (bool, []column, []string, error) {
	// collisdeterministic is read through to_jsonb: servers before 12
	// have no such column (every collation of theirs is deterministic).
	// A money column's fraction digits are the server's lc_monetary's:
	// money cast to numeric has that scale (2 under C, checked on 15).
	// A domain's column (CREATE DOMAIN email AS citext) stores and
	// compares as its base type does, read through nested domains: its
	// limit and key come from that type, its cast stays the domain's.
	rows, err := s.conn.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod), coalesce(a.attnum = ANY (i.indkey::int2[]), false),
  ty.typname, coalesce(co.collname, ''), coalesce((to_jsonb(co) ->> 'collisdeterministic')::boolean, true),
  (SELECT datctype FROM pg_database WHERE datname = current_database()),
  CASE WHEN coalesce(base.oid, a.atttypid) = 'money'::regtype THEN scale(0::money::numeric) ELSE 0 END,
  coalesce(format_type(base.oid, base.typmod), ''), coalesce(bt.typname, '')
FROM pg_attribute a
JOIN pg_type ty ON ty.oid = a.atttypid
LEFT JOIN LATERAL (WITH RECURSIVE d(oid, typmod) AS (
    SELECT ty.typbasetype, ty.typtypmod WHERE ty.typtype = 'd'
    UNION ALL
    SELECT t.typbasetype, t.typtypmod FROM d JOIN pg_type t ON t.oid = d.oid WHERE t.typtype = 'd')
  SELECT d.oid, d.typmod FROM d JOIN pg_type t ON t.oid = d.oid WHERE t.typtype <> 'd') base ON true
LEFT JOIN pg_type bt ON bt.oid = base.oid
LEFT JOIN pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`, s.schemaQ+"."+quoteIdent(phys))
	if err != nil {
		return false, nil, nil, fmt.Errorf("postgres: read columns: %w", err)
	}
	defer rows.Close()
	var cols []column
	var pk []string
	for rows.Next() {
		var name, native, typname, collation, ctype, baseNative, baseTypname string
		var isPK, deterministic bool
		var moneyDigits int
		if err := rows.Scan(&name, &native, &isPK, &typname, &collation, &deterministic, &ctype, &moneyDigits, &baseNative, &baseTypname); err != nil {
			return false, nil, nil, fmt.Errorf("postgres: read columns: %w", err)
		}
		stored := native
		if baseNative != "" {
			stored, typname = baseNative, baseTypname
		}
		c := column{name: name, keyAs: pgKeyType(stored), limit: pgLimit(stored)}
		if c.limit.kind == limitMoney {
			c.limit.p = moneyDigits
		}
		if typname == "citext" {
			c.keyAs = citextKey(ctype)
		}
		if isPK && !deterministic {
			// Such a collation holds keys equal that differ in bytes (case,
			// accents, as it was made): the check cannot fold as it does.
			s.log.Warn("a primary-key column's collation is nondeterministic: the duplicate check compares its keys byte by byte, so two records whose keys the collation holds equal write one row, the later replacing the earlier, unreported",
				"table", phys, "column", name, "collation", collation)
		}
		var known bool
		if c.typ, known = pgLogical(native); !known {
			c.native = native
		}
		cols = append(cols, c)
		if isPK {
			pk = append(pk, name)
		}
	}
	if err := rows.Err(); err != nil {
		return false, nil, nil, fmt.Errorf("postgres: read columns: %w", err)
	}
	return len(cols) > 0, cols, pk, nil
}

func (s *pgBackend) hasRows(ctx context.Context, ident string) (bool, error) {
	var ok bool
	if err := s.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+ident+`)`).Scan(&ok); err != nil {
		return false, fmt.Errorf("postgres: %w", err)
	}
	return ok, nil
}

func (s *pgBackend) write(ctx context.Context, job *writeJob) (err error) {
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
			s.stages = map[string]string{} // staging tables made in this transaction are gone
		}
	}()
	for _, p := range job.plans {
		if err := s.ddl(ctx, tx, p); err != nil {
			return fmt.Errorf("table %q: %w", p.next.cfg.name, err)
		}
		if err := s.generation(ctx, tx, p, job.runTime); err != nil {
			return fmt.Errorf("table %q: %w", p.next.cfg.name, err)
		}
	}
	merges := &pgx.Batch{}
	var merged []*plan
	for _, p := range job.plans {
		if p.n == 0 {
			continue
		}
		stage, err := s.stage(ctx, tx, p)
		if err != nil {
			return fmt.Errorf("table %q: %w", p.next.cfg.name, err)
		}
		rows := dedupe(p)
		p.staged = len(rows)
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"pg_temp", stage}, stageCols(p.width), pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("table %q: copy rows: %w", p.next.cfg.name, err)
		}
		merges.Queue(s.mergeSQL(p, stage))
		merged = append(merged, p)
	}
	if merges.Len() > 0 {
		br := tx.SendBatch(ctx, merges)
		for _, p := range merged {
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				return fmt.Errorf("table %q: merge rows: %w", p.next.cfg.name, err)
			}
			p.changed = int(tag.RowsAffected())
		}
		if err := br.Close(); err != nil {
			return fmt.Errorf("merge rows: %w", err)
		}
	}
	if job.afterRows != nil {
		if err := job.afterRows(); err != nil {
			return err
		}
	}
	if job.trial {
		return errTrial
	}
	if err := s.putState(ctx, tx, job.cps, job.now); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

func stageCols(w int) []string {
	out := make([]string, w)
	for i := range out {
		out[i] = "c" + strconv.Itoa(i)
	}
	return out
}

// stage returns the temp table the plan's rows are copied into: one per
// table and width, all text, emptied at every commit.
func (s *pgBackend) stage(ctx context.Context, tx pgx.Tx, p *plan) (string, error) {
	key := p.next.cfg.name + "\x00" + strconv.Itoa(p.width)
	if name, ok := s.stages[key]; ok {
		return name, nil
	}
	s.nstage++
	name := "_ferry_stage_" + strconv.Itoa(s.nstage)
	var b strings.Builder
	b.WriteString("CREATE TEMP TABLE " + quoteIdent(name) + " (")
	for i, c := range stageCols(p.width) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c + " text")
	}
	b.WriteString(") ON COMMIT DELETE ROWS")
	if _, err := tx.Exec(ctx, b.String()); err != nil {
		return "", fmt.Errorf("create staging table: %w", err)
	}
	s.stages[key] = name
	return name, nil
}

// dedupe returns the plan's rows, keeping one row per key, since one
// INSERT … ON CONFLICT cannot touch a row twice: the last one, or in a
// merge table the rows merged in order (later non-null values win).
func dedupe(p *plan) [][]any {
	w := p.width
	rows := make([][]any, p.n)
	for i := range rows {
		rows[i] = p.args[i*w : (i+1)*w : (i+1)*w]
	}
	n := p.next
	if n.cfg.mode == ModeAppend {
		return rows
	}
	// A number key is one key by its value: 1.0 and 1, or 0 and -0, are
	// one row to PostgreSQL, and the statement cannot touch it twice.
	part := func(r []any, k int) string {
		s := r[k].(string)
		if t := n.cols[k].typ; t == typeDouble || t == typeDecimal {
			if v, ok := new(big.Rat).SetString(s); ok {
				return v.RatString()
			}
		}
		return s
	}
	key := func(r []any) string {
		if !n.cfg.keyed() {
			return r[w-1].(string)
		}
		if len(n.keys) == 1 {
			return part(r, n.keys[0])
		}
		var b strings.Builder
		for _, k := range n.keys {
			b.WriteString(part(r, k))
			b.WriteByte(0)
		}
		return b.String()
	}
	if n.cfg.merge {
		first := make(map[string]int, len(rows))
		out := rows[:0:0]
		for _, r := range rows {
			k := key(r)
			i, dup := first[k]
			if !dup {
				first[k] = len(out)
				out = append(out, slices.Clone(r))
				continue
			}
			for c, v := range r {
				if v != nil {
					out[i][c] = v
				}
			}
		}
		return out
	}
	last := make(map[string]int, len(rows))
	for i, r := range rows {
		last[key(r)] = i
	}
	if len(last) == len(rows) {
		return rows
	}
	out := rows[:0:0]
	for i, r := range rows {
		if last[key(r)] == i {
			out = append(out, r)
		}
	}
	return out
}

// pgCast is the cast from staged text to a column's type.
func pgCast(c column) string {
	if c.native != "" {
		return "::" + c.native
	}
	if c.typ == typeString {
		return ""
	}
	return "::" + pgType(c.typ)
}

func (s *pgBackend) mergeSQL(p *plan, stage string) string {
	n := p.next
	var cols, sel strings.Builder
	for i, c := range n.cols {
		cols.WriteString(quoteIdent(c.name) + ", ")
		sel.WriteString("c" + strconv.Itoa(i) + pgCast(c) + ", ")
	}
	if n.cfg.hasID() {
		cols.WriteString(quoteIdent(ColID) + ", ")
		sel.WriteString("c" + strconv.Itoa(len(n.cols)) + ", ")
	}
	cols.WriteString(quoteIdent(ColSynced) + ", " + quoteIdent(ColDeleted))
	sel.WriteString(quoteLit(p.synced.Format(datetimeFormat)) + "::timestamptz, false")
	return "INSERT INTO " + n.ident + " AS _ferry_t (" + cols.String() + ") SELECT " + sel.String() + " FROM pg_temp." + quoteIdent(stage) +
		conflictSQL(n, true, "_ferry_t", quoteLit(p.since.Format(datetimeFormat))+"::timestamptz")
}

func (s *pgBackend) ddl(ctx context.Context, tx pgx.Tx, p *plan) error {
	n := p.next
	if p.create {
		if _, err := tx.Exec(ctx, s.createSQL(n)); err != nil {
			return fmt.Errorf("create %s: %w", n.phys, err)
		}
		return nil
	}
	var alters []string
	for _, ci := range p.added {
		c := n.cols[ci]
		alters = append(alters, "ADD COLUMN IF NOT EXISTS "+quoteIdent(c.name)+" "+pgType(c.typ))
		s.log.Info("column added", "table", n.cfg.name, "column", c.name, "type", c.typ.String())
	}
	for _, w := range p.widened {
		q := quoteIdent(n.cols[w.ci].name)
		alters = append(alters, "ALTER COLUMN "+q+" TYPE "+pgType(w.to)+" USING "+pgConvExpr(q, w.from, w.to))
		if w.first {
			s.log.Info("column typed by its first value", "table", n.cfg.name, "column", n.cols[w.ci].name, "type", w.to.String())
			continue
		}
		s.log.Warn("column widened", "table", n.cfg.name, "column", n.cols[w.ci].name, "from", w.from.String(), "to", w.to.String())
	}
	if len(alters) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, "ALTER TABLE "+n.ident+" "+strings.Join(alters, ", ")); err != nil {
		return fmt.Errorf("alter %s: %w", n.phys, err)
	}
	return nil
}

func (s *pgBackend) createSQL(n *tbl) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE " + n.ident + " (")
	isKey := make([]bool, len(n.cols))
	for _, k := range n.keys {
		isKey[k] = true
	}
	for i, c := range n.cols {
		b.WriteString(quoteIdent(c.name) + " " + pgType(c.typ))
		if isKey[i] {
			b.WriteString(" NOT NULL")
		}
		b.WriteString(", ")
	}
	if n.cfg.hasID() {
		b.WriteString(quoteIdent(ColID) + " text NOT NULL, ")
	}
	b.WriteString(quoteIdent(ColSynced) + " timestamptz NOT NULL, " + quoteIdent(ColDeleted) + " boolean NOT NULL DEFAULT false")
	if pk := keyColumns(n); pk != "" {
		b.WriteString(", PRIMARY KEY (" + pk + ")")
	}
	b.WriteString(")")
	return b.String()
}

// pgText renders a stored value the way ferry writes that type as text.
func pgText(c string, from colType) string {
	switch from {
	case typeDatetime:
		return `to_char(` + c + ` AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`
	case typeDate:
		return `to_char(` + c + `, 'YYYY-MM-DD')`
	}
	return c + `::text`
}

func pgConvExpr(c string, from, to colType) string {
	switch to {
	case typeString:
		return pgText(c, from)
	case typeJSON:
		if from == typeDatetime || from == typeDate {
			return `to_jsonb(` + pgText(c, from) + `)`
		}
		return `to_jsonb(` + c + `)`
	case typeDecimal:
		if from == typeDouble {
			// float8::numeric rounds to 15 digits; its text is exact.
			return c + "::text::numeric"
		}
	}
	return c + "::" + pgType(to)
}

func (s *pgBackend) generation(ctx context.Context, tx pgx.Tx, p *plan, runTime time.Time) error {
	p.synced, p.since = runTime, runTime
	if !p.next.cfg.generational() || p.n == 0 {
		return nil
	}
	if p.t.begun {
		p.synced, p.since = p.t.synced, p.t.since
		return nil
	}
	var started time.Time
	err := tx.QueryRow(ctx, `SELECT started_at FROM `+s.syncT+` WHERE tbl = $1`, p.next.cfg.name).Scan(&started)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		var live *int64 // NULL: not a replace table
		if p.next.cfg.mode == ModeReplace {
			var n int64
			if !p.create {
				// Before this Write's rows: the rows the sync inserts must
				// not count (see finishIn).
				q := `SELECT COUNT(*) FROM ` + p.next.ident + ` WHERE NOT ` + quoteIdent(ColDeleted)
				if err := tx.QueryRow(ctx, q).Scan(&n); err != nil {
					return fmt.Errorf("count live rows: %w", err)
				}
			}
			live = &n
		}
		_, err = tx.Exec(ctx, `INSERT INTO `+s.syncT+` (tbl, started_at, `+colLiveAtStart+`) VALUES ($1, $2, $3)`, p.next.cfg.name, runTime, live)
		if err != nil {
			return fmt.Errorf("begin sync generation: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("read sync generation: %w", err)
	}
	p.since = started.UTC()
	if started.After(p.synced) {
		p.synced = started.UTC()
	}
	return nil
}

func (s *pgBackend) putState(ctx context.Context, tx pgx.Tx, cps []sink.Checkpoint, now time.Time) error {
	if len(cps) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, cp := range cps {
		if len(cp.Value) == 0 {
			b.Queue(`DELETE FROM `+s.stateT+` WHERE stream = $1 AND "partition" = $2`, cleanPG(cp.Stream), cleanPG(cp.Partition))
			continue
		}
		b.Queue(`INSERT INTO `+s.stateT+` (stream, "partition", value, updated_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (stream, "partition") DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
			cleanPG(cp.Stream), cleanPG(cp.Partition), cleanPG(string(cp.Value)), now)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("postgres: write state: %w", err)
	}
	return nil
}

// finishRun finishes several tables and clears the streams' checkpoints in
// one transaction (see DB.FinishRun).
func (s *pgBackend) finishRun(ctx context.Context, ts []*finishing, clear []string, runTime time.Time) error {
	return pgx.BeginFunc(ctx, s.conn, func(tx pgx.Tx) error {
		for _, f := range ts {
			if err := s.finishIn(ctx, tx, f, runTime); err != nil {
				return err
			}
		}
		if len(clear) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM `+s.stateT+` WHERE stream = ANY ($1)`, clear); err != nil {
				return fmt.Errorf("postgres: clear state: %w", err)
			}
		}
		return nil
	})
}

// finishIn ends one table's sync generation inside tx; a complete one
// first has the rows the generation did not write marked, unless more of
// the rows live when the sync began than its threshold allows would be.
func (s *pgBackend) finishIn(ctx context.Context, tx pgx.Tx, f *finishing, runTime time.Time) (err error) {
	t := f.t
	cutoff := runTime
	var began *int64
	err = tx.QueryRow(ctx, `SELECT started_at, `+colLiveAtStart+` FROM `+s.syncT+` WHERE tbl = $1`, t.cfg.name).Scan(&cutoff, &began)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("table %q: read sync generation: %w", t.cfg.name, err)
	}
	if f.complete && t.exists {
		var live, stale int64
		q := `SELECT COUNT(*), COUNT(*) FILTER (WHERE ` + quoteIdent(ColSynced) + ` < $1) FROM ` + t.ident + ` WHERE NOT ` + quoteIdent(ColDeleted)
		if err := tx.QueryRow(ctx, q, cutoff).Scan(&live, &stale); err != nil {
			return fmt.Errorf("table %q: count unseen rows: %w", t.cfg.name, err)
		}
		var n int64
		if began != nil {
			n = *began
		}
		f.skipped = t.cfg.skipDelete(int(stale), heldAtStart(int(live), n, began != nil))
	}
	if f.complete && t.exists && f.skipped == nil {
		q := `UPDATE ` + t.ident + ` SET ` + quoteIdent(ColDeleted) + ` = true WHERE ` + quoteIdent(ColSynced) + ` < $1 AND NOT ` + quoteIdent(ColDeleted)
		if t.cfg.hard {
			q = `DELETE FROM ` + t.ident + ` WHERE ` + quoteIdent(ColSynced) + ` < $1`
		}
		tag, err := tx.Exec(ctx, q, cutoff)
		if err != nil {
			return fmt.Errorf("table %q: mark unseen rows: %w", t.cfg.name, err)
		}
		f.marked = int(tag.RowsAffected())
	}
	if _, err := tx.Exec(ctx, `DELETE FROM `+s.syncT+` WHERE tbl = $1`, t.cfg.name); err != nil {
		return fmt.Errorf("table %q: end sync generation: %w", t.cfg.name, err)
	}
	return nil
}

func (s *pgBackend) state(ctx context.Context) (map[string]map[string]json.RawMessage, error) {
	rows, err := s.conn.Query(ctx, `SELECT stream, "partition", value FROM `+s.stateT)
	if err != nil {
		return nil, fmt.Errorf("postgres: read state: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]json.RawMessage{}
	for rows.Next() {
		var stream, part, value string
		if err := rows.Scan(&stream, &part, &value); err != nil {
			return nil, fmt.Errorf("postgres: read state: %w", err)
		}
		if out[stream] == nil {
			out[stream] = map[string]json.RawMessage{}
		}
		out[stream][part] = json.RawMessage(value)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: read state: %w", err)
	}
	return out, nil
}

func (s *pgBackend) clearState(ctx context.Context, all bool, streams []string, endGenerations bool, endTables []string) error {
	err := pgx.BeginFunc(ctx, s.conn, func(tx pgx.Tx) error {
		if all {
			if _, err := tx.Exec(ctx, `DELETE FROM `+s.stateT); err != nil {
				return err
			}
		} else if len(streams) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM `+s.stateT+` WHERE stream = ANY ($1)`, streams); err != nil {
				return err
			}
		}
		if endGenerations {
			if _, err := tx.Exec(ctx, `DELETE FROM `+s.syncT); err != nil {
				return err
			}
		} else if len(endTables) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM `+s.syncT+` WHERE tbl = ANY ($1)`, endTables); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: clear state: %w", err)
	}
	return nil
}

// lockKey names the session advisory lock of a spec in this database.
func (s *pgBackend) lockKey() string { return "ferry:" + s.schema }

// lock takes a session-level advisory lock. PostgreSQL drops it when the
// session ends, so a killed run's lock goes as soon as the server sees the
// connection close.
func (s *pgBackend) lock(ctx context.Context, holder string, now time.Time) error {
	if s.locked {
		return nil
	}
	var ok bool
	if err := s.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, s.lockKey()).Scan(&ok); err != nil {
		return fmt.Errorf("postgres: lock: %w", err)
	}
	if !ok {
		return fmt.Errorf("%w: spec %q in schema %q is %s", ErrLocked, s.schema, s.schema, s.holder(ctx))
	}
	s.locked = true
	host, _ := os.Hostname()
	_, err := s.conn.Exec(ctx, `INSERT INTO `+s.lockT+` (id, holder, pid, host, acquired_at) VALUES (1, $1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, pid = excluded.pid, host = excluded.host, acquired_at = excluded.acquired_at`,
		cleanPG(holder), os.Getpid(), cleanPG(host), now)
	if err != nil {
		return fmt.Errorf("postgres: record lock holder: %w", err)
	}
	return nil
}

func (s *pgBackend) holder(ctx context.Context) string {
	var holder, host string
	var pid int
	var at time.Time
	err := s.conn.QueryRow(ctx, `SELECT holder, pid, host, acquired_at FROM `+s.lockT+` WHERE id = 1`).Scan(&holder, &pid, &host, &at)
	if err != nil {
		return "held by another session"
	}
	return fmt.Sprintf("held by %q (pid %d on %s) since %s", holder, pid, host, at.UTC().Format(time.RFC3339))
}

func (s *pgBackend) close() error {
	// Close has no context in its signature; bound the goodbye instead.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.locked && !s.conn.IsClosed() {
		if _, err := s.conn.Exec(ctx, `DELETE FROM `+s.lockT+` WHERE id = 1`); err != nil {
			s.log.Warn("postgres: clear lock holder", "error", err.Error())
		}
		if _, err := s.conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, s.lockKey()); err != nil {
			s.log.Warn("postgres: unlock", "error", err.Error())
		}
		s.locked = false
	}
	if err := s.conn.Close(ctx); err != nil {
		return fmt.Errorf("postgres: close: %w", err)
	}
	return nil
}

// pgQuerier is a connection or a transaction.
type pgQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// syncLayout reports whether _ferry_sync exists and whether it keeps the
// count of rows live when a generation began (ferry before it did not).
func (s *pgBackend) syncLayout(ctx context.Context, q pgQuerier) (exists, counted bool, err error) {
	err = q.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL, EXISTS (SELECT 1 FROM pg_attribute
WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped)`, s.syncT, colLiveAtStart).Scan(&exists, &counted)
	if err != nil {
		return false, false, fmt.Errorf("postgres: read %s: %w", s.syncT, err)
	}
	return exists, counted, nil
}

func (s *pgBackend) openGeneration(ctx context.Context, table string) (syncGen, bool, error) {
	exists, counted, err := s.syncLayout(ctx, s.conn)
	if err != nil || !exists {
		return syncGen{}, false, err
	}
	live := "NULL::bigint"
	if counted {
		live = colLiveAtStart
	}
	var g syncGen
	var n *int64
	err = s.conn.QueryRow(ctx, `SELECT started_at, `+live+` FROM `+s.syncT+` WHERE tbl = $1`, table).Scan(&g.started, &n)
	if errors.Is(err, pgx.ErrNoRows) {
		return syncGen{}, false, nil
	}
	if err != nil {
		return syncGen{}, false, fmt.Errorf("postgres: read sync generation: %w", err)
	}
	g.started = g.started.UTC()
	if n != nil {
		g.live, g.counted = int(*n), true
	}
	return g, true, nil
}

func (s *pgBackend) hasState(ctx context.Context) (bool, error) {
	var ok bool
	if err := s.conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, s.stateT).Scan(&ok); err != nil {
		return false, fmt.Errorf("postgres: %w", err)
	}
	return ok, nil
}

// display reads a column back in the form ferry writes it as text, where
// pgx would otherwise hand back a type of its own.
func (s *pgBackend) display(c column) string {
	q := quoteIdent(c.name)
	switch {
	case c.native != "":
		return q + "::text"
	case c.typ == typeDatetime, c.typ == typeDate:
		return pgText(q, c.typ)
	case c.typ == typeDecimal, c.typ == typeJSON:
		return q + "::text"
	case c.typ == typeInt:
		return q + "::bigint"
	}
	return q
}

func (s *pgBackend) param(i int, c column) string { return "$" + strconv.Itoa(i) + pgCast(c) }

func (s *pgBackend) trueLit() string { return "true" }

func (s *pgBackend) query(ctx context.Context, q string, args []any) ([][]any, error) {
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}

// maxColumns is PostgreSQL's MaxHeapAttributeNumber.
func (s *pgBackend) maxColumns() int { return 1600 }

// refuses reads the SQLSTATE: data exceptions (22), integrity constraint
// violations (23) and program limits (54: an index row too large, too many
// columns) are the data's fault.
func (s *pgBackend) refuses(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || len(pe.Code) < 2 {
		return false
	}
	switch pe.Code[:2] {
	case "22", "23", "54":
		return true
	}
	return false
}

func (s *pgBackend) swapLog(l *slog.Logger) *slog.Logger {
	old := s.log
	s.log = l
	return old
}
