package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
	"github.com/rogpeppe/go-internal/txtar"
)

// TestValidateCorpus runs `ferry validate` on every broken spec of the
// spec package's corpus (engine/spec/testdata/invalid/*.txtar) and checks
// the exact output and the exit code: the corpus is a CLI contract, not
// only a library one.
func TestValidateCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "engine", "spec", "testdata", "invalid", "*.txtar"))
	if err != nil || len(files) < 25 {
		t.Fatalf("want at least 25 corpus cases, got %d (%v)", len(files), err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			var want string
			for _, f := range ar.Files {
				if f.Name == "want" {
					want = string(f.Data)
					continue
				}
				path := filepath.Join(dir, f.Name)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, f.Data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			t.Chdir(dir)
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), []string{"validate", "spec.yaml"}, nil, &stdout, &stderr)
			if code != engine.ExitInvalidSpec {
				t.Errorf("exit code %d, want %d; stderr: %s", code, engine.ExitInvalidSpec, stderr.String())
			}
			if got := stdout.String(); got != want {
				t.Errorf("ferry validate output:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
