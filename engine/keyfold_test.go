package engine_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// keyFoldCase is a key column made outside ferry whose collation or type
// compares text other than byte by byte, and two keys it holds as one
// row (same) or as two (not same).
type keyFoldCase struct {
	column string // the key column's definition
	k1, k2 string
	same   bool
}

// checkKeyFold runs the two records of c, each on its own page, into a
// table made with c's key column and holding a row: keys the table holds
// as one row must be a duplicate, said (the second failed, the first
// kept), not the later record overwriting the earlier's row with exit 0;
// keys it holds apart must both be written.
func checkKeyFold(t *testing.T, c keyFoldCase, query func(string) []string, fx *fixture) {
	t.Helper()
	query(`CREATE TABLE %t (k ` + c.column + `, a TEXT, _ferry_synced TEXT, _ferry_deleted BOOLEAN)`)
	query(`INSERT INTO %t (k, a, _ferry_synced, _ferry_deleted) VALUES ('zz', 'zero', '2024-01-01T00:00:00.000000Z', false)`)
	fx.raw("/s", 200, fmt.Sprintf(`[{"k": %q, "a": "first"}, {"k": %q, "a": "second"}]`, c.k1, c.k2))
	res, err := fx.run(engine.RunOptions{})
	rows := query(`SELECT a FROM %t ORDER BY a`)
	if c.same {
		if err == nil || len(res.Summary.Duplicates) != 1 || !slices.Equal(rows, []string{"first", "zero"}) {
			t.Errorf("%s, keys %q and %q (one row there): err %v, duplicates %+v, rows %v: want the second failed as a duplicate, the first kept",
				c.column, c.k1, c.k2, err, res.Summary.Duplicates, rows)
		}
		return
	}
	if err != nil || len(res.Summary.Duplicates) != 0 || !slices.Equal(rows, []string{"first", "second", "zero"}) {
		t.Errorf("%s, keys %q and %q (two rows there): err %v, duplicates %+v, rows %v: want both written",
			c.column, c.k1, c.k2, err, res.Summary.Duplicates, rows)
	}
}

// TestSQLiteKeyCollationKeyedAsStored: a SQLite table made outside ferry
// whose key column's collation is NOCASE (ASCII letters of any case) or
// RTRIM (trailing spaces ignored) holds two keys of those forms as one
// row: the duplicate check keys them as one.
func TestSQLiteKeyCollationKeyedAsStored(t *testing.T) {
	for _, c := range []keyFoldCase{
		{"TEXT COLLATE NOCASE PRIMARY KEY", "ABC", "abc", true},
		{"TEXT PRIMARY KEY COLLATE NOCASE", "Abc", "aBC", true},
		// NOCASE folds ASCII only.
		{"TEXT COLLATE NOCASE PRIMARY KEY", "É", "é", false},
		{"TEXT COLLATE RTRIM PRIMARY KEY", "ab", "ab  ", true},
		{"TEXT COLLATE RTRIM PRIMARY KEY", "ab", " ab", false},
		{"TEXT PRIMARY KEY", "ab", "AB", false},
	} {
		t.Run(c.column+"/"+c.k2, func(t *testing.T) {
			fx := newFixture(t, keyTypeSpec("nl", "", "fail"), "")
			query := func(q string) []string { return fx.query(strings.ReplaceAll(q, "%t", `"nl__t"`)) }
			checkKeyFold(t, c, query, fx)
		})
	}
}

// TestSQLiteKeyCollationOfCompositeKey: in a WITHOUT ROWID table keyed
// by two columns, the collation is the key column's own, given in the
// PRIMARY KEY clause.
func TestSQLiteKeyCollationOfCompositeKey(t *testing.T) {
	src := strings.Replace(keyTypeSpec("nl", "", "fail"), "primary_key: [k], row: '{k, a}'", "primary_key: [k, j], row: '{k, j, a}'", 1)
	fx := newFixture(t, src, "")
	fx.query(`CREATE TABLE "nl__t" (k TEXT, j TEXT, a TEXT, _ferry_synced TEXT, _ferry_deleted BOOLEAN, PRIMARY KEY (k COLLATE NOCASE, j)) WITHOUT ROWID`)
	fx.raw("/s", 200, `[{"k": "ABC", "j": "x", "a": "first"}, {"k": "abc", "j": "x", "a": "second"}, {"k": "abc", "j": "X", "a": "third"}]`)
	res, err := fx.run(engine.RunOptions{})
	rows := fx.query(`SELECT a FROM "nl__t" ORDER BY a`)
	if err == nil || len(res.Summary.Duplicates) != 1 || !slices.Equal(rows, []string{"first", "third"}) {
		t.Errorf("err %v, duplicates %+v, rows %v: want the second failed as a duplicate of the first, the third (j of another case) written", err, res.Summary.Duplicates, rows)
	}
}

