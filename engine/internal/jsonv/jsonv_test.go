package jsonv

import (
	"encoding/json"
	"testing"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		in   string
		want string // Kind of the result, or "error"
	}{
		{`[1, 2]`, "a list"},
		{`{"id": 12345678901234567890}`, "an object"},
		{` null `, "null"},
		{`[1] [2]`, "error"},
		{`{"a": 1} x`, "error"},
		{``, "error"},
		{`[1,`, "error"},
		{`{}}`, "error"},
		{`[1]]`, "error"},
	}
	for _, tc := range tests {
		v, err := Decode([]byte(tc.in))
		got := Kind(v)
		if err != nil {
			got = "error"
		}
		if got != tc.want {
			t.Errorf("Decode(%q) = %s (%v), want %s", tc.in, got, err, tc.want)
		}
	}
	v, _ := Decode([]byte(`{"id": 12345678901234567890}`))
	if n := v.(map[string]any)["id"]; n != json.Number("12345678901234567890") {
		t.Errorf("big number = %#v, want it exact", n)
	}
}

func TestFloatAndKind(t *testing.T) {
	for _, v := range []any{json.Number("2.5"), 2.5, float32(2.5)} {
		if f, ok := Float(v); !ok || f != 2.5 {
			t.Errorf("Float(%#v) = %v, %v", v, f, ok)
		}
	}
	for _, v := range []any{"2.5", nil, true, json.Number("x")} {
		if _, ok := Float(v); ok {
			t.Errorf("Float(%#v) accepted", v)
		}
	}
	kinds := map[string]any{"null": nil, "a boolean": false, "a number": json.Number("1"), "a string": "", "a list": []any{}, "an object": map[string]any{}}
	for want, v := range kinds {
		if got := Kind(v); got != want {
			t.Errorf("Kind(%#v) = %s, want %s", v, got, want)
		}
	}
}
