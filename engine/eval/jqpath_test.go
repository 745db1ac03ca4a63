package eval

import (
	"context"
	"encoding/json"
	"math/big"
	"reflect"
	"testing"
)

// TestFieldPathAsJQ holds the path fast path to gojq: every path program
// on every input gives what gojq gives (value, or an error where gojq
// errs), and only path programs take it.
func TestFieldPathAsJQ(t *testing.T) {
	ctx := context.Background()
	inputs := []any{
		nil, true, 1.5, 7, "s", []any{1, 2}, big.NewInt(3), json.Number("4"),
		map[string]any{},
		map[string]any{"a": nil},
		map[string]any{"a": 1, "b": "x"},
		map[string]any{"a": map[string]any{"b": map[string]any{"c": "deep"}, "n": 2}},
		map[string]any{"a": map[string]any{"b": []any{"not", "an", "object"}}},
		map[string]any{"a": map[string]any{"b": "str"}},
		map[string]any{"a": []any{map[string]any{"b": 1}}},
		map[string]any{"a": map[string]any{"b": nil}},
	}
	for _, src := range []string{".", ".a", ".b", ".a.b", ".a.b.c", ".a.n", ".zz.yy", " .a ", ".if", ".a_1.B2"} {
		q, err := CompileJQ(src, nil)
		if err != nil {
			t.Fatal(err)
		}
		if q.path == nil {
			t.Fatalf("%q: not taken as a path", src)
		}
		slow := *q
		slow.path = nil
		for _, in := range inputs {
			got, gotOK, gotErr := q.First(ctx, in)
			want, wantOK, wantErr := slow.First(ctx, in)
			if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
				t.Fatalf("%q on %#v: error %v, gojq %v", src, in, gotErr, wantErr)
			}
			if gotOK != wantOK || !reflect.DeepEqual(got, want) {
				t.Fatalf("%q on %#v: %#v (%v), gojq %#v (%v)", src, in, got, gotOK, want, wantOK)
			}
			all, gotErr := q.Run(ctx, in)
			wantAll, wantErr := slow.Run(ctx, in)
			if (gotErr == nil) != (wantErr == nil) || !reflect.DeepEqual(all, wantAll) {
				t.Fatalf("%q on %#v: Run %#v %v, gojq %#v %v", src, in, all, gotErr, wantAll, wantErr)
			}
		}
	}
	for _, src := range []string{".a[0]", ".a | .b", ".a?", `."a"`, ".a // 1", "..", ".a .b", "$x", ".a,.b", ".[]"} {
		q, err := CompileJQ(src, []string{"x"})
		if err != nil {
			t.Fatal(err)
		}
		if q.path != nil {
			t.Fatalf("%q: taken as a path %q", src, q.path)
		}
	}
}