// TestPostgresKeyTextKeyedAsStored: a PostgreSQL table made outside ferry
// whose key column is citext (any case, as lower() folds it) or
// character(n) (trailing spaces ignored) holds two keys of those forms as
// one row; varchar keeps trailing spaces apart.
func TestPostgresKeyTextKeyedAsStored(t *testing.T) {
	pg := dupBackends()
	if len(pg) < 2 {
		t.Skip("no PostgreSQL: set FERRY_TEST_POSTGRES_URL")
	}
	cases := []keyFoldCase{
		{"character(5) PRIMARY KEY", "ab", "ab  ", true},
		{"character varying(5) PRIMARY KEY", "ab", "ab  ", false},
		{"text PRIMARY KEY", "ab", "AB", false},
		{"citext PRIMARY KEY", "ABC", "abc", true},
		// citext folds by the database's LC_CTYPE, whatever the column's
		// collation: the test database's (C.UTF-8 or a language's) folds
		// more than ASCII; one of plain C would fold ASCII only.
		{"citext PRIMARY KEY", "ÉTÉ", "été", true},
		{`citext COLLATE "C" PRIMARY KEY`, "É", "é", true},
		{"citext PRIMARY KEY", "ß", "SS", false},
		{"citext PRIMARY KEY", "ab", "AB ", false},
	}
	for _, c := range cases {
		t.Run(c.column+"/"+c.k2, func(t *testing.T) {
			name, use := pg[1].setup(t)
			fx := newFixture(t, keyTypeSpec(name, "", "fail"), "")
			query := use(fx)
			if strings.HasPrefix(c.column, "citext") {
				if !pgHasCitext(t, fx) {
					t.Skip("the PostgreSQL server has no citext extension (postgresql-contrib)")
				}
				query(`CREATE EXTENSION IF NOT EXISTS citext`)
				if ctype := query(`SELECT datctype FROM pg_database WHERE datname = current_database()`); strings.ContainsAny(c.k1, "É") && len(ctype) == 1 && (ctype[0] == "C" || ctype[0] == "POSIX") {
					t.Skip("the test database's LC_CTYPE is C: lower() folds ASCII only")
				}
			}
			query(`CREATE SCHEMA "` + name + `"`)
			checkKeyFold(t, c, query, fx)
		})
	}
}

// pgKeyFixture is a fixture of keyTypeSpec writing to PostgreSQL, in a
// schema of its own, made (name), and a query on it.
func pgKeyFixture(t *testing.T) (string, *fixture, func(string) []string) {
	t.Helper()
	pg := dupBackends()
	if len(pg) < 2 {
		t.Skip("no PostgreSQL: set FERRY_TEST_POSTGRES_URL")
	}
	name, use := pg[1].setup(t)
	fx := newFixture(t, keyTypeSpec(name, "", "fail"), "")
	query := use(fx)
	query(`CREATE SCHEMA "` + name + `"`)
	return name, fx, query
}

