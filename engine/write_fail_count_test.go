package engine_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
	"github.com/jackc/pgx/v5"
)

// TestRefusedBatchIsNotCountedWritten: PostgreSQL refuses a row (a
// primary key too long for its index, SQLSTATE 54000), so its batch fails;
// the other rows are then written without it. The run fails, and neither
// the result nor the report may count the refused row written.
func TestRefusedBatchIsNotCountedWritten(t *testing.T) {
	url := pgURL(t)
	ctx := t.Context()
	buf := make([]byte, 20000)
	if _, err := rand.Read(buf); err != nil {
		t.Fatal(err)
	}
	long := hex.EncodeToString(buf) // 40000 incompressible-ish characters
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `[{"id":"a"},{"id":"b"},{"id":%q}]`, long)
	}))
	t.Cleanup(api.Close)
	name := fmt.Sprintf("refused_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
	text := `
version: 1
name: ` + name + `
config:
  url: {required: true}
http:
  base_url: ${ config.url }
streams:
  things:
    request: {path: /things}
tables:
  things: {from: things, primary_key: [id]}
`
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	sp, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn := pgConnect(t, context.Background(), url)
		defer conn.Close(context.Background())
		conn.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{name}.Sanitize()+` CASCADE`)
	})
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{Sets: map[string]string{"url": api.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := engine.Run(ctx, sp, cfg, engine.RunOptions{Dest: url})
	if err == nil {
		t.Fatal("the run succeeded although PostgreSQL refused its rows")
	}
	if !strings.Contains(err.Error(), "write tables") {
		t.Logf("error: %v", err)
	}
	conn := pgConnect(t, ctx, url)
	defer conn.Close(ctx)
	var stored int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{name, "things"}.Sanitize()).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 2 {
		t.Errorf("the table holds %d rows, want 2 (a and b: only the long key is refused)", stored)
	}
	if res.Rows["things"] != stored {
		t.Errorf("result says %d rows written to things; the table holds %d", res.Rows["things"], stored)
	}
	rep := engine.NewRunReport(sp, path, res, err, 1, false, time.Now())
	for _, tr := range rep.Tables {
		if tr.Name == "things" && tr.RowsWritten != stored {
			t.Errorf("report says rows_written %d for things; the table holds %d", tr.RowsWritten, stored)
		}
	}
}
