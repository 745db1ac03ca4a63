package engine_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/ferry-etl/ferry/"

// imports lists, per package directory under root, what its non-test Go
// files import from this module.
func imports(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if rest, ok := strings.CutPrefix(p, module); ok && !slices.Contains(out[dir], rest) {
				out[dir] = append(out[dir], rest)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSimulatorsStayInTheirRoom: no product package imports a simulator or
// the test API simulator; only the --demo wiring (engine/demo) starts them.
func TestSimulatorsStayInTheirRoom(t *testing.T) {
	root := filepath.Join("..")
	for dir, deps := range imports(t, filepath.Join(root, "engine")) {
		dir = strings.TrimPrefix(dir, "../")
		if strings.HasPrefix(dir, "engine/sim") || strings.HasPrefix(dir, "engine/apitest") || dir == "engine/demo" {
			continue
		}
		for _, d := range deps {
			if strings.HasPrefix(d, "engine/sim/") || d == "engine/apitest" {
				t.Errorf("%s imports the simulator %s; only engine/demo may", dir, d)
			}
		}
	}
}

// TestSealedFacade: the CLI talks to the engine through its façade (and
// the demo wiring) only.
func TestSealedFacade(t *testing.T) {
	for dir, deps := range imports(t, filepath.Join("..", "cmd")) {
		for _, d := range deps {
			if d != "engine" && d != "engine/demo" {
				t.Errorf("%s imports %s; the CLI may import engine and engine/demo only", dir, d)
			}
		}
	}
}
