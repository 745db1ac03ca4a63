package spectest

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	src := `
spec: ../specs/api.yaml
runs:
  - name: small
    config: {org_id: acme, per_page: 5, since: 2024-01-01}
    cassette: rec/small
    snapshot: snap/small.jsonl
    streams: [apps]
    now: 2026-01-08T00:00:00Z
mappings:
  - name: never deployed
    blueprint: env
    record: {id: dev}
    parents:
      apps: &app {id: web}
    want: {identifier: web/dev}
  - name: no rows
    table: apps
    record: {id: 1}
    want: []
  - name: bad key
    table: apps
    record: {}
    error: primary key
`
	f, err := Parse(filepath.Join("t", "api.test.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := &File{
		Path: filepath.Join("t", "api.test.yaml"),
		Spec: filepath.Join("specs", "api.yaml"),
		Runs: []Run{{
			Pos: Pos{4, 5}, Name: "small",
			Config:   map[string]any{"org_id": "acme", "per_page": int64(5), "since": "2024-01-01"},
			Cassette: filepath.Join("t", "rec", "small"), Snapshot: filepath.Join("t", "snap", "small.jsonl"),
			Streams: []string{"apps"}, Now: time.Date(2026, 1, 8, 0, 0, 0, 0, time.UTC),
		}},
		Mappings: []Mapping{
			{Pos: Pos{11, 5}, Name: "never deployed", Blueprint: "env", Record: map[string]any{"id": "dev"},
				Parents: map[string]any{"apps": map[string]any{"id": "web"}}, Want: []any{map[string]any{"identifier": "web/dev"}}},
			{Pos: Pos{17, 5}, Name: "no rows", Table: "apps", Record: map[string]any{"id": int64(1)}, Want: []any{}},
			{Pos: Pos{21, 5}, Name: "bad key", Table: "apps", Record: map[string]any{}, Error: "primary key"},
		},
	}
	if diff := cmp.Diff(want, f); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
	// The spec defaults to the test file's name without .test.
	f, err = Parse("specs/humanitec.test.yaml", []byte("mappings: [{name: x, table: t, record: {}, want: []}]"))
	if err != nil || f.Spec != filepath.Join("specs", "humanitec.yaml") {
		t.Errorf("default spec = %v, %v", f, err)
	}
}

