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
			want := writeArchive(t, file, "want")
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), []string{"validate", "spec.yaml"}, &stdout, &stderr)
			if code == engine.ExitOK {
				t.Fatalf("a broken spec passed: %s", stdout.String())
			}
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
			if got, wantGH := stdout.String(), githubLines(t, want, "error"); got != wantGH {
				t.Errorf("ferry validate --format github output:\n%s\nwant:\n%s", got, wantGH)
			}
		})
	}
}

// TestValidateWarningCorpus runs `ferry validate` on the valid specs with
// likely mistakes of engine/spec/testdata/warn: each warning is printed at
// its place and the spec passes, unless --strict makes warnings fail it.
func TestValidateWarningCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "engine", "spec", "testdata", "warn", "*.txtar"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no warning corpus: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			warnings := writeArchive(t, file, "warnings")
			if warnings == "" {
				t.Fatal("the case has no warnings section")
			}
			var text strings.Builder
			for line := range strings.Lines(warnings) {
				parts := strings.SplitN(line, ":", 4)
				text.WriteString(strings.Join(parts[:3], ":") + ": warning:" + parts[3])
			}
			for _, tc := range []struct {
				args []string
				code int
				want string
			}{
				{[]string{"validate", "spec.yaml"}, engine.ExitOK, text.String() + "1 spec(s) valid\n"},
				{[]string{"validate", "--format", "github", "spec.yaml"}, engine.ExitOK, githubLines(t, warnings, "warning") + "1 spec(s) valid\n"},
				{[]string{"validate", "--strict", "spec.yaml"}, engine.ExitInvalidSpec, text.String() + "1 spec(s) with warnings (--strict)\n"},
			} {
				var stdout, stderr bytes.Buffer
				if code := run(t.Context(), tc.args, &stdout, &stderr); code != tc.code {
					t.Errorf("%v: exit code %d, want %d; stderr: %s", tc.args, code, tc.code, stderr.String())
				}
				if got := stdout.String(); got != tc.want {
					t.Errorf("%v output:\n%s\nwant:\n%s", tc.args, got, tc.want)
				}
			}
		})
	}
}

// writeArchive writes the files of a txtar case into a new directory, makes
// it the working directory, and returns the text of section keep.
func writeArchive(t *testing.T, file, keep string) string {
	t.Helper()
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var kept string
	for _, f := range ar.Files {
		if f.Name == keep {
			kept = string(f.Data)
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
	return kept
}

// githubLines turns "file:line:col: message" lines into the annotations
// of a level that --format github prints for them.
func githubLines(t *testing.T, text, level string) string {
	var b strings.Builder
	for line := range strings.Lines(text) {
		parts := strings.SplitN(strings.TrimSuffix(line, "\n"), ":", 4)
		if len(parts) != 4 {
			t.Fatalf("want line %q is not file:line:col: message", line)
		}
		msg := strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(strings.TrimPrefix(parts[3], " "))
		fmt.Fprintf(&b, "::%s file=%s,line=%s,col=%s::%s\n", level, parts[0], parts[1], parts[2], msg)
	}
	return b.String()
}
