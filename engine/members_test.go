package engine_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

const membersBlueprints = `[{"identifier": "owner", "title": "Owner", "schema": {"properties": {}, "required": []}, "relations": {}},
 {"identifier": "item", "title": "Item", "schema": {"properties": {"size": {"type": "number"}, "note": {"type": "string"}}, "required": []},
  "relations": {"owner": {"target": "owner", "required": false, "many": false}}},
 {"identifier": "tag", "title": "Tag", "schema": {"properties": {"label": {"type": "string"}}, "required": []}, "relations": {}}]`

// membersSpec: a leaf stream read only by entity mappings, each program
// reading a member no other program reads: the decoder keeps only the
// members they read, and each must be there.
const membersSpec = `version: 1
name: mb
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  retry: {attempts: 1}
streams:
  owners:
    request: {path: /owners}
  items:
    request: {path: /items}
    records: .data[]
port:
  blueprints: bp.json
  entities:
    - blueprint: owner
      from: owners
      identifier: .id
    - blueprint: item
      from: items
      selector: .kind_sel == "item"
      identifier: '"i-" + .ident'
      title: .title_src | clean_title
      icon: .icon_src
      team: .team_src
      properties:
        size: .sizes.value
        note: 'if .flag then .note_yes else .note_no end'
      relations:
        owner: .owner_ref // null
    - blueprint: tag
      from: items
      identifier: '"t-" + .tag_id'
      properties: {label: '{tag_label} | .tag_label'}
`

