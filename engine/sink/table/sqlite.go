package table

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ferry-etl/ferry/engine/sink"

	sqlite "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// sqliteChunk is the number of rows per multi-row INSERT statement; fewer
// statement executions per row is most of what the sink can save over a
// per-row loop.
const sqliteChunk = 64

// sqliteMaxVars bounds the parameters of one statement (SQLite's default
// SQLITE_MAX_VARIABLE_NUMBER is 32766).
const sqliteMaxVars = 32000

// sqliteDSN is how ferry opens an SQLite file: WAL with synchronous=NORMAL
// (durable at checkpoints, never corrupt), a wait for other writers, and
// SQLite's default page cache of 2000 KiB. A bigger cache is memory that
// grows with the table up to the cache's size, and twice that in RSS (the
// pure-Go allocator rounds every page up), for faster re-loads of big
// tables: BenchmarkLoad's update pass over 100k wide rows runs at about
// 62k rows/s with this cache and 95k with 8 MiB (first loads about the
// same), far above what an API delivers; memory stays flat instead.
func sqliteDSN(path string) string {
	return sqliteURI(path) + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=cache_size(-2000)"
}

// sqliteURI makes a file: URI of a path, escaping what SQLite's URI
// parser would otherwise take for a query, a fragment or an escape.
func sqliteURI(path string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return "file:" + r.Replace(path)
}

type sqliteBackend struct {
	path   string
	schema string
	log    *slog.Logger
	db     *sql.DB
	conn   *sql.Conn // the one connection: manual BEGIN/COMMIT, statements prepared once
	stmts  map[string]*sql.Stmt

	stateT, syncT, lockT string // quoted names of the bookkeeping tables

	lockDB   *sql.DB
	lockConn *sql.Conn
}

func openSQLiteDSN(ctx context.Context, path, dsn, schema string, log *slog.Logger) (*sqliteBackend, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	s := &sqliteBackend{path: path, schema: schema, log: log, db: db, conn: conn, stmts: map[string]*sql.Stmt{}}
	s.stateT = quoteIdent(schema + "__" + "_ferry_state")
	s.syncT = quoteIdent(schema + "__" + "_ferry_sync")
	s.lockT = quoteIdent(schema + "__" + "_ferry_lock")
	return s, nil
}

func (s *sqliteBackend) tableNames(table string) (ident, phys string) {
	phys = s.schema + "__" + table
	return quoteIdent(phys), phys
}

func (s *sqliteBackend) colName(key string) string { return key }

// fold lowers ASCII letters: SQLite identifiers are case-insensitive for
// ASCII only.
func (s *sqliteBackend) fold(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			b := []byte(name)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return name
}

func (s *sqliteBackend) setup(ctx context.Context) error {
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS ` + s.stateT + ` (stream TEXT NOT NULL, "partition" TEXT NOT NULL, value TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (stream, "partition"))`,
		`CREATE TABLE IF NOT EXISTS ` + s.syncT + ` (tbl TEXT NOT NULL PRIMARY KEY, started_at TEXT NOT NULL, ` + colLiveAtStart + ` INTEGER)`,
		`CREATE TABLE IF NOT EXISTS ` + s.lockT + ` (id INTEGER PRIMARY KEY, holder TEXT NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL, acquired_at TEXT NOT NULL)`,
	} {
		if _, err := s.conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("sqlite %s: setup: %w", s.path, err)
		}
	}
	// A _ferry_sync made before the count was kept gets the column; its
	// open generations have none (NULL, see finishIn).
	if _, counted, err := s.syncLayout(ctx); err != nil || counted {
		return err
	}
	if _, err := s.conn.ExecContext(ctx, `ALTER TABLE `+s.syncT+` ADD COLUMN `+colLiveAtStart+` INTEGER`); err != nil {
		// Another process may have added it meanwhile.
		if _, counted, cerr := s.syncLayout(ctx); cerr != nil || !counted {
			return fmt.Errorf("sqlite %s: setup: %w", s.path, err)
		}
	}
	return nil
}

// syncLayout reports whether _ferry_sync exists and whether it keeps the
// count of rows live when a generation began (ferry before it did not).
func (s *sqliteBackend) syncLayout(ctx context.Context) (exists, counted bool, err error) {
	var cols, live int
	err = s.conn.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(CASE WHEN name = ? THEN 1 END) FROM pragma_table_info(?)`,
		colLiveAtStart, s.schema+"__"+"_ferry_sync").Scan(&cols, &live)
	if err != nil {
		return false, false, fmt.Errorf("sqlite %s: read %s: %w", s.path, s.syncT, err)
	}
	return cols > 0, live > 0, nil
}

