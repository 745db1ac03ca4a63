package table

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgEnv names the environment variable holding a PostgreSQL URL for tests,
// e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const pgEnv = "FERRY_TEST_POSTGRES_URL"

// env is one destination under test: a fresh SQLite file, or a fresh
// PostgreSQL schema dropped at the end.
type env struct {
	kind   string // sqlite | postgres
	dest   string
	schema string
	clock  *clock
	logs   *syncBuffer
}

// eachBackend runs f against SQLite and, when FERRY_TEST_POSTGRES_URL is
// set, PostgreSQL.
func eachBackend(t *testing.T, f func(t *testing.T, e *env)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		f(t, newSQLiteEnv(t))
	})
	t.Run("postgres", func(t *testing.T) {
		f(t, newPGEnv(t))
	})
}

func newSQLiteEnv(t *testing.T) *env {
	t.Helper()
	return &env{
		kind:   "sqlite",
		dest:   "sqlite:" + filepath.Join(t.TempDir(), "ferry.db"),
		schema: "spec",
		clock:  newClock(),
		logs:   &syncBuffer{},
	}
}

func newPGEnv(t *testing.T) *env {
	t.Helper()
	url := os.Getenv(pgEnv)
	if url == "" {
		t.Skip("PostgreSQL tests skipped: set " + pgEnv + " (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "ferry_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop test schema: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+quoteIdent(schema)+` CASCADE`); err != nil {
			t.Errorf("drop test schema: %v", err)
		}
	})
	return &env{kind: "postgres", dest: url, schema: schema, clock: newClock(), logs: &syncBuffer{}}
}

// open opens the env's destination; tables are the spec tables.
func (e *env) open(t *testing.T, tables ...Table) *DB {
	t.Helper()
	d, err := e.tryOpen(t, tables...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func (e *env) tryOpen(t *testing.T, tables ...Table) (*DB, error) {
	t.Helper()
	return Open(t.Context(), e.dest, Options{
		Schema: e.schema,
		Tables: tables,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    e.clock.Now,
	})
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// row builds a JSON-shaped row map from alternating keys and values.
func row(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// dump reads a destination table back as one map per row, ordered by
// orderBy, with values normalised so both databases compare equal:
// STRING/DECIMAL/UTC_DATETIME/NAIVE_DATE as strings, BOOLEAN as bool,
// INT/LONG as int64, DOUBLE as float64, JSON decoded (numbers as
// json.Number), NULL as nil, and the _ferry_ columns.
func dump(t *testing.T, d *DB, table, orderBy string) []map[string]any {
	t.Helper()
	ctx := t.Context()
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.tables, table) // read the real columns, not the cache
	tb, err := d.table(ctx, table)
	if err != nil {
		t.Fatalf("dump %s: %v", table, err)
	}
	if !tb.exists {
		return nil
	}
	type sel struct {
		name string
		typ  colType
	}
	var cols []sel
	for _, c := range tb.cols {
		cols = append(cols, sel{c.name, c.typ})
	}
	if tb.cfg.hasID() {
		cols = append(cols, sel{ColID, typeString})
	}
	cols = append(cols, sel{ColSynced, typeDatetime}, sel{ColDeleted, typeBool})
	var exprs []string
	_, pg := d.be.(*pgBackend)
	for _, c := range cols {
		q := quoteIdent(c.name)
		switch {
		case pg && c.typ == typeDatetime:
			exprs = append(exprs, pgText(q, typeDatetime))
		case pg && c.typ == typeDate:
			exprs = append(exprs, pgText(q, typeDate))
		case pg && (c.typ == typeDecimal || c.typ == typeJSON):
			exprs = append(exprs, q+"::text")
		case pg && c.typ == typeInt:
			exprs = append(exprs, q+"::bigint")
		case !pg && (c.typ == typeDatetime || c.typ == typeDate || c.typ == typeDecimal || c.typ == typeJSON || c.typ == typeString):
			exprs = append(exprs, "CAST("+q+" AS TEXT)")
		default:
			exprs = append(exprs, q)
		}
	}
	q := "SELECT " + strings.Join(exprs, ", ") + " FROM " + tb.ident
	if orderBy != "" {
		q += " ORDER BY " + orderBy
	}
	var raw [][]any
	switch be := d.be.(type) {
	case *pgBackend:
		rows, err := be.conn.Query(ctx, q)
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatalf("dump %s: %v", table, err)
			}
			raw = append(raw, vals)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
	case *sqliteBackend:
		rows, err := be.conn.QueryContext(ctx, q)
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		defer rows.Close()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("dump %s: %v", table, err)
			}
			raw = append(raw, vals)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
	}
	var out []map[string]any
	for _, vals := range raw {
		m := map[string]any{}
		for i, c := range cols {
			m[c.name] = normalise(t, c.typ, vals[i])
		}
		out = append(out, m)
	}
	return out
}

func normalise(t *testing.T, typ colType, v any) any {
	t.Helper()
	if v == nil {
		return nil
	}
	switch typ {
	case typeBool:
		switch x := v.(type) {
		case bool:
			return x
		case int64:
			return x != 0
		}
	case typeInt, typeLong:
		switch x := v.(type) {
		case int64:
			return x
		case int32:
			return int64(x)
		}
	case typeDouble:
		if f, ok := v.(float64); ok {
			return f
		}
	case typeJSON:
		s, _ := v.(string)
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var out any
		if err := dec.Decode(&out); err != nil {
			t.Fatalf("stored JSON %q: %v", s, err)
		}
		return out
	default:
		if s, ok := v.(string); ok {
			return s
		}
	}
	return fmt.Sprintf("unexpected %T %v", v, v)
}

// nativeTypes returns the database's column types of a table.
func nativeTypes(t *testing.T, d *DB, table string) map[string]string {
	t.Helper()
	ctx := t.Context()
	d.mu.Lock()
	defer d.mu.Unlock()
	_, phys := d.be.tableNames(table)
	out := map[string]string{}
	switch be := d.be.(type) {
	case *pgBackend:
		rows, err := be.conn.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`, be.schemaQ+"."+quoteIdent(phys))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n, ty string
			if err := rows.Scan(&n, &ty); err != nil {
				t.Fatal(err)
			}
			out[n] = ty
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	case *sqliteBackend:
		rows, err := be.conn.QueryContext(ctx, `SELECT name, type FROM pragma_table_info(?)`, phys)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var n, ty string
			if err := rows.Scan(&n, &ty); err != nil {
				t.Fatal(err)
			}
			out[n] = ty
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// count returns the number of rows of a destination table.
func count(t *testing.T, d *DB, table string) int {
	t.Helper()
	return len(dump(t, d, table, ""))
}
