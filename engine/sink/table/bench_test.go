package table

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferry-etl/ferry/engine/sink"
)

// BenchmarkLoad writes 200k rows of 11 columns (random 40-hex primary key,
// nine short strings, one ~400 B JSON object) twice: a first load, then a
// re-load where every row changed. DB.Write gets 1000 rows (and one
// checkpoint) per call. Each pass is reported as a ratio to a bare driver
// loop measured in the same iteration with the same batching and database
// settings:
//
//   - SQLite: one prepared INSERT … ON CONFLICT per row, 1000 rows per
//     transaction (database/sql, one connection).
//   - PostgreSQL: per 1000 rows, CREATE TEMP TABLE … ON COMMIT DROP, COPY,
//     INSERT … SELECT … ON CONFLICT DO UPDATE, COMMIT.
//
// The bare loops get their values ready-made (JSON already encoded), so the
// ratio charges ferry for all its own work: typing, conversion, JSON
// encoding, bookkeeping columns and checkpoints. FERRY_BENCH_ROWS
// overrides the row count. Iterations alternate which side runs first.
func BenchmarkLoad(b *testing.B) {
	nrows := 200000
	if s := os.Getenv("FERRY_BENCH_ROWS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		nrows = v
	}
	b.Run("sqlite", func(b *testing.B) {
		runLoad(b, nrows, func(b *testing.B) string {
			return "sqlite:" + filepath.Join(b.TempDir(), "ferry.db")
		}, newBareSQLite)
	})
	b.Run("postgres", func(b *testing.B) {
		url := os.Getenv(pgEnv)
		if url == "" {
			b.Skip("PostgreSQL benchmark skipped: set " + pgEnv)
		}
		runLoad(b, nrows, func(*testing.B) string { return url }, newBarePG)
	})
}

const benchBatch = 1000

var benchCols = []string{"id", "org_id", "app_id", "env_id", "res_id", "def_id", "type", "class", "status", "updated_at", "data"}

// benchRows makes n deterministic rows, as ferry sees them and as bare
// driver arguments.
func benchRows(n int) ([]sink.Row, [][]any) {
	r := mrand.New(mrand.NewPCG(42, 7))
	hexs := func(k int) string {
		const d = "0123456789abcdef"
		b := make([]byte, k)
		for i := range b {
			b[i] = d[r.IntN(16)]
		}
		return string(b)
	}
	words := []string{"checkout", "payments", "catalog", "search", "identity", "billing", "orders", "inventory"}
	rows := make([]sink.Row, n)
	args := make([][]any, n)
	for i := range rows {
		w := func() string { return words[r.IntN(len(words))] }
		data := map[string]any{
			"driver_type": "humanitec/" + w(),
			"gu_res_id":   hexs(40),
			"resource": map[string]any{
				"host": fmt.Sprintf("%s-%s.%s.internal.example.com", w(), hexs(8), w()),
				"port": json.Number(strconv.Itoa(1000 + r.IntN(9000))),
				"name": fmt.Sprintf("%s_%s_%d", w(), w(), i),
				"extra": map[string]any{
					"sslmode":  "require",
					"region":   []any{"europe-west3", "us-east-1"}[r.IntN(2)],
					"replicas": json.Number(strconv.Itoa(r.IntN(4) + 1)),
					"labels":   map[string]any{"team": w(), "cost-center": strconv.Itoa(1000 + r.IntN(9000)), "managed-by": "humanitec"},
					"tls":      r.IntN(2) == 0,
				},
			},
			"secret_refs": map[string]any{"password": map[string]any{"ref": "orgs/acme/secrets/" + hexs(12), "store": "humanitec"}},
		}
		rows[i] = sink.Row{Table: "res", Stream: "res", Data: map[string]any{
			"id": hexs(40), "org_id": "acme-corp", "app_id": w() + "-" + w(), "env_id": w(),
			"res_id": "modules." + w() + ".externals." + w() + strconv.Itoa(i), "def_id": w() + "-default",
			"type": w(), "class": "default", "status": "ready",
			"updated_at": time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(365 * 24 * time.Hour)))).Format(time.RFC3339Nano),
			"data":       data,
		}}
		args[i] = bareArgs(rows[i].Data)
	}
	return rows, args
}

