package table

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferry-etl/ferry/engine/sink"
)

// sibling is another spec (schema) on the same destination.
func (e *env) sibling(t *testing.T) *env {
	t.Helper()
	s := *e
	s.schema = e.schema + "_b"
	if e.kind == "postgres" {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			conn, err := pgx.Connect(ctx, e.dest)
			if err != nil {
				t.Errorf("drop sibling schema: %v", err)
				return
			}
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+quoteIdent(s.schema)+` CASCADE`); err != nil {
				t.Errorf("drop sibling schema: %v", err)
			}
		})
	}
	return &s
}

func TestLock(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		d1 := e.open(t)
		if err := d1.Lock(ctx, "run-1"); err != nil {
			t.Fatalf("Lock: %v", err)
		}
		if err := d1.Lock(ctx, "run-1"); err != nil {
			t.Fatalf("second Lock by the holder: %v", err)
		}
		d2 := e.open(t)
		err := d2.Lock(ctx, "run-2")
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("Lock while held = %v, want ErrLocked", err)
		}
		if !strings.Contains(err.Error(), `"run-1"`) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
			t.Errorf("ErrLocked does not name the holder: %v", err)
		}
		// Another spec on the same destination is not blocked.
		other := e.sibling(t).open(t)
		if err := other.Lock(ctx, "other"); err != nil {
			t.Errorf("Lock of another spec: %v", err)
		}
		if err := d1.Close(); err != nil {
			t.Fatal(err)
		}
		if err := d2.Lock(ctx, "run-2"); err != nil {
			t.Errorf("Lock after the holder closed: %v", err)
		}
	})
}

// The test binary doubles as a ferry process that the tests SIGKILL.
const helperEnv = "FERRY_TABLE_HELPER"

func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process for TestLockReleasedOnKill and TestKillMidWrite")
	}
	ctx := context.Background()
	d, err := Open(ctx, os.Getenv("FERRY_TABLE_DEST"), Options{
		Schema: os.Getenv("FERRY_TABLE_SCHEMA"),
		Tables: []Table{{Name: "pages", PrimaryKey: []string{"id"}}, {Name: "log", Mode: ModeAppend}},
	})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	if err := d.Lock(ctx, "helper"); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	switch mode {
	case "lock":
		io.Copy(io.Discard, os.Stdin) // hold the lock until killed
	case "write":
		// Pages of 200 rows, each committed with its checkpoint, as a
		// runner would; the parent kills us at some point.
		for page := 1; page < 100000; page++ {
			var rows []sink.Row
			for i := range 200 {
				id := strconv.Itoa(page*1000 + i)
				rows = append(rows, sink.Row{Table: "pages", Stream: "pages", Data: map[string]any{"id": id, "page": json.Number(strconv.Itoa(page))}})
				rows = append(rows, sink.Row{Table: "log", Stream: "pages", Data: map[string]any{"id": id}})
			}
			cp := sink.Checkpoint{Stream: "pages", Value: json.RawMessage(strconv.Itoa(page))}
			if err := d.Write(ctx, rows, []sink.Checkpoint{cp}); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			fmt.Println("page", page)
		}
	}
	os.Exit(0)
}

// startHelper runs the helper process and waits until it holds the lock.
func startHelper(t *testing.T, e *env, mode string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "FERRY_TABLE_DEST="+e.dest, "FERRY_TABLE_SCHEMA="+e.schema)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close() })
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "locked" {
		t.Fatalf("helper: %q %v", sc.Text(), sc.Err())
	}
	return cmd, sc
}

// kill SIGKILLs the helper and, on PostgreSQL, waits until the server has
// noticed and released the dead session's advisory lock.
func kill(t *testing.T, e *env, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if e.kind != "postgres" {
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.dest)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	key := "ferry:" + e.schema
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended($1, 0))`, key); err != nil {
		t.Fatalf("dead session's lock not released: %v", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, key); err != nil {
		t.Fatal(err)
	}
}

func TestLockReleasedOnKill(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		cmd, _ := startHelper(t, e, "lock")
		d := e.open(t)
		err := d.Lock(ctx, "me")
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), `"helper"`) {
			t.Fatalf("Lock while the helper holds it = %v", err)
		}
		kill(t, e, cmd)
		if err := d.Lock(ctx, "me"); err != nil {
			t.Fatalf("Lock after the holder was killed: %v", err)
		}
	})
}

// TestKillMidWrite SIGKILLs a writer at an arbitrary moment: what is left
// must be exactly the pages its checkpoint covers, in both tables.
func TestKillMidWrite(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		cmd, sc := startHelper(t, e, "write")
		for i := 0; i < 3 && sc.Scan(); i++ {
			if !strings.HasPrefix(sc.Text(), "page ") {
				t.Fatalf("helper: %s", sc.Text())
			}
		}
		kill(t, e, cmd)
		d := e.open(t, Table{Name: "pages", PrimaryKey: []string{"id"}}, Table{Name: "log", Mode: ModeAppend})
		if err := d.Lock(ctx, "rerun"); err != nil {
			t.Fatal(err)
		}
		st, err := d.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		page, err := strconv.Atoi(string(st["pages"][""]))
		if err != nil || page < 3 {
			t.Fatalf("checkpoint after kill = %s (%v), want a page >= 3", st["pages"][""], err)
		}
		for _, table := range []string{"pages", "log"} {
			if got := count(t, d, table); got != page*200 {
				t.Errorf("%s: %d rows after kill at checkpoint page %d, want %d", table, got, page, page*200)
			}
		}
	})
}
