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

// TestInspectJQShape: what may drop an input (Filters) or multiply one
// (Expands), told from the syntax: the functions, not a field, variable
// or string of their names.
func TestInspectJQShape(t *testing.T) {
	for _, tc := range []struct {
		src              string
		filters, expands bool
	}{
		{src: ".data[]"},
		{src: ".data | map(.x) | .[]"},
		{src: ".data as $d | $d[]"},
		{src: `.data[] | {id, blank: .empty, selected: ."select", kind: "empty", r: ."recurse"}`},
		{src: ".data[] | .tags | first"},
		{src: ".data[] | select(.x)", filters: true},
		{src: ".data[] | .x // empty", filters: true},
		{src: ".data | .[] | values", filters: true},
		{src: ".data | .[] | objects", filters: true},
		{src: "first(.data[])", filters: true},
		{src: ".data | .[]?", filters: true},
		{src: ".data[] | try (.x | tonumber)", filters: true},
		{src: ".data[].tags[]", expands: true},
		{src: ".data | map(.tags[]) | .[]", expands: true},
		{src: "[.data[] | .x] | .[]", expands: true},
		{src: "(.data, .included) | .[]", expands: true},
		{src: ".data | ..", expands: true},
		{src: ".data[] | recurse(.children[]?)", filters: true, expands: true},
		{src: ".data | range(length) as $i | .[$i]", expands: true},
		{src: ".data | map(.tags) | flatten | .[]", expands: true},
		{src: ".data | map(.tags) | add | .[]", expands: true},
		{src: ".data | last | .x"},
		{src: ".data | nth(0) | .x"},
		{src: "last(.data[])", filters: true},
		{src: "nth(1; .data[])", filters: true},
		{src: "skip(1; .data[])", filters: true},
		{src: "label $out | .data[] | if .end then break $out else . end", filters: true},
	} {
		f := InspectJQ(tc.src)
		if f.Filters != tc.filters || f.Expands != tc.expands {
			t.Errorf("InspectJQ(%q): Filters %v, Expands %v; want %v, %v", tc.src, f.Filters, f.Expands, tc.filters, tc.expands)
		}
	}
}
