package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

// The PostgreSQL variants of the tests in engine_test.go. Each test writes
// into its own schema (the spec's name), dropped at the end.

// pgURL is FERRY_TEST_POSTGRES_URL, or skips the test.
func pgURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("FERRY_TEST_POSTGRES_URL")
	if u == "" {
		t.Skip("FERRY_TEST_POSTGRES_URL is not set: skipping the PostgreSQL test (e.g. postgres://postgres:ferry@127.0.0.1:5432/ferry_test?sslmode=disable)")
	}
	return u
}

func pgConnect(t *testing.T, ctx context.Context, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("FERRY_TEST_POSTGRES_URL: %v", err)
	}
	return conn
}

// loadPGSpec writes pagedSpec under a name unique to this test process, so
// that its schema is too, and drops that schema before and after the test.
func loadPGSpec(t *testing.T, dir, url, suffix string) *engine.Spec {
	t.Helper()
	name := fmt.Sprintf("paged_%d_%d_%s", os.Getpid(), time.Now().UnixNano()%1e6, suffix)
	text := strings.Replace(pagedSpec, "\nname: paged\n", "\nname: "+name+"\n", 1)
	if text == pagedSpec {
		t.Fatal("pagedSpec has no 'name: paged' line to replace")
	}
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	pgFreshSchema(t, url, name)
	return f
}

// pgFreshSchema drops schema name at url, now and when the test ends, so
// that a run starts with none of an earlier test's tables or state.
func pgFreshSchema(t *testing.T, url, name string) {
	t.Helper()
	drop := func(ctx context.Context) error {
		conn := pgConnect(t, ctx, url)
		defer conn.Close(ctx)
		_, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{name}.Sanitize()+` CASCADE`)
		return err
	}
	if err := drop(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(context.Background()); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
}

// pgDump is dump for the tables of schema: every table's data columns,
// rows sorted, as JSON lines.
func pgDump(t *testing.T, url, schema string) map[string][]string {
	t.Helper()
	ctx := t.Context()
	conn := pgConnect(t, ctx, url)
	defer conn.Close(ctx)
	out := map[string][]string{}
	for _, table := range []string{"roots", "items", "items_log", "roots_log"} {
		rows, err := conn.Query(ctx, `SELECT * FROM `+pgx.Identifier{schema, table}.Sanitize())
		if err != nil {
			t.Fatal(err)
		}
		fields := rows.FieldDescriptions()
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			m := map[string]any{}
			for i, f := range fields {
				if f.Name == "_ferry_synced" || f.Name == "_ferry_id" {
					continue // the run's time, and a hash of the row
				}
				m[f.Name] = vals[i]
			}
			b, _ := json.Marshal(m)
			out[table] = append(out[table], string(b))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		slices.Sort(out[table])
	}
	return out
}

func TestDryRunPrintsWhatARunWritesPostgres(t *testing.T) {
	url := pgURL(t)
	f := loadPGSpec(t, t.TempDir(), url, "dry")
	api := pagedAPI(t, nil)
	printed, err := run(t.Context(), t, f, api.URL, "", true)
	if err != nil {
		t.Fatal(err)
	}
	conn := pgConnect(t, t.Context(), url)
	var exists bool
	err = conn.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, f.Name()).Scan(&exists)
	conn.Close(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatalf("a dry run created schema %s", f.Name())
	}
	if _, err := run(t.Context(), t, f, api.URL, url, false); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(printed), "\n") {
		var l struct {
			Table string         `json:"table"`
			Row   map[string]any `json:"row"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		l.Row["_ferry_deleted"] = false
		b, _ := json.Marshal(l.Row)
		want[l.Table] = append(want[l.Table], string(b))
	}
	for k := range want {
		slices.Sort(want[k])
	}
	if diff := cmp.Diff(want, pgDump(t, url, f.Name())); diff != "" {
		t.Errorf("dry run vs tables (-printed +written):\n%s", diff)
	}
}

// TestInterruptedRunResumesPostgres interrupts a run at many points,
// resumes it, and checks the tables equal an uninterrupted run's.
func TestInterruptedRunResumesPostgres(t *testing.T) {
	url := pgURL(t)
	dir := t.TempDir()
	ref := loadPGSpec(t, dir, url, "ref")
	if _, err := run(t.Context(), t, ref, pagedAPI(t, nil).URL, url, false); err != nil {
		t.Fatal(err)
	}
	want := pgDump(t, url, ref.Name())
	if len(want["items_log"]) != 4*15 {
		t.Fatalf("reference run: %d log rows, want 60", len(want["items_log"]))
	}
	for _, stopAt := range []int64{2, 3, 5, 8, 13, 17, 20} {
		t.Run(fmt.Sprintf("stop at request %d", stopAt), func(t *testing.T) {
			f := loadPGSpec(t, dir, url, fmt.Sprintf("stop%d", stopAt))
			ctx, cancel := context.WithCancel(t.Context())
			api := pagedAPI(t, func(n int64) {
				if n == stopAt {
					cancel()
				}
			})
			if _, err := run(ctx, t, f, api.URL, url, false); err == nil {
				t.Fatal("the interrupted run reported success")
			}
			if _, err := run(t.Context(), t, f, api.URL, url, false); err != nil {
				t.Fatalf("resumed run: %v", err)
			}
			if diff := cmp.Diff(want, pgDump(t, url, f.Name())); diff != "" {
				t.Errorf("tables after interrupt+resume differ (-uninterrupted +resumed):\n%s", diff)
			}
		})
	}
}
