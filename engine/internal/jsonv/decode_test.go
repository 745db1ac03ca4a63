package jsonv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"
)

// reference decodes as encoding/json does with UseNumber, one whole value.
func reference(b []byte) (any, bool) {
	if !json.Valid(b) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	return v, true
}

var decodeCases = []string{
	`{"a": [1, -2.5e+3, 0, 1E2, 0.5, -0], "b": {"c": null, "d": true, "e": false}, "a2": []}`,
	`"esc \" \\ \/ \b \f \n \r \t \u00e9 \u20ac \ud83d\ude00 end"`,
	`"lone \ud83d high, lone \ude00 low, \ud83d\u0041 not a pair"`,
	"\"bad utf-8 \xff\xfe here, and \xe2\x82 cut\"",
	`{"dup": 1, "dup": 2}`,
	`{"a": {"b": 1, "c": {"d": 2, "b": 3}, "b": 4}, "e": [{"f": 5}, {"f": 6, "f": 7}, {}], "a": {"x": {"y": {}}}, "g": 8}`,
	`{"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":{"k1":[{"k2":2}]},"k10":10,"k11":11,"k1":"last"}`,
	` [ ] `, `{}`, `{"":""}`, `12345678901234567890123`, `"☃ ünïcödé"`,
	`[1,]`, `{"a":1,}`, `01`, `1.`, `.5`, `-`, `1e`, `+1`, `tru`, `nul`, `[1 2]`, `{"a" 1}`, `{1:2}`,
	"\"ctl \x01\"", `"\x"`, `"\u12"`, `"\uZZZZ"`, `"abc`, `[`, `{`, `"\ud83d\u12"`, "\xef\xbb\xbf{}",
	`{"a": 1} x`, `[1] [2]`, `{} }`, `[1]]`, ``, `   `,
}

// TestDecodeMatchesEncodingJSON: Decode accepts exactly what encoding/json
// accepts (one value, white space around it) and gives the same value.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	deep := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	tooDeep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	for _, in := range append(decodeCases, deep, tooDeep) {
		checkDecode(t, []byte(in))
	}
}

func checkDecode(t *testing.T, in []byte) {
	t.Helper()
	want, ok := reference(in)
	got, err := Decode(in)
	show := string(in)
	if len(show) > 60 {
		show = show[:60] + "…"
	}
	var ke *KeyError
	switch {
	case ok && errors.As(err, &ke) && (!utf8.Valid(in) || bytes.Contains(bytes.ToLower(in), []byte(`\ud`))):
		// Two keys encoding/json reads as one, only where U+FFFD
		// replaced something: see TestKeysMergedByReplacement.
	case ok && err != nil:
		t.Errorf("Decode(%q): %v; encoding/json accepts it", show, err)
	case !ok && err == nil:
		t.Errorf("Decode(%q) = %#v; encoding/json rejects it", show, got)
	case ok && !reflect.DeepEqual(got, want):
		t.Errorf("Decode(%q) = %#v, want %#v", show, got, want)
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkDecode(t, in) })
}

