//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/sim/humanitec"
	portsim "github.com/ferry-etl/ferry/engine/sim/port"
)

// The performance benchmarks run the real ferry binary (built from this
// tree, so its GC setting counts) as a child process against simulators
// in this one, and report each figure as a ratio taken in the same run:
//
//	go test ./cmd/ferry -run '^$' -bench 'TablePath|AdaptiveRate' -benchtime 1x
//
// FERRY_BENCH_BASE=/path/to/an/older/ferry adds that binary's figures
// (before/after ratios in the same run; FERRY_BENCH_BASE_NO_TOTALS=1 for a
// binary from before paginate totals); FERRY_BENCH_PROFILES=DIR writes a
// CPU and heap profile of every run there.

// ferryBinary builds ferry from this tree.
func ferryBinary(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "ferry")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// child is what one ferry process did.
type child struct {
	rssMB  float64       // peak resident memory
	cpu    time.Duration // user + system
	sys    time.Duration // the kernel's part of cpu
	wall   time.Duration
	rows   int64           // rows written
	hosts  json.RawMessage // the report's hosts, for a benchmark that explains an outlier
	output string          // what it printed
}

// cpuPer is CPU per row (or entity) written, in nanoseconds.
func (c child) cpuPer() float64 { return float64(c.cpu.Nanoseconds()) / float64(c.rows) }

// reportSizes reports what a binary (prefix) did at the two sizes: rows
// (or entities: unit and its plural), peak RSS and its ratio, CPU per
// unit and over the mapping benchmark's CPU per record; and the CPU the
// large run spent on each unit the small one did not have (its CPU less
// the small run's, over the difference in units), over the mapping's:
// what a unit costs once a run's fixed costs (starting, loading the
// spec, a sink's setup) are paid, and the fixed cost itself (the small
// run's CPU less its units at that marginal cost).
func reportSizes(b *testing.B, prefix, unit, units string, small, large child, mapping time.Duration) {
	b.Helper()
	for name, c := range map[string]child{"small": small, "large": large} {
		b.ReportMetric(float64(c.rows), prefix+units+"-"+name)
		b.ReportMetric(c.rssMB, prefix+"rss-"+name+"-MB")
		b.ReportMetric(c.cpuPer()/1000, prefix+"cpu-"+name+"-us/"+unit)
		b.ReportMetric(c.cpuPer()/float64(mapping.Nanoseconds()), prefix+"cpu-"+name+"/mapping")
		// The kernel's share: system calls, scheduling, page faults.
		b.ReportMetric(float64(c.sys)/float64(c.cpu), prefix+"sys-share-"+name)
	}
	b.ReportMetric(large.rssMB/small.rssMB, prefix+"rss-ratio")
	if large.rows > small.rows {
		marginal := float64(large.cpu-small.cpu) / float64(large.rows-small.rows)
		b.ReportMetric(marginal/float64(mapping.Nanoseconds()), prefix+"cpu-marginal/mapping")
		b.ReportMetric((float64(small.cpu)-marginal*float64(small.rows))/1e6, prefix+"cpu-fixed-ms")
	}
}

// profileSeq numbers the profiles FERRY_BENCH_PROFILES asks for.
var profileSeq atomic.Int64

// runFerry runs `ferry run spec` with config sets (and extra environment
// variables) into a fresh SQLite file.
func runFerry(b *testing.B, bin, spec string, sets map[string]string, env ...string) child {
	return runFerryArgs(b, bin, spec, sets, nil, env...)
}

