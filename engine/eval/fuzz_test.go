package eval

import (
	"errors"
	"testing"

	"github.com/itchyny/gojq"
)

// FuzzCompile checks that compiling anything never panics and that every
// compile error is an *Error whose offset lies inside the source.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		".foo | ]", "$nope", `"a \(.x`, "/orgs/${ config.org_id }", "${", "$${x}", "${ {\"a\": \"}\"} }",
		"config.org_idd", "é${ 1 + \"a\" }", "# c\n.a", "parents?.apps?.id ?? 1",
		`"\($parent)" + @base64 "x\($config.a)"`, `. as [$a] ?// $a | {$parent}`, `reduce .[] as $x (0; . + $x) | $config`,
	} {
		f.Add(s)
	}
	scope := Scope{"config": &Scope{"org_id": nil}, "parent": nil}
	f.Fuzz(func(t *testing.T, src string) {
		check := func(what string, err error) {
			if err == nil {
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%s(%q): error %v is not *Error", what, src, err)
			}
			if e.Offset < 0 || e.Offset > len(src) {
				t.Fatalf("%s(%q): offset %d outside [0, %d]", what, src, e.Offset, len(src))
			}
		}
		_, err := CompileJQ(src, []string{"parent", "config"})
		check("CompileJQ", err)
		// Only the variables the lexer sees are compiled in: it must see
		// every one gojq would need.
		if q, perr := gojq.Parse(src); perr == nil {
			_, full := gojq.Compile(q, append(jqOptions(), gojq.WithVariables([]string{"$parent", "$config"}))...)
			if (full == nil) != (err == nil) {
				t.Fatalf("CompileJQ(%q) = %v, but with every variable compiled in: %v", src, err, full)
			}
		}
		_, err = CompileExpr(src, scope, BoolKind)
		check("CompileExpr", err)
		_, err = CompileTemplate(src, scope)
		check("CompileTemplate", err)
	})
}
