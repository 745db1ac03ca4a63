package decode

import (
	"fmt"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/itchyny/gojq"

	"github.com/ferry-etl/ferry/engine/eval"
)

// Split recognises a records program that can read a JSON body as a
// stream. Exactly these shapes stream, with names written .name, ."name"
// or .["name"]:
//
//	.[]              the elements of the top-level array
//	.a.b[]           the elements of the array at .a.b
//	.a.b[] | f       the same, each element then given to f
//
// The array's elements are the records (or f's outputs for each); an
// object in the array's place gives its values, in key order, as jq does.
// path is the keys (none for .[]) and rest is f compiled with vars, nil
// without it. Anything else (an optional [], `as` bindings, definitions,
// several outputs such as .a[], .b[]) reads the document whole: ok is
// false.
func Split(src string, vars []string) (path []string, rest *eval.JQ, ok bool, err error) {
	q, perr := gojq.Parse(src)
	if perr != nil || q.Meta != nil || len(q.Imports) > 0 || len(q.FuncDefs) > 0 {
		return nil, nil, false, nil
	}
	term := q.Term
	var right *gojq.Query
	if q.Op == gojq.OpPipe && len(q.Patterns) == 0 && q.Left != nil && q.Left.Term != nil && q.Left.Op == 0 && plain(q.Left) {
		term, right = q.Left.Term, q.Right
	} else if q.Op != 0 || q.Term == nil {
		return nil, nil, false, nil
	}
	keys, iter := termPath(term)
	if !iter {
		return nil, nil, false, nil
	}
	if right != nil {
		rest, err = eval.CompileJQ(right.String(), vars)
		if err != nil {
			return nil, nil, false, fmt.Errorf("records after the iteration: %w", err)
		}
	}
	return keys, rest, true, nil
}

// plain reports a query with nothing but its term.
func plain(q *gojq.Query) bool {
	return q.Meta == nil && len(q.Imports) == 0 && len(q.FuncDefs) == 0 && len(q.Patterns) == 0 && q.Left == nil && q.Right == nil
}

// termPath reads a term of names ending in one [] (iter true), or of
// names only (iter false, keys nil for anything else).
func termPath(t *gojq.Term) (keys []string, iter bool) {
	switch t.Type {
	case gojq.TermTypeIdentity:
	case gojq.TermTypeIndex:
		k, ok := indexName(t.Index)
		if !ok {
			return nil, false
		}
		keys = append(keys, k)
	default:
		return nil, false
	}
	keys = append([]string{}, keys...)
	for i, s := range t.SuffixList {
		switch {
		case s.Optional:
			return nil, false
		case s.Iter:
			if i != len(t.SuffixList)-1 {
				return nil, false
			}
			return keys, true
		case s.Index != nil:
			k, ok := indexName(s.Index)
			if !ok {
				return nil, false
			}
			keys = append(keys, k)
		default:
			return nil, false
		}
	}
	return keys, false
}

// indexName is the key of .name, ."name" or .["name"].
func indexName(ix *gojq.Index) (string, bool) {
	switch {
	case ix == nil || ix.IsSlice || ix.End != nil:
		return "", false
	case ix.Name != "":
		return ix.Name, true
	case ix.Str != nil && len(ix.Str.Queries) == 0:
		return ix.Str.Str, true
	case ix.Start != nil && plain(ix.Start) && ix.Start.Term != nil && ix.Start.Term.Type == gojq.TermTypeString &&
		ix.Start.Term.Str != nil && len(ix.Start.Term.Str.Queries) == 0 && len(ix.Start.Term.SuffixList) == 0:
		return ix.Start.Term.Str.Str, true
	}
	return "", false
}

// PathOf returns the keys of a jq program that is a path of names and
// nothing else (.a.b.c, at least one name); ok is false for anything else.
// Such a program reads only the value there, which a streamed body can
// keep (Options.Capture).
func PathOf(src string) (keys []string, ok bool) {
	q, err := gojq.Parse(src)
	if err != nil || !plain(q) || q.Term == nil {
		return nil, false
	}
	keys, iter := termPath(q.Term)
	if iter || len(keys) == 0 {
		return nil, false
	}
	return keys, true
}