// sqliteType is the declared SQLite type of a column. The names are
// distinct so the logical type can be read back; JSON_TEXT (not JSON) keeps
// TEXT affinity, so a JSON scalar like 12345678901234567890 stays exact text.
func sqliteType(t colType) string {
	switch t {
	case typeBool:
		return "BOOLEAN"
	case typeInt:
		return "INTEGER"
	case typeLong:
		return "BIGINT"
	case typeDouble:
		return "REAL"
	case typeDecimal:
		return "NUMERIC"
	case typeJSON:
		return "JSON_TEXT"
	case typeDatetime:
		return "DATETIME"
	case typeDate:
		return "DATE"
	}
	return "TEXT"
}

func sqliteLogical(decl string) colType {
	switch strings.ToUpper(decl) {
	case "BOOLEAN":
		return typeBool
	case "INTEGER":
		return typeInt
	case "BIGINT":
		return typeLong
	case "REAL":
		return typeDouble
	case "NUMERIC":
		return typeDecimal
	case "JSON_TEXT":
		return typeJSON
	case "DATETIME":
		return typeDatetime
	case "DATE":
		return typeDate
	}
	return typeString
}

func (s *sqliteBackend) load(ctx context.Context, phys string) (bool, []column, []string, error) {
	rows, err := s.conn.QueryContext(ctx, `SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid`, phys)
	if err != nil {
		return false, nil, nil, fmt.Errorf("sqlite: read columns: %w", err)
	}
	defer rows.Close()
	var cols []column
	pkAt := map[int]string{}
	for rows.Next() {
		var name, decl string
		var pk int
		if err := rows.Scan(&name, &decl, &pk); err != nil {
			return false, nil, nil, fmt.Errorf("sqlite: read columns: %w", err)
		}
		c := column{name: name, typ: sqliteLogical(decl)}
		if c.typ == typeString && !strings.EqualFold(decl, "TEXT") {
			c.native = decl
			c.limit = sqliteLimit(decl)
		}
		cols = append(cols, c)
		if pk > 0 {
			pkAt[pk] = name
		}
	}
	if err := rows.Err(); err != nil {
		return false, nil, nil, fmt.Errorf("sqlite: read columns: %w", err)
	}
	pk := make([]string, 0, len(pkAt))
	for i := 1; i <= len(pkAt); i++ {
		pk = append(pk, pkAt[i])
	}
	if len(pk) > 0 {
		if err := s.keyCollations(ctx, phys, cols); err != nil {
			return false, nil, nil, err
		}
	}
	return len(cols) > 0, cols, pk, nil
}

