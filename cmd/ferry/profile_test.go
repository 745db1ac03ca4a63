package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// TestProfileFiles: both profiles are written, as pprof's gzipped protobuf,
// when the run ends.
func TestProfileFiles(t *testing.T) {
	dir := t.TempDir()
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	p := defineProfileFlags(fs)
	cpu, mem := filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "mem.prof")
	if err := fs.Parse([]string{"--cpuprofile", cpu, "--memprofile", mem}); err != nil {
		t.Fatal(err)
	}
	stop, err := p.start()
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{cpu, mem} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
			t.Errorf("%s: not a pprof file (gzip), starts %q", f, data[:min(len(data), 8)])
		}
	}
}