// MemberPaths returns the member paths an expr program reads from the
// variable name (response.meta.last gives [meta last]); ok is false when
// it uses the variable in any other way (whole, indexed by a number or an
// expression). No use at all gives no paths and ok.
func MemberPaths(src, name string) (paths [][]string, ok bool) {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, false
	}
	c := &memberCollector{name: name, inner: map[*ast.MemberNode]bool{}}
	ast.Walk(&tree.Node, c)
	for _, m := range c.members {
		if c.inner[m] {
			continue
		}
		if p, ok := memberPath(m, name); ok {
			paths = append(paths, p)
		}
	}
	return paths, len(paths) == c.uses
}

type memberCollector struct {
	name    string
	uses    int
	members []*ast.MemberNode
	inner   map[*ast.MemberNode]bool // members that are the object of another
}

func (c *memberCollector) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.IdentifierNode:
		if x.Value == c.name {
			c.uses++
		}
	case *ast.MemberNode:
		c.members = append(c.members, x)
		if inner, ok := x.Node.(*ast.MemberNode); ok {
			c.inner[inner] = true
		}
	}
}

// memberPath reads name.a.b (constant string properties only).
func memberPath(m *ast.MemberNode, name string) ([]string, bool) {
	var rev []string
	var n ast.Node = m
	for {
		switch x := n.(type) {
		case *ast.MemberNode:
			s, ok := x.Property.(*ast.StringNode)
			if !ok {
				return nil, false
			}
			rev = append(rev, s.Value)
			n = x.Node
		case *ast.IdentifierNode:
			if x.Value != name {
				return nil, false
			}
			out := make([]string, len(rev))
			for i, k := range rev {
				out[len(rev)-1-i] = k
			}
			return out, true
		default:
			return nil, false
		}
	}
}

// ListPath returns the keys of the list a records program iterates first,
// for a body read whole: what Split takes, and also an optional iteration
// (.a.b[]? and .a.b[]? | f) and a default for a missing list
// ((.a.b // [])[] and (.a.b // [])[] | f). Each reads the elements of the
// list at .a.b, one by one, before anything else, so that list's length
// is the page's however f filters them. ok is false for anything else.
func ListPath(src string) (keys []string, ok bool) {
	q, err := gojq.Parse(src)
	if err != nil || q.Meta != nil || len(q.Imports) > 0 || len(q.FuncDefs) > 0 {
		return nil, false
	}
	if q.Op == gojq.OpPipe && len(q.Patterns) == 0 && q.Left != nil && q.Left.Op == 0 && plain(q.Left) {
		q = q.Left
	} else if !plain(q) {
		return nil, false
	}
	if q.Term == nil {
		return nil, false
	}
	t := *q.Term
	if n := len(t.SuffixList); n >= 2 && t.SuffixList[n-1].Optional && t.SuffixList[n-2].Iter {
		t.SuffixList = t.SuffixList[:n-1]
	}
	if t.Type == gojq.TermTypeQuery && len(t.SuffixList) == 1 && t.SuffixList[0].Iter {
		// (.a.b // [])[]
		alt := t.Query
		if alt == nil || alt.Op != gojq.OpAlt || alt.Left == nil || alt.Right == nil || !plain(alt.Left) || !plain(alt.Right) ||
			alt.Left.Term == nil || !emptyArray(alt.Right.Term) {
			return nil, false
		}
		keys, iter := termPath(alt.Left.Term)
		if iter || keys == nil {
			return nil, false
		}
		return keys, true
	}
	keys, iter := termPath(&t)
	if !iter {
		return nil, false
	}
	return keys, true
}

// emptyArray reports the literal [].
func emptyArray(t *gojq.Term) bool {
	return t != nil && t.Type == gojq.TermTypeArray && t.Array != nil && t.Array.Query == nil && len(t.SuffixList) == 0
}