// keyCollations keys the text columns of table phys's primary key whose
// collation is NOCASE or RTRIM as the key compares them (column.keyAs).
// The collation is the primary key's index's: the column's own, or one
// given in the PRIMARY KEY clause. An INTEGER PRIMARY KEY has no index
// (nor text).
func (s *sqliteBackend) keyCollations(ctx context.Context, phys string, cols []column) error {
	rows, err := s.conn.QueryContext(ctx, `SELECT x.name, x.coll FROM pragma_index_list(?) l, pragma_index_xinfo(l.name) x
WHERE l.origin = 'pk' AND x.key AND x.cid >= 0`, phys)
	if err != nil {
		return fmt.Errorf("sqlite: read key collations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, coll string
		if err := rows.Scan(&name, &coll); err != nil {
			return fmt.Errorf("sqlite: read key collations: %w", err)
		}
		key := ""
		switch strings.ToUpper(coll) {
		case "NOCASE":
			key = KeyNoCase
		case "RTRIM":
			key = KeyRTrim
		}
		for i := range cols {
			if cols[i].name == name && cols[i].typ == typeString {
				cols[i].keyAs = key
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: read key collations: %w", err)
	}
	return nil
}

func (s *sqliteBackend) hasRows(ctx context.Context, ident string) (bool, error) {
	var n int
	if err := s.conn.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM `+ident+` LIMIT 1)`).Scan(&n); err != nil {
		return false, fmt.Errorf("sqlite: %w", err)
	}
	return n > 0, nil
}

// stmt returns a statement prepared once on the connection.
func (s *sqliteBackend) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := s.stmts[q]; ok {
		return st, nil
	}
	if len(s.stmts) >= 256 {
		s.dropStmts()
	}
	st, err := s.conn.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	s.stmts[q] = st
	return st, nil
}

func (s *sqliteBackend) dropStmts() {
	for q, st := range s.stmts {
		st.Close()
		delete(s.stmts, q)
	}
}

func (s *sqliteBackend) begin(ctx context.Context) error {
	if _, err := s.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sqlite %s: begin: %w", s.path, err)
	}
	return nil
}

func (s *sqliteBackend) commit(ctx context.Context) error {
	if _, err := s.conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("sqlite %s: commit: %w", s.path, err)
	}
	return nil
}

// rollback ends a failed transaction. Statements prepared against tables
// the transaction created are dropped too.
func (s *sqliteBackend) rollback(ctx context.Context) {
	if _, err := s.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); err != nil && !strings.Contains(err.Error(), "no transaction") {
		s.log.Warn("sqlite rollback", "error", err.Error())
	}
	s.dropStmts()
}

func (s *sqliteBackend) write(ctx context.Context, job *writeJob) (err error) {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			s.rollback(ctx)
		}
	}()
	for _, p := range job.plans {
		if err := s.ddl(ctx, p); err != nil {
			return fmt.Errorf("table %q: %w", p.next.cfg.name, err)
		}
		if err := s.generation(ctx, p, job.runTime); err != nil {
			return fmt.Errorf("table %q: %w", p.next.cfg.name, err)
		}
		if err := s.rows(ctx, p); err != nil {
			return fmt.Errorf("table %q: write rows: %w", p.next.cfg.name, err)
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
	if err := s.putState(ctx, job.cps, job.now); err != nil {
		return err
	}
	return s.commit(ctx)
}

func (s *sqliteBackend) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return s.conn.ExecContext(ctx, q, args...)
}

// ddl creates, extends or widens the table as the plan needs.
func (s *sqliteBackend) ddl(ctx context.Context, p *plan) error {
	n := p.next
	if p.create {
		if _, err := s.exec(ctx, s.createSQL(n.ident, n)); err != nil {
			return fmt.Errorf("create %s: %w", n.phys, err)
		}
		return nil
	}
	for _, ci := range p.added {
		c := n.cols[ci]
		if _, err := s.exec(ctx, `ALTER TABLE `+n.ident+` ADD COLUMN `+quoteIdent(c.name)+` `+sqliteType(c.typ)); err != nil {
			return fmt.Errorf("add column %q: %w", c.name, err)
		}
		s.log.Info("column added", "table", n.cfg.name, "column", c.name, "type", c.typ.String())
	}
	if len(p.widened) > 0 {
		return s.rebuild(ctx, p)
	}
	return nil
}

func (s *sqliteBackend) createSQL(ident string, n *tbl) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE ")
	b.WriteString(ident)
	b.WriteString(" (")
	for _, c := range n.cols {
		b.WriteString(quoteIdent(c.name))
		b.WriteByte(' ')
		if c.native != "" {
			b.WriteString(c.native)
		} else {
			b.WriteString(sqliteType(c.typ))
		}
		b.WriteString(", ")
	}
	// No NOT NULL constraints: ferry never writes NULL there (it checks
	// keys itself), and in SQLite they make multi-row upserts about a third
	// slower.
	if n.cfg.hasID() {
		b.WriteString(quoteIdent(ColID) + " TEXT, ")
	}
	b.WriteString(quoteIdent(ColSynced) + " DATETIME, " + quoteIdent(ColDeleted) + " BOOLEAN DEFAULT 0")
	if pk := keyColumns(n); len(pk) > 0 {
		b.WriteString(", PRIMARY KEY (" + pk + ")")
	}
	b.WriteString(")")
	return b.String()
}

// keyColumns is the quoted conflict target of a table, "" for append.
func keyColumns(n *tbl) string {
	switch {
	case n.cfg.keyed():
		names := make([]string, len(n.keys))
		for i, k := range n.keys {
			names[i] = quoteIdent(n.cols[k].name)
		}
		return strings.Join(names, ", ")
	case n.cfg.mode != ModeAppend:
		return quoteIdent(ColID)
	}
	return ""
}

// rebuild changes column types the SQLite way (it has no ALTER COLUMN):
// a new table with the new types, a converting copy, a rename.
func (s *sqliteBackend) rebuild(ctx context.Context, p *plan) error {
	n := p.next
	tmp := n.phys + "__ferry_rebuild"
	conv := map[int]widening{}
	for _, w := range p.widened {
		conv[w.ci] = w
		if w.first {
			s.log.Info("column typed by its first value", "table", n.cfg.name, "column", n.cols[w.ci].name, "type", w.to.String())
			continue
		}
		s.log.Warn("column widened", "table", n.cfg.name, "column", n.cols[w.ci].name, "from", w.from.String(), "to", w.to.String())
	}
	var names, exprs []string
	for i, c := range n.cols {
		q := quoteIdent(c.name)
		names = append(names, q)
		if w, ok := conv[i]; ok {
			exprs = append(exprs, sqliteConvExpr(q, w.from, w.to))
		} else {
			exprs = append(exprs, q)
		}
	}
	for _, m := range []string{ColID, ColSynced, ColDeleted} {
		if m == ColID && !n.cfg.hasID() {
			continue
		}
		names = append(names, quoteIdent(m))
		exprs = append(exprs, quoteIdent(m))
	}
	steps := []string{
		`DROP TABLE IF EXISTS ` + quoteIdent(tmp),
		s.createSQL(quoteIdent(tmp), n),
		`INSERT INTO ` + quoteIdent(tmp) + ` (` + strings.Join(names, ", ") + `) SELECT ` + strings.Join(exprs, ", ") + ` FROM ` + n.ident,
		`DROP TABLE ` + n.ident,
		// legacy rename: do not re-check views that named the dropped table
		`PRAGMA legacy_alter_table = ON`,
		`ALTER TABLE ` + quoteIdent(tmp) + ` RENAME TO ` + n.ident,
		`PRAGMA legacy_alter_table = OFF`,
	}
	for _, q := range steps {
		if _, err := s.exec(ctx, q); err != nil {
			return fmt.Errorf("widen columns of %s: %w", n.phys, err)
		}
	}
	return nil
}

// sqliteConvExpr converts a stored value to a wider type, rendering it the
// way a value of the new type would have been written.
func sqliteConvExpr(c string, from, to colType) string {
	switch to {
	case typeString:
		if from == typeBool {
			return `CASE WHEN ` + c + ` IS NULL THEN NULL WHEN ` + c + ` THEN 'true' ELSE 'false' END`
		}
		return `CAST(` + c + ` AS TEXT)`
	case typeJSON:
		if from == typeBool {
			return `CASE WHEN ` + c + ` IS NULL THEN NULL WHEN ` + c + ` THEN 'true' ELSE 'false' END`
		}
		return `CASE WHEN ` + c + ` IS NULL THEN NULL ELSE json_quote(` + c + `) END`
	case typeDouble:
		return `CAST(` + c + ` AS REAL)`
	}
	return c // INT -> LONG -> DECIMAL: same stored values
}

// generation begins or resumes the sync generation of a replace or merge
// table (see doc.go) and sets the _ferry_synced of the plan's rows.
func (s *sqliteBackend) generation(ctx context.Context, p *plan, runTime time.Time) error {
	p.synced, p.since = runTime, runTime
	if !p.next.cfg.generational() || p.n == 0 {
		return nil
	}
	if p.t.begun {
		p.synced, p.since = p.t.synced, p.t.since
		return nil
	}
	var started string
	err := s.conn.QueryRowContext(ctx, `SELECT started_at FROM `+s.syncT+` WHERE tbl = ?`, p.next.cfg.name).Scan(&started)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		var live any // NULL: not a replace table
		if p.next.cfg.mode == ModeReplace {
			n := 0
			if !p.create {
				// Before this Write's rows: the rows the sync inserts must
				// not count (see finishIn).
				q := `SELECT COUNT(*) FROM ` + p.next.ident + ` WHERE NOT ` + quoteIdent(ColDeleted)
				if err := s.conn.QueryRowContext(ctx, q).Scan(&n); err != nil {
					return fmt.Errorf("count live rows: %w", err)
				}
			}
			live = n
		}
		_, err = s.exec(ctx, `INSERT INTO `+s.syncT+` (tbl, started_at, `+colLiveAtStart+`) VALUES (?, ?, ?)`, p.next.cfg.name, runTime.Format(datetimeFormat), live)
		return err
	case err != nil:
		return fmt.Errorf("read sync generation: %w", err)
	}
	st, err := time.Parse(datetimeFormat, started)
	if err != nil {
		return fmt.Errorf("read sync generation: %w", err)
	}
	p.since = st
	if st.After(p.synced) {
		// The clock went back since the interrupted run: stay at or after
		// its start so this run's rows still count as seen.
		p.synced = st
	}
	return nil
}

// rows writes the plan's rows with prepared multi-row statements.
func (s *sqliteBackend) rows(ctx context.Context, p *plan) error {
	if p.n == 0 {
		return nil
	}
	w := p.width
	chunk := min(sqliteChunk, max(1, sqliteMaxVars/w))
	head, tail := s.insertSQL(p)
	conflict := s.conflictSQL(p)
	byK := map[int]*sql.Stmt{}
	for i := 0; i < p.n; {
		k := chunk
		for k > p.n-i {
			k /= 2 // the rest goes in halving chunks, so few statements exist
		}
		st, ok := byK[k]
		if !ok {
			var b strings.Builder
			b.Grow(len(head) + k*(len(tail)+1) + len(conflict))
			b.WriteString(head)
			for j := range k {
				if j > 0 {
					b.WriteByte(',')
				}
				b.WriteString(tail)
			}
			b.WriteString(conflict)
			var err error
			if st, err = s.stmt(ctx, b.String()); err != nil {
				return err
			}
			byK[k] = st
		}
		res, err := st.ExecContext(ctx, p.args[i*w:(i+k)*w]...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err == nil {
			p.changed += int(n)
		}
		i += k
	}
	return nil
}

// insertSQL returns "INSERT INTO t (cols) VALUES " and one row's "(?,…)".
func (s *sqliteBackend) insertSQL(p *plan) (head, tuple string) {
	n := p.next
	var b strings.Builder
	b.WriteString("INSERT INTO " + n.ident + " (")
	for _, c := range n.cols {
		b.WriteString(quoteIdent(c.name) + ", ")
	}
	if n.cfg.hasID() {
		b.WriteString(quoteIdent(ColID) + ", ")
	}
	b.WriteString(quoteIdent(ColSynced) + ", " + quoteIdent(ColDeleted) + ") VALUES ")
	head = b.String()
	b.Reset()
	b.WriteByte('(')
	for range p.width {
		b.WriteString("?,")
	}
	b.WriteString(quoteLit(p.synced.Format(datetimeFormat)) + ",0)")
	return head, b.String()
}

func (s *sqliteBackend) conflictSQL(p *plan) string {
	return conflictSQL(p.next, false, p.next.ident, quoteLit(p.since.Format(datetimeFormat)))
}

// conflictSQL is the ON CONFLICT clause of an upsert: every column of a
// keyed table is overwritten (a row is replaced whole); a _ferry_id row has
// the same data by construction, so only its bookkeeping changes. In a
// merge table, a stored row written since the generation began (sinceLit)
// keeps its value where the new row has null; existing names the stored
// row in SQL. In a change-only table (see tableCfg.changeOnly) a stored
// row identical to the new one, and not marked deleted, is left as it is,
// _ferry_synced included: the statement's count of changed rows then
// tells the unchanged ones.
func conflictSQL(n *tbl, pg bool, existing, sinceLit string) string {
	target := keyColumns(n)
	if target == "" {
		return ""
	}
	falseLit, differs := "0", " IS NOT "
	if pg {
		falseLit, differs = "false", " IS DISTINCT FROM "
	}
	var b strings.Builder
	b.WriteString(" ON CONFLICT (" + target + ") DO UPDATE SET ")
	var olds, news []string
	if n.cfg.keyed() {
		isKey := make([]bool, len(n.keys))
		isKey = slices.Grow(isKey, len(n.cols))[:len(n.cols)]
		for _, k := range n.keys {
			isKey[k] = true
		}
		for i, c := range n.cols {
			if isKey[i] {
				continue
			}
			q := quoteIdent(c.name)
			if n.cfg.merge {
				b.WriteString(q + " = CASE WHEN excluded." + q + " IS NULL AND " + existing + "." + quoteIdent(ColSynced) + " >= " + sinceLit +
					" THEN " + existing + "." + q + " ELSE excluded." + q + " END, ")
				continue
			}
			b.WriteString(q + " = excluded." + q + ", ")
			old, nw := existing+"."+q, "excluded."+q
			if pg && c.native != "" {
				// A type ferry did not make may lack an equality operator.
				old, nw = old+"::text", nw+"::text"
			}
			olds, news = append(olds, old), append(news, nw)
		}
	}
	b.WriteString(quoteIdent(ColSynced) + " = excluded." + quoteIdent(ColSynced) + ", " + quoteIdent(ColDeleted) + " = " + falseLit)
	if n.cfg.changeOnly {
		b.WriteString(" WHERE " + existing + "." + quoteIdent(ColDeleted) + differs + falseLit)
		if len(olds) > 0 {
			b.WriteString(" OR (" + strings.Join(olds, ", ") + ")" + differs + "(" + strings.Join(news, ", ") + ")")
		}
	}
	return b.String()
}

func (s *sqliteBackend) putState(ctx context.Context, cps []sink.Checkpoint, now time.Time) error {
	if len(cps) == 0 {
		return nil
	}
	up, err := s.stmt(ctx, `INSERT INTO `+s.stateT+` (stream, "partition", value, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (stream, "partition") DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	del, err := s.stmt(ctx, `DELETE FROM `+s.stateT+` WHERE stream = ? AND "partition" = ?`)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	ts := now.Format(datetimeFormat)
	for _, cp := range cps {
		if len(cp.Value) == 0 {
			_, err = del.ExecContext(ctx, cp.Stream, cp.Partition)
		} else {
			_, err = up.ExecContext(ctx, cp.Stream, cp.Partition, string(cp.Value), ts)
		}
		if err != nil {
			return fmt.Errorf("state of stream %q: %w", cp.Stream, err)
		}
	}
	return nil
}

// finishRun finishes several tables and clears the streams' checkpoints in
// one transaction (see DB.FinishRun).
func (s *sqliteBackend) finishRun(ctx context.Context, ts []*finishing, clear []string, runTime time.Time) (err error) {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			s.rollback(ctx)
		}
	}()
	for _, f := range ts {
		if err := s.finishIn(ctx, f, runTime); err != nil {
			return err
		}
	}
	for _, st := range clear {
		if _, err := s.exec(ctx, `DELETE FROM `+s.stateT+` WHERE stream = ?`, st); err != nil {
			return fmt.Errorf("sqlite %s: clear state: %w", s.path, err)
		}
	}
	return s.commit(ctx)
}

// finishIn ends one table's sync generation, inside the caller's
// transaction; a complete one first has the rows the generation did not
// write (all rows older than this run when no generation began) marked,
// unless more of the rows live when the sync began than its threshold
// allows would be.
func (s *sqliteBackend) finishIn(ctx context.Context, f *finishing, runTime time.Time) (err error) {
	t := f.t
	cutoff := runTime.Format(datetimeFormat)
	var began sql.NullInt64
	err = s.conn.QueryRowContext(ctx, `SELECT started_at, `+colLiveAtStart+` FROM `+s.syncT+` WHERE tbl = ?`, t.cfg.name).Scan(&cutoff, &began)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("table %q: read sync generation: %w", t.cfg.name, err)
	}
	if f.complete && t.exists {
		var live, stale int
		q := `SELECT COUNT(*), COUNT(CASE WHEN ` + quoteIdent(ColSynced) + ` < ? THEN 1 END) FROM ` + t.ident + ` WHERE NOT ` + quoteIdent(ColDeleted)
		if err := s.conn.QueryRowContext(ctx, q, cutoff).Scan(&live, &stale); err != nil {
			return fmt.Errorf("table %q: count unseen rows: %w", t.cfg.name, err)
		}
		f.skipped = t.cfg.skipDelete(stale, heldAtStart(live, began.Int64, began.Valid))
	}
	if f.complete && t.exists && f.skipped == nil {
		q := `UPDATE ` + t.ident + ` SET ` + quoteIdent(ColDeleted) + ` = 1 WHERE ` + quoteIdent(ColSynced) + ` < ? AND NOT ` + quoteIdent(ColDeleted)
		if t.cfg.hard {
			q = `DELETE FROM ` + t.ident + ` WHERE ` + quoteIdent(ColSynced) + ` < ?`
		}
		res, err := s.exec(ctx, q, cutoff)
		if err != nil {
			return fmt.Errorf("table %q: mark unseen rows: %w", t.cfg.name, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("table %q: mark unseen rows: %w", t.cfg.name, err)
		}
		f.marked = int(n)
	}
	if _, err := s.exec(ctx, `DELETE FROM `+s.syncT+` WHERE tbl = ?`, t.cfg.name); err != nil {
		return fmt.Errorf("table %q: end sync generation: %w", t.cfg.name, err)
	}
	return nil
}

func (s *sqliteBackend) state(ctx context.Context) (map[string]map[string]json.RawMessage, error) {
	rows, err := s.conn.QueryContext(ctx, `SELECT stream, "partition", value FROM `+s.stateT)
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: read state: %w", s.path, err)
	}
	defer rows.Close()
	out := map[string]map[string]json.RawMessage{}
	for rows.Next() {
		var stream, part, value string
		if err := rows.Scan(&stream, &part, &value); err != nil {
			return nil, fmt.Errorf("sqlite %s: read state: %w", s.path, err)
		}
		if out[stream] == nil {
			out[stream] = map[string]json.RawMessage{}
		}
		out[stream][part] = json.RawMessage(value)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite %s: read state: %w", s.path, err)
	}
	return out, nil
}

