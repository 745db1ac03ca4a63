package eval

import (
	"errors"
	"testing"
)

// FuzzCompile checks that compiling anything never panics and that every
// compile error is an *Error whose offset lies inside the source.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		".foo | ]", "$nope", `"a \(.x`, "/orgs/${ config.org_id }", "${", "$${x}", "${ {\"a\": \"}\"} }",
		"config.org_idd", "é${ 1 + \"a\" }", "# c\n.a", "parents?.apps?.id ?? 1",
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
		_, err := CompileJQ(src, []string{"parent"})
		check("CompileJQ", err)
		_, err = CompileExpr(src, scope, BoolKind)
		check("CompileExpr", err)
		_, err = CompileTemplate(src, scope)
		check("CompileTemplate", err)
	})
}
