package eval

import (
	"reflect"
	"slices"
	"strings"

	"github.com/itchyny/gojq"
)

// JQFacts is what can be told of a jq program without running it, for
// warnings about mappings that are valid but likely wrong.
type JQFacts struct {
	// Keys are the keys of the object the program outputs, when its last
	// stage builds an object whose keys are all written out ({id, name: .n});
	// nil when they are not known.
	Keys []string
	// Builds names what the last stage builds when it is not an object
	// ("a list", "a string", "a number", "a boolean", "null"); "" when it
	// is an object or not known.
	Builds string
	// Assign is the offset of the first `=` among the program's top-level
	// operators (`.type = "service"`), an assignment where a comparison
	// (==) was likely meant; -1 when there is none.
	Assign int
	// Dollar is the offset of the first "${" in the program: jq keeps it as
	// text, it is not a template; -1 when there is none.
	Dollar int
	// Filters: the program calls select or empty (the functions, not a
	// field, variable or string of that name), so it may drop an input.
	Filters bool
}

// InspectJQ returns the facts of a jq program; a program that does not
// parse has none.
func InspectJQ(src string) JQFacts {
	facts := JQFacts{Assign: -1, Dollar: strings.Index(src, "${")}
	q, err := gojq.Parse(src)
	if err != nil {
		return facts
	}
	last := lastStage(q)
	if last != nil && last.Term != nil && len(last.Term.SuffixList) == 0 {
		switch t := last.Term; t.Type {
		case gojq.TermTypeObject:
			facts.Keys = objectKeys(t.Object)
		case gojq.TermTypeArray:
			facts.Builds = "a list"
		case gojq.TermTypeString:
			facts.Builds = "a string"
		case gojq.TermTypeNumber:
			facts.Builds = "a number"
		case gojq.TermTypeTrue, gojq.TermTypeFalse:
			facts.Builds = "a boolean"
		case gojq.TermTypeNull:
			facts.Builds = "null"
		}
	}
	if hasAssign(q) {
		facts.Assign = loneEquals(src)
	}
	facts.Filters = callsAny(reflect.ValueOf(q), "select", "empty")
	return facts
}

// callsAny reports a call of one of names anywhere in the parsed program
// v (a gojq syntax tree, walked by reflection: a call may sit in any of
// its node kinds).
func callsAny(v reflect.Value, names ...string) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return false
		}
		if f, ok := v.Interface().(*gojq.Func); ok && slices.Contains(names, f.Name) {
			return true
		}
		return callsAny(v.Elem(), names...)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() && callsAny(v.Field(i), names...) {
				return true
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			if callsAny(v.Index(i), names...) {
				return true
			}
		}
	}
	return false
}

// lastStage follows a program's pipes (and parentheses) to the query whose
// output is the program's.
func lastStage(q *gojq.Query) *gojq.Query {
	for q != nil {
		switch {
		case q.Op == gojq.OpPipe:
			q = q.Right
		case q.Op == 0 && q.Term != nil && q.Term.Type == gojq.TermTypeQuery && len(q.Term.SuffixList) == 0:
			q = q.Term.Query
		default:
			return q
		}
	}
	return nil
}

// objectKeys lists the keys of an object construction, or nil when one is
// computed.
func objectKeys(o *gojq.Object) []string {
	keys := []string{}
	for _, kv := range o.KeyVals {
		switch {
		case kv.Key != "" && !strings.HasPrefix(kv.Key, "@"):
			keys = append(keys, strings.TrimPrefix(kv.Key, "$"))
		case kv.KeyString != nil && len(kv.KeyString.Queries) == 0:
			keys = append(keys, kv.KeyString.Str)
		default:
			return nil
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// hasAssign reports whether an `=` is among the operators that combine the
// program's outputs (pipes, and, or, commas, alternatives), not inside a
// term such as a function argument.
func hasAssign(q *gojq.Query) bool {
	if q == nil {
		return false
	}
	switch q.Op {
	case gojq.OpAssign:
		return true
	case 0:
		if q.Term != nil && q.Term.Type == gojq.TermTypeQuery && len(q.Term.SuffixList) == 0 {
			return hasAssign(q.Term.Query)
		}
		return false
	}
	return hasAssign(q.Left) || hasAssign(q.Right)
}

// loneEquals is the offset of the first "=" outside strings and comments
// that is not part of ==, !=, <=, >=, |=, +=, -=, *=, /=, %= or //=.
func loneEquals(src string) int {
	toks, _ := lexJQ(src)
	for i, t := range toks {
		if !t.is(jqPunct, "=") {
			continue
		}
		prev, next := byte(0), byte(0)
		if i > 0 && toks[i-1].kind == jqPunct && toks[i-1].off == t.off-1 {
			prev = toks[i-1].text[0]
		}
		if i+1 < len(toks) && toks[i+1].kind == jqPunct && toks[i+1].off == t.off+1 {
			next = toks[i+1].text[0]
		}
		if next != '=' && !strings.ContainsRune("=!<>|+-*/%", rune(prev)) {
			return t.off
		}
	}
	return -1
}