func (s *sqliteBackend) clearState(ctx context.Context, all bool, streams []string, endGenerations bool, endTables []string) (err error) {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			s.rollback(ctx)
		}
	}()
	var qs []string
	if all {
		qs = append(qs, `DELETE FROM `+s.stateT)
	}
	if endGenerations {
		qs = append(qs, `DELETE FROM `+s.syncT)
	}
	for _, q := range qs {
		if _, err := s.exec(ctx, q); err != nil {
			return fmt.Errorf("sqlite %s: clear state: %w", s.path, err)
		}
	}
	for _, st := range streams {
		if _, err := s.exec(ctx, `DELETE FROM `+s.stateT+` WHERE stream = ?`, st); err != nil {
			return fmt.Errorf("sqlite %s: clear state: %w", s.path, err)
		}
	}
	for _, t := range endTables {
		if _, err := s.exec(ctx, `DELETE FROM `+s.syncT+` WHERE tbl = ?`, t); err != nil {
			return fmt.Errorf("sqlite %s: clear state: %w", s.path, err)
		}
	}
	return s.commit(ctx)
}

// lockPath is the sidecar file whose SQLite lock is the run lock.
func (s *sqliteBackend) lockPath() string {
	name := s.schema
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, name)
	if safe != name || len(safe) > 64 {
		sum := sha256.Sum256([]byte(name))
		safe = safe[:min(len(safe), 48)] + "-" + hex.EncodeToString(sum[:4])
	}
	return s.path + ".ferry-" + safe + ".lock"
}

