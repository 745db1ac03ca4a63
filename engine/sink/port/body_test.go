package port

import (
	"testing"

	"github.com/ferry-etl/ferry/engine/internal/jsonv"
)

// relationsBody writes what encoding {identifier, relations} writes.
func TestRelationsBodyIsTheEncodedObject(t *testing.T) {
	for _, w := range []*work{
		{key: entityKey{"b", "a/<x>&y"}, rels: map[string]any{"one": "t", "many": []any{"u", "v"}, "none": nil}},
		{key: entityKey{"b", "ünï\u2028"}, rels: map[string]any{}},
		{key: entityKey{"b", "n"}},
	} {
		want, err := jsonv.Marshal(map[string]any{"identifier": w.key.identifier, "relations": w.rels})
		if err != nil {
			t.Fatal(err)
		}
		if got := relationsBody(w); string(got) != string(want) {
			t.Errorf("relationsBody = %s, want %s", got, want)
		}
	}
	if got := relationsBody(&work{key: entityKey{"b", "n"}, rels: map[string]any{"r": make(chan int)}}); got != nil {
		t.Errorf("an unencodable relation gave %s, want nil", got)
	}
}
