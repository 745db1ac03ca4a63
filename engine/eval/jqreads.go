package eval

import (
	"slices"
	"strings"

	"github.com/itchyny/gojq"
)

// InputMembers returns the members of its input (an object) the program
// may read: only these need to be there for it to give what it gives on
// the whole input. It is known (ok) only for programs of the fast subset
// (see compileFast) that read the input through member names alone
// (.a, .a.b, {a}, .a // .b | f); any program that may see the input
// whole (., a function or an if without else given the input, anything
// outside the subset) is not: ok is false. A program that reads nothing
// of its input gives no keys and ok.
func (q *JQ) InputMembers() (keys []string, ok bool) {
	if q == nil {
		return nil, true
	}
	if q.fast == nil {
		return nil, false
	}
	parsed, err := gojq.Parse(q.src)
	if err != nil {
		return nil, false
	}
	seen := map[string]bool{}
	if !queryMembers(parsed, seen) {
		return nil, false
	}
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, true
}

// queryMembers adds to seen the members of the input q reads; false when
// q may see the input otherwise than through them.
func queryMembers(q *gojq.Query, seen map[string]bool) bool {
	if q == nil {
		return true
	}
	if q.Meta != nil || len(q.Imports) > 0 || len(q.FuncDefs) > 0 || len(q.Patterns) > 0 {
		return false
	}
	if q.Term != nil {
		return termMembers(q.Term, seen)
	}
	switch q.Op {
	case gojq.OpPipe:
		// The right side's input is the left side's output, which is the
		// input itself only where the left side may give it whole (and
		// then false already): a member, a literal, a built object. What
		// the right side reads of it is read of that member whole.
		return queryMembers(q.Left, seen)
	case gojq.OpAdd, gojq.OpEq, gojq.OpNe, gojq.OpAlt, gojq.OpAnd, gojq.OpOr:
		return queryMembers(q.Left, seen) && queryMembers(q.Right, seen)
	}
	return false
}

// termMembers is queryMembers for a term of the subset. Its suffixes
// (names) read into the term's output, not the input.
func termMembers(t *gojq.Term, seen map[string]bool) bool {
	switch t.Type {
	case gojq.TermTypeIndex:
		if !plainIndex(t.Index) {
			return false
		}
		seen[t.Index.Name] = true
		return true
	case gojq.TermTypeNull, gojq.TermTypeTrue, gojq.TermTypeFalse, gojq.TermTypeString, gojq.TermTypeArray:
		// Literals (the subset has no interpolation nor [ … ] with a query).
		return true
	case gojq.TermTypeObject:
		if t.Object == nil {
			return false
		}
		for _, kv := range t.Object.KeyVals {
			switch {
			case kv.Val == nil && kv.Key != "" && !strings.HasPrefix(kv.Key, "$") && !strings.HasPrefix(kv.Key, "@"):
				seen[kv.Key] = true // {a} is {a: .a}
			case kv.Val == nil && kv.KeyString != nil && len(kv.KeyString.Queries) == 0:
				seen[kv.KeyString.Str] = true // {"a b"}
			case kv.Val == nil:
				return false
			case !queryMembers(kv.Val, seen):
				return false
			}
		}
		return true
	case gojq.TermTypeQuery:
		return queryMembers(t.Query, seen)
	case gojq.TermTypeIf:
		f := t.If
		if f == nil || f.Else == nil {
			return false // without else, jq gives the input
		}
		if !queryMembers(f.Cond, seen) || !queryMembers(f.Then, seen) || !queryMembers(f.Else, seen) {
			return false
		}
		for _, e := range f.Elif {
			if !queryMembers(e.Cond, seen) || !queryMembers(e.Then, seen) {
				return false
			}
		}
		return true
	case gojq.TermTypeFunc:
		f := t.Func
		switch {
		case f == nil:
			return false
		case strings.HasPrefix(f.Name, "$"):
			return true // a variable: not the input
		case f.Name == "error" && len(f.Args) == 1:
			return true // error("…"): its message is the literal
		}
		// ltrimstr("…"), clean_title …: given the input, they see it whole.
		return false
	}
	// The input itself (.), or what the subset does not hold.
	return false
}