// lock holds an exclusive SQLite transaction on a sidecar file for the life
// of the run. The operating system drops the file lock when the process
// exits, however it exits, so a dead run never blocks the next one.
func (s *sqliteBackend) lock(ctx context.Context, holder string, now time.Time) error {
	if s.lockConn != nil {
		return nil
	}
	path := s.lockPath()
	ldb, err := sql.Open("sqlite", sqliteURI(path)+"?_pragma=busy_timeout(0)")
	if err != nil {
		return fmt.Errorf("sqlite lock %s: %w", path, err)
	}
	ldb.SetMaxOpenConns(1)
	lc, err := ldb.Conn(ctx)
	if err == nil {
		// A table first, so the file is a real database with a header
		// to lock; both statements fail with SQLITE_BUSY when held.
		_, err = lc.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS ferry_lock (x)`)
		if err == nil {
			_, err = lc.ExecContext(ctx, `BEGIN EXCLUSIVE`)
		}
	}
	if err != nil {
		if lc != nil {
			lc.Close()
		}
		ldb.Close()
		if isBusy(err) {
			return fmt.Errorf("%w: spec %q on %s is %s", ErrLocked, s.schema, s.path, s.holder(ctx))
		}
		return fmt.Errorf("sqlite lock %s: %w", path, err)
	}
	s.lockDB, s.lockConn = ldb, lc
	host, _ := os.Hostname()
	if _, err := s.exec(ctx, `INSERT INTO `+s.lockT+` (id, holder, pid, host, acquired_at) VALUES (1, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, pid = excluded.pid, host = excluded.host, acquired_at = excluded.acquired_at`,
		holder, os.Getpid(), host, now.Format(datetimeFormat)); err != nil {
		s.unlock()
		return fmt.Errorf("sqlite %s: record lock holder: %w", s.path, err)
	}
	return nil
}

// holder describes the recorded lock holder, for ErrLocked.
func (s *sqliteBackend) holder(ctx context.Context) string {
	var holder, host, at string
	var pid int
	err := s.conn.QueryRowContext(ctx, `SELECT holder, pid, host, acquired_at FROM `+s.lockT+` WHERE id = 1`).Scan(&holder, &pid, &host, &at)
	if err != nil {
		return "held by another process"
	}
	return fmt.Sprintf("held by %q (pid %d on %s) since %s", holder, pid, host, at)
}

func isBusy(err error) bool {
	var c interface{ Code() int }
	if errors.As(err, &c) {
		switch c.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return true
		}
	}
	return false
}

func (s *sqliteBackend) unlock() {
	if s.lockConn == nil {
		return
	}
	s.lockConn.ExecContext(context.Background(), "ROLLBACK")
	s.lockConn.Close()
	s.lockDB.Close()
	s.lockConn, s.lockDB = nil, nil
}

func (s *sqliteBackend) close() error {
	if s.lockConn != nil {
		if _, err := s.conn.ExecContext(context.Background(), `DELETE FROM `+s.lockT+` WHERE id = 1`); err != nil {
			s.log.Warn("sqlite: clear lock holder", "error", err.Error())
		}
		s.unlock()
	}
	s.dropStmts()
	err := s.conn.Close()
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sqlite %s: close: %w", s.path, err)
	}
	return nil
}

func (s *sqliteBackend) openGeneration(ctx context.Context, table string) (syncGen, bool, error) {
	exists, counted, err := s.syncLayout(ctx)
	if err != nil || !exists {
		return syncGen{}, false, err
	}
	live := "NULL"
	if counted {
		live = colLiveAtStart
	}
	var started string
	var n sql.NullInt64
	err = s.conn.QueryRowContext(ctx, `SELECT started_at, `+live+` FROM `+s.syncT+` WHERE tbl = ?`, table).Scan(&started, &n)
	if errors.Is(err, sql.ErrNoRows) {
		return syncGen{}, false, nil
	}
	if err != nil {
		return syncGen{}, false, fmt.Errorf("sqlite %s: read sync generation: %w", s.path, err)
	}
	st, err := time.Parse(datetimeFormat, started)
	if err != nil {
		return syncGen{}, false, fmt.Errorf("sqlite %s: read sync generation: %w", s.path, err)
	}
	return syncGen{started: st, live: int(n.Int64), counted: n.Valid}, true, nil
}

func (s *sqliteBackend) hasState(ctx context.Context) (bool, error) {
	var n int
	err := s.conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, s.schema+"__"+"_ferry_state").Scan(&n)
	if err != nil {
		return false, fmt.Errorf("sqlite %s: %w", s.path, err)
	}
	return n > 0, nil
}

// display reads a column back as stored: text for the types stored as
// text (and NUMERIC, whose text keeps the literal), the value otherwise.
func (s *sqliteBackend) display(c column) string {
	q := quoteIdent(c.name)
	switch c.typ {
	case typeBool, typeInt, typeLong, typeDouble:
		if c.native == "" {
			return q
		}
	}
	return "CAST(" + q + " AS TEXT)"
}

func (s *sqliteBackend) param(int, column) string { return "?" }

func (s *sqliteBackend) trueLit() string { return "1" }

func (s *sqliteBackend) query(ctx context.Context, q string, args []any) ([][]any, error) {
	rows, err := s.conn.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}

// maxColumns is SQLite's SQLITE_MAX_COLUMN as built.
func (s *sqliteBackend) maxColumns() int { return 2000 }

// refuses reads SQLite's result code: a value too big (SQLITE_TOOBIG), a
// constraint (SQLITE_CONSTRAINT), a datatype mismatch (SQLITE_MISMATCH), or
// a table that would have too many columns (a plain SQLITE_ERROR, told by
// its message) are the data's fault.
func (s *sqliteBackend) refuses(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case 18, 19, 20:
		return true
	case 1:
		return strings.Contains(se.Error(), "too many columns")
	}
	return false
}

func (s *sqliteBackend) swapLog(l *slog.Logger) *slog.Logger {
	old := s.log
	s.log = l
	return old
}
