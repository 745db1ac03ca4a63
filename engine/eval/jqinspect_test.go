package eval

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestInspectJQ(t *testing.T) {
	tests := []struct {
		src    string
		keys   []string
		builds string
		assign string // text at Assign; "" for -1
		dollar bool
	}{
		{src: "{app, env: .e, id, \"x y\": 1, $__loc__}", keys: []string{"__loc__", "app", "env", "id", "x y"}},
		{src: ".items[] | {b, a}", keys: []string{"a", "b"}},
		{src: "(.x | {a})", keys: []string{"a"}},
		{src: "{(.k): 1}"},
		{src: "{\"\\(.k)\": 1}"},
		{src: "{a} + {b}"},
		{src: "{a}.a"},
		{src: "."},
		{src: "[.[] | .id]", builds: "a list"},
		{src: ".x | \"s\"", builds: "a string"},
		{src: "if . then {a} else {b} end"},
		{src: `.type = "service"`, assign: `= "service"`},
		{src: `.a == 1 and .b = 2`, assign: `= 2`},
		{src: `.a == 1 or (.b <= 2) or .c != 3 or .d |= 4 | .e //= 5`},
		{src: `select(.a = 1)`}, // inside a term: not the program's own output
		{src: `"=" | .x == "a=b"`},
		{src: `.x | "${ config.org }"`, builds: "a string", dollar: true},
	}
	for _, tc := range tests {
		f := InspectJQ(tc.src)
		if diff := cmp.Diff(tc.keys, f.Keys); diff != "" {
			t.Errorf("InspectJQ(%q).Keys (-want +got):\n%s", tc.src, diff)
		}
		if f.Builds != tc.builds {
			t.Errorf("InspectJQ(%q).Builds = %q, want %q", tc.src, f.Builds, tc.builds)
		}
		want := -1
		if tc.assign != "" {
			want = strings.Index(tc.src, tc.assign)
		}
		if f.Assign != want {
			t.Errorf("InspectJQ(%q).Assign = %d, want %d", tc.src, f.Assign, want)
		}
		if (f.Dollar >= 0) != tc.dollar {
			t.Errorf("InspectJQ(%q).Dollar = %d", tc.src, f.Dollar)
		}
	}
}
