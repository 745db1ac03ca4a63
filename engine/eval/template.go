package eval

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

func pathEscape(s string) string { return url.PathEscape(s) }

// Template is a compiled string template: literal text with zero or more
// `${ expr }` parts, each an expr program (AnyKind) checked against a scope.
// `$${` stands for a literal "${". A Template is safe for concurrent use.
//
// Rendering: a template that is exactly one `${ … }` part (spaces inside the
// braces allowed, nothing outside them) renders to the raw value, so
// `${ config.page_size }` can yield a number and `${ parent }` a map. Any other
// template renders to a string: literal text and parts concatenated, each part
// formatted as nil -> "", bool -> "true"/"false", integers and floats in plain
// decimal (1e21 -> "1000000000000000000000", 2.0 -> "2"), json.Number as
// written, time.Time as RFC 3339, maps and slices as compact JSON.
type Template struct {
	src   string
	parts []part
	raw   bool // exactly one expression part and no literal text
}

type part struct {
	lit  string // literal text, when expr is nil
	expr *Expr
	off  int // of the expression's first character in the source
}

// HasTemplate reports whether s contains "${", an expression part or the
// escape "$${". A string for which it is false renders to itself.
func HasTemplate(s string) bool { return strings.Contains(s, "${") }

// CompileTemplate compiles a template. Errors are [*Error] whose Offset is a
// byte offset in s: for an error inside an expression, the offset of the
// expression text in s plus the offset inside it; for an unterminated or
// empty part, the offset of its "${".
func CompileTemplate(s string, scope Scope, opts ...Option) (*Template, error) {
	return NewEnv(scope, opts...).compileTemplate(s)
}

func (env *Env) compileTemplate(s string) (*Template, error) {
	if len(s) > MaxProgramLen {
		return nil, checkLimits("expr", s)
	}
	t := &Template{src: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '$')
		if j < 0 {
			lit.WriteString(s[i:])
			break
		}
		lit.WriteString(s[i : i+j])
		i += j
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			lit.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			start := i + 2
			end := exprEnd(s, start)
			if end < 0 {
				return nil, &Error{Lang: "expr", Offset: i, Msg: "unterminated ${: missing }"}
			}
			if strings.TrimSpace(s[start:end]) == "" {
				return nil, &Error{Lang: "expr", Offset: i, Msg: "empty ${ }"}
			}
			e, err := env.compileExpr(s[start:end], AnyKind)
			if err != nil {
				var ee *Error
				if errors.As(err, &ee) {
					return nil, &Error{Lang: ee.Lang, Offset: start + ee.Offset, Msg: ee.Msg}
				}
				return nil, err
			}
			flush()
			t.parts = append(t.parts, part{expr: e, off: end - len(strings.TrimLeft(s[start:end], " \t\r\n"))})
			i = end + 1
		default:
			lit.WriteByte('$')
			i++
		}
	}
	flush()
	t.raw = len(t.parts) == 1 && t.parts[0].expr != nil
	return t, nil
}

// TemplateExprs returns the source of each ${ } expression of template
// text s, in order (not the literal text, nor an escaped $${): what a
// check of the names a template uses must look at. An unterminated
// ${ ends the list (compiling s reports it).
func TemplateExprs(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '$')
		if j < 0 {
			break
		}
		i += j
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := exprEnd(s, i+2)
			if end < 0 {
				return out
			}
			out = append(out, s[i+2:end])
			i = end + 1
		default:
			i++
		}
	}
	return out
}

// exprEnd returns the index of the '}' that ends the expression starting at
// i, skipping braces of map literals and string literals, or -1.
func exprEnd(s string, i int) int {
	depth := 0
	for ; i < len(s); i++ {
		switch c := s[i]; c {
		case '{':
			depth++
		case '}':
			if depth == 0 {
				return i
			}
			depth--
		case '"', '\'', '`':
			for i++; i < len(s) && s[i] != c; i++ {
				if s[i] == '\\' && c != '`' {
					i++
				}
			}
			if i >= len(s) {
				return -1
			}
		}
	}
	return -1
}

// Source returns the template text given to [CompileTemplate].
func (t *Template) Source() string { return t.src }

// IsLiteral reports whether the template has no expression part; it then
// always renders to the same string (with "$${" unescaped).
func (t *Template) IsLiteral() bool {
	for _, p := range t.parts {
		if p.expr != nil {
			return false
		}
	}
	return true
}

// SingleExpr is the source of the template's expression when the
// template is that one ${ … } and nothing else (it renders to the raw
// value, null included).
func (t *Template) SingleExpr() (string, bool) {
	if !t.raw {
		return "", false
	}
	exprs := TemplateExprs(t.src)
	if len(exprs) != 1 {
		return "", false
	}
	return exprs[0], true
}

// LiteralPrefix is the literal text before the template's first
// expression part ("$${" undone): all of it for a literal template.
func (t *Template) LiteralPrefix() string {
	if len(t.parts) > 0 && t.parts[0].expr == nil {
		return t.parts[0].lit
	}
	return ""
}

