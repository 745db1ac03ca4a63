package spec

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/expr-lang/expr/ast"
	exprparser "github.com/expr-lang/expr/parser"

	"github.com/ferry-etl/ferry/engine/eval"
)

// jqConfigRE finds $config in jq: read by name ($config.name,
// $config["name"]) or whole (any other use).
var jqConfigRE = regexp.MustCompile(`\$config\b\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*"([^"\\]*)"\s*\])?`)

// checkSecretOutputs warns of a program whose output is written (a
// stream's records, a table's row, an entity's fields) and that reads a
// secret input: its value would be written to the table or to Port, where
// ferry redacts nothing (rows are the data). A selector only decides.
func (p *parser) checkSecretOutputs(f *File) {
	var secrets []string
	for _, it := range f.Config.Items {
		if it.Value.Secret.V {
			secrets = append(secrets, it.Key)
		}
	}
	if len(secrets) == 0 {
		return
	}
	check := func(src Str, path, where string) {
		for _, rd := range memberReads(jqConfigRE, src.V) {
			switch {
			case rd.name == "":
				p.warnAt(p.progPos(src, rd.offset), path, "reads $config whole, secret inputs included (%s): their values would be written %s", strings.Join(secrets, ", "), where)
			case slices.Contains(secrets, rd.name):
				p.warnAt(p.progPos(src, rd.offset), path, "reads the secret input %s: its value would be written %s", rd.name, where)
			}
		}
	}
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		check(s.Records.Str, "streams."+s.Name+".records", "with the records")
	}
	for i := range f.Tables.Items {
		t := &f.Tables.Items[i].Value
		check(t.Row.Str, "tables."+t.Name+".row", "to the table")
	}
	if f.Port == nil {
		return
	}
	for i := range f.Port.Entities {
		e := &f.Port.Entities[i]
		path := fmt.Sprintf("port.entities[%d]", i)
		for _, x := range []struct {
			name string
			q    *JQ
		}{{"identifier", &e.Identifier}, {"title", &e.Title}, {"icon", &e.Icon}, {"team", &e.Team}} {
			check(x.q.Str, path+"."+x.name, "to Port")
		}
		for _, it := range e.Properties.Items {
			check(it.Value.Str, path+".properties."+it.Key, "to Port")
		}
		for _, it := range e.Relations.Items {
			check(it.Value.Str, path+".relations."+it.Key, "to Port")
		}
	}
}

// SecretParts tells, for each ${ } expression of t in order, whether it
// reads a secret input: its value is then a credential though it may not
// hold the secret as it is (toBase64 of it, say). Exact where it can be
// and otherwise erring toward true: a part reads a secret when it names
// config.NAME (config["NAME"], config?.NAME) of a secret NAME, or config
// other than by a member's fixed name (config whole, config[k], a let of
// it), or $env.
func (f *File) SecretParts(t *eval.Template) []bool {
	if t == nil {
		return nil
	}
	secret := map[string]bool{}
	for _, it := range f.Config.Items {
		if it.Value.Secret.V {
			secret[it.Key] = true
		}
	}
	exprs := eval.TemplateExprs(t.Source())
	out := make([]bool, len(exprs))
	if len(secret) == 0 {
		return out
	}
	for i, src := range exprs {
		out[i] = exprReadsSecret(src, secret)
	}
	return out
}

// exprReadsSecret reports whether an expr program reads one of the
// secret config inputs (see SecretParts).
func exprReadsSecret(src string, secret map[string]bool) bool {
	tree, err := exprparser.Parse(src)
	if err != nil {
		return true // compiled before; in doubt, a secret
	}
	v := &secretFinder{secret: secret, named: map[*ast.IdentifierNode]bool{}}
	ast.Walk(&tree.Node, v)
	if v.found {
		return true
	}
	for _, id := range v.config {
		if !v.named[id] {
			return true
		}
	}
	return false
}

// secretFinder walks an expr program: config.NAME of a secret NAME is
// found; every other use of config is one of config, which SecretParts
// counts as a secret unless it is a member of a name that is not.
type secretFinder struct {
	secret map[string]bool
	found  bool
	config []*ast.IdentifierNode
	named  map[*ast.IdentifierNode]bool // config read by a fixed member name
}

func (v *secretFinder) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.IdentifierNode:
		switch x.Value {
		case VarConfig:
			v.config = append(v.config, x)
		case "$env":
			v.found = true
		}
	case *ast.MemberNode:
		id, ok := x.Node.(*ast.IdentifierNode)
		if !ok || id.Value != VarConfig {
			return
		}
		prop, ok := x.Property.(*ast.StringNode)
		if !ok {
			return // config[k]: counted as config whole
		}
		v.named[id] = true
		v.found = v.found || v.secret[prop.Value]
	}
}

// JQSecretInputs lists the secret config inputs a jq program reads
// ($config.NAME, $config["NAME"]), all of them when it reads $config
// otherwise (whole): its output may be built from them.
func (f *File) JQSecretInputs(src string) []string {
	var secrets []string
	for _, it := range f.Config.Items {
		if it.Value.Secret.V {
			secrets = append(secrets, it.Key)
		}
	}
	if len(secrets) == 0 {
		return nil
	}
	var out []string
	for _, rd := range memberReads(jqConfigRE, src) {
		switch {
		case rd.name == "":
			return secrets
		case slices.Contains(secrets, rd.name) && !slices.Contains(out, rd.name):
			out = append(out, rd.name)
		}
	}
	return out
}