func bareArgs(d map[string]any) []any {
	a := make([]any, len(benchCols))
	for i, c := range benchCols {
		if c == "data" {
			a[i] = string(appendJSON(nil, d[c], false))
			continue
		}
		a[i] = d[c]
	}
	return a
}

// touch changes every row so the second pass really updates it.
func touch(rows []sink.Row) {
	for i := range rows {
		d := rows[i].Data
		d["status"] = "updated"
		d["updated_at"] = "2025-01-01T00:00:00Z"
		d["data"].(map[string]any)["pass"] = json.Number("2")
	}
}

// bareLoader is a yardstick: the plain driver loop for one batch.
type bareLoader interface {
	batch(ctx context.Context, args [][]any) error
	close(ctx context.Context)
}

// runLoad interleaves the two sides batch by batch (alternating which goes
// first), so both see the same machine load: the box is shared and its
// speed drifts by tens of percent within seconds.
func runLoad(b *testing.B, nrows int, dest func(*testing.B) string, newBare func(*testing.B, context.Context, string) bareLoader) {
	ctx := context.Background()
	var sums, cpus [4]time.Duration // ferry insert, ferry update, bare insert, bare update
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		rows, args := benchRows(nrows)
		b.StartTimer()
		u := dest(b)
		d, schema := openBench(b, ctx, u)
		bare := newBare(b, ctx, u)
		for pass := range 2 {
			if pass == 1 {
				b.StopTimer()
				touch(rows)
				touchArgs(args)
				b.StartTimer()
			}
			for j := 0; j < nrows; j += benchBatch {
				end := min(j+benchBatch, nrows)
				ferry := func() {
					t0, c0 := time.Now(), cpuTime()
					cp := sink.Checkpoint{Stream: "res", Value: json.RawMessage(strconv.Itoa(j))}
					if err := d.Write(ctx, rows[j:end], []sink.Checkpoint{cp}); err != nil {
						b.Fatal(err)
					}
					sums[pass] += time.Since(t0)
					cpus[pass] += cpuTime() - c0
				}
				yard := func() {
					t0, c0 := time.Now(), cpuTime()
					if err := bare.batch(ctx, args[j:end]); err != nil {
						b.Fatal(err)
					}
					sums[2+pass] += time.Since(t0)
					cpus[2+pass] += cpuTime() - c0
				}
				if (j/benchBatch)%2 == 0 {
					ferry()
					yard()
				} else {
					yard()
					ferry()
				}
			}
		}
		d.Close()
		bare.close(ctx)
		dropBench(b, ctx, u, schema)
	}
	rate := func(d time.Duration) float64 { return float64(nrows*b.N) / d.Seconds() }
	b.ReportMetric(rate(sums[0]), "ferry_insert_rows/s")
	b.ReportMetric(rate(sums[2]), "bare_insert_rows/s")
	b.ReportMetric(rate(sums[0])/rate(sums[2]), "insert_ratio")
	b.ReportMetric(rate(sums[1]), "ferry_update_rows/s")
	b.ReportMetric(rate(sums[3]), "bare_update_rows/s")
	b.ReportMetric(rate(sums[1])/rate(sums[3]), "update_ratio")
	// Process CPU per side: for SQLite all the work; for PostgreSQL only
	// the client's share. Ratios above 1 mean ferry used less.
	if cpus[0] > 0 {
		b.ReportMetric(float64(cpus[2])/float64(cpus[0]), "insert_cpu_ratio")
		b.ReportMetric(float64(cpus[3])/float64(cpus[1]), "update_cpu_ratio")
		b.ReportMetric(float64(cpus[0].Microseconds())/float64(nrows*b.N), "ferry_ins_cpu_us/row")
		b.ReportMetric(float64(cpus[2].Microseconds())/float64(nrows*b.N), "bare_ins_cpu_us/row")
	}
}

func benchSchema(b *testing.B) string {
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		b.Fatal(err)
	}
	return "ferry_bench_" + hex.EncodeToString(r[:])
}

