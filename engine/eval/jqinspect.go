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
	// Filters: the program may drop an input: it calls select, empty or
	// a builtin made of them (values, objects, limit...), or suppresses
	// errors (try, ?). A field, variable or string of those names is none.
	Filters bool
	// Expands: the program may give more than one output for one item of
	// a list: it iterates twice or more (.a[].b[], [.a[]] | .[]), joins
	// outputs with a comma, or recurses (.., recurse, range...). Told from
	// the syntax, so a collected iteration ([.a[]]) counts too.
	Expands bool
}

// filterFuncs and expandFuncs are the builtins that may drop an input or
// give several outputs for one.
var (
	filterFuncs = []string{"select", "empty", "values", "nulls", "booleans", "numbers", "strings",
		"arrays", "objects", "iterables", "scalars", "limit", "first", "last", "nth", "skip"}
	expandFuncs = []string{"recurse", "range", "splits", "scan", "match", "capture", "paths",
		"leaf_paths", "tostream", "repeat", "while", "combinations",
		// They join lists of an item into one: .data | map(.tags) | flatten | .[]
		"flatten", "add"}
)

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
	var w shapeWalk
	w.walk(reflect.ValueOf(q))
	facts.Filters, facts.Expands = w.filters, w.expands || w.iterations >= 2
	return facts
}

// shapeWalk gathers, over a parsed program (a gojq syntax tree, walked
// by reflection: a node may sit in any of its node kinds), what tells
// whether it may drop or multiply its inputs.
type shapeWalk struct {
	iterations       int
	filters, expands bool
}

func (w *shapeWalk) walk(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return
		}
		switch x := v.Interface().(type) {
		case *gojq.Func:
			// first, last and nth filter with a generator argument; bare,
			// they index (first is .[0], nth(1) is .[1]).
			w.filters = w.filters || slices.Contains(filterFuncs, x.Name) && len(x.Args) >= indexArgs(x.Name)
			w.expands = w.expands || slices.Contains(expandFuncs, x.Name)
		case *gojq.Suffix:
			if x.Iter {
				w.iterations++
			}
			w.filters = w.filters || x.Optional
		case *gojq.Term:
			w.filters = w.filters || x.Type == gojq.TermTypeTry || x.Type == gojq.TermTypeBreak
			w.expands = w.expands || x.Type == gojq.TermTypeRecurse
		case *gojq.Query:
			w.expands = w.expands || x.Op == gojq.OpComma
		}
		w.walk(v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				w.walk(v.Field(i))
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			w.walk(v.Index(i))
		}
	}
}

// indexArgs is how many arguments a filter builtin needs to filter: one
// more than its form that only indexes takes, if it has one.
func indexArgs(name string) int {
	switch name {
	case "first", "last":
		return 1
	case "nth":
		return 2
	}
	return 0
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