// pgHasCitext tells whether the server can make the citext extension.
func pgHasCitext(t *testing.T, fx *fixture) bool {
	t.Helper()
	conn := pgConnect(t, t.Context(), fx.db)
	defer conn.Close(t.Context())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_available_extensions WHERE name = 'citext'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// TestSQLiteKeyCollationAcrossRuns: a sync resumed after a failure keys
// the rows its first run committed as the column compares them: "abc"
// read in the second run is a duplicate of the "ABC" the first wrote.
func TestSQLiteKeyCollationAcrossRuns(t *testing.T) {
	src := strings.Replace(dupSpec("nl", "fail", ""), "columns: {id: STRING,", "columns: {", 1)
	fx := newFixture(t, src, "")
	fx.query(`CREATE TABLE "nl__t" (id TEXT COLLATE NOCASE PRIMARY KEY, a TEXT, b TEXT, _ferry_synced TEXT, _ferry_deleted BOOLEAN)`)
	fx.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2"}})
	fx.pages("/parents/p1/items", []any{map[string]any{"id": "ABC", "a": "first"}})
	fx.pages("/parents/p2/items", []any{map[string]any{"id": "abc", "a": "second"}}, 0)
	_, err := fx.run(engine.RunOptions{})
	runErrorOf(t, err)
	fx.pages("/parents/p2/items", []any{map[string]any{"id": "abc", "a": "second"}})
	res, err := fx.run(engine.RunOptions{})
	rows := fx.query(`SELECT a FROM "nl__t" ORDER BY a`)
	if err == nil || len(res.Summary.Duplicates) != 1 || !slices.Equal(rows, []string{"first"}) {
		t.Errorf("err %v, duplicates %+v, rows %v: want the second failed as a duplicate of the first run's row, the first kept", err, res.Summary.Duplicates, rows)
	}
}

// TestPostgresCharKeyLongerThanColumn: a character(n) key compares
// without its trailing spaces, but a value longer than n is still
// refused (the column would cut it, into another record's key), not
// written cut.
func TestPostgresCharKeyLongerThanColumn(t *testing.T) {
	_, fx, query := pgKeyFixture(t)
	query(`CREATE TABLE %t (k character(5) PRIMARY KEY, a TEXT, _ferry_synced TEXT, _ferry_deleted BOOLEAN)`)
	fx.raw("/s", 200, `[{"k": "abcde", "a": "first"}, {"k": "abcdefg", "a": "second"}]`)
	res, err := fx.run(engine.RunOptions{})
	rows := query(`SELECT k || ':' || a FROM %t ORDER BY a`)
	if err == nil || len(res.Summary.Duplicates) != 0 || !slices.Equal(rows, []string{"abcde:first"}) {
		t.Errorf("err %v, duplicates %+v, rows %v: want abcdefg refused (the column would cut it), abcde written", err, res.Summary.Duplicates, rows)
	}
	if err != nil && !strings.Contains(err.Error(), "abcdefg") {
		t.Errorf("the error does not name the value: %v", err)
	}
}

// TestPostgresNondeterministicKeyCollationSaid: a key column of a
// nondeterministic collation (an ICU one that ignores case) holds keys
// equal the check cannot fold as it does: the run says so, naming the
// table, the column and the collation.
func TestPostgresNondeterministicKeyCollationSaid(t *testing.T) {
	name, fx, query := pgKeyFixture(t)
	conn := pgConnect(t, t.Context(), fx.db)
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), `CREATE COLLATION "`+name+`".ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)`); err != nil {
		t.Skipf("the PostgreSQL server cannot make an ICU collation: %v", err)
	}
	query(`CREATE TABLE %t (k text COLLATE "` + name + `".ci PRIMARY KEY, a TEXT, _ferry_synced TEXT, _ferry_deleted BOOLEAN)`)
	fx.raw("/s", 200, `[{"k": "abc", "a": "first"}]`)
	var logs bytes.Buffer
	if _, err := fx.run(engine.RunOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatal(err)
	}
	if s := logs.String(); !strings.Contains(s, "nondeterministic") || !strings.Contains(s, "column=k") || !strings.Contains(s, "collation=ci") {
		t.Errorf("logs do not say the key column's collation is nondeterministic:\n%s", s)
	}
}

// TestPostgresDomainKeyKeyedAsStored: a key column whose type is a
// domain over citext or character(n) (CREATE DOMAIN email AS citext)
// compares as its base type does: two keys it holds as one row are a
// duplicate, said, not one record's row overwritten by the other's.
func TestPostgresDomainKeyKeyedAsStored(t *testing.T) {
	for _, c := range []keyFoldCase{
		{"citext", "ABC", "abc", true},
		{"character(5)", "ab", "ab  ", true},
		{"character varying(5)", "ab", "ab  ", false},
	} {
		t.Run(c.column, func(t *testing.T) {
			name, fx, query := pgKeyFixture(t)
			if c.column == "citext" {
				if !pgHasCitext(t, fx) {
					t.Skip("the PostgreSQL server has no citext extension (postgresql-contrib)")
				}
				query(`CREATE EXTENSION IF NOT EXISTS citext`)
			}
			query(`CREATE DOMAIN "` + name + `".d AS ` + c.column)
			c.column = `"` + name + `".d PRIMARY KEY`
			checkKeyFold(t, c, query, fx)
		})
	}
}