func openBench(b *testing.B, ctx context.Context, u string) (*DB, string) {
	schema := benchSchema(b)
	d, err := Open(ctx, u, Options{Schema: schema, Tables: []Table{{Name: "res", PrimaryKey: []string{"id"}, Columns: map[string]string{"data": "JSON"}}}})
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Lock(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	return d, schema
}

func dropBench(b *testing.B, ctx context.Context, u, schema string) {
	if k, _, _ := parseDest(u); k != "postgres" {
		return
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP SCHEMA `+quoteIdent(schema)+` CASCADE`); err != nil {
		b.Fatal(err)
	}
}

const bareDDL = `CREATE TABLE res (id TEXT PRIMARY KEY, org_id TEXT, app_id TEXT, env_id TEXT, res_id TEXT, def_id TEXT,
  type TEXT, class TEXT, status TEXT, updated_at TEXT, data TEXT)`

const bareUpsert = `INSERT INTO res (id, org_id, app_id, env_id, res_id, def_id, type, class, status, updated_at, data)
VALUES (?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT(id) DO UPDATE SET org_id=excluded.org_id, app_id=excluded.app_id, env_id=excluded.env_id,
  res_id=excluded.res_id, def_id=excluded.def_id, type=excluded.type, class=excluded.class,
  status=excluded.status, updated_at=excluded.updated_at, data=excluded.data`

type bareSQLiteLoader struct {
	db   *sql.DB
	stmt *sql.Stmt
}

// newBareSQLite is the SQLite yardstick: the baseline's prepared upsert,
// one Exec per row, on a database opened with ferry's settings.
func newBareSQLite(b *testing.B, ctx context.Context, dest string) bareLoader {
	_, path, _ := parseDest(dest)
	db, err := sql.Open("sqlite", sqliteDSN(path+".bare"))
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, bareDDL); err != nil {
		b.Fatal(err)
	}
	stmt, err := db.PrepareContext(ctx, bareUpsert)
	if err != nil {
		b.Fatal(err)
	}
	return &bareSQLiteLoader{db: db, stmt: stmt}
}

func (l *bareSQLiteLoader) batch(ctx context.Context, args [][]any) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	st := tx.StmtContext(ctx, l.stmt)
	for _, a := range args {
		if _, err := st.ExecContext(ctx, a...); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

func (l *bareSQLiteLoader) close(context.Context) { l.db.Close() }

// touchArgs applies touch to bare arguments.
func touchArgs(args [][]any) {
	for _, a := range args {
		a[8] = "updated"
		a[9] = "2025-01-01T00:00:00Z"
		s := a[10].(string)
		a[10] = s[:len(s)-1] + `,"pass":2}`
	}
}

const bareMerge = `INSERT INTO %s.res SELECT id, org_id, app_id, env_id, res_id, def_id, type, class, status, updated_at, data::jsonb FROM stage
ON CONFLICT (id) DO UPDATE SET org_id=excluded.org_id, app_id=excluded.app_id, env_id=excluded.env_id,
  res_id=excluded.res_id, def_id=excluded.def_id, type=excluded.type, class=excluded.class,
  status=excluded.status, updated_at=excluded.updated_at, data=excluded.data`

type barePGLoader struct {
	conn   *pgx.Conn
	schema string
	merge  string
}

// newBarePG is the PostgreSQL yardstick: the baseline's temp table, COPY
// and merge per batch.
func newBarePG(b *testing.B, ctx context.Context, dest string) bareLoader {
	conn, err := pgx.Connect(ctx, dest)
	if err != nil {
		b.Fatal(err)
	}
	schema := quoteIdent(benchSchema(b))
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s.res (id TEXT PRIMARY KEY, org_id TEXT, app_id TEXT, env_id TEXT, res_id TEXT, def_id TEXT,
  type TEXT, class TEXT, status TEXT, updated_at TEXT, data JSONB)`, schema)); err != nil {
		b.Fatal(err)
	}
	return &barePGLoader{conn: conn, schema: schema, merge: fmt.Sprintf(bareMerge, schema)}
}

func (l *barePGLoader) batch(ctx context.Context, args [][]any) error {
	tx, err := l.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE stage (id TEXT, org_id TEXT, app_id TEXT, env_id TEXT, res_id TEXT, def_id TEXT,
  type TEXT, class TEXT, status TEXT, updated_at TEXT, data TEXT) ON COMMIT DROP`); err != nil {
		return err
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"stage"}, benchCols, pgx.CopyFromRows(args)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, l.merge); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func (l *barePGLoader) close(ctx context.Context) {
	l.conn.Exec(ctx, `DROP SCHEMA `+l.schema+` CASCADE`)
	l.conn.Close(ctx)
}
