//go:build linux

package engine_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// The benchmarks below run ferry in a child process (this test binary,
// re-executed into TestBenchChild), so that each size's peak RSS is its
// own: the child reads its VmHWM (the kernel's high-water mark of its
// resident set, Go runtime and all) from /proc/self/status as it ends.
// (The rusage of a child is no good here: Linux counts in it the parent's
// resident set at the moment of the fork.) The server stays in the parent
// and makes its body on the fly.

const benchChildEnv = "FERRY_BENCH_CHILD"

// TestBenchChild is the child side: it runs the spec named by the
// environment against the URL given, and exits. It does nothing in a
// normal test run.
func TestBenchChild(t *testing.T) {
	if os.Getenv(benchChildEnv) == "" {
		t.Skip("the child process of the streaming benchmarks")
	}
	sp, err := engine.Load(os.Getenv("FERRY_BENCH_SPEC"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{Sets: map[string]string{"url": os.Getenv("FERRY_BENCH_URL")}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	opts := engine.RunOptions{Dest: os.Getenv("FERRY_BENCH_DEST"), Stdout: io.Discard, DryRun: os.Getenv("FERRY_BENCH_DEST") == ""}
	res, err := engine.Run(t.Context(), sp, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("records=%d\n", res.Summary.Streams[0].Records)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range splitLines(string(status)) {
		if v, ok := cutPrefix(line, "VmHWM:"); ok {
			fmt.Printf("vmhwm=%s\n", strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}

}

// child runs the spec in a child process and returns its wall time, peak
// RSS (bytes) and the records it read.
func child(b *testing.B, specSrc, url, dest string) (time.Duration, int64, int) {
	b.Helper()
	dir := b.TempDir()
	specPath := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(specPath, []byte(specSrc), 0o644); err != nil {
		b.Fatal(err)
	}
	if dest != "" {
		dest = "sqlite:" + filepath.Join(dir, dest)
	}
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestBenchChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), benchChildEnv+"=1", "FERRY_BENCH_SPEC="+specPath, "FERRY_BENCH_URL="+url, "FERRY_BENCH_DEST="+dest)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		b.Fatalf("child: %v\n%s", err, out)
	}

	var records int
	var hwm int64 = -1
	for _, line := range splitLines(string(out)) {
		if n, ok := cutPrefix(line, "records="); ok {
			records, _ = strconv.Atoi(n)
		}
		if kb, ok := cutPrefix(line, "vmhwm="); ok {
			hwm, _ = strconv.ParseInt(kb, 10, 64)
		}
	}
	if hwm < 0 {
		b.Fatalf("the child did not report its peak RSS:\n%s", out)
	}
	return wall, hwm * 1024, records
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

// record writes the i-th generated record: about 500 bytes of JSON, the
// shape of an export's event.
func record(w *bufio.Writer, i int) {
	fmt.Fprintf(w, `{"id":%d,"type":"invoice.paid","account":"acct_%06d","at":"2026-01-01T%02d:%02d:%02dZ","amount":"%d.%02d","currency":"EUR","customer":{"id":"cus_%08d","email":"customer%d@example.com","country":"DE"},"lines":[{"sku":"plan-pro","qty":1,"price":"49.00"},{"sku":"seat","qty":%d,"price":"9.00"}],"note":"generated record number %d for the streaming benchmark, padded to look like a real export line"}`,
		i, i%5000, i/3600%24, i/60%60, i%60, i%997, i%100, i, i, i%9+1, i)
}

// ndjsonServer serves n generated records as NDJSON, made on the fly.
func ndjsonServer(n int) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		bw := bufio.NewWriterSize(w, 64<<10)
		for i := range n {
			record(bw, i)
			bw.WriteByte('\n')
		}
		bw.Flush()
	}))
}

// BenchmarkNDJSONIntoSQLite streams an NDJSON download of about 16, 100
// and 200 MB into SQLite and reports, per size, the child process's peak
// RSS and records/s, and records/s as a ratio to a bare bufio.Scanner +
// encoding/json loop reading the same download in the same run. The body
// never stays in memory: what grows with the records is, for a table keyed
// by id ("upsert"), the run's set of keys written (its duplicate check,
// about 30 bytes a row) and SQLite's page cache up to the 64 MiB the table
// sink allows; an append table ("append") has no key set; its dry run
// ("dry-run", JSON Lines to nowhere) shows ferry's memory without SQLite.
func BenchmarkNDJSONIntoSQLite(b *testing.B) {
	const head = `version: 1
name: bench
config:
  url: {required: true}
http: {base_url: "${ config.url }", timeout: 2m}
streams:
  events:
    request: {path: /events.ndjson}
    response: {format: ndjson}
tables:
`
	specs := map[string]string{
		"upsert": head + "  events: {from: events, primary_key: [id], row: '{id, type, account, at, amount, customer: .customer.id, note}'}\n",
		"append": head + "  events: {from: events, mode: append, row: '{id, type, account, at, amount, customer: .customer.id, note}'}\n",
	}
	// The append table's run printing JSON Lines (a dry run) instead:
	// ferry's own memory, without SQLite's and without a key set.
	specs["dry-run"] = specs["append"]
	for _, table := range []string{"upsert", "append", "dry-run"} {
		for _, n := range []int{40_000, 250_000, 500_000} {
			benchNDJSON(b, table, specs[table], n)
		}
	}
}

