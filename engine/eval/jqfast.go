package eval

import (
	"strings"

	"github.com/itchyny/gojq"
)

// fastFunc evaluates a jq program of the small subset most mapped fields
// are written in, without starting gojq's machine: in is the program's
// input, vars the values of every variable named at compile time. ok is
// false wherever its answer could differ from gojq's (an error, a number,
// a type the subset does not model): the caller then runs gojq, which
// gives the answer or words the error.
type fastFunc func(in any, vars []any) (v any, ok bool)

// compileFast returns the fastFunc of a program made only of
//
//	paths of field names into the input or a variable: . .a.b $parent.id
//	string literals without interpolation, null, true, false and []
//	objects with constant keys: {id, name: .n, "a b": $x.a}
//	a + b on strings and null, a // b, a == b and a != b on strings,
//	booleans and null, a and b, a or b, if … then … elif … else … end,
//	a | b, parentheses, ltrimstr("…"), startswith("…"), error("…") (its
//	caller's answer then is gojq's) and the zero-argument
//	functions ferry adds (clean_title, title_case, path_escape, query_escape)
//
// each of which has one output; nil for any other program.
func compileFast(q *gojq.Query, vars Vars) fastFunc {
	if q == nil || q.Meta != nil || len(q.Imports) > 0 || len(q.FuncDefs) > 0 || len(q.Patterns) > 0 {
		return nil
	}
	if q.Term != nil {
		return fastTerm(q.Term, vars)
	}
	left, right := compileFast(q.Left, vars), compileFast(q.Right, vars)
	if left == nil || right == nil {
		return nil
	}
	switch q.Op {
	case gojq.OpPipe:
		return func(in any, vs []any) (any, bool) {
			l, ok := left(in, vs)
			if !ok {
				return nil, false
			}
			return right(l, vs)
		}
	case gojq.OpAdd:
		return binary(left, right, fastAdd)
	case gojq.OpEq:
		return binary(left, right, func(l, r any) (any, bool) { return fastEqual(l, r) })
	case gojq.OpNe:
		return binary(left, right, func(l, r any) (any, bool) {
			eq, ok := fastEqual(l, r)
			return !eq, ok
		})
	case gojq.OpAlt:
		// jq's // also hides an error of its left side; the subset has
		// none to hide: ok false sends the whole program to gojq.
		return func(in any, vs []any) (any, bool) {
			l, ok := left(in, vs)
			if !ok {
				return nil, false
			}
			if truthy(l) {
				return l, true
			}
			return right(in, vs)
		}
	case gojq.OpAnd, gojq.OpOr:
		and := q.Op == gojq.OpAnd
		return func(in any, vs []any) (any, bool) {
			l, ok := left(in, vs)
			if !ok {
				return nil, false
			}
			if truthy(l) != and { // false and …, true or …: decided
				return !and, true
			}
			r, ok := right(in, vs)
			return truthy(r), ok
		}
	}
	return nil
}

// binary evaluates both sides on the same input, left first, and joins
// them with op.
func binary(left, right fastFunc, op func(l, r any) (any, bool)) fastFunc {
	return func(in any, vs []any) (any, bool) {
		l, ok := left(in, vs)
		if !ok {
			return nil, false
		}
		r, ok := right(in, vs)
		if !ok {
			return nil, false
		}
		return op(l, r)
	}
}

// fastTerm compiles one term and its suffixes (field names only).
func fastTerm(t *gojq.Term, vars Vars) fastFunc {
	var names []string
	var base fastFunc
	switch t.Type {
	case gojq.TermTypeIdentity:
		base = func(in any, _ []any) (any, bool) { return in, true }
	case gojq.TermTypeIndex:
		if !plainIndex(t.Index) {
			return nil
		}
		names = append(names, t.Index.Name)
		base = func(in any, _ []any) (any, bool) { return in, true }
	case gojq.TermTypeNull, gojq.TermTypeTrue, gojq.TermTypeFalse:
		var c any
		if t.Type != gojq.TermTypeNull {
			c = t.Type == gojq.TermTypeTrue
		}
		base = func(any, []any) (any, bool) { return c, true }
	case gojq.TermTypeString:
		if t.Str == nil || len(t.Str.Queries) > 0 || t.Format != "" {
			return nil
		}
		s := t.Str.Str
		base = func(any, []any) (any, bool) { return s, true }
	case gojq.TermTypeArray:
		if t.Array == nil || t.Array.Query != nil {
			return nil
		}
		// A new value each time: callers may change what they are given.
		base = func(any, []any) (any, bool) { return []any{}, true }
	case gojq.TermTypeObject:
		base = fastObject(t.Object, vars)
	case gojq.TermTypeQuery:
		base = compileFast(t.Query, vars)
	case gojq.TermTypeIf:
		base = fastIf(t.If, vars)
	case gojq.TermTypeFunc:
		base = fastFuncTerm(t.Func, vars)
	}
	if base == nil {
		return nil
	}
	for _, s := range t.SuffixList {
		if s.Iter || s.Optional || !plainIndex(s.Index) {
			return nil
		}
		names = append(names, s.Index.Name)
	}
	if len(names) == 0 {
		return base
	}
	return func(in any, vs []any) (any, bool) {
		v, ok := base(in, vs)
		if !ok {
			return nil, false
		}
		return followPath(v, names)
	}
}