// BenchmarkDecode: a page of 100 records like Humanitec's active resources,
// against encoding/json's Decoder with UseNumber (what Decode was).
func BenchmarkDecode(b *testing.B) {
	var recs []string
	for i := range 100 {
		recs = append(recs, `{"org_id":"acme-corp","app_id":"checkout-`+strings.Repeat("x", i%7)+`","env_id":"production","res_id":"modules.api.externals.db","def_id":"postgres-cloudsql","type":"postgres","class":"default","driver_type":"humanitec/postgres-cloudsql-static","status":"ready","resource":{"host":"pg-1a2b3c4d.production.internal.example.com","port":5432,"name":"checkout_production_42","extra":{"sslmode":"require","replicas":2,"tls":true}},"secret_refs":{"password":{"ref":"orgs/acme/secrets/0123456789ab","store":"humanitec"}},"updated_at":"2026-03-04T05:06:07.123Z","deploy_id":"0123456789ab","gu_res_id":"0123456789abcdef0123456789abcdef01234567","scheduled_deletion":false}`)
	}
	page := []byte("[" + strings.Join(recs, ",") + "]")
	b.Run("jsonv", func(b *testing.B) {
		b.SetBytes(int64(len(page)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(page); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.SetBytes(int64(len(page)))
		b.ReportAllocs()
		for b.Loop() {
			dec := json.NewDecoder(bytes.NewReader(page))
			dec.UseNumber()
			var v any
			if err := dec.Decode(&v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestMember holds Member to Decode: on objects encoded by Append (random
// keys and nested values, escapes included), the value Member finds for
// each key decodes to what Decode gives for it, and a missing key or a
// non-object is not found.
func TestMember(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	vals := []any{nil, true, false, "plain", `q"u\o\te` + "\u2028<>&", json.Number("-12.5e3"), 7.25,
		[]any{}, []any{"a", map[string]any{"x": []any{1.0, "]}"}}}, map[string]any{}, map[string]any{"k": "}", "l": map[string]any{"[": nil}}}
	for i := range 5000 {
		m := map[string]any{}
		for range rng.IntN(6) {
			m[fmt.Sprintf("k%d\"\\%d", rng.IntN(8), rng.IntN(2))] = vals[rng.IntN(len(vals))]
		}
		b, err := Append(nil, m, i%2 == 0)
		if err != nil {
			t.Fatal(err)
		}
		for k, want := range m {
			s, e, found, err := Member(b, k)
			if err != nil || !found {
				t.Fatalf("%s: Member(%q) = %v, %v", b, k, found, err)
			}
			got, err := Decode(b[s:e])
			if err != nil || !reflect.DeepEqual(got, normalize(want)) {
				t.Fatalf("%s: Member(%q) = %s (%v), want %#v", b, k, b[s:e], err, want)
			}
		}
		if _, _, found, err := Member(b, "absent"); found || err != nil {
			t.Fatalf("%s: absent key found (%v)", b, err)
		}
	}
	for _, b := range []string{`[1]`, `"s"`, `{}`, ` { } `} {
		if _, _, found, err := Member([]byte(b), "k"); found || err != nil {
			t.Fatalf("%s: found %v, %v", b, found, err)
		}
	}
}

// TestMembers holds Members to Decode the way TestMember does, with plain
// keys (compared in place) beside escaped and non-ASCII ones: every key
// asked at once finds the value Decode gives for it, an absent one
// {0, 0}; a repeated key finds the last; and a key left open is the
// error Decode gives.
func TestMembers(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	names := []string{"properties", "relations", "title", `k"1`, `k\2`, "ké", "k\u2028", ""}
	vals := []any{nil, "plain", `q"u\o`, 7.25, []any{"a", map[string]any{"x": "]}"}}, map[string]any{"k": "}"}}
	for i := range 3000 {
		m := map[string]any{}
		for range rng.IntN(6) {
			m[names[rng.IntN(len(names))]] = vals[rng.IntN(len(vals))]
		}
		b, err := Append(nil, m, i%2 == 0)
		if err != nil {
			t.Fatal(err)
		}
		keys := append(slices.Clone(names), "absent")
		spans := make([][2]int, len(keys))
		if err := Members(b, keys, spans); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		for j, k := range keys {
			want, ok := m[k]
			if !ok {
				if spans[j] != [2]int{} {
					t.Fatalf("%s: absent %q found at %v", b, k, spans[j])
				}
				continue
			}
			got, err := Decode(b[spans[j][0]:spans[j][1]])
			if err != nil || !reflect.DeepEqual(got, normalize(want)) {
				t.Fatalf("%s: Members %q = %s (%v), want %#v", b, k, b[spans[j][0]:spans[j][1]], err, want)
			}
		}
	}
	b := []byte(`{"a":1,"b":2,"a":3}`)
	spans := make([][2]int, 2)
	if err := Members(b, []string{"a", "b"}, spans); err != nil || string(b[spans[0][0]:spans[0][1]]) != "3" || string(b[spans[1][0]:spans[1][1]]) != "2" {
		t.Fatalf("repeated key: %v %v", spans, err)
	}
	_, want := Decode([]byte(`{"ab`))
	if err := Members([]byte(`{"ab`), []string{"a"}, spans[:1]); err == nil || want == nil || err.Error() != want.Error() {
		t.Fatalf("key left open: %v, want %v", err, want)
	}
}

// normalize gives v as Decode would read it back.
func normalize(v any) any {
	b, _ := Append(nil, v, false)
	out, _ := Decode(b)
	return out
}

// TestDecodePrefix: Decoder.DecodePrefix gives the value at the start of the bytes and its length,
// whatever follows it; a value cut short or malformed fails.
func TestDecodePrefix(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want any
		n    int
	}{
		{`{"a":[1,"x"]},{"b":2}`, map[string]any{"a": []any{json.Number("1"), "x"}}, 13},
		{`12]`, json.Number("12"), 2},
		{`"a\"b" ,`, `a"b`, 6},
		{`null}`, nil, 4},
	} {
		var s Decoder
		v, n, err := s.DecodePrefix([]byte(tc.in))
		if err != nil || n != tc.n || !reflect.DeepEqual(v, tc.want) {
			t.Errorf("DecodePrefix(%q) = %#v, %d, %v; want %#v, %d", tc.in, v, n, err, tc.want, tc.n)
		}
	}
	for _, in := range []string{`{"a":1`, `[1,]`, `tru`, ` 1`, ``} {
		var s Decoder
		if _, _, err := s.DecodePrefix([]byte(in)); err == nil {
			t.Errorf("DecodePrefix(%q): no error", in)
		}
	}
}

// TestDecoderReused: one Decoder reading document after document gives
// what Decode gives each, whatever keys it met before; the records of a
// page share their keys' strings.
func TestDecoderReused(t *testing.T) {
	var s Decoder
	docs := append(slices.Clone(decodeCases), `{"id":1,"name":"a"}`, `{"name":"b","id":2,"ID":3}`, `{"nam":"c","names":4}`, `{"\u006eame":5}`)
	for _, doc := range docs {
		want, werr := Decode([]byte(doc))
		got, gerr := s.Decode([]byte(doc))
		if fmt.Sprint(werr) != fmt.Sprint(gerr) || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: reused Decoder gives %#v (%v), Decode %#v (%v)", doc, got, gerr, want, werr)
		}
	}
	key := func(doc string) *byte {
		v, err := s.Decode([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		for k := range v.(map[string]any) {
			return unsafe.StringData(k)
		}
		return nil
	}
	if key(`{"region":1}`) != key(`{"region":2}`) {
		t.Errorf("two records' key \"region\" are two strings, not one shared")
	}
}

// TestDecoderCountsReplaced: Replaced counts the strings, keys included,
// read with invalid UTF-8 or a lone surrogate escape as U+FFFD, once a
// string however many places it has; a pair, a valid character or an
// escaped U+FFFD is no replacement.
func TestDecoderCountsReplaced(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{`{"a": "plain", "é": "ünï", "b": "\u00e9 \ud83d\ude00 \ufffd", "c": "�"}`, 0},
		{"\"a\xffb\"", 1},
		{"\"\xff\xfe two in one string\"", 1},
		{`"\ud800"`, 1},
		{`"\udc00"`, 1},
		{`"\ud83d\u0041 not a pair"`, 1},
		{`["\ud800", "\ud800x", "ok"]`, 2},
		{"{\"k\xff\": \"v\", \"x\": [\"\xe2\x82\", {\"y\\n\": \"\\udfff\"}]}", 3},
	} {
		var s Decoder
		if _, err := s.Decode([]byte(tc.in)); err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if s.Replaced != tc.want {
			t.Errorf("%q: Replaced = %d, want %d", tc.in, s.Replaced, tc.want)
		}
	}
	// DecodePrefix counts as Decode, and a Decoder counts on.
	var s Decoder
	for range 2 {
		if _, _, err := s.DecodePrefix([]byte("[\"\xff\"],")); err != nil {
			t.Fatal(err)
		}
	}
	if s.Replaced != 2 {
		t.Errorf("two prefixes: Replaced = %d, want 2", s.Replaced)
	}
}

// TestKeysMergedByReplacement: two keys of one object that the document
// writes differently but that read alike once U+FFFD replaced something
// are a *KeyError naming the key, at any depth; a key the document
// repeats alike, replaced or not, keeps its last value, as encoding/json
// and jq do. A Decoder reused after the error reads on as new.
func TestKeysMergedByReplacement(t *testing.T) {
	for _, in := range []string{
		"{\"k\xe9\": 1, \"k\xe8\": 2}",
		`{"k\ud800": 1, "k\udc00": 2}`,
		"{\"k\xff\": 1, \"k\\ud800\": 2}",
		"{\"k\xff\": 1, \"k\uFFFD\": 2}",
		"{\"k\\ufffd\": 1, \"k\xff\": 2}",
		"{\"k\xff\": 1, \"k\xff\": 2, \"k\xfe\": 3}",
		"[{\"a\": {\"b\": [{\"k\xe9\": 1, \"x\": 0, \"k\xe8\": 2}]}}]",
		// The outer object's keys collide, not the inner's.
		"{\"k\xff\": {\"k\xfe\": 1, \"a\": 2}, \"k\xfe\": 3}",
	} {
		var s Decoder
		_, err := s.Decode([]byte(in))
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != "k\uFFFD" || !strings.Contains(err.Error(), `"k\ufffd" appears twice`) {
			t.Errorf("%q: error = %v, want a KeyError for \"k\\ufffd\"", in, err)
			continue
		}
		if in[ke.Offset] != '"' {
			t.Errorf("%q: offset %d is not a key's quote", in, ke.Offset)
		}
		v, err := s.Decode([]byte("{\"k\xff\": 1, \"b\": {\"k\xfe\": 2}}"))
		if err != nil || !reflect.DeepEqual(v, map[string]any{"k\uFFFD": json.Number("1"), "b": map[string]any{"k\uFFFD": json.Number("2")}}) {
			t.Errorf("%q: the Decoder reused reads %#v, %v", in, v, err)
		}
	}
	for _, tc := range []struct {
		in   string
		want any
	}{
		{`{"a": 1, "a": 2}`, map[string]any{"a": json.Number("2")}},
		{"{\"k\xff\": 1, \"k\xff\": 2}", map[string]any{"k\uFFFD": json.Number("2")}},
		{`{"k\ud800": 1, "k\uD800": 2}`, map[string]any{"k\uFFFD": json.Number("2")}},
		{"{\"\\u00e9\\ud800\": 1, \"é\\ud800\": 2}", map[string]any{"é\uFFFD": json.Number("2")}},
		{`{"k\ud83d\ude00": 1, "k😀": 2}`, map[string]any{"k😀": json.Number("2")}},
	} {
		v, err := Decode([]byte(tc.in))
		if err != nil || !reflect.DeepEqual(v, tc.want) {
			t.Errorf("%q = %#v, %v; want %#v", tc.in, v, err, tc.want)
		}
	}
}
