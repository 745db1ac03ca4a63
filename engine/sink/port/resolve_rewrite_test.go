package port

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// oldRewrite is the value resolve wrote for a relation before it left one
// unchanged as it was (076fdcb): the kept targets, a list if v was one.
func oldRewrite(isList bool, kept []string) any {
	switch {
	case isList:
		list := make([]any, len(kept))
		for j, id := range kept {
			list[j] = id
		}
		return list
	case len(kept) == 1:
		return kept[0]
	}
	return nil
}

// A relation resolve leaves as it is (unchanged) is what it wrote before:
// on random values (strings, lists with repeats, of other types) and any
// targets kept (in order, each once, as resolve keeps them), unchanged
// never holds where the old rewrite differs from the value.
func TestUnchangedIsTheOldRewrite(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 17))
	ids := []string{"a", "b", "c", "", "a\x00"}
	taken, left := 0, 0
	for range 50000 {
		var v any
		switch rng.IntN(6) {
		case 0:
			v = ids[rng.IntN(len(ids))]
		case 1:
			v = []any{}
		case 2:
			v = []any{ids[rng.IntN(len(ids))], 1}
		case 3:
			v = []string{"a"}
		default:
			l := make([]any, rng.IntN(5))
			for i := range l {
				l[i] = ids[rng.IntN(3)]
			}
			v = l
		}
		targets, isList := relationIDs(v)
		if targets == nil {
			continue // passed through before resolve's rewrite
		}
		var kept []string
		for j, id := range targets {
			if !slices.Contains(targets[:j], id) && rng.IntN(4) > 0 {
				kept = append(kept, id)
			}
		}
		if !unchanged(v, kept) {
			left++
			continue
		}
		taken++
		if old := oldRewrite(isList, kept); !reflect.DeepEqual(old, v) {
			t.Fatalf("%#v with %q kept left as it is; it was rewritten as %#v", v, kept, old)
		}
	}
	if taken < 1000 || left < 1000 {
		t.Fatalf("%d values left as they are, %d rewritten: the cases are not both covered", taken, left)
	}
}

// relationsBody writes what encoding/json writes for {identifier,
// relations}, for identifiers, relation names and targets of any bytes
// (quotes, backslashes, control characters, U+2028, invalid UTF-8, HTML).
func TestRelationsBodyOfAnyBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 23))
	parts := []string{"a", "\"", "\\", "\x00", "\x1f", "\x7f", "\u2028", "\u2029", "\xff", "\xed\xa0\x80", "<", ">", "&", "é", "/", "\n"}
	str := func() string {
		var b strings.Builder
		for range rng.IntN(6) {
			b.WriteString(parts[rng.IntN(len(parts))])
		}
		return b.String()
	}
	for range 5000 {
		w := &work{key: entityKey{"bp", str()}, rels: map[string]any{}}
		for range rng.IntN(4) {
			switch rng.IntN(3) {
			case 0:
				w.rels[str()] = str()
			case 1:
				w.rels[str()] = []any{str(), str()}
			default:
				w.rels[str()] = nil
			}
		}
		want, err := json.Marshal(map[string]any{"identifier": w.key.identifier, "relations": w.rels})
		if err != nil {
			t.Fatal(err)
		}
		if got := relationsBody(w); string(got) != string(want) {
			t.Fatalf("relationsBody = %q, want %q", got, want)
		}
	}
}
