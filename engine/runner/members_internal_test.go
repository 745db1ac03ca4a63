package runner

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine/spec"
)

// TestRecordMembersOfTheShippedSpec: which of the Humanitec spec's streams
// decode only some members of their records, and which: the leaves that
// only entity mappings read, each with what those mappings (and identify)
// read; the parents (apps, envs, groups), the lookup's source and the
// streams whose records program is more than a path, whole.
func TestRecordMembersOfTheShippedSpec(t *testing.T) {
	f, err := spec.Load("../../specs/humanitec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ident := "id,identifier,key,name,uuid"
	want := map[string]string{
		"apps": "", "envs": "", "groups": "", "group_members": "", "resources": "", "users": "",
		"graph_nodes":        ident + ",class,def_id,depends_on,driver_type,guresid,resource,type",
		"value_set_versions": ident + ",comment,created_at,created_by,result_of,updated_at",
		"sets":               ident + ",version",
		"deltas":             ident + ",metadata",
		"pipelines":          ident + ",created_at,etag,metadata,status,trigger_types,version",
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		s := f.Stream(name)
		got := recordMembers(f, s, planBody(s))
		keys := slices.Sorted(maps.Keys(got))
		w := strings.Split(want[name], ",")
		slices.Sort(w)
		if want[name] == "" {
			w = nil
		}
		if fmt.Sprint(keys) != fmt.Sprint(w) {
			t.Errorf("%s: members %v, want %v", name, keys, w)
		}
	}
}

// TestRecordMembersOnlyForLeavesEntitiesRead: any other reader of a
// record may see it whole, and so decodes it whole.
func TestRecordMembersOnlyForLeavesEntitiesRead(t *testing.T) {
	const bp = "port:\n  entities:\n    - {blueprint: b, from: s, identifier: .id, title: .t}\n"
	for _, tc := range []struct {
		name, streams, rest, want string
	}{
		{"entities only", `{request: {path: /x}, records: '.data[]'}`, bp, "id,identifier,key,name,t,uuid"},
		{"a key program", `{request: {path: /x}, key: .k}`, bp, "id,identifier,k,key,name,t,uuid"},
		{"a key program seeing the record", `{request: {path: /x}, key: 'tojson'}`, bp, ""},
		{"a table", `{request: {path: /x}}`, bp + "tables:\n  t: {from: s, primary_key: [id]}\n", ""},
		{"a child", "{request: {path: /x}}\n  c: {for_each: s, request: {path: '/c/${ parent.id }'}}", bp, ""},
		{"a batch", "{for_each: p, request: {path: /x}}\n  p: {request: {path: /p}}\n  c: {for_each: p, batch: s, request: {path: /c}}", bp, ""},
		{"below a parent", "{for_each: p, request: {path: /x}}\n  p: {request: {path: /p}}", bp, "id,identifier,key,name,t,uuid"},
		{"a lookup", `{request: {path: /x}}`, bp + "lookups:\n  l: {from: s, key: .id, value: .v}\n", ""},
		{"recursive", `{request: {path: /x}, recurse: {when: .folder, max_depth: 3}}`, bp, ""},
		{"incremental", `{request: {path: /x}, incremental: {cursor: .at}}`, bp, ""},
		{"stop_when", `{request: {path: /x}, records: '.data[]', paginate: {type: page, param: p, stop_when: 'len(records) == 0'}}`, bp, ""},
		{"a records program after the list", `{request: {path: /x}, records: '.data[] | select(.ok)'}`, bp, ""},
		{"a body read whole", `{request: {path: /x}, records: '.data'}`, bp, ""},
		{"NDJSON", `{request: {path: /x}, response: {format: ndjson}}`, bp, ""},
		{"a mapping outside the subset", `{request: {path: /x}}`, "port:\n  entities:\n    - {blueprint: b, from: s, identifier: .id, properties: {all: 'tojson'}}\n", ""},
		{"a relation seeing the record", `{request: {path: /x}}`, "port:\n  entities:\n    - {blueprint: b, from: s, identifier: .id, relations: {r: '.'}}\n", ""},
		{"an icon seeing the record", `{request: {path: /x}}`, "port:\n  entities:\n    - {blueprint: b, from: s, identifier: .id, icon: clean_title}\n", ""},
		{"a team seeing the record", `{request: {path: /x}}`, "port:\n  entities:\n    - {blueprint: b, from: s, identifier: .id, team: 'if .a then .b end'}\n", ""},
		{"a selector seeing the record", `{request: {path: /x}}`, "port:\n  entities:\n    - {blueprint: b, from: s, identifier: .id, selector: 'has(\"a\")'}\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := fmt.Sprintf("version: 1\nname: t\nhttp: {base_url: \"https://x\"}\nstreams:\n  s: %s\n%s", tc.streams, tc.rest)
			f, err := spec.Parse("spec.yaml", []byte(src), nil)
			if err != nil {
				t.Fatal(err)
			}
			s := f.Stream("s")
			got := strings.Join(slices.Sorted(maps.Keys(recordMembers(f, s, planBody(s)))), ",")
			if got != tc.want {
				t.Errorf("members %q, want %q", got, tc.want)
			}
		})
	}
}