func TestProjectedRecordsKeepWhatEveryMappingReads(t *testing.T) {
	fx := newFixture(t, membersSpec, membersBlueprints)
	fx.json("/owners", []any{map[string]any{"id": "o1"}})
	big := map[string]any{"deep": []any{map[string]any{"x": strings.Repeat("y", 100)}}}
	fx.json("/items", map[string]any{"data": []any{
		map[string]any{"kind_sel": "item", "ident": "a", "title_src": "alpha", "icon_src": "Git", "team_src": "platform",
			"sizes": map[string]any{"value": 3, "unit": "m"}, "flag": true, "note_yes": "yes", "note_no": "no",
			"owner_ref": "o1", "tag_id": "x", "tag_label": "X", "big": big},
		map[string]any{"kind_sel": "other", "ident": "b", "tag_id": "y", "tag_label": "Y", "big": big},
	}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range fx.port.Catalog().Entities {
		title, icon := "", ""
		if e.Title != nil {
			title = *e.Title
		}
		if e.Icon != nil {
			icon = *e.Icon
		}
		delete(e.Properties, "ferryOwner")
		got[e.Identifier] = strings.Join([]string{title, icon, fmt.Sprint(e.Team), jsonText(t, e.Properties), jsonText(t, e.Relations)}, " ")
	}
	want := map[string]string{
		"o1":  "  <nil> {} {}",
		"i-a": `Alpha Git platform {"note":"yes","size":3} {"owner":"o1"}`,
		"t-x": `  <nil> {"label":"X"} {}`,
		"t-y": `  <nil> {"label":"Y"} {}`,
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("entity %s: %q, want %q", id, got[id], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("entities %v, want %d", got, len(want))
	}
}

func jsonText(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestUnreadMembersAreNotDecoded: a string read with U+FFFD (a lone
// surrogate) is counted for its stream where a program reads it, and not
// where it lies in a member no program reads, its key included: that
// member is only checked, not decoded (and nothing of it is written).
func TestUnreadMembersAreNotDecoded(t *testing.T) {
	for _, tc := range []struct {
		member string
		want   int64
	}{{"tag_label", 1}, {"unread", 0}, {`unread\udc00`, 0}} {
		fx := newFixture(t, membersSpec, membersBlueprints)
		fx.json("/owners", []any{})
		fx.raw("/items", 200, `{"data": [{"kind_sel": "none", "tag_id": "x", "tag_label": "X", "`+tc.member+`": "\ud800 lone"}]}`)
		res, err := fx.run(engine.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range res.Summary.Streams {
			if s.Stream == "items" && s.Replaced != tc.want {
				t.Errorf("lone surrogate in %s: %d strings counted replaced, want %d", tc.member, s.Replaced, tc.want)
			}
		}
	}
}

const differentialBlueprints = `[{"identifier": "item", "title": "Item", "schema": {"properties": {"v": {"type": "string"}, "total": {"type": "number"}, "label": {"type": "string"}}, "required": []}, "relations": {}}]`

// differentialSpec maps items to entities; with whole, a lookup filled
// from items also reads its records, so they are decoded whole.
func differentialSpec(whole bool) string {
	s := `version: 1
name: df
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  retry: {attempts: 1}
streams:
  items:
    request: {path: /items}
    records: .data[]
port:
  blueprints: bp.json
  entities:
    - blueprint: item
      from: items
      selector: '.kind != "skip"'
      identifier: '.id // error("no id")'
      title: '.who.first + " " + .who.last'
      properties:
        v: .v
        total: '.n + .m'
        label: 'if .flag then .label_yes else .label_no end'
`
	if whole {
		s += "lookups:\n  l: {from: items, key: .zz}\n"
	}
	return s
}

// TestProjectedRunMatchesWholeRun: the same answer read by a stream whose
// records keep only the members its mapping reads, and read whole, gives
// the same entities and the same failures, word for word: records that
// are no object, a key given twice (the last wins), programs that gojq
// answers (numbers, a type error, error("…")), a record selected out, an
// identifier of the wrong kind, and members no program reads, malformed
// UTF-8 in their keys included.
func TestProjectedRunMatchesWholeRun(t *testing.T) {
	body := `{"data": [
 {"id": "a", "who": {"first": "A", "last": "L"}, "v": "x", "n": 1, "m": 2.5, "flag": true, "label_yes": "Y", "big": {"deep": [1, {"x": "y"}]}},
 {"id": "b", "v": "dup", "big": 1, "id": "c", "label_no": "N"},
 "just a string",
 {"v": "no id", "n": 1},
 {"id": "e", "n": "str", "m": 1},
 {"id": "f", "kind": "skip", "n": "str"},
 [1, 2],
 {"id": "g", "unre\udc00d": {"x": "\ud800"}, "who": {"first": "G"}},
 {"id": 5},
 {"id": "h", "who": "flat"},
 null
]}`
	type outcome struct {
		entities map[string]string
		failures []string
	}
	run := func(whole bool) outcome {
		fx := newFixture(t, differentialSpec(whole), differentialBlueprints)
		fx.raw("/items", 200, body)
		res, err := fx.run(engine.RunOptions{})
		runErrorOf(t, err)
		o := outcome{entities: map[string]string{}}
		for _, e := range fx.port.Catalog().Entities {
			delete(e.Properties, "ferryOwner")
			title := "<nil>"
			if e.Title != nil {
				title = *e.Title
			}
			o.entities[e.Identifier] = title + " " + jsonText(t, e.Properties)
		}
		for _, f := range res.Summary.Failures {
			if f.Lookup != "" {
				continue // the whole run's lookup: .zz is null, nothing added
			}
			o.failures = append(o.failures, f.Stream+" | "+f.Parents+" | "+f.Blueprint+" | "+f.Err.Error())
		}
		slices.Sort(o.failures)
		return o
	}
	projected, whole := run(false), run(true)
	if !reflect.DeepEqual(projected, whole) {
		t.Errorf("projected:\n%v\nwhole:\n%v", projected, whole)
	}
	if len(whole.entities) != 3 || len(whole.failures) != 7 {
		t.Errorf("whole run: %d entities, %d failures, want 3 and 7 (the case changed?):\n%v", len(whole.entities), len(whole.failures), whole)
	}
}
