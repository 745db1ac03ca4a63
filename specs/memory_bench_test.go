//go:build linux

package specs_test

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
	"time"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/sim/humanitec"
	portsim "github.com/ferry-etl/ferry/engine/sim/port"
)

// BenchmarkHumanitecPortMemory runs specs/humanitec.yaml for real, into
// the Port simulator, at two sizes of the Humanitec simulator's
// organisation (about 10k and 200k Port entities), and reports the peak
// RSS of the run: ferry alone, in a child process (this test binary,
// running TestPortRunChild with GOGC=400 as the ferry command sets it),
// the simulators staying in this one. The child reads its own peak
// (VmHWM) at the end: the rusage of a child started from a large parent
// counts the parent's pages it shared until exec. rss-ratio is the larger run's peak
// over the smaller's, measured in the same benchmark run (target ≤ 1.2:
// entities wait in the Port sink's on-disk spool, not on the heap). The
// spec's rate limit is lifted so only ferry and the simulators bound the
// time. Run with -benchtime=1x; the large size takes a few minutes.
func BenchmarkHumanitecPortMemory(b *testing.B) {
	sizes := []struct {
		name string
		size humanitec.Size
	}{
		{"entities=10k", humanitec.Size{Apps: 35, EnvsPerApp: 5, WorkloadsPerEnv: 8, ValuesPerApp: 10, SetsPerApp: 4, DeltasPerApp: 6, Pipelines: 700, Users: 120, Groups: 12}},
		{"entities=200k", humanitec.Size{Apps: 700, EnvsPerApp: 5, WorkloadsPerEnv: 8, ValuesPerApp: 10, SetsPerApp: 4, DeltasPerApp: 6, Pipelines: 14000, Users: 2400, Groups: 240}},
	}
	specPath := unlimitedSpec(b)
	var first float64
	for i, sz := range sizes {
		b.Run(sz.name, func(b *testing.B) {
			var rss float64
			var entities int
			var secs float64
			for b.Loop() {
				b.StopTimer()
				hum, err := humanitec.Start(b.Context(), humanitec.Generate(1, sz.size), humanitec.Options{})
				if err != nil {
					b.Fatal(err)
				}
				pt := portsim.New(portsim.Options{RateLimit: -1})
				b.StartTimer()
				start := time.Now()
				rss, entities = runChild(b, specPath, hum.URL(), pt)
				secs = time.Since(start).Seconds()
				b.StopTimer()
				pt.Close()
				hum.Close()
				b.StartTimer()
			}
			b.ReportMetric(rss, "peak-rss-MB")
			b.ReportMetric(float64(entities), "entities")
			b.ReportMetric(secs, "s/run")
			if i == 0 {
				first = rss
			} else if first > 0 {
				b.ReportMetric(rss/first, "rss-ratio")
			}
		})
	}
}

// runChild runs the spec in a child process and returns its peak RSS in
// MB and the entities it produced.
func runChild(b *testing.B, specPath, apiURL string, pt *portsim.Server) (float64, int) {
	b.Helper()
	cmd := exec.CommandContext(b.Context(), os.Args[0], "-test.run=^TestPortRunChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "GOGC=400",
		"FERRY_CHILD_SPEC="+specPath, "FERRY_CHILD_API_URL="+apiURL,
		"FERRY_CHILD_PORT_URL="+pt.URL(), "FERRY_CHILD_PORT_ID="+pt.ClientID(), "FERRY_CHILD_PORT_SECRET="+pt.ClientSecret(),
		"TMPDIR="+b.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		b.Fatalf("child run: %v\n%s", err, out.String())
	}
	entities, peak := -1, -1
	text := out.String()
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "ENTITIES "); ok {
			entities, _ = strconv.Atoi(n)
		}
		if n, ok := strings.CutPrefix(sc.Text(), "PEAK_RSS_KB "); ok {
			peak, _ = strconv.Atoi(n)
		}
	}
	if entities < 0 || peak < 0 {
		b.Fatalf("child said nothing of its entities or its peak RSS:\n%s", text)
	}
	return float64(peak) / 1024, entities
}

// peakRSS is this process's peak resident set in KiB (VmHWM).
func peakRSS() (int, error) {
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

// TestPortRunChild is BenchmarkHumanitecPortMemory's child process: a
// real run of the spec it is given, nothing else in the process. It skips
// unless started by the benchmark.
func TestPortRunChild(t *testing.T) {
	specPath := os.Getenv("FERRY_CHILD_SPEC")
	if specPath == "" {
		t.Skip("the child process of BenchmarkHumanitecPortMemory")
	}
	sp, err := engine.Load(specPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{Getenv: func(string) (string, bool) { return "", false }, Sets: map[string]string{
		"api_url": os.Getenv("FERRY_CHILD_API_URL"), "org_id": humanitec.DemoOrgID, "api_token": humanitec.DefaultToken,
	}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := engine.Run(t.Context(), sp, cfg, engine.RunOptions{Port: engine.PortOptions{
		BaseURL: os.Getenv("FERRY_CHILD_PORT_URL"), ClientID: os.Getenv("FERRY_CHILD_PORT_ID"), ClientSecret: os.Getenv("FERRY_CHILD_PORT_SECRET")}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range res.Entities {
		n += int(c)
	}
	if res.Dest.Port.Upserted != n {
		t.Fatalf("upserted %d of %d entities", res.Dest.Port.Upserted, n)
	}
	peak, err := peakRSS()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ENTITIES %d\nPEAK_RSS_KB %d\n", n, peak)
}
