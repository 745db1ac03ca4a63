package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"unicode/utf8"
)

// fuzzFS is what every fuzzed spec may refer to.
var fuzzFS = fstest.MapFS{
	"blueprints.json": {Data: []byte(`[{"identifier": "app", "schema": {"properties": {"name": {}}}, "relations": {"team": {}}}]`)},
}

func FuzzParse(f *testing.F) {
	for _, glob := range []string{"testdata/invalid/*.txtar", "testdata/valid/*.txtar"} {
		for _, c := range readCorpus(f, glob) {
			f.Add(c.src)
		}
	}
	shipped, _ := filepath.Glob("../../specs/*.yaml")
	for _, path := range shipped {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		file, err := Parse(specName, src, fuzzFS)
		if file == nil {
			t.Fatal("Parse returned a nil *File")
		}
		if err == nil {
			return
		}
		list, ok := err.(ErrorList)
		if !ok || len(list) == 0 {
			t.Fatalf("Parse error is %T %v, want a non-empty ErrorList", err, err)
		}
		if len(AsList(err)) != len(list) {
			t.Fatalf("AsList lost errors")
		}
		lines := len(strings.Split(string(bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))), "\n"))
		for _, e := range list {
			if e == nil {
				t.Fatal("nil *Error in the list")
			}
			if e.File != specName {
				t.Errorf("error names file %q: %v", e.File, e)
			}
			if e.Pos.Line < 1 || e.Pos.Line > lines+1 || e.Pos.Col < 1 {
				t.Errorf("error outside the file (%d lines): %v", lines, e)
			}
			if e.Msg == "" || !utf8.ValidString(e.Path) {
				t.Errorf("error without a message or with a broken path: %#v", e)
			}
		}
		// Errors come sorted by position.
		for i := 1; i < len(list); i++ {
			a, b := list[i-1].Pos, list[i].Pos
			if a.Line > b.Line || a.Line == b.Line && a.Col > b.Col {
				t.Errorf("errors out of order: %v before %v", list[i-1], list[i])
			}
		}
	})
}