func benchNDJSON(b *testing.B, table, spec string, n int) {
	srv := ndjsonServer(n)
	defer srv.Close()
	dest := "bench.db"
	if table == "dry-run" {
		dest = ""
	}
	b.Run(fmt.Sprintf("%s/records=%d", table, n), func(b *testing.B) {
		for range b.N {
			base, bytes := scanBaseline(b, srv.URL+"/events.ndjson", n)
			wall, rss, got := child(b, spec, srv.URL, dest)
			if got != n {
				b.Fatalf("ferry read %d records, want %d", got, n)
			}
			rate := float64(n) / wall.Seconds()
			b.ReportMetric(float64(bytes)/1e6, "body-MB")
			b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MB")
			b.ReportMetric(rate, "records/s")
			b.ReportMetric(base, "baseline-records/s")
			b.ReportMetric(rate/base, "ratio-to-baseline")
		}
	})
}

// scanBaseline reads the download with bufio.Scanner and json.Unmarshal
// into a map per line, and returns its records/s and the bytes read.
func scanBaseline(b *testing.B, url string, n int) (float64, int64) {
	b.Helper()
	start := time.Now()
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var bytes int64
	count := 0
	for sc.Scan() {
		bytes += int64(len(sc.Bytes())) + 1
		var v map[string]any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			b.Fatal(err)
		}
		count++
	}
	if err := sc.Err(); err != nil || count != n {
		b.Fatalf("baseline read %d records (%v), want %d", count, err, n)
	}
	return float64(n) / time.Since(start).Seconds(), bytes
}

// BenchmarkHugeListDryRun is the case of the issue "Safe by construction":
// a dry run of one stream whose answer is one JSON list of 200,000
// resources (about 117 MB), against the same list of 1,700 (about 1 MB).
// With the default records the list is streamed element by element; the
// "whole" variant forces the whole-document reading (records that do not
// stream) for comparison.
func BenchmarkHugeListDryRun(b *testing.B) {
	const head = `version: 1
name: huge
config:
  url: {required: true}
http: {base_url: "${ config.url }", timeout: 2m}
streams:
  resources:
    request: {path: /resources}
`
	variants := map[string]string{
		"streamed": head + "tables:\n  resources: {from: resources, primary_key: [id]}\n",
		"whole":    head + "    records: '[.[]] | .[]'\n    response: {max_bytes: 1000000000}\ntables:\n  resources: {from: resources, primary_key: [id]}\n",
	}
	for _, v := range []string{"streamed", "whole"} {
		for _, n := range []int{1_700, 200_000} {
			srv := listServer(n)
			b.Run(fmt.Sprintf("%s/resources=%d", v, n), func(b *testing.B) {
				for range b.N {
					_, rss, got := child(b, variants[v], srv.URL, "")
					if got != n {
						b.Fatalf("read %d records, want %d", got, n)
					}
					b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MB")
				}
			})
			srv.Close()
		}
	}
}

// listServer serves n resources (about 585 bytes each, Humanitec's
// active-resource shape) as one JSON list, made on the fly.
func listServer(n int) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		bw := bufio.NewWriterSize(w, 64<<10)
		bw.WriteByte('[')
		for i := range n {
			if i > 0 {
				bw.WriteByte(',')
			}
			fmt.Fprintf(bw, `{"id":"res-%07d","app_id":"app-%03d","env_id":"env-%02d","res_id":"modules.workload-%05d.externals.postgres","def_id":"postgres-definition-%03d","type":"postgres","class":"default","driver_type":"humanitec/postgres-cloudsql-static","resource":{"host":"10.%d.%d.%d","port":5432,"name":"db_%07d","username":"svc_%07d"},"status":"active","updated_at":"2026-01-%02dT10:00:00Z","gu_res_id":"%040d","org_id":"acme-corp"}`,
				i, i%500, i%20, i, i%50, i%256, i/256%256, i%7, i, i, i%28+1, i)
		}
		bw.WriteByte(']')
		bw.Flush()
	}))
}
