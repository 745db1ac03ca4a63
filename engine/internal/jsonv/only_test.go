package jsonv

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// onlyCases put the cases of decodeCases inside members kept and members
// skipped: a skipped member is checked as JSON as a kept one is.
func onlyCases() []string {
	var out []string
	for _, c := range decodeCases {
		out = append(out, c,
			`{"keep": 1, "skip": `+c+`, "also": "x"}`,
			`{"skip": `+c+`}`,
			`{"keep": `+c+`}`,
			`[{"skip": `+c+`}]`)
	}
	deep := strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1)
	tooDeep := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	return append(out, `{"skip": `+deep+`}`, `{"skip": `+tooDeep+`}`,
		`{"skip": {"a": {"b": [1, {"c": "\u00e9\ud83d\ude00"}]}}, "keep": {"skip": 2}, "keep2": null}`,
		`{"keep": 1, "skip": 2, "keep": 3}`, `{"skip": 1, "skip": {"x": 2}, "keep": 3}`)
}

// checkOnly: DecodeOnly fails where Decode fails and otherwise gives
// Decode's value without the outer object's members only lacks; the same
// for DecodePrefixOnly, with the same length read.
func checkOnly(t *testing.T, in []byte) {
	t.Helper()
	only := map[string]bool{"keep": true, "keep2": true}
	var full, part Decoder
	want, werr := full.Decode(in)
	got, gerr := part.DecodeOnly(in, only)
	show := string(in)
	if len(show) > 70 {
		show = show[:70] + "…"
	}
	if obj, ok := want.(map[string]any); ok && werr == nil {
		for k := range obj {
			if !only[k] {
				delete(obj, k)
			}
		}
	}
	var ke *KeyError
	switch {
	case werr != nil && gerr == nil && asKeyError(werr, &ke):
		// Two keys that read as one inside a skipped member: nothing of
		// it is read, so nothing is lost (see TestKeysMergedByReplacement).
	case (werr == nil) != (gerr == nil):
		t.Errorf("DecodeOnly(%q): err %v, Decode's %v", show, gerr, werr)
	case werr == nil && !reflect.DeepEqual(got, want):
		t.Errorf("DecodeOnly(%q) = %#v, want %#v", show, got, want)
	}
	if werr == nil && gerr == nil {
		_, wn, werr := full.DecodePrefix(in)
		_, gn, gerr := part.DecodePrefixOnly(in, only)
		if (werr == nil) != (gerr == nil) || gn != wn {
			t.Errorf("DecodePrefixOnly(%q) read %d bytes (err %v), DecodePrefix %d (err %v)", show, gn, gerr, wn, werr)
		}
	}
}

func asKeyError(err error, ke **KeyError) bool {
	k, ok := err.(*KeyError)
	*ke = k
	return ok
}

func TestDecodeOnlyMatchesDecode(t *testing.T) {
	for _, c := range onlyCases() {
		checkOnly(t, []byte(c))
	}
}

// TestDecodeOnlySkipsUnkept: the members only lacks are not in the value,
// nested objects of a kept member keep all theirs, and a value that is
// not an object is whole.
func TestDecodeOnlySkipsUnkept(t *testing.T) {
	var d Decoder
	v, err := d.DecodeOnly([]byte(`{"a": {"b": 1, "c": 2}, "big": {"x": [1, 2, 3]}, "d": "s"}`), map[string]bool{"a": true, "d": true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": map[string]any{"b": json.Number("1"), "c": json.Number("2")}, "d": "s"}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("got %#v, want %#v", v, want)
	}
	v, err = d.DecodeOnly([]byte(`[{"big": 1}]`), map[string]bool{"a": true})
	if err != nil || !reflect.DeepEqual(v, []any{map[string]any{"big": json.Number("1")}}) {
		t.Errorf("an array: got %#v (%v), want its objects whole", v, err)
	}
	// A kept key written with an escape is the key a program reads.
	v, err = d.DecodeOnly([]byte(`{"na\u006de": "n", "big": 1}`), map[string]bool{"name": true})
	if err != nil || !reflect.DeepEqual(v, map[string]any{"name": "n"}) {
		t.Errorf("an escaped kept key: got %#v (%v), want name kept", v, err)
	}
	// The Decoder used with only, then without: nothing of only stays.
	v, err = d.Decode([]byte(`{"big": 1}`))
	if err != nil || !reflect.DeepEqual(v, map[string]any{"big": json.Number("1")}) {
		t.Errorf("Decode after DecodeOnly: got %#v (%v)", v, err)
	}
}

func FuzzDecodeOnly(f *testing.F) {
	for _, c := range onlyCases() {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkOnly(t, in) })
}

