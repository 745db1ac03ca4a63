package port

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/big"
	"slices"
	"strings"
	"testing"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
	"github.com/ferry-etl/ferry/engine/sink"
)

// valuesBlueprint has one property of each free-form type.
const valuesBlueprint = `{"identifier":"probe","title":"Probe","schema":{"properties":{
 "s":{"type":"string"},"n":{"type":"number"},"o":{"type":"object"},"a":{"type":"array"}}}}`

func probeEntity(id string, props map[string]any) sink.Entity {
	return sink.Entity{Blueprint: "probe", Data: map[string]any{"identifier": id, "properties": props, "relations": map[string]any{}}}
}

// A number beyond a double's range is reported with its entity, wherever
// it is — inside an object or array property too — and never sent: Port
// keeps numbers as doubles (in Port it would become something else; in
// the simulator, which keeps it, it made every later listing of the
// blueprint unreadable, so its reconciliation failed and nothing of it
// counted as unchanged).
func TestNumberBeyondDoubleReported(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bps := []json.RawMessage{json.RawMessage(valuesBlueprint)}
	huge, _ := new(big.Int).SetString("1"+strings.Repeat("0", 400), 10)
	ents := func() []sink.Entity {
		return []sink.Entity{
			probeEntity("keep", map[string]any{"o": map[string]any{"x": json.Number("1e300")}, "a": []any{json.Number("-0.5")}}),
			probeEntity("top", map[string]any{"n": json.Number("1e400")}),
			probeEntity("nested", map[string]any{"o": map[string]any{"x": map[string]any{"y": json.Number("1e400")}}}),
			probeEntity("list", map[string]any{"a": []any{"ok", []any{json.Number("-1e999")}}}),
			probeEntity("bigint", map[string]any{"o": map[string]any{"x": huge}}),
		}
	}
	complete := map[string]bool{"probe": true}
	rep, err := e.run(e.sink(), bps, ents(), complete)
	if !errors.Is(err, ErrEntitiesFailed) {
		t.Fatalf("Finish: %v, want ErrEntitiesFailed", err)
	}
	want := map[string]string{"top": "properties.n", "nested": "properties.o", "list": "properties.a", "bigint": "properties.o"}
	for _, x := range rep.Errors {
		field, ok := want[x.Identifier]
		if !ok || !strings.HasPrefix(x.Message, field+": ") || !strings.Contains(x.Message, "double") {
			t.Errorf("error %s: %s", x.Identifier, x.Message)
		}
		delete(want, x.Identifier)
	}
	if len(want) != 0 {
		t.Errorf("not reported: %v", want)
	}
	if got := keys(e.srv.Catalog()); len(got) != 1 || !got["probe:keep"] {
		t.Errorf("Port holds %v, want only probe:keep", got)
	}
	rep, err = e.run(e.sink(), bps, ents(), complete)
	if !errors.Is(err, ErrEntitiesFailed) || errors.Is(err, ErrReconcileFailed) {
		t.Errorf("rerun: %v, want entities failed and nothing else", err)
	}
	if rep.Unchanged != 1 || rep.Upserted != 0 || rep.Failed != 4 {
		t.Errorf("rerun: unchanged %d upserted %d failed %d, want 1, 0, 4", rep.Unchanged, rep.Upserted, rep.Failed)
	}
}

