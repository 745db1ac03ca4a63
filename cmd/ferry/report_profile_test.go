package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestReportWhenProfileFails: a --cpuprofile that cannot be created is a
// usage error found once the flags are read; the --report, written
// however a run ends from then on, says so (status usage, exit 2) rather
// than being missing.
func TestReportWhenProfileFails(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	spec := "version: 1\nname: pf\nstreams:\n  items:\n    request: {url: 'http://127.0.0.1:1/items'}\ntables:\n  items: {from: items}\n"
	if err := os.WriteFile("pf.yaml", []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"run", "pf.yaml", "--progress", "none", "--report", "report.json", "--cpuprofile", filepath.Join(dir, "no-such-dir", "cpu.prof")}, strings.NewReader(""), &stdout, &stderr)
	if code != engine.ExitUsage {
		t.Fatalf("exit %d, want %d:\n%s", code, engine.ExitUsage, stderr.String())
	}
	data, err := os.ReadFile("report.json")
	if err != nil {
		t.Fatalf("no report: %v\n%s", err, stderr.String())
	}
	rep := checkReport(t, reportSchema(t), data)
	if rep.ExitCode != engine.ExitUsage || rep.Status != "usage" || !strings.Contains(rep.Error, "--cpuprofile") {
		t.Errorf("report: exit %d status %q error %q, want 2, usage and the --cpuprofile error", rep.ExitCode, rep.Status, rep.Error)
	}
}