// fastObject compiles an object construction whose keys are constant:
// {a: …, "b c": …, d} ({d} is {d: .d}); nil for computed keys ({(…): …})
// and the shorthands of variables and formats ({$x}, {@base64}).
func fastObject(o *gojq.Object, vars Vars) fastFunc {
	if o == nil {
		return nil
	}
	keys := make([]string, len(o.KeyVals))
	vals := make([]fastFunc, len(o.KeyVals))
	for i, kv := range o.KeyVals {
		switch {
		case kv.Key != "" && !strings.HasPrefix(kv.Key, "$") && !strings.HasPrefix(kv.Key, "@"):
			keys[i] = kv.Key
		case kv.Key == "" && kv.KeyString != nil && len(kv.KeyString.Queries) == 0 && kv.KeyQuery == nil:
			keys[i] = kv.KeyString.Str
		default:
			return nil
		}
		if kv.Val == nil {
			name := []string{keys[i]}
			vals[i] = func(in any, _ []any) (any, bool) { return followPath(in, name) }
		} else if vals[i] = compileFast(kv.Val, vars); vals[i] == nil {
			return nil
		}
	}
	// A new map each time: callers may change what they are given.
	return func(in any, vs []any) (any, bool) {
		out := make(map[string]any, len(keys))
		for i, k := range keys {
			v, ok := vals[i](in, vs)
			if !ok {
				return nil, false
			}
			out[k] = v
		}
		return out, true
	}
}

// plainIndex reports whether ix is a field name: .a, not ."a", .[0] or .[1:].
func plainIndex(ix *gojq.Index) bool {
	return ix != nil && ix.Name != "" && ix.Str == nil && ix.Start == nil && ix.End == nil && !ix.IsSlice
}

// followPath walks names through v as jq would, where jq gives a value:
// null and objects; ok is false for anything else (jq's error is gojq's
// to word).
func followPath(v any, names []string) (any, bool) {
	for _, name := range names {
		switch m := v.(type) {
		case nil:
		case map[string]any:
			v = m[name]
		default:
			return nil, false
		}
	}
	return v, true
}

// fastIf compiles if … then … (elif … then …)* (else …)? end; without
// else, jq gives the input.
func fastIf(f *gojq.If, vars Vars) fastFunc {
	if f == nil {
		return nil
	}
	conds := []fastFunc{compileFast(f.Cond, vars)}
	thens := []fastFunc{compileFast(f.Then, vars)}
	for _, e := range f.Elif {
		conds = append(conds, compileFast(e.Cond, vars))
		thens = append(thens, compileFast(e.Then, vars))
	}
	otherwise := func(in any, _ []any) (any, bool) { return in, true }
	if f.Else != nil {
		if otherwise = compileFast(f.Else, vars); otherwise == nil {
			return nil
		}
	}
	for i := range conds {
		if conds[i] == nil || thens[i] == nil {
			return nil
		}
	}
	return func(in any, vs []any) (any, bool) {
		for i, cond := range conds {
			c, ok := cond(in, vs)
			if !ok {
				return nil, false
			}
			if truthy(c) {
				return thens[i](in, vs)
			}
		}
		return otherwise(in, vs)
	}
}

// fastFuncTerm compiles a variable ($name, whose value is vars[i]) or a
// call of one of the few functions the subset knows.
func fastFuncTerm(f *gojq.Func, vars Vars) fastFunc {
	if f == nil {
		return nil
	}
	if name, ok := strings.CutPrefix(f.Name, "$"); ok {
		i, ok := vars.Index(name)
		if !ok || len(f.Args) > 0 { // $ENV, $__loc__: gojq's own
			return nil
		}
		return func(_ any, vs []any) (any, bool) {
			if i < len(vs) {
				return vs[i], true
			}
			return nil, true // as values() gives gojq
		}
	}
	if len(f.Args) == 0 {
		for _, x := range extraFuncs() {
			if x.name == f.Name {
				return func(in any, _ []any) (any, bool) {
					s, err := x.argString(in)
					if err != nil {
						return nil, false
					}
					return x.fn(s), true
				}
			}
		}
		return nil
	}
	if len(f.Args) != 1 || f.Args[0].Term == nil || f.Args[0].Term.Type != gojq.TermTypeString {
		return nil
	}
	arg := f.Args[0].Term
	if arg.Str == nil || len(arg.Str.Queries) > 0 || arg.Format != "" || len(arg.SuffixList) > 0 {
		return nil
	}
	lit := arg.Str.Str
	switch f.Name {
	case "ltrimstr":
		return func(in any, _ []any) (any, bool) {
			s, ok := in.(string)
			return strings.TrimPrefix(s, lit), ok
		}
	case "startswith":
		return func(in any, _ []any) (any, bool) {
			s, ok := in.(string)
			return strings.HasPrefix(s, lit), ok
		}
	case "error":
		// Met only when it fails: gojq gives the error. A guard such as
		// .id // error("…") keeps the rest of its program here.
		return func(any, []any) (any, bool) { return nil, false }
	}
	return nil
}

// fastAdd is jq's + where the subset models it: null is the identity
// (of null, booleans and strings: gojq turns a json.Number into an int),
// strings concatenate.
func fastAdd(l, r any) (any, bool) {
	if l == nil {
		return r, scalarNoNumber(r)
	}
	if r == nil {
		return l, scalarNoNumber(l)
	}
	ls, ok1 := l.(string)
	rs, ok2 := r.(string)
	if !ok1 || !ok2 {
		return nil, false
	}
	return ls + rs, true
}

// fastEqual is jq's == on null, booleans and strings (values of different
// kinds are never equal); ok is false for numbers, arrays and objects.
func fastEqual(l, r any) (eq, ok bool) {
	if !scalarNoNumber(l) || !scalarNoNumber(r) {
		return false, false
	}
	return l == r, true
}

func scalarNoNumber(v any) bool {
	switch v.(type) {
	case nil, bool, string:
		return true
	}
	return false
}

// truthy is jq's truth: everything but null and false.
func truthy(v any) bool {
	return v != nil && v != false
}