// An integer a double cannot hold exactly (past 2^53, and not a multiple
// of the power of two the double's spacing is there) fails its entity,
// wherever it is, naming blueprint, identifier and field and how to keep
// it (tostring in the mapping): Port keeps numbers as doubles and would
// hold another number, silently. Integers a double holds exactly (2^53,
// 2^60, 2^70) and decimals (rounded as any decimal is) pass, and reach
// Port as mapped.
func TestIntegerBeyondDoubleReported(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bps := []json.RawMessage{json.RawMessage(valuesBlueprint)}
	p64 := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 64), big.NewInt(1)) // 2^64+1, jq's *big.Int
	p70 := new(big.Int).Lsh(big.NewInt(1), 70)
	keep := map[string]any{"n": json.Number("1152921504606846976"), // 2^60
		"o": map[string]any{"a": 1 << 60, "b": p70, "c": json.Number("9007199254740992"), "d": json.Number("-9007199254740992"), "e": json.Number("0.1"), "f": int64(-1 << 62)},
		"a": []any{json.Number("1e300"), 9007199254740992, 2.5}}
	ents := []sink.Entity{
		probeEntity("keep", keep),
		probeEntity("top", map[string]any{"n": json.Number("9007199254740993")}),
		probeEntity("neg", map[string]any{"n": json.Number("-9007199254740993")}),
		probeEntity("jqint", map[string]any{"n": 1<<53 + 1}),
		probeEntity("nested", map[string]any{"o": map[string]any{"x": map[string]any{"y": int64(1<<62 + 1)}}}),
		probeEntity("list", map[string]any{"a": []any{"ok", []any{p64}}}),
		probeEntity("deep", map[string]any{"a": []any{map[string]any{"k": json.Number("123456789012345678901")}}}),
	}
	rep, err := e.run(e.sink(), bps, ents, map[string]bool{"probe": true})
	if !errors.Is(err, ErrEntitiesFailed) {
		t.Fatalf("Finish: %v, want ErrEntitiesFailed", err)
	}
	want := map[string]string{"top": "properties.n: ", "neg": "properties.n: ", "jqint": "properties.n: ",
		"nested": "properties.o: x: y: ", "list": "properties.a: item 1: item 0: ", "deep": "properties.a: item 0: k: "}
	for _, x := range rep.Errors {
		prefix, ok := want[x.Identifier]
		if !ok || !strings.HasPrefix(x.Message, prefix) || !strings.Contains(x.Message, "double") || !strings.Contains(x.Message, "tostring") {
			t.Errorf("error %s: %s", x.Identifier, x.Message)
		}
		if s := x.Error(); !strings.Contains(s, "blueprint probe") || !strings.Contains(s, fmt.Sprintf("%q", x.Identifier)) {
			t.Errorf("error %q names no blueprint or identifier", s)
		}
		delete(want, x.Identifier)
	}
	if len(want) != 0 {
		t.Errorf("not reported: %v", want)
	}
	got := keys(e.srv.Catalog())
	if len(got) != 1 || !got["probe:keep"] {
		t.Fatalf("Port holds %v, want only probe:keep", got)
	}
	for _, c := range e.srv.Catalog().Entities {
		b, _ := json.Marshal(c.Properties["n"])
		o, _ := json.Marshal(c.Properties["o"])
		if string(b) != "1152921504606846976" || !strings.Contains(string(o), `"b":1180591620717411303424`) {
			t.Errorf("Port holds n %s, o %s; want 2^60 and 2^70 as mapped", b, o)
		}
	}
}

// Port answers numbers as doubles: -0 as 0 (JSON has no negative zero to a
// JavaScript or a numeric column), a big integer rounded. The canonical
// form must see them as Port will, or an entity holding one is sent again
// on every run and never counts as unchanged.
func TestCanonNumbersAsPortKeepsThem(t *testing.T) {
	def := &Blueprint{Identifier: "probe", Properties: map[string]Property{
		"n": {Type: "number"}, "o": {Type: "object"}, "a": {Type: "array"},
	}}
	big70 := new(big.Int).Lsh(big.NewInt(1), 70)
	mapped := map[string]any{"identifier": "x", "properties": map[string]any{
		"n": json.Number("-0"),
		"o": map[string]any{"z": json.Number("-0.0"), "big": big70, "f": math.Copysign(0, -1)},
		"a": []any{json.Number("-0e5"), big70},
	}}
	stored := map[string]any{"identifier": "x", "properties": map[string]any{
		"n": 0.0,
		"o": map[string]any{"z": 0.0, "big": 1180591620717411303424.0, "f": 0.0},
		"a": []any{0.0, 1180591620717411303424.0},
	}}
	a, b := encodeCanon(canonEntity(def, mapped)), encodeCanon(canonEntity(def, stored))
	if string(a) != string(b) {
		t.Errorf("mapped %s\nstored %s", a, b)
	}
	// A real difference stays one.
	stored["properties"].(map[string]any)["n"] = 1.0
	if c := encodeCanon(canonEntity(def, stored)); string(a) == string(c) {
		t.Errorf("0 and 1 compare equal: %s", c)
	}
}