// runFerryArgs is runFerry with more arguments for `ferry run`.
func runFerryArgs(b *testing.B, bin, spec string, sets map[string]string, extra []string, env ...string) child {
	b.Helper()
	dir := b.TempDir()
	report := filepath.Join(dir, "report.json")
	args := append([]string{"run", spec, "--dest", "sqlite:" + filepath.Join(dir, "out.db"), "--progress", "none", "--report", report}, extra...)
	for k, v := range sets {
		args = append(args, "--set", k+"="+v)
	}
	if dir := os.Getenv("FERRY_BENCH_PROFILES"); dir != "" {
		// Where a run's CPU goes: one profile per run, for go tool pprof.
		n := profileSeq.Add(1)
		args = append(args, "--cpuprofile", filepath.Join(dir, fmt.Sprintf("cpu-%d.prof", n)),
			"--memprofile", filepath.Join(dir, fmt.Sprintf("mem-%d.prof", n)))
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(slicesWithout(os.Environ(), "GOGC=", "GODEBUG="), env...) // ferry's own GC setting
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	// The peak RSS is read from /proc while the child runs: the rusage
	// that wait4 returns counts the parent's memory too (Go starts
	// children with vfork, and exec records the shared address space's
	// high-water mark).
	hwm := make(chan float64)
	stop := make(chan struct{})
	go func() {
		var peak float64
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if v, ok := vmHWM(cmd.Process.Pid); ok {
				peak = max(peak, v)
			}
			select {
			case <-stop:
				hwm <- peak
				return
			case <-t.C:
			}
		}
	}()
	err := cmd.Wait()
	wall := time.Since(start)
	close(stop)
	peak := <-hwm
	if err != nil {
		b.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	var rep struct {
		Tables []struct {
			RowsWritten int64 `json:"rows_written"`
		} `json:"tables"`
		Blueprints []struct {
			Upserted int64 `json:"upserted"`
		} `json:"blueprints"`
		Hosts json.RawMessage `json:"hosts"`
	}
	data, err := os.ReadFile(report)
	if err != nil {
		b.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		b.Fatal(err)
	}
	c := child{rssMB: peak, wall: wall, hosts: rep.Hosts, output: out.String(),
		cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), sys: time.Duration(ru.Stime.Nano())}
	for _, t := range rep.Tables {
		c.rows += t.RowsWritten
	}
	for _, bp := range rep.Blueprints {
		c.rows += bp.Upserted
	}
	return c
}

// vmHWM reads a live process's peak resident set size, in MiB.
func vmHWM(pid int) (float64, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err == nil
		}
	}
	return 0, false
}

// slicesWithout drops the environment entries that start with one of the
// prefixes (GOGC= and GODEBUG= set for the benchmark itself).
func slicesWithout(env []string, prefixes ...string) []string {
	var out []string
	for _, e := range env {
		keep := true
		for _, p := range prefixes {
			if strings.HasPrefix(e, p) {
				keep = false
			}
		}
		if keep {
			out = append(out, e)
		}
	}
	return out
}

// humanitecOrg serves a generated organisation of apps applications (12
// pipelines each) on loopback, with no latency.
func humanitecOrg(b *testing.B, apps int) (*humanitec.Running, *humanitec.Org) {
	size := humanitec.Large()
	size.Apps, size.Pipelines = apps, apps*12
	org := humanitec.Generate(1, size)
	srv, err := humanitec.Start(context.Background(), org, humanitec.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	return srv, org
}

// projectsServer answers like Harness's project list, pages generated on
// demand (the harness simulator scans its whole account per page, too slow
// at 200k projects): total projects, 100 a page.
func projectsServer(b *testing.B, total int) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		size, _ := strconv.Atoi(r.URL.Query().Get("pageSize"))
		page, _ := strconv.Atoi(r.URL.Query().Get("pageIndex"))
		size = max(size, 1)
		var content []string
		for i := page * size; i < min(total, (page+1)*size); i++ {
			content = append(content, fmt.Sprintf(`{"project":{"orgIdentifier":"org%d","identifier":"project_%07d","name":"Project %d","color":"#0063F7","modules":["CD","CI","CF"],"description":"generated project %d","tags":{"team":"t%d","env":"prod"}},"createdAt":1700000000000,"lastModifiedAt":1700000%06d,"isFavorite":false}`, i%7, i, i, i, i%13, i%1000000))
		}
		fmt.Fprintf(w, `{"status":"SUCCESS","data":{"totalPages":%d,"totalItems":%d,"pageItemCount":%d,"pageSize":%d,"content":[%s],"pageIndex":%d,"empty":%v}}`,
			(total+size-1)/size, total, len(content), size, strings.Join(content, ","), page, len(content) == 0)
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}

