package spec

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/txtar"
)

var update = flag.Bool("update", false, "rewrite the want sections of testdata/invalid/*.txtar and specs/ferry.schema.json")

// specName is the file name every corpus spec is parsed under.
const specName = "spec.yaml"

// corpusCase is one txtar archive: the spec, the files it refers to, and
// (for invalid specs) the exact error lines expected.
type corpusCase struct {
	path     string
	ar       *txtar.Archive
	src      []byte
	fsys     fstest.MapFS
	want     string
	warnings string
}

func readCorpus(t testing.TB, glob string) []corpusCase {
	t.Helper()
	paths, err := filepath.Glob(glob)
	if err != nil {
		t.Fatal(err)
	}
	var cases []corpusCase
	for _, path := range paths {
		ar, err := txtar.ParseFile(path)
		if err != nil {
			t.Fatal(err)
		}
		c := corpusCase{path: path, ar: ar, fsys: fstest.MapFS{}}
		haveSpec := false
		for _, f := range ar.Files {
			switch f.Name {
			case specName:
				c.src, haveSpec = f.Data, true
			case "want":
				c.want = string(f.Data)
			case "warnings":
				c.warnings = string(f.Data)
			default:
				c.fsys[f.Name] = &fstest.MapFile{Data: f.Data}
			}
		}
		if !haveSpec {
			t.Fatalf("%s: no -- %s -- section", path, specName)
		}
		cases = append(cases, c)
	}
	return cases
}

// errorLines formats err as `ferry validate` prints it: one line per error.
func errorLines(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	list := AsList(err)
	if list == nil {
		t.Fatalf("Parse error is not a spec error list: %T %v", err, err)
	}
	var b strings.Builder
	for _, e := range list {
		b.WriteString(e.Error())
		b.WriteByte('\n')
	}
	return b.String()
}

func TestInvalidCorpus(t *testing.T) {
	cases := readCorpus(t, "testdata/invalid/*.txtar")
	if len(cases) < 30 {
		t.Errorf("invalid corpus has %d cases, want at least 30", len(cases))
	}
	for _, c := range cases {
		t.Run(strings.TrimSuffix(filepath.Base(c.path), ".txtar"), func(t *testing.T) {
			f, err := Parse(specName, c.src, c.fsys)
			if f == nil {
				t.Errorf("Parse returned a nil *File")
			}
			if err == nil {
				t.Fatalf("Parse succeeded, want errors:\n%s", c.want)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("Parse error is %T, want ErrorList", err)
			}
			got := errorLines(t, err)
			if *update {
				writeWant(t, c, got)
				return
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("Parse errors (-want +got):\n%s", diff)
			}
		})
	}
}

func writeWant(t *testing.T, c corpusCase, got string) {
	t.Helper()
	writeSection(t, c, "want", got)
}

func writeSection(t *testing.T, c corpusCase, name, got string) {
	t.Helper()
	found := false
	for i := range c.ar.Files {
		if c.ar.Files[i].Name == name {
			c.ar.Files[i].Data, found = []byte(got), true
		}
	}
	if !found {
		c.ar.Files = append(c.ar.Files, txtar.File{Name: name, Data: []byte(got)})
	}
	out := txtar.Format(c.ar)
	if old, err := os.ReadFile(c.path); err == nil && bytes.Equal(old, out) {
		return
	}
	if err := os.WriteFile(c.path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("updated %s", c.path)
}

func TestValidCorpus(t *testing.T) {
	cases := readCorpus(t, "testdata/valid/*.txtar")
	if len(cases) == 0 {
		t.Fatal("no valid specs in testdata/valid")
	}
	for _, c := range cases {
		t.Run(strings.TrimSuffix(filepath.Base(c.path), ".txtar"), func(t *testing.T) {
			if _, err := Parse(specName, c.src, c.fsys); err != nil {
				t.Errorf("Parse: %v", err)
			}
		})
	}
}

// TestWarningCorpus: valid specs with likely mistakes, each warned of at
// its place; the warnings section holds the exact lines.
func TestWarningCorpus(t *testing.T) {
	cases := readCorpus(t, "testdata/warn/*.txtar")
	if len(cases) == 0 {
		t.Fatal("no cases in testdata/warn")
	}
	for _, c := range cases {
		t.Run(strings.TrimSuffix(filepath.Base(c.path), ".txtar"), func(t *testing.T) {
			f, err := Parse(specName, c.src, c.fsys)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var b strings.Builder
			for _, w := range f.Warnings() {
				b.WriteString(w.Error())
				b.WriteByte('\n')
			}
			if *update {
				writeSection(t, c, "warnings", b.String())
				return
			}
			if diff := cmp.Diff(c.warnings, b.String()); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}