// What reaches Port is the entity as mapped, value for value, through the
// spool (encoded, stored, read back, relations spliced in): strings with
// escapes, quotes, braces and member names that look like the ones the
// splice looks for, U+2028, HTML characters, numbers of every form.
func TestValuesReachPortAsMapped(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bp := `{"identifier":"probe","title":"Probe","schema":{"properties":{
	 "s":{"type":"string"},"n":{"type":"number"},"o":{"type":"object"},"a":{"type":"array"}}},
	 "relations":{"peers":{"target":"probe","many":true,"required":false},"up":{"target":"probe","many":false,"required":false}}}`
	tricky := "a\"b\\c}{][,:\u2028\u2029<&>\u0001\t\n é 😀 \"relations\":{\"x\":1}"
	props := map[string]any{
		"s": tricky,
		"n": json.Number("-12.5e-3"),
		"o": map[string]any{
			"relations":  map[string]any{"properties": "}", "up": []any{"x"}},
			"properties": nil,
			tricky:       []any{json.Number("9007199254740992"), 1, 2.5, true, false, nil, map[string]any{}, []any{}},
			"":           "empty key",
		},
		"a": []any{tricky, map[string]any{"relations": tricky}, json.Number("0"), []any{nil}},
	}
	ents := []sink.Entity{
		{Blueprint: "probe", Data: map[string]any{"identifier": "t", "properties": map[string]any{}, "relations": map[string]any{}}},
		{Blueprint: "probe", Data: map[string]any{"identifier": "x", "title": tricky, "icon": "<i>", "team": []any{"b", "a"},
			"properties": props, "relations": map[string]any{"peers": []any{"t"}, "up": "t"}}},
	}
	if _, err := e.run(e.sink(), []json.RawMessage{json.RawMessage(bp)}, ents, map[string]bool{"probe": true}); err != nil {
		t.Fatal(err)
	}
	var got *portsim.CatalogEntity
	for _, c := range e.srv.Catalog().Entities {
		if c.Identifier == "x" {
			got = &c
		}
	}
	if got == nil {
		t.Fatal("x not in Port")
	}
	norm := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		d := json.NewDecoder(strings.NewReader(string(b)))
		d.UseNumber()
		var out any
		if err := d.Decode(&out); err != nil {
			t.Fatal(err)
		}
		b, _ = json.Marshal(out)
		return string(b)
	}
	wantProps := maps.Clone(props)
	wantProps[OwnerProperty] = "humanitec"
	if g, w := norm(got.Properties), norm(wantProps); g != w {
		t.Errorf("properties in Port\n%s\nwant\n%s", g, w)
	}
	if g, w := norm(got.Relations), norm(map[string]any{"peers": []any{"t"}, "up": "t"}); g != w {
		t.Errorf("relations in Port %s, want %s", g, w)
	}
	if got.Title == nil || *got.Title != tricky || got.Icon == nil || *got.Icon != "<i>" || norm(got.Team) != `["b","a"]` {
		t.Errorf("title %q icon %v team %v", deref(got.Title), deref(got.Icon), got.Team)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// A string that is not valid UTF-8 (jq's @base64d makes them) cannot go
// into JSON as it is: encoding writes U+FFFD for each bad byte, so Port
// would hold another value, and two object keys that differ only there
// would become one, one value lost. Such an entity is reported, not sent.
func TestInvalidUTF8Reported(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bps := []json.RawMessage{json.RawMessage(valuesBlueprint)}
	ent := func(id string, title any, team any, props map[string]any) sink.Entity {
		en := probeEntity(id, props)
		if title != nil {
			en.Data["title"] = title
		}
		if team != nil {
			en.Data["team"] = team
		}
		return en
	}
	ents := []sink.Entity{
		ent("keep", "T é 😀", []any{"t"}, map[string]any{"s": "\ufffd is fine", "o": map[string]any{"é": "ü"}}),
		ent("string", nil, nil, map[string]any{"s": "a\xffb"}),
		ent("key", nil, nil, map[string]any{"o": map[string]any{"a\xfe": json.Number("1"), "a\xff": json.Number("2")}}),
		ent("deep", nil, nil, map[string]any{"a": []any{"ok", map[string]any{"k": []any{"\xed\xa0\x80"}}}}),
		ent("title", "T\xff", nil, map[string]any{}),
		ent("team", nil, []any{"t", "u\xc3"}, map[string]any{}),
	}
	rep, err := e.run(e.sink(), bps, ents, map[string]bool{"probe": true})
	if !errors.Is(err, ErrEntitiesFailed) {
		t.Fatalf("Finish: %v, want ErrEntitiesFailed", err)
	}
	want := map[string]string{"string": "properties.s", "key": "properties.o", "deep": "properties.a", "title": "title", "team": "team"}
	for _, x := range rep.Errors {
		field, ok := want[x.Identifier]
		if !ok || !strings.HasPrefix(x.Message, field+": ") || !strings.Contains(x.Message, "UTF-8") {
			t.Errorf("error %s: %s", x.Identifier, x.Message)
		}
		delete(want, x.Identifier)
	}
	if len(want) != 0 {
		t.Errorf("not reported: %v", want)
	}
	if got := keys(e.srv.Catalog()); len(got) != 1 || !got["probe:keep"] {
		t.Errorf("Port holds %v, want only probe:keep", got)
	}
}

// TestCheckDoubleNumberForms: an integer is judged by its value, whatever
// its form (an integer literal, a fraction of zeros, an exponent, jq's int
// or *big.Int), against what Port answers for it: the integer itself when
// a double holds it exactly, else the shortest digits of the nearest
// double (JavaScript's, and the Port simulator's). So 9007199254740993.0
// fails as 9007199254740993 does, and an integer written as a double's
// shortest digits (18446744073709552000, 2^64 as JavaScript and Go write
// it) passes: Port answers that very number. The unchanged check (canon)
// sees every passing form as the double Port answers.
func TestCheckDoubleNumberForms(t *testing.T) {
	big64, _ := new(big.Int).SetString("18446744073709552000", 10)
	for _, v := range []any{json.Number("9007199254740993"), json.Number("9007199254740993.0"), json.Number("9007199254740993e0"),
		json.Number("90071992547409930E-1"), json.Number("-9007199254740993.000"), json.Number("18446744073709551615"),
		json.Number("123456789012345678901"), new(big.Int).SetUint64(1<<64 - 1), uint64(1<<64 - 1), int64(1<<62 + 1), 1<<53 + 1} {
		if err := checkDouble(v); err == nil || !strings.Contains(err.Error(), "tostring") {
			t.Errorf("checkDouble(%T %v) = %v, want refused (Port would hold another integer)", v, v, err)
		}
	}
	for _, c := range []struct {
		v    any
		port string // what Port answers for it
	}{
		{json.Number("1e20"), "100000000000000000000"},
		{json.Number("1152921504606846976"), "1152921504606846976"}, // 2^60, exact
		{json.Number("18446744073709552000"), "18446744073709552000"},
		{json.Number("-18446744073709552000"), "-18446744073709552000"},
		{json.Number("1.8446744073709552e19"), "18446744073709552000"},
		{json.Number("123456789012345680000"), "123456789012345680000"},
		{big64, "18446744073709552000"},
		{uint64(1 << 63), "9223372036854775808"},
		{json.Number("9007199254740992.0"), "9007199254740992"},
		{json.Number("0.1"), "0.1"},
		{json.Number("12345678901234567.89"), "12345678901234568"}, // a decimal: rounded as decimals are
		{1.0e300, "1e300"},
	} {
		if err := checkDouble(c.v); err != nil {
			t.Errorf("checkDouble(%T %v) = %v, want nil", c.v, c.v, err)
		}
		if got, want := canonValue(c.v), canonValue(json.Number(c.port)); got != want {
			t.Errorf("canonValue(%T %v) = %v, want %v as Port's answer %s", c.v, c.v, got, want, c.port)
		}
	}
}

// A NUL (U+0000) in any string of an entity fails that entity alone,
// before anything is sent: JSON stores such as PostgreSQL's jsonb refuse
// \u0000 in text, and Port does not document where it keeps entities, so
// sent it could fail the entity's whole bulk request, or be stored otherwise.
// The error names blueprint, identifier, field and the stream the entity
// was mapped from; the other entities are written.
func TestNULReported(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bp := `{"identifier":"probe","title":"Probe","schema":{"properties":{
	 "s":{"type":"string"},"n":{"type":"number"},"o":{"type":"object"},"a":{"type":"array"}}},
	 "relations":{"peers":{"target":"probe","many":true,"required":false}}}`
	ent := func(id string, extra map[string]any, props map[string]any) sink.Entity {
		en := probeEntity(id, props)
		en.Stream, en.Parents = "items", "p1"
		maps.Copy(en.Data, extra)
		return en
	}
	ents := []sink.Entity{
		ent("keep", map[string]any{"title": "T \u0001 ok", "team": []any{"t"}}, map[string]any{"s": "\\u0000 as text is fine", "o": map[string]any{"k": "v"}}),
		ent("string", nil, map[string]any{"s": "a\x00b"}),
		ent("key", nil, map[string]any{"o": map[string]any{"a\x00": json.Number("1")}}),
		ent("deep", nil, map[string]any{"a": []any{"ok", map[string]any{"k": []any{"\x00"}}}}),
		ent("title", map[string]any{"title": "T\x00"}, map[string]any{}),
		ent("icon", map[string]any{"icon": "\x00"}, map[string]any{}),
		ent("team", map[string]any{"team": []any{"t", "u\x00"}}, map[string]any{}),
		ent("rel", map[string]any{"relations": map[string]any{"peers": []any{"keep", "x\x00"}}}, map[string]any{}),
		ent("id\x00", nil, map[string]any{}),
	}
	rep, err := e.run(e.sink(), []json.RawMessage{json.RawMessage(bp)}, ents, map[string]bool{"probe": true})
	if !errors.Is(err, ErrEntitiesFailed) {
		t.Fatalf("Finish: %v, want ErrEntitiesFailed", err)
	}
	want := map[string]string{"string": "properties.s", "key": "properties.o", "deep": "properties.a", "title": "title",
		"icon": "icon", "team": "team", "rel": "relations.peers", "id\x00": "identifier"}
	for _, x := range rep.Errors {
		field, ok := want[x.Identifier]
		// Identifiers and targets are refused by their pattern, which
		// names the character (\x00).
		why := "U+0000"
		if field == "identifier" || field == "relations.peers" {
			why = `\x00" has characters outside`
		}
		if !ok || !strings.HasPrefix(x.Message, field+": ") || !strings.Contains(x.Message, why) {
			t.Errorf("error %q: %s", x.Identifier, x.Message)
		}
		if s := x.Error(); !strings.Contains(s, "blueprint probe") || !strings.Contains(s, "(stream items, parents p1)") {
			t.Errorf("error %q does not name blueprint and stream: %s", x.Identifier, s)
		}
		delete(want, x.Identifier)
	}
	if len(want) != 0 {
		t.Errorf("not reported: %v", want)
	}
	if got := keys(e.srv.Catalog()); len(got) != 1 || !got["probe:keep"] {
		t.Errorf("Port holds %v, want only probe:keep", got)
	}
}

// A many-relation naming a target twice is a set with it once: it is sent
// once (Port's handling of a repeat is undocumented; the set is the same
// without it), a missing target named twice is one relation dropped, and
// a rerun over the same source sees no change.
func TestRelationRepeatsSentOnce(t *testing.T) {
	// Twice (a short list, searched for repeats) and seven times (a long
	// one, which gets a set).
	for _, times := range []int{2, 7} {
		t.Run(fmt.Sprint(times), func(t *testing.T) { testRelationRepeatsSentOnce(t, times) })
	}
}

func testRelationRepeatsSentOnce(t *testing.T, times int) {
	e := newEnv(t, portsim.Options{})
	bps := []json.RawMessage{json.RawMessage(`{"identifier":"probe","title":"Probe","schema":{"properties":{}},
	 "relations":{"peers":{"target":"probe","many":true,"required":false}}}`)}
	var peers []any
	for range times {
		peers = append(peers, "u", "t", "gone")
	}
	ents := func() []sink.Entity {
		return []sink.Entity{
			{Blueprint: "probe", Data: map[string]any{"identifier": "t", "properties": map[string]any{}, "relations": map[string]any{}}},
			{Blueprint: "probe", Data: map[string]any{"identifier": "u", "properties": map[string]any{}, "relations": map[string]any{}}},
			{Blueprint: "probe", Data: map[string]any{"identifier": "x", "properties": map[string]any{},
				"relations": map[string]any{"peers": slices.Clone(peers)}}},
		}
	}
	rep, err := e.run(e.sink(), bps, ents(), map[string]bool{"probe": true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.DroppedRelations != 1 {
		t.Errorf("dropped relations %d, want 1 (one missing target, named twice)", rep.DroppedRelations)
	}
	var sent []string
	for _, r := range e.srv.Requests() {
		var body struct{ Entities []map[string]any }
		if !strings.HasSuffix(r.Path, "/entities/bulk") || json.Unmarshal(r.Body, &body) != nil {
			continue
		}
		for _, en := range body.Entities {
			// A self-relation: the first pass sends x without it.
			if rels, _ := en["relations"].(map[string]any); en["identifier"] == "x" && len(rels) > 0 {
				sent = append(sent, fmt.Sprint(rels))
			}
		}
	}
	if want := "map[peers:[u t]]"; len(sent) != 1 || sent[0] != want {
		t.Errorf("x sent with relations %v, want once with %s", sent, want)
	}
	e.srv.ResetRequests()
	rep, err = e.run(e.sink(), bps, ents(), map[string]bool{"probe": true})
	if err != nil {
		t.Fatal(err)
	}
	if sent := bulkSent(e); len(sent) != 0 || rep.Unchanged != 3 {
		t.Errorf("rerun sent %v, unchanged %d; want nothing and 3", sent, rep.Unchanged)
	}
}
