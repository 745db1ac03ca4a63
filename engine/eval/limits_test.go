package eval

import (
	"errors"
	"strings"
	"testing"
)

func TestLimits(t *testing.T) {
	deep := func(open, inner, close string, n int) string {
		return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
	}
	jqVars := []string{"parent"}
	tests := []struct {
		name    string
		compile func(string) error
		src     string
		at      int // offset of the error; -1: no error
	}{
		{"jq at the nesting limit", jqc(jqVars), deep("(", ".", ")", MaxNesting), -1},
		{"jq parentheses", jqc(jqVars), deep("(", ".", ")", MaxNesting+1), MaxNesting},
		{"jq arrays and objects", jqc(jqVars), deep("[{a:", "1", "}]", MaxNesting/2+1), 4 * (MaxNesting / 2)},
		{"jq interpolations", jqc(jqVars), deep(`"\(`, "1", `)"`, MaxNesting/2+1), 3 * (MaxNesting / 2)},
		{"jq brackets in strings and comments do not count", jqc(jqVars), `"` + strings.Repeat("(", 2*MaxNesting) + `" # ` + strings.Repeat("[", 2*MaxNesting) + "\n| .", -1},
		{"jq too long", jqc(jqVars), strings.Repeat(".a | ", MaxProgramLen/5+1) + ".", MaxProgramLen},
		{"expr parentheses", exprc, deep("(", "true", ")", MaxNesting+1), MaxNesting},
		{"expr brackets in strings do not count", exprc, `"` + strings.Repeat("(", 2*MaxNesting) + `" != '` + strings.Repeat("[", 2*MaxNesting) + "'", -1},
		{"template too long", tmplc, strings.Repeat("/${ parent.id }", MaxProgramLen/15+1), MaxProgramLen},
		{"template part nesting", tmplc, "/x/${ " + deep("[", "1", "]", MaxNesting+1) + " }", 6 + MaxNesting},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.compile(tc.src)
			if tc.at < 0 {
				if err != nil {
					t.Fatalf("error %v, want none", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v, want *Error", err)
			}
			if e.Offset != tc.at || !strings.Contains(e.Msg, "too") {
				t.Errorf("error at %d: %s; want at %d, nested too deeply or too long", e.Offset, e.Msg, tc.at)
			}
		})
	}
}

func jqc(vars []string) func(string) error {
	return func(src string) error { _, err := CompileJQ(src, vars); return err }
}

func exprc(src string) error {
	_, err := CompileExpr(src, Scope{"parent": nil}, BoolKind)
	return err
}

func tmplc(src string) error {
	_, err := CompileTemplate(src, Scope{"parent": nil})
	return err
}