// mappingCost runs engine/eval's BenchmarkMapEntity (decode, the 8-field
// entity mapping, encode; ferry's GC setting) and returns its CPU per
// record: the yardstick of the CPU target.
func mappingCost(b *testing.B) time.Duration {
	b.Helper()
	out, err := exec.Command("go", "test", "-run", "^$", "-bench", "^BenchmarkMapEntity$/^mapping_gogc400$", "-benchtime", "50000x", "-count", "3", "../../engine/eval").CombinedOutput()
	if err != nil {
		b.Fatalf("mapping benchmark: %v\n%s", err, out)
	}
	re := regexp.MustCompile(`([0-9.]+) cpu-ns/op`)
	var best float64
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		if best == 0 || v < best {
			best = v
		}
	}
	if best == 0 {
		b.Fatalf("no cpu-ns/op in the mapping benchmark's output:\n%s", out)
	}
	return time.Duration(best)
}

// BenchmarkTablePath loads two table specs at about 10k and 200k rows,
// each in its own ferry process, at latency 0: Humanitec's fan-out
// (engine/testdata/perf/humanitec-tables.yaml, 36 and 720 applications)
// and Harness's single paged project list (harness-projects.yaml). It
// reports peak RSS at both sizes and their ratio (the target: at most
// 1.2), and CPU per row written at both sizes as a ratio to the mapping
// benchmark's CPU per record measured in the same run (the target: at
// most 2, flat as the data grows).
func BenchmarkTablePath(b *testing.B) {
	bin := ferryBinary(b)
	bins := map[string]string{"": bin}
	if base := os.Getenv("FERRY_BENCH_BASE"); base != "" {
		bins["base_"] = base
	}
	mapping := mappingCost(b)
	b.ReportMetric(float64(mapping.Nanoseconds())/1000, "mapping-cpu-us/rec")
	type scenario struct {
		name string
		spec string
		sets func(small bool) map[string]string
	}
	scenarios := []scenario{
		{"humanitec", "../../engine/testdata/perf/humanitec-tables.yaml", func(small bool) map[string]string {
			apps := 720
			if small {
				apps = 36
			}
			srv, org := humanitecOrg(b, apps)
			return map[string]string{"org_id": org.ID, "api_url": srv.URL(), "api_token": humanitec.DefaultToken}
		}},
		{"harness", "../../engine/testdata/perf/harness-projects.yaml", func(small bool) map[string]string {
			n := 200_000
			if small {
				n = 10_000
			}
			return map[string]string{"account_id": "acct", "api_token": "key", "base_url": projectsServer(b, n)}
		}},
	}
	for _, sc := range scenarios {
		b.Run(sc.name, func(b *testing.B) {
			smallSets, largeSets := sc.sets(true), sc.sets(false)
			specs := map[string]string{"": sc.spec, "base_": sc.spec}
			if os.Getenv("FERRY_BENCH_BASE_NO_TOTALS") != "" {
				specs["base_"] = withoutTotals(b, sc.spec)
			}
			for range b.N {
				for prefix, bin := range bins {
					small := runFerry(b, bin, specs[prefix], smallSets)
					large := runFerry(b, bin, specs[prefix], largeSets)
					reportSizes(b, prefix, "row", "rows", small, large, mapping)
				}
			}
		})
	}
}

