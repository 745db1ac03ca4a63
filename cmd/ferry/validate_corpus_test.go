package main

import (
	"bytes"
	"fmt"
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
			code := run(t.Context(), []string{"validate", "spec.yaml"}, &stdout, &stderr)
			if code != engine.ExitInvalidSpec {
				t.Errorf("exit code %d, want %d; stderr: %s", code, engine.ExitInvalidSpec, stderr.String())
			}
			if got := stdout.String(); got != want {
				t.Errorf("ferry validate output:\n%s\nwant:\n%s", got, want)
			}
			// The same problems as GitHub annotations, each on the file
			// it is in (a side file's problems annotate that file).
			stdout.Reset()
			if code := run(t.Context(), []string{"validate", "--format", "github", "spec.yaml"}, &stdout, &stderr); code != engine.ExitInvalidSpec {
				t.Errorf("--format github: exit code %d", code)
			}
			if got, wantGH := stdout.String(), githubLines(t, want); got != wantGH {
				t.Errorf("ferry validate --format github output:\n%s\nwant:\n%s", got, wantGH)
			}
		})
	}
}

// githubLines turns "file:line:col: message" lines into the annotations
// --format github prints for them.
func githubLines(t *testing.T, text string) string {
	var b strings.Builder
	for line := range strings.Lines(text) {
		parts := strings.SplitN(strings.TrimSuffix(line, "\n"), ":", 4)
		if len(parts) != 4 {
			t.Fatalf("want line %q is not file:line:col: message", line)
		}
		msg := strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(strings.TrimPrefix(parts[3], " "))
		fmt.Fprintf(&b, "::error file=%s,line=%s,col=%s::%s\n", parts[0], parts[1], parts[2], msg)
	}
	return b.String()
}