// TestKeepValuesGivesDecodesValues: one Decoder keeping values, reused
// for every case twice and for documents of more distinct short values
// than it has slots, gives what a fresh Decoder gives each time, and
// counts the same strings replaced.
func TestKeepValuesGivesDecodesValues(t *testing.T) {
	docs := append([]string{}, decodeCases...)
	var many []string
	for i := range 3 * valueSlots {
		many = append(many, fmt.Sprintf(`{"s": "v%d", "t": "status-%d", "u": "%s"}`, i, i%7, strings.Repeat("x", i%(maxValueLen+3))))
	}
	docs = append(docs, "["+strings.Join(many, ",")+"]")
	docs = append(docs, docs...)
	keep := Decoder{KeepValues: true}
	for _, doc := range docs {
		var fresh Decoder
		want, werr := fresh.Decode([]byte(doc))
		keep.Replaced = 0
		got, gerr := keep.Decode([]byte(doc))
		if (werr == nil) != (gerr == nil) || !reflect.DeepEqual(got, want) || keep.Replaced != fresh.Replaced {
			t.Errorf("%.60q: kept %#v (%v, %d replaced), fresh %#v (%v, %d)", doc, got, gerr, keep.Replaced, want, werr, fresh.Replaced)
		}
	}
}

// TestSkippedMembersCountNothingReplaced: Replaced counts the strings a
// kept member holds, its key included, and nothing of a member skipped,
// not even its key: nothing of it is written, so a warning counting it
// would name strings that were never changed in the output.
func TestSkippedMembersCountNothingReplaced(t *testing.T) {
	only := map[string]bool{"keep": true, "k\uFFFDy": true}
	for _, tc := range []struct {
		doc  string
		want int
	}{
		{"{\"keep\": 1, \"sk\xffip\": 2}", 0},
		{`{"keep": 1, "sk\udc00ip": {"a\ud800": "\ud800"}}`, 0},
		{"{\"sk\xffip\": 1, \"keep\": \"a\xffb\"}", 1},
		{"{\"k\xffy\": 1, \"skip\": 2}", 1}, // a key read as U+FFFD that is kept
		{"[{\"sk\xffip\": 1}]", 1},          // not the record's own member: kept
	} {
		var d, p Decoder
		if _, err := d.DecodeOnly([]byte(tc.doc), only); err != nil || d.Replaced != tc.want {
			t.Errorf("DecodeOnly(%q): %d replaced (err %v), want %d", tc.doc, d.Replaced, err, tc.want)
		}
		if _, _, err := p.DecodePrefixOnly([]byte(tc.doc), only); err != nil || p.Replaced != tc.want {
			t.Errorf("DecodePrefixOnly(%q): %d replaced (err %v), want %d", tc.doc, p.Replaced, err, tc.want)
		}
	}
}

// FuzzReusedDecoder: one Decoder keeping values, reused for every input
// (as a stream's pages reuse one), with only and without, after inputs
// that failed halfway, gives what a fresh Decoder gives, error and
// replaced count included.
func FuzzReusedDecoder(f *testing.F) {
	for _, c := range onlyCases() {
		f.Add([]byte(c), c != "" && c[0] == '{')
	}
	only := map[string]bool{"keep": true, "keep2": true}
	keep := &Decoder{KeepValues: true}
	f.Fuzz(func(t *testing.T, in []byte, project bool) {
		o := only
		if !project {
			o = nil
		}
		var fresh Decoder
		want, werr := fresh.DecodeOnly(in, o)
		keep.Replaced = 0
		got, gerr := keep.DecodeOnly(in, o)
		if fmt.Sprint(gerr) != fmt.Sprint(werr) || !reflect.DeepEqual(got, want) || keep.Replaced != fresh.Replaced {
			t.Errorf("%.60q: reused %#v (%v, %d replaced), fresh %#v (%v, %d)", in, got, gerr, keep.Replaced, want, werr, fresh.Replaced)
		}
		var freshP Decoder
		wantP, wn, werr := freshP.DecodePrefixOnly(in, o)
		keep.Replaced = 0
		gotP, gn, gerr := keep.DecodePrefixOnly(in, o)
		if fmt.Sprint(gerr) != fmt.Sprint(werr) || gn != wn || !reflect.DeepEqual(gotP, wantP) || keep.Replaced != freshP.Replaced {
			t.Errorf("%.60q prefix: reused %#v (%v, %d bytes, %d replaced), fresh %#v (%v, %d, %d)", in, gotP, gerr, gn, keep.Replaced, wantP, werr, wn, freshP.Replaced)
		}
	})
}

// TestKeepValuesStepsAsideForUniqueValues: a Decoder whose values are
// mostly met once (ids, times) stops looking them up for a while, and
// one whose values repeat keeps finding them.
func TestKeepValuesStepsAsideForUniqueValues(t *testing.T) {
	page := func(f func(i int) string) []byte {
		var items []string
		for i := range 2 * valueRound {
			items = append(items, `"`+f(i)+`"`)
		}
		return []byte("[" + strings.Join(items, ",") + "]")
	}
	unique := Decoder{KeepValues: true}
	if _, err := unique.Decode(page(func(i int) string { return fmt.Sprintf("id-%06d", i) })); err != nil {
		t.Fatal(err)
	}
	if unique.bypass == 0 {
		t.Error("values all met once: the table is still looked up")
	}
	repeated := Decoder{KeepValues: true}
	if _, err := repeated.Decode(page(func(i int) string { return fmt.Sprintf("status-%d", i%5) })); err != nil {
		t.Fatal(err)
	}
	if repeated.bypass != 0 || repeated.found == 0 {
		t.Errorf("values met again and again: bypass %d, found %d", repeated.bypass, repeated.found)
	}
}
