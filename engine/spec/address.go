package spec

import (
	"reflect"
	"slices"

	"github.com/expr-lang/expr/ast"
	exprparser "github.com/expr-lang/expr/parser"

	"github.com/ferry-etl/ferry/engine/eval"
)

// AddressInputs lists, sorted, the config inputs the spec reads in an
// http.base_url (the top level's or a stream's) and in no other program:
// the API's address, which a proxy, a region or a test server moves
// without changing whose data the source holds. A read anywhere else (a
// path, a query value, a jq program, port.owner …) keeps an input out, and
// so does a program that reads config whole (config, $config, config[k]),
// which reads every input.
func (f *File) AddressInputs() []string {
	w := &inputWalk{base: map[string]bool{}, other: map[string]bool{}, seen: map[uintptr]bool{}}
	v := reflect.ValueOf(f).Elem()
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		// Inputs' own settings (defaults, descriptions) are data, not reads.
		if sf.IsExported() && sf.Name != "Config" {
			w.walk(v.Field(i), false)
		}
	}
	if w.whole {
		return nil
	}
	var out []string
	for name := range w.base {
		if !w.other[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// inputWalk gathers the config inputs read in base URLs (base) and
// elsewhere (other); whole is set by a program that reads config whole.
type inputWalk struct {
	base, other map[string]bool
	whole       bool
	seen        map[uintptr]bool
}

var (
	tmplType  = reflect.TypeFor[Tmpl]()
	exprType  = reflect.TypeFor[Expr]()
	jqType    = reflect.TypeFor[JQ]()
	valueType = reflect.TypeFor[Value]()
	httpType  = reflect.TypeFor[HTTP]()
)

func (w *inputWalk) walk(v reflect.Value, inBase bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || w.seen[v.Pointer()] {
			return
		}
		w.seen[v.Pointer()] = true
		w.walk(v.Elem(), inBase)
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			w.walk(v.Index(i), inBase)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			w.walk(it.Value(), inBase)
		}
	case reflect.Struct:
		switch v.Type() {
		case tmplType:
			w.template(v.Addr().Interface().(*Tmpl).V, inBase)
			return
		case exprType:
			w.expr(v.Addr().Interface().(*Expr).V, inBase)
			return
		case jqType:
			w.jq(v.Addr().Interface().(*JQ).V, inBase)
			return
		case valueType:
			w.tree(v.Addr().Interface().(*Value).Tree(), inBase)
			return
		}
		for i := range v.NumField() {
			sf := v.Type().Field(i)
			if !sf.IsExported() {
				continue
			}
			w.walk(v.Field(i), inBase || v.Type() == httpType && sf.Name == "BaseURL")
		}
	}
}

// tree walks a Value's tree: its templates are the programs in it.
func (w *inputWalk) tree(x any, inBase bool) {
	switch x := x.(type) {
	case *eval.Template:
		w.template(x.Source(), inBase)
	case []any:
		for _, e := range x {
			w.tree(e, inBase)
		}
	case map[string]any:
		for _, e := range x {
			w.tree(e, inBase)
		}
	}
}

func (w *inputWalk) read(name string, inBase bool) {
	if inBase {
		w.base[name] = true
	} else {
		w.other[name] = true
	}
}

func (w *inputWalk) template(src string, inBase bool) {
	for _, e := range eval.TemplateExprs(src) {
		w.expr(e, inBase)
	}
}

func (w *inputWalk) jq(src string, inBase bool) {
	for _, rd := range memberReads(jqConfigRE, src) {
		if rd.name == "" {
			w.whole = true
		}
		w.read(rd.name, inBase)
	}
}

// expr adds the inputs an expr program reads by a fixed name
// (config.NAME, config["NAME"], config?.NAME); any other use of config
// reads it whole, and so does a program that does not parse.
func (w *inputWalk) expr(src string, inBase bool) {
	if src == "" {
		return
	}
	tree, err := exprparser.Parse(src)
	if err != nil {
		w.whole = true
		return
	}
	v := &configReads{named: map[*ast.IdentifierNode]bool{}}
	ast.Walk(&tree.Node, v)
	for _, id := range v.config {
		if !v.named[id] {
			w.whole = true
		}
	}
	for _, name := range v.names {
		w.read(name, inBase)
	}
}

// configReads walks an expr program for its reads of config: names are
// the members read by a fixed name, config every use of the variable.
type configReads struct {
	names  []string
	config []*ast.IdentifierNode
	named  map[*ast.IdentifierNode]bool
}

func (v *configReads) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.IdentifierNode:
		if x.Value == VarConfig {
			v.config = append(v.config, x)
		}
	case *ast.MemberNode:
		id, ok := x.Node.(*ast.IdentifierNode)
		if !ok || id.Value != VarConfig {
			return
		}
		if prop, ok := x.Property.(*ast.StringNode); ok {
			v.named[id] = true
			v.names = append(v.names, prop.Value)
		}
	}
}
