package engine_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// pagedTwiceSpec reads one list four pages long (offset paging, a record a
// page) twice: once for an entity mapping only (its records decoded with
// the members the mapping reads) and once for a table (whole).
const pagedTwiceSpec = specHead + `streams:
  items:
    request: {path: /items}
    paginate: {type: offset, param: offset, size: 1, size_param: limit}
  rows:
    request: {path: /rows}
    paginate: {type: offset, param: offset, size: 1, size_param: limit}
tables:
  rows: {from: rows, primary_key: [id]}
port:
  blueprints: bp.json
  entities:
    - {blueprint: item, from: items, identifier: .id, properties: {v: .v}}
`

// TestReplacedCountedOnceAcrossPages: a stream's pages are read with one
// reused decoder, whose count of strings read as U+FFFD is each page's
// own: a string of the first page is counted once for the stream, not
// again with every page read after it by the same decoder.
func TestReplacedCountedOnceAcrossPages(t *testing.T) {
	fx := newFixture(t, pagedTwiceSpec, itemBlueprint)
	recs := []any{map[string]any{"id": "a", "v": "LONE"}, map[string]any{"id": "b", "v": "x"}, map[string]any{"id": "c", "v": "y"}, map[string]any{"id": "d", "v": "z"}}
	body := func(r *http.Request) string {
		var off int
		fmt.Sscan(r.URL.Query().Get("offset"), &off)
		b, _ := json.Marshal(recs[min(off, len(recs)):min(off+1, len(recs))])
		return strings.ReplaceAll(string(b), `"LONE"`, `"\ud800"`) // a lone surrogate escape
	}
	for _, path := range []string{"/items", "/rows"} {
		fx.mu.Lock()
		fx.routes[path] = func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body(r))) }
		fx.mu.Unlock()
	}
	res, err := fx.run(engine.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fx.entities("item"); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("entities %v", got)
	}
	for _, s := range res.Summary.Streams {
		if s.Replaced != 1 {
			t.Errorf("stream %s: %d strings counted replaced, want 1", s.Stream, s.Replaced)
		}
	}
}

const chainsBlueprints = `[{"identifier": "c", "title": "C", "schema": {"properties": {"status": {"type": "string"}, "grp": {"type": "string"}}, "required": []}, "relations": {}}]`

// chainsSpec reads many children's chains of one leaf stream at once
// (entities only, so decoded with the members they read) and of one
// table stream (decoded whole).
const chainsSpec = `version: 1
name: ch
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  retry: {attempts: 1}
  concurrency: 8
streams:
  ps:
    request: {path: /p}
  cs:
    for_each: ps
    request: {path: '/c/${ parent.id }'}
    paginate: {type: page, param: page}
  rs:
    for_each: ps
    request: {path: '/c/${ parent.id }'}
    paginate: {type: page, param: page}
tables:
  rs: {from: rs, primary_key: [id]}
port:
  blueprints: bp.json
  entities:
    - {blueprint: c, from: cs, identifier: .id, properties: {status: .status, grp: .grp}}
`

// TestConcurrentChainsKeepTheirOwnValues: the chains of one stream read
// their pages at once, each page with a decoder of the stream's that no
// other page uses meanwhile: every record keeps its own values (short
// strings a decoder keeps and hands out again included), whether decoded
// with some members or whole. Run with -race, a decoder two chains use
// at once is also a data race.
func TestConcurrentChainsKeepTheirOwnValues(t *testing.T) {
	const parents, perPage, pages = 24, 40, 2
	fx := newFixture(t, chainsSpec, chainsBlueprints)
	var ps []any
	for p := range parents {
		ps = append(ps, map[string]any{"id": fmt.Sprint("p", p)})
	}
	fx.json("/p", ps)
	for p := range parents {
		grp := fmt.Sprint("p", p)
		fx.mu.Lock()
		fx.routes["/c/"+grp] = func(w http.ResponseWriter, r *http.Request) {
			var page int
			fmt.Sscan(r.URL.Query().Get("page"), &page)
			recs := []any{}
			if page <= pages {
				for i := range perPage {
					recs = append(recs, map[string]any{"id": fmt.Sprintf("%s-%d-%d", grp, page, i), "status": "st-" + grp, "grp": grp,
						"pad": map[string]any{"k": strings.Repeat(grp, 20), "list": []any{grp, i}}})
				}
			}
			json.NewEncoder(w).Encode(recs)
		}
		fx.mu.Unlock()
	}
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range fx.port.Catalog().Entities {
		n++
		grp, _ := e.Properties["grp"].(string)
		if !strings.HasPrefix(e.Identifier, grp+"-") || e.Properties["status"] != "st-"+grp {
			t.Errorf("entity %s: %v", e.Identifier, e.Properties)
		}
	}
	if n != parents*perPage*pages {
		t.Errorf("%d entities, want %d", n, parents*perPage*pages)
	}
	rows := fx.query(`SELECT id || ' ' || status || ' ' || grp || ' ' || pad FROM "ch__rs"`)
	for _, r := range rows {
		f := strings.Fields(r)
		if len(f) != 4 || !strings.HasPrefix(f[0], f[2]+"-") || f[1] != "st-"+f[2] || !strings.Contains(f[3], strings.Repeat(f[2], 20)) {
			t.Errorf("row %q", r)
		}
	}
	if len(rows) != parents*perPage*pages {
		t.Errorf("%d rows, want %d", len(rows), parents*perPage*pages)
	}
}