// EmptyPart finds an expression part that renders to null or "" whatever
// the env (`${ "" }`, `${ nil }`): in a path it always leaves an empty
// segment. off is the offset of its expression's first character.
func (t *Template) EmptyPart() (off int, ok bool) {
	for _, p := range t.parts {
		if p.expr == nil || !p.expr.constant {
			continue
		}
		if v, err := p.expr.eval(nil); err == nil && formatScalar(v) == "" {
			return p.off, true
		}
	}
	return 0, false
}

// Render evaluates the template with env (see [Expr.Eval]): the raw value for
// a template that is a single `${ … }`, a string otherwise.
func (t *Template) Render(env map[string]any) (any, error) {
	return t.RenderEach(env, nil)
}

// RenderEach is Render, and calls each (when not nil) with the index and
// the text of every expression part, in order: a caller can tell a part's
// value from the literal text around it (to treat a part that reads a
// secret as one). A single `${ … }` gives its value formatted as in a
// longer template.
func (t *Template) RenderEach(env map[string]any, each func(i int, text string)) (any, error) {
	return t.RenderParts(env, textOnly(each))
}

// RenderParts is RenderEach with each given the part's value as well as
// its text, before either is used: an error it returns ends the render
// and is its error (a caller refuses a part that is null where that
// would send another request).
func (t *Template) RenderParts(env map[string]any, each func(i int, v any, text string) error) (any, error) {
	if t.raw {
		v, err := t.evalPart(t.parts[0].expr, normalizeEnv(env))
		if err == nil && each != nil {
			err = each(0, v, formatScalar(v))
		}
		if err != nil {
			return nil, err
		}
		return v, nil
	}
	s, err := t.renderChecked(env, nil, false, each)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// EvalParts evaluates only the expression parts whose index (as
// RenderParts counts them) is in which, calling each with its value: a
// caller checks some parts before the rest can be rendered (a text body's
// paging values are known only as each page is sent).
func (t *Template) EvalParts(env map[string]any, which map[int]string, each func(i int, v any) error) error {
	if len(which) == 0 {
		return nil
	}
	env = normalizeEnv(env)
	i := 0
	for _, p := range t.parts {
		if p.expr == nil {
			continue
		}
		if _, ok := which[i]; ok {
			v, err := t.evalPart(p.expr, env)
			if err != nil {
				return err
			}
			if err := each(i, v); err != nil {
				return err
			}
		}
		i++
	}
	return nil
}

// textOnly adapts a RenderEach each to RenderParts.
func textOnly(each func(int, string)) func(int, any, string) error {
	if each == nil {
		return nil
	}
	return func(i int, _ any, s string) error {
		each(i, s)
		return nil
	}
}

// RenderString evaluates the template and returns it as a string; a single
// `${ … }` is formatted like a part of a longer template.
func (t *Template) RenderString(env map[string]any) (string, error) {
	return t.render(env, nil)
}

// RenderEscaped is RenderString with escape applied to the text of every
// expression part, not to the literal text: with url.PathEscape,
// "/apps/${ parent.id }/envs" stays a path whatever the id holds.
func (t *Template) RenderEscaped(env map[string]any, escape func(string) string) (string, error) {
	return t.render(env, escape)
}

// RenderPath renders a URL path: every expression part is path-escaped (an
// identifier holding "/" stays one segment), and a part that renders to
// null or "" is an error, because it would send the request to another
// resource ("/apps/a/envs//resources") instead of failing.
func (t *Template) RenderPath(env map[string]any) (string, error) {
	return t.renderChecked(env, pathEscape, true, nil)
}

// RenderPathEach is RenderPath, and calls each as RenderEach does, with
// the text of a part before it is escaped.
func (t *Template) RenderPathEach(env map[string]any, each func(i int, text string)) (string, error) {
	return t.renderChecked(env, pathEscape, true, textOnly(each))
}

// RenderPathParts is RenderPath with each as in RenderParts, called
// before a part is checked and escaped.
func (t *Template) RenderPathParts(env map[string]any, each func(i int, v any, text string) error) (string, error) {
	return t.renderChecked(env, pathEscape, true, each)
}

func (t *Template) render(env map[string]any, escape func(string) string) (string, error) {
	return t.renderChecked(env, escape, false, nil)
}

func (t *Template) renderChecked(env map[string]any, escape func(string) string, nonEmpty bool, each func(int, any, string) error) (string, error) {
	if len(t.parts) == 1 && t.parts[0].expr == nil {
		return t.parts[0].lit, nil
	}
	env = normalizeEnv(env)
	var b strings.Builder
	i := 0
	for _, p := range t.parts {
		if p.expr == nil {
			b.WriteString(p.lit)
			continue
		}
		v, err := t.evalPart(p.expr, env)
		if err != nil {
			return "", err
		}
		s := formatScalar(v)
		if each != nil {
			if err := each(i, v, s); err != nil {
				return "", err
			}
		}
		i++
		if nonEmpty && s == "" {
			what := "empty"
			if v == nil {
				what = "null"
			}
			return "", fmt.Errorf("${%s} is %s: it would leave an empty path segment", p.expr.src, what)
		}
		if escape != nil {
			s = escape(s)
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

func (t *Template) evalPart(e *Expr, env map[string]any) (any, error) {
	v, err := e.eval(env)
	if err != nil {
		return nil, fmt.Errorf("${%s}: %w", e.src, err)
	}
	return v, nil
}
