//go:build linux

package port

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
	"github.com/ferry-etl/ferry/engine/sink"
)

// BenchmarkSinkMemory loads 10k and 200k entities (apps → envs →
// workloads, each with a few hundred bytes of properties) through the
// sink into the Port simulator, and reports the sink's peak RSS: the
// load runs in a child process (this test binary running
// TestSinkMemoryChild, at GOGC=400, which multiplies any growth of the
// live heap by five: stricter than the ferry command's fixed allowance) that
// generates its entities one at a time and reads its own peak (VmHWM) at
// the end; the simulator stays in this process. rss-ratio is the larger
// load's peak over the smaller's, in the same benchmark run: entities wait
// for their relation order in the sink's spool on disk, not on the heap
// (1.19 before the hash index), but Finish holds the hash index of the
// spool's runs, 12.5 bytes an entity (2.8 MB at 200k, with the runs'
// marks), which GOGC=400 multiplies: 1.65–1.68 (33–34 → 54–56 MB). The
// ferry command's allowance adds 32 MiB, not a multiple:
// cmd/ferry BenchmarkPortPath measures the real binary against the 1.2
// target. Run with -benchtime=1x.
func BenchmarkSinkMemory(b *testing.B) {
	var first float64
	for i, n := range []int{10_000, 200_000} {
		b.Run(fmt.Sprintf("entities=%d", n), func(b *testing.B) {
			var peak float64
			for b.Loop() {
				b.StopTimer()
				srv := portsim.New(portsim.Options{RateLimit: -1})
				b.StartTimer()
				peak = sinkChild(b, srv, n)
				b.StopTimer()
				srv.Close()
				b.StartTimer()
			}
			b.ReportMetric(peak, "peak-rss-MB")
			if i == 0 {
				first = peak
			} else if first > 0 {
				b.ReportMetric(peak/first, "rss-ratio")
			}
		})
	}
}

func sinkChild(b *testing.B, srv *portsim.Server, n int) float64 {
	b.Helper()
	cmd := exec.CommandContext(b.Context(), os.Args[0], "-test.run=^TestSinkMemoryChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "GOGC=400", "TMPDIR="+b.TempDir(),
		"FERRY_CHILD_N="+strconv.Itoa(n), "FERRY_CHILD_PORT_URL="+srv.URL(),
		"FERRY_CHILD_PORT_ID="+srv.ClientID(), "FERRY_CHILD_PORT_SECRET="+srv.ClientSecret())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		b.Fatalf("child: %v\n%s", err, out.String())
	}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PEAK_RSS_KB "); ok {
			kb, err := strconv.Atoi(v)
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatalf("child did not report its peak:\n%s", out.String())
	return 0
}

// TestSinkMemoryChild is BenchmarkSinkMemory's child process; it skips
// unless started by it.
func TestSinkMemoryChild(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("FERRY_CHILD_N"))
	if n == 0 {
		t.Skip("the child process of BenchmarkSinkMemory")
	}
	s, err := New(Config{BaseURL: os.Getenv("FERRY_CHILD_PORT_URL"), ClientID: os.Getenv("FERRY_CHILD_PORT_ID"),
		ClientSecret: os.Getenv("FERRY_CHILD_PORT_SECRET"), Owner: "bench", Concurrency: 8})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBlueprints(t.Context(), humanitecBlueprints(t, bpApp, bpEnv, bpWork)); err != nil {
		t.Fatal(err)
	}
	written := 0
	for e := range generate(n) {
		if err := s.Write(t.Context(), e); err != nil {
			t.Fatal(err)
		}
		written++
	}
	rep, err := s.Finish(t.Context(), map[string]bool{bpApp: true, bpEnv: true, bpWork: true})
	if err != nil || rep.Upserted != written {
		t.Fatalf("err %v: upserted %d of %d", err, rep.Upserted, written)
	}
	peak, err := vmHWM()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("PEAK_RSS_KB %d\n", peak)
}

// generate yields about n entities as benchEntities does, made one at a
// time (workloads first, so every one waits for its relation order), with
// a few hundred bytes of properties each.
func generate(n int) func(yield func(sink.Entity) bool) {
	return func(yield func(sink.Entity) bool) {
		pad := strings.Repeat("x", 200)
		for pass := range 3 {
			for a := range n / 10 {
				app := fmt.Sprintf("app-%06d", a)
				if pass == 2 {
					if !yield(sink.Entity{Blueprint: bpApp, Data: map[string]any{"identifier": app, "title": app,
						"properties": map[string]any{"createdAt": "2025-01-01T00:00:00Z"}, "relations": map[string]any{}}}) {
						return
					}
					continue
				}
				for _, envName := range []string{"dev", "staging", "prod"} {
					env := app + "/" + envName
					if pass == 1 {
						if !yield(sink.Entity{Blueprint: bpEnv, Data: map[string]any{"identifier": env, "title": envName,
							"properties": map[string]any{"type": envName + pad, "lastDeploymentStatus": "succeeded", "lastDeploymentDate": "2025-06-01T08:30:00Z"},
							"relations":  map[string]any{"humanitecApplication": app}}}) {
							return
						}
						continue
					}
					for _, w := range []string{"api", "worker"} {
						if !yield(sink.Entity{Blueprint: bpWork, Data: map[string]any{"identifier": env + "/" + w, "title": w,
							"properties": map[string]any{"class": "default" + pad, "status": "Running", "updatedAt": "2025-06-01T08:31:00Z"},
							"relations":  map[string]any{"humanitecEnvironment": env}}}) {
							return
						}
					}
				}
			}
		}
	}
}

// vmHWM is this process's peak resident set in KiB.
func vmHWM() (int, error) {
	st, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}
