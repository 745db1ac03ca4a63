package spec

import (
	"github.com/expr-lang/expr/ast"
	exprparser "github.com/expr-lang/expr/parser"

	"github.com/ferry-etl/ferry/engine/eval"
)

// ReadsRecordOnly reports whether t is one ${ } that only reads a field
// of a parent, a lookup or the batch (parent.key, parents.apps.id,
// lookups.org[parent.uid]), with nothing that decides its value: when it
// renders null, the record lacks what the template names, which no
// author meant (a `?? nil` or a condition says null on purpose).
func ReadsRecordOnly(t *eval.Template) bool {
	if t == nil {
		return false
	}
	src, ok := t.SingleExpr()
	return ok && readsRecordOnly(src)
}

// RecordOnlyParts tells, for each ${ } part of t in order, whether it
// only reads a field of a parent, a lookup or the batch (see
// ReadsRecordOnly): in "project_id:${ parent.id }" or
// "/apps/${ parent.id }/envs" as much as alone.
func RecordOnlyParts(t *eval.Template) []bool {
	if t == nil {
		return nil
	}
	exprs := eval.TemplateExprs(t.Source())
	out := make([]bool, len(exprs))
	for i, src := range exprs {
		out[i] = readsRecordOnly(src)
	}
	return out
}

// readsRecordOnly is ReadsRecordOnly of one expression's source.
func readsRecordOnly(src string) bool {
	tree, err := exprparser.Parse(src)
	if err != nil {
		return false
	}
	n := tree.Node
	for {
		switch x := n.(type) {
		case *ast.MemberNode:
			n = x.Node
		case *ast.ChainNode:
			n = x.Node
		case *ast.IdentifierNode:
			switch x.Value {
			case VarParent, VarParents, VarLookups, VarBatch:
				return n != tree.Node // a field of one, not the whole
			}
			return false
		default:
			return false
		}
	}
}
