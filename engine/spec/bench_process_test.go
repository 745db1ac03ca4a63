package spec

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// BenchmarkValidateProcess validates generated specs of 1 MB and 5 MB, and
// a 2,000-deep chain, each in a process of its own, and reports its time
// and peak RSS against a process that only parses the same YAML with
// yaml.v3 (ratios time-x and rss-x). The repetitive specs share programs;
// the unique ones do not (the worst case).
//
//	go test ./engine/spec -run '^$' -bench ValidateProcess -benchtime 3x
func BenchmarkValidateProcess(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("peak RSS is read from Linux rusage")
	}
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "blueprints.json"), []byte(genBlueprints), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		src  []byte
	}{
		{"1MB", genSpec(1 << 20)},
		{"5MB", genSpec(5 << 20)},
		{"1MB_unique", genSpecUnique(1 << 20)},
		{"5MB_unique", genSpecUnique(5 << 20)},
		{"chain2000", genChain(2000)},
	} {
		path := filepath.Join(dir, c.name+".yaml")
		if err := os.WriteFile(path, c.src, 0o644); err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			var vt, yt time.Duration
			var vrss, yrss int64
			for b.Loop() {
				t, rss := helperProcess(b, "validate", path)
				vt, vrss = vt+t, max(vrss, rss)
				t, rss = helperProcess(b, "yaml", path)
				yt, yrss = yt+t, max(yrss, rss)
			}
			n := float64(b.N)
			b.ReportMetric(float64(vt.Milliseconds())/n, "validate-ms")
			b.ReportMetric(float64(yt.Milliseconds())/n, "yaml-ms")
			b.ReportMetric(float64(vt)/float64(yt), "time-x")
			b.ReportMetric(float64(vrss)/1024, "validate-peak-MB")
			b.ReportMetric(float64(yrss)/1024, "yaml-peak-MB")
			b.ReportMetric(float64(vrss)/float64(yrss), "rss-x")
		})
	}
}

// helperProcess runs TestHelperProcess in a new process and returns its
// wall time and peak RSS (KiB). The process reports its own peak (VmHWM):
// the rusage of a child started by vfork and exec counts the parent's.
func helperProcess(b *testing.B, mode, path string) (time.Duration, int64) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "FERRY_HELPER_MODE="+mode, "FERRY_HELPER_FILE="+path)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	elapsed := time.Since(start)
	if err != nil {
		b.Fatalf("%s %s: %v\n%s", mode, path, err, out)
	}
	i := bytes.Index(out, []byte("VmHWM:"))
	var kib int64
	if i < 0 {
		b.Fatalf("%s: no VmHWM in %s", mode, out)
	}
	if _, err := fmt.Sscanf(string(out[i:]), "VmHWM: %d kB", &kib); err != nil {
		b.Fatalf("%s: %v in %s", mode, err, out)
	}
	return elapsed, kib
}

// TestHelperProcess is the process BenchmarkValidateProcess measures:
// validating a spec (with the memory settings of `ferry validate`), or
// parsing it with yaml.v3 alone. It does nothing in an ordinary test run.
func TestHelperProcess(t *testing.T) {
	mode, path := os.Getenv("FERRY_HELPER_MODE"), os.Getenv("FERRY_HELPER_FILE")
	if mode == "" {
		t.Skip("run by BenchmarkValidateProcess")
	}
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(256 << 20)
	switch mode {
	case "validate":
		if _, err := Load(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "yaml":
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var n yaml.Node
		if err := yaml.Unmarshal(src, &n); err != nil {
			t.Fatal(err)
		}
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if strings.HasPrefix(line, "VmHWM:") {
			fmt.Print(strings.Join(strings.Fields(line), " ") + "\n")
		}
	}
}
