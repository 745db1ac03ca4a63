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
	"blueprints.json": {Data: []byte(`[{"identifier": "app", "title": "App", "schema": {"properties": {"name": {"type": "string"}}}, "relations": {"team": {"target": "team"}}}, {"identifier": "team", "title": "Team", "schema": {"properties": {}}}]`)},
}

func FuzzParse(f *testing.F) {
	for _, glob := range []string{"testdata/invalid/*.txtar", "testdata/valid/*.txtar"} {
		for _, c := range readCorpus(f, glob) {
			f.Add(c.src)
		}
	}
	// YAML corners the corpus does not reach.
	for _, seed := range []string{
		"version: 1\rname: d\rstreams:\r  a:\r    request: {path: /x}\r    records: (\r",
		"\xef\xbb\xbfversion: 1\nname: d\u2028streams: {a: {request: {path: /x}}}\n",
		"version: 1\nname: !!binary aGk=\nstreams:\n  ? [a, b]\n  : {request: {path: /x}}\n  !custom c: {request: {path: !!str 5}}\n",
		"version: 1\nname: &n d\nstreams:\n  *n : {request: {path: *n}}\n  b: {<<: [*n, {x: 1}], request: {<<: {path: /p}}}\n",
		"version: 1\nname: d\nstreams:\n  a:\n    request:\n      path: \"/a\\u00e9\\x41\\\n        /b${ \\\"x\\\" + 1 }\"\n    records: >2-\n        .[\n         | x\n",
		"version: 1\nname: d\nstreams:\n  a:\n    request: {path: '/${ parent.x ) }', method: POST, body: [&b {a: *b}]}\n",
		"%YAML 1.2\n---\nversion: 1\n...\n---\nname: d\n",
	} {
		f.Add([]byte(seed))
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
		lines := yamlLines(string(bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))))
		for _, e := range list {
			if e == nil {
				t.Fatal("nil *Error in the list")
			}
			if e.File != specName {
				t.Errorf("error names file %q: %v", e.File, e)
			}
			if e.Pos.Line < 1 || e.Pos.Line > len(lines)+1 || e.Pos.Col < 1 {
				t.Errorf("error outside the file (%d lines): %v", len(lines), e)
			} else if e.Pos.Line <= len(lines) && e.Pos.Col > utf8.RuneCountInString(lines[e.Pos.Line-1])+1 {
				t.Errorf("error past the end of line %q: %v", lines[e.Pos.Line-1], e)
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

// yamlLines splits src into lines as YAML counts them: \r\n, \r, \n, and the
// Unicode breaks NEL, LS and PS.
func yamlLines(src string) []string {
	r := strings.NewReplacer("\r\n", "\n", "\r", "\n", "\u0085", "\n", "\u2028", "\n", "\u2029", "\n")
	return strings.Split(r.Replace(src), "\n")
}

// FuzzBlueprints checks that any blueprints file gives problems only at
// places inside it (or the spec), never a panic.
func FuzzBlueprints(f *testing.F) {
	for _, s := range []string{
		genBlueprints, `[`, `{"a": 1}`, `[{"identifier": 1, "schema": [], "relations": {"x": 2}}]`,
		"[{\"title\": \"\xff\"}]", `[{"identifier": "a", "title": "A", "schema": {"properties": {"p": {}}}, "relations": {"r": {"target": "b"}}}] x`,
	} {
		f.Add([]byte(s))
	}
	spec := []byte("version: 1\nname: d\nhttp: {base_url: \"https://x.example.com\"}\nstreams:\n  a: {request: {path: /a}}\nport:\n  blueprints: bp.json\n  entities:\n    - {blueprint: a, from: a, identifier: .id, properties: {p: .p}, relations: {r: .r}}\n")
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(specName, spec, fstest.MapFS{"bp.json": {Data: data}})
		lines := strings.Split(string(data), "\n")
		for _, e := range append(AsList(err), file.Warnings()...) {
			if e.File != "bp.json" {
				continue
			}
			if e.Pos.Line < 1 || e.Pos.Line > len(lines) || e.Pos.Col < 1 || e.Pos.Col > utf8.RuneCountInString(lines[e.Pos.Line-1])+1 {
				t.Errorf("problem outside the file (%d lines): %v", len(lines), e)
			}
		}
	})
}
