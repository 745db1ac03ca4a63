package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
			code := run(t.Context(), []string{"validate", "spec.yaml"}, nil, &stdout, &stderr)
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
			if code := run(t.Context(), []string{"validate", "--format", "github", "spec.yaml"}, nil, &stdout, &stderr); code != engine.ExitInvalidSpec {
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
				if code := run(t.Context(), tc.args, nil, &stdout, &stderr); code != tc.code {
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

// TestValidateBoundedMemory runs `ferry validate` under a 2 GiB address
// space limit (ulimit -v) on a 5 MiB spec with thousands of streams whose
// programs all differ, on a 2,000-deep for_each chain, and on a spec over
// the size limit: the first two are valid (exit 0), the last is refused
// with a positioned error (exit 3); none may crash.
func TestValidateBoundedMemory(t *testing.T) {
	if runtime.GOOS != "linux" || testing.Short() || raceEnabled() {
		t.Skip("needs Linux, and no -short or -race (the race detector reserves terabytes of address space)")
	}
	bin := ferryBin(t)
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	flat := func(size int) string {
		var b strings.Builder
		b.WriteString("version: 1\nname: big\nconfig:\n  org: {default: acme}\nhttp: {base_url: \"https://api.example.com\"}\nstreams:\n")
		for i := 0; b.Len() < size; i++ {
			fmt.Fprintf(&b, "  apps_%[1]d:\n    request:\n      path: /orgs/${ config.org }/apps_%[1]d\n      query: {n: \"${ %[1]d + 1 }\"}\n    records: .items_%[1]d[]\n"+
				"  envs_%[1]d:\n    for_each: apps_%[1]d\n    when: parent.kind != \"k%[1]d\"\n    request: {path: \"/apps/${ parent.id }/envs/%[1]d\"}\n    records: '.[] | .app_%[1]d = $parent.id | .root = $apps_%[1]d.id'\n", i)
		}
		return b.String()
	}
	var chain strings.Builder
	chain.WriteString("version: 1\nname: chain\nhttp: {base_url: \"https://api.example.com\"}\nstreams:\n  s0:\n    request: {path: /items}\n")
	for i := 1; i < 2000; i++ {
		fmt.Fprintf(&chain, "  s%d:\n    for_each: s%d\n    request: {path: \"/items/${ parents.s0.id }/${ parent.id }\"}\n    records: '.[] | .up = $parent.id | .root = $s0.id'\n", i, i-1)
	}
	for _, tc := range []struct {
		name, path string
		code       int
		want       string
	}{
		{"5MiB", write("flat.yaml", flat(5<<20)), engine.ExitOK, "1 spec(s) valid\n"},
		{"chain2000", write("chain.yaml", chain.String()), engine.ExitOK, "1 spec(s) valid\n"},
		{"9MiB", write("huge.yaml", flat(9<<20)), engine.ExitInvalidSpec, "file larger than 8 MiB, the most ferry reads"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("/bin/sh", "-c", `ulimit -v 2097152 && exec "$0" validate "$1"`, bin, tc.path)
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(string(out), tc.want) || strings.Contains(string(out), "goroutine") {
				t.Errorf("exit %d, want %d; output:\n%.2000s", code, tc.code, out)
			}
		})
	}
}