func TestParseErrors(t *testing.T) {
	src := `
runs:
  - name: a
    cassete: rec
  - name: a
    cassette: rec
    snapshot: s.jsonl
    now: yesterday
mappings:
  - name: m
    table: t
    blueprint: b
    record: {}
  - name: n
    table: t
    record: {}
`
	_, err := Parse("x.test.yaml", []byte(src))
	errs := AsErrors(err)
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{
		`x.test.yaml:3:5: runs[0]: cassette is required`,
		`x.test.yaml:3:5: runs[0]: snapshot is required`,
		`x.test.yaml:4:5: runs[0]: unknown key "cassete" (known: cassette, config, error, name, now, snapshot, streams)`,
		`x.test.yaml:5:5: two run cases are named "a"`,
		`x.test.yaml:8:10: runs[1].now: want an RFC 3339 time, e.g. 2026-01-08T00:00:00Z`,
		`x.test.yaml:10:5: mappings[0]: give table or blueprint: the mapping tested`,
		`x.test.yaml:10:5: mappings[0]: give want (the rows or entities) or error (what the failure says)`,
		`x.test.yaml:14:5: mappings[1]: give want (the rows or entities) or error (what the failure says)`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func key(target string, data map[string]any) string {
	if strings.HasPrefix(target, "blueprint ") {
		return toJSON(data["identifier"])
	}
	return toJSON(data["id"])
}

func lines(t *testing.T, text string) []Line {
	t.Helper()
	ls, err := ParseLines([]byte(text), key)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func TestFormatSorts(t *testing.T) {
	in := `{"table":"b","op":"upsert","row":{"id":2}}
{"blueprint":"env","op":"upsert","entity":{"identifier":"x/2","title":"Two"}}
{"table":"a","op":"upsert","row":{"id":9}}
{"blueprint":"env","op":"upsert","entity":{"identifier":"x/1","title":"One"}}
{"table":"b","op":"upsert","row":{"id":1}}
`
	want := `{"blueprint":"env","op":"upsert","entity":{"identifier":"x/1","title":"One"}}
{"blueprint":"env","op":"upsert","entity":{"identifier":"x/2","title":"Two"}}
{"table":"a","op":"upsert","row":{"id":9}}
{"table":"b","op":"upsert","row":{"id":1}}
{"table":"b","op":"upsert","row":{"id":2}}
`
	if got := string(Format(lines(t, in))); got != want {
		t.Errorf("Format =\n%s\nwant\n%s", got, want)
	}
	if _, err := ParseLines([]byte(`{"table":"a","op":"upsert"}`), key); err == nil || !strings.Contains(err.Error(), "line 1: want a table row or a blueprint entity") {
		t.Errorf("ParseLines of a line without a row: %v", err)
	}
}

func TestCompare(t *testing.T) {
	want := lines(t, `{"blueprint":"env","op":"upsert","entity":{"identifier":"x/1","properties":{"type":"dev","tags":["a","b"]},"title":"One"}}
{"blueprint":"env","op":"upsert","entity":{"identifier":"x/2","title":"Two"}}
{"table":"t","op":"upsert","row":{"id":1,"v":"a"}}
{"table":"t","op":"upsert","row":{"id":1,"v":"a"}}
{"table":"t","op":"upsert","row":{"id":7,"n":1.5}}
`)
	got := lines(t, `{"table":"t","op":"merge","row":{"id":7,"n":1.50}}
{"blueprint":"env","op":"upsert","entity":{"identifier":"x/1","properties":{"type":"prod","tags":["a","c"],"new":null},"title":"One"}}
{"table":"t","op":"upsert","row":{"id":1,"v":"a"}}
{"table":"t","op":"upsert","row":{"id":3}}
`)
	var text []string
	for _, d := range Compare(want, got) {
		text = append(text, d.Lines()...)
	}
	wantText := []string{
		`blueprint env, entity "x/1":`,
		`    properties.new: got null, not wanted`,
		`    properties.tags[1]: got "c", want "b"`,
		`    properties.type: got "prod", want "dev"`,
		`blueprint env, entity "x/2": wanted, not produced: {"blueprint":"env","op":"upsert","entity":{"identifier":"x/2","title":"Two"}}`,
		`table t, row 1: wanted, not produced: {"table":"t","op":"upsert","row":{"id":1,"v":"a"}}`,
		`table t, row 3: produced, not wanted: {"table":"t","op":"upsert","row":{"id":3}}`,
		`table t, row 7:`,
		`    op: got "merge", want "upsert"`,
		`    n: got 1.50, want 1.5`,
	}
	if diff := cmp.Diff(wantText, text); diff != "" {
		t.Errorf("Compare (-want +got):\n%s", diff)
	}
	if d := Compare(want, want); len(d) != 0 {
		t.Errorf("Compare of equal lines = %v", d)
	}
}

func TestFieldDiffs(t *testing.T) {
	var w, g any
	_ = json.Unmarshal([]byte(`{"a b":1,"l":[1,2],"m":{"x":1}}`), &w)
	_ = json.Unmarshal([]byte(`{"a b":2,"l":[1,2,3],"m":null}`), &g)
	got := FieldDiffs(w, g)
	want := []FieldDiff{
		{Path: `"a b"`, Want: "1", Got: "2"},
		{Path: "l", Want: "[1,2]", Got: "[1,2,3]"},
		{Path: "m", Want: `{"x":1}`, Got: "null"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FieldDiffs (-want +got):\n%s", diff)
	}
}

// TestCompareMergeOrder: the parts of a record merged from several streams
// (on_duplicate: merge) arrive in an order that is not fixed across
// streams, so which part is the upsert and which the merge changes from
// run to run: the parts are compared, not their order. A part that
// changed, or ops that changed otherwise, still differ.
func TestCompareMergeOrder(t *testing.T) {
	want := lines(t, `{"blueprint":"svc","op":"upsert","entity":{"identifier":"s1","properties":{"lang":"go"}}}
{"blueprint":"svc","op":"merge","entity":{"identifier":"s1","properties":{"tier":"gold"}}}
`)
	got := lines(t, `{"blueprint":"svc","op":"upsert","entity":{"identifier":"s1","properties":{"tier":"gold"}}}
{"blueprint":"svc","op":"merge","entity":{"identifier":"s1","properties":{"lang":"go"}}}
`)
	if d := Compare(want, got); len(d) != 0 {
		var text []string
		for _, x := range d {
			text = append(text, x.Lines()...)
		}
		t.Errorf("the same parts in another order differ:\n%s", strings.Join(text, "\n"))
	}
	if a, b := string(Format(want)), string(Format(got)); strings.Index(a, "lang") > strings.Index(a, "tier") != (strings.Index(b, "lang") > strings.Index(b, "tier")) {
		t.Errorf("snapshots of the same parts in another order list them in another order:\n%s\n%s", a, b)
	}
	changed := lines(t, `{"blueprint":"svc","op":"upsert","entity":{"identifier":"s1","properties":{"tier":"silver"}}}
{"blueprint":"svc","op":"merge","entity":{"identifier":"s1","properties":{"lang":"go"}}}
`)
	d := Compare(want, changed)
	if len(d) != 1 || len(d[0].Fields) != 1 || d[0].Fields[0].Path != "properties.tier" {
		t.Errorf("a changed part: %+v, want properties.tier", d)
	}
	both := lines(t, `{"blueprint":"svc","op":"upsert","entity":{"identifier":"s1","properties":{"lang":"go"}}}
{"blueprint":"svc","op":"upsert","entity":{"identifier":"s1","properties":{"tier":"gold"}}}
`)
	if d := Compare(want, both); len(d) == 0 {
		t.Error("a merge become an upsert does not differ")
	}
}