// withoutTotals is spec without its paginate totals, for a base binary
// from before they existed (FERRY_BENCH_BASE_NO_TOTALS=1): the ratio to it
// is then what checking them costs too. Otherwise both binaries run the
// same spec: given to a base that knows totals, the spec without them
// spared it the checks and made the ratio look worse than the change.
func withoutTotals(b *testing.B, spec string) string {
	b.Helper()
	src, err := os.ReadFile(spec)
	if err != nil {
		b.Fatal(err)
	}
	var kept []string
	for _, line := range strings.Split(string(src), "\n") {
		if t := strings.TrimSpace(line); !strings.HasPrefix(t, "total: ") && !strings.HasPrefix(t, "total_header: ") {
			kept = append(kept, line)
		}
	}
	out := filepath.Join(b.TempDir(), filepath.Base(spec))
	if err := os.WriteFile(out, []byte(strings.Join(kept, "\n")), 0o644); err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkPortPath runs specs/humanitec.yaml with the real binary into
// the Port simulator at about 10k and 200k entities and reports the peak
// RSS of each and their ratio (entities wait in the Port sink's on-disk
// spool; the target is 1.2), and CPU per entity, also over the mapping
// benchmark's CPU per record in the same run.
func BenchmarkPortPath(b *testing.B) {
	bin := ferryBinary(b)
	bins := map[string]string{"": bin}
	if base := os.Getenv("FERRY_BENCH_BASE"); base != "" {
		bins["base_"] = base
	}
	mapping := mappingCost(b)
	b.ReportMetric(float64(mapping.Nanoseconds())/1000, "mapping-cpu-us/rec")
	sizes := map[string]humanitec.Size{
		"small": {Apps: 35, EnvsPerApp: 5, WorkloadsPerEnv: 8, ValuesPerApp: 10, SetsPerApp: 4, DeltasPerApp: 6, Pipelines: 700, Users: 120, Groups: 12},
		"large": {Apps: 700, EnvsPerApp: 5, WorkloadsPerEnv: 8, ValuesPerApp: 10, SetsPerApp: 4, DeltasPerApp: 6, Pipelines: 14000, Users: 2400, Groups: 240},
	}
	for range b.N {
		got := map[string]child{}
		// Each binary in turn at each size: a loaded machine slows both alike.
		for _, name := range []string{"small", "large"} {
			org := humanitec.Generate(1, sizes[name])
			for prefix, bin := range bins {
				hum, err := humanitec.Start(context.Background(), org, humanitec.Options{})
				if err != nil {
					b.Fatal(err)
				}
				pt := portsim.New(portsim.Options{RateLimit: -1})
				got[prefix+name] = runFerry(b, bin, "../../specs/humanitec.yaml",
					map[string]string{"org_id": org.ID, "api_url": hum.URL(), "api_token": humanitec.DefaultToken},
					"PORT_CLIENT_ID="+pt.ClientID(), "PORT_CLIENT_SECRET="+pt.ClientSecret(), "PORT_BASE_URL="+pt.URL(), "TMPDIR="+b.TempDir())
				pt.Close()
				hum.Close()
			}
		}
		for prefix := range bins {
			reportSizes(b, prefix, "entity", "entities", got[prefix+"small"], got[prefix+"large"], mapping)
		}
		if _, ok := bins["base_"]; ok {
			b.ReportMetric(got["large"].cpuPer()/got["base_large"].cpuPer(), "cpu-large/base")
			b.ReportMetric(got["small"].cpuPer()/got["base_small"].cpuPer(), "cpu-small/base")
		}
	}
}

// hiddenLimitServer is an API with an unannounced limit: more than limit
// requests within any second (sliding) get 429 with Retry-After (whole
// seconds until a slot frees). Every answer takes latency. It serves 30
// parents, each with pages of items.
type hiddenLimitServer struct {
	limit   int
	latency time.Duration
	pages   int
	// spent: a 429 also says X-RateLimit-Remaining 0 until a slot frees
	// (X-RateLimit-Reset), as a per-second limit may; nothing else does.
	spent bool

	mu       sync.Mutex
	first    time.Time
	accepted []time.Time
	ok, rej  int
	// rejectedAt: when each 429 was sent, since the first request (a slow
	// run's log says when its rejections came).
	rejectedAt []time.Duration
}

func (s *hiddenLimitServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	time.Sleep(s.latency)
	s.mu.Lock()
	now := time.Now()
	if s.first.IsZero() {
		s.first = now
	}
	for len(s.accepted) > 0 && now.Sub(s.accepted[0]) >= time.Second {
		s.accepted = s.accepted[1:]
	}
	if len(s.accepted) >= s.limit {
		s.rej++
		s.rejectedAt = append(s.rejectedAt, now.Sub(s.first).Round(time.Millisecond))
		wait := s.accepted[0].Add(time.Second).Sub(now)
		s.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
		if s.spent {
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
		}
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	s.accepted = append(s.accepted, now)
	s.ok++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/parents" {
		var ids []string
		for i := range 30 {
			ids = append(ids, fmt.Sprintf(`{"id":"p%d"}`, i))
		}
		fmt.Fprint(w, "["+strings.Join(ids, ",")+"]")
		return
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	var items []string
	for i := range 10 {
		items = append(items, fmt.Sprintf(`{"id":%d,"parent":%q}`, page*10+i, r.URL.Path))
	}
	fmt.Fprintf(w, `{"total":%d,"items":[%s]}`, s.pages, strings.Join(items, ","))
}

func (s *hiddenLimitServer) counts() (ok, rejected int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ok, s.rej
}

// BenchmarkAdaptiveRate: a fan-out of 30 parents × 30 pages (901 requests)
// at concurrency 8 against an API with a hidden limit of 30 requests a
// second (429 with Retry-After) and 20 ms latency, with no rate_limit in
// the spec. It reports wall time over requests ÷ limit (the target: at
// most 1.2) and the share of requests rejected (at most 3 %); and, for
// comparison, the same spec with a guessed rate_limit of 20/s, the
// Humanitec spec's old guess; and (spent_) the same limit whose 429s say
// the budget is spent until a slot frees, which must be learnt as well.
func BenchmarkAdaptiveRate(b *testing.B) {
	bin := ferryBinary(b)
	bins := map[string]string{"": bin}
	if base := os.Getenv("FERRY_BENCH_BASE"); base != "" {
		bins["base_"] = base
	}
	const limit, pages = 30, 30
	specFor := func(url, rateLimit string) string {
		path := filepath.Join(b.TempDir(), "spec.yaml")
		src := fmt.Sprintf(`version: 1
name: hidden
http:
  base_url: %s
  concurrency: 8
  retry: {attempts: 10, on: [429, 500, 502, 503, 504], initial: 500ms, max: 30s}
%s
streams:
  owners:
    request: {path: /parents}
  items:
    for_each: owners
    request:
      path: /parents/${ parent.id }/items
    records: .items[]
    paginate: {type: page, param: page, start: 0, total_pages: .total}
tables:
  items: {from: items, primary_key: [parent, id]}
`, url, rateLimit)
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			b.Fatal(err)
		}
		return path
	}
	run := func(b *testing.B, bin, rateLimit, prefix string) {
		s := &hiddenLimitServer{limit: limit, latency: 20 * time.Millisecond, pages: pages, spent: strings.HasPrefix(prefix, "spent_")}
		srv := httptest.NewServer(s)
		defer srv.Close()
		c := runFerryArgs(b, bin, specFor(srv.URL, rateLimit), nil, []string{"--log-level", "debug"})
		ok, rej := s.counts()
		if c.rows != 30*pages*10 {
			b.Fatalf("%d rows, want %d", c.rows, 30*pages*10)
		}
		bound := time.Duration(ok) * time.Second / limit
		if ratio := float64(c.wall) / float64(bound); ratio > 1.2 {
			s.mu.Lock()
			var hosts bytes.Buffer
			_ = json.Compact(&hosts, c.hosts)
			var cuts []string
			for _, l := range strings.Split(c.output, "\n") {
				if strings.Contains(l, "http rate cut") {
					cuts = append(cuts, l)
				}
			}
			b.Logf("%swall/bound %.3f (wall %v): hosts %s; 429s at %v; cuts:\n%s", prefix, ratio, c.wall.Round(time.Millisecond), hosts.String(), s.rejectedAt, strings.Join(cuts, "\n"))
			s.mu.Unlock()
		}
		b.ReportMetric(float64(c.wall)/float64(bound), prefix+"wall/bound")
		b.ReportMetric(100*float64(rej)/float64(ok+rej), prefix+"rejected-%")
		b.ReportMetric(float64(ok+rej), prefix+"requests")
	}
	for range b.N {
		for prefix, bin := range bins {
			run(b, bin, "", prefix)
		}
		run(b, bin, "  rate_limit: {per_second: 20, burst: 10}", "guessed20_")
		run(b, bin, "", "spent_")
	}
}

// BenchmarkPortFloor runs specs/humanitec.yaml at about 200k entities into
// the Port simulator and then as a dry run (extraction, mapping and
// validation, every entity printed as JSON, no sink), and reports the CPU
// per entity of each over the mapping benchmark's: the dry run is the
// floor that no Port sink can go under, so the gap between the two is all
// the sink's work.
func BenchmarkPortFloor(b *testing.B) {
	bin := ferryBinary(b)
	mapping := mappingCost(b)
	b.ReportMetric(float64(mapping.Nanoseconds())/1000, "mapping-cpu-us/rec")
	org := humanitec.Generate(1, humanitec.Size{Apps: 700, EnvsPerApp: 5, WorkloadsPerEnv: 8, ValuesPerApp: 10, SetsPerApp: 4, DeltasPerApp: 6, Pipelines: 14000, Users: 2400, Groups: 240})
	for range b.N {
		hum, err := humanitec.Start(context.Background(), org, humanitec.Options{})
		if err != nil {
			b.Fatal(err)
		}
		sets := map[string]string{"org_id": org.ID, "api_url": hum.URL(), "api_token": humanitec.DefaultToken}
		pt := portsim.New(portsim.Options{RateLimit: -1})
		full := runFerry(b, bin, "../../specs/humanitec.yaml", sets,
			"PORT_CLIENT_ID="+pt.ClientID(), "PORT_CLIENT_SECRET="+pt.ClientSecret(), "PORT_BASE_URL="+pt.URL(), "TMPDIR="+b.TempDir())
		pt.Close()
		dry := dryRunCPU(b, bin, "../../specs/humanitec.yaml", sets)
		hum.Close()
		if full.rows == 0 {
			b.Fatal("the full run wrote no entity")
		}
		perDry := float64(dry.Nanoseconds()) / float64(full.rows)
		b.ReportMetric(full.cpuPer()/float64(mapping.Nanoseconds()), "full/mapping")
		b.ReportMetric(perDry/float64(mapping.Nanoseconds()), "dry/mapping")
		b.ReportMetric(perDry/full.cpuPer(), "dry/full")
	}
}

// dryRunCPU runs `ferry run --dry-run` of spec with its output discarded
// and returns the child's CPU time (user and system).
func dryRunCPU(b *testing.B, bin, spec string, sets map[string]string) time.Duration {
	b.Helper()
	args := []string{"run", spec, "--dry-run", "--progress", "none"}
	for k, v := range sets {
		args = append(args, "--set", k+"="+v)
	}
	if dir := os.Getenv("FERRY_BENCH_PROFILES"); dir != "" {
		n := profileSeq.Add(1)
		args = append(args, "--cpuprofile", filepath.Join(dir, fmt.Sprintf("cpu-%d-dry.prof", n)))
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(slicesWithout(os.Environ(), "GOGC=", "GODEBUG="), "TMPDIR="+b.TempDir())
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, stderr.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
