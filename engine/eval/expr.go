package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// Kind is the result type an expr program must have.
type Kind int

// Result kinds for [CompileExpr].
const (
	AnyKind    Kind = iota // any value
	BoolKind               // bool, e.g. a `when` condition
	IntKind                // an integer, returned by Eval as int
	StringKind             // a string
)

func (k Kind) String() string {
	switch k {
	case AnyKind:
		return "any"
	case BoolKind:
		return "bool"
	case IntKind:
		return "int"
	case StringKind:
		return "string"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Scope describes the names a program may use, for validate-time checking.
// A nil *Scope value means "any value, members not checked"; a non-nil one
// lists the known members, and using any other member is a compile error.
// For example:
//
//	Scope{"config": &Scope{"org_id": nil}, "parent": nil, "parents": &Scope{"apps": nil}}
type Scope map[string]*Scope

// Names returns the scope's names, sorted.
func (s Scope) Names() []string {
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Option configures [CompileExpr] and [CompileTemplate].
type Option func(*options)

type options struct {
	clock func() time.Time
}

// WithClock makes expr's now() return clock() instead of the wall clock, so
// that date arithmetic is reproducible in tests and dry runs.
func WithClock(clock func() time.Time) Option {
	return func(o *options) { o.clock = clock }
}

// Expr is a compiled expr program. It is safe for concurrent use.
type Expr struct {
	src  string
	kind Kind
	prog *vm.Program
	vms  sync.Pool // of *vm.VM: a VM is reusable but not concurrently
}

// CompileExpr compiles an expr program and checks it against scope: a name
// that is not in scope, or a member that a non-nil *Scope does not list, is
// an error (with "did you mean" when a known name is close), as are type
// errors the checker can see (1 + "a") and a result that cannot be of kind.
// Besides expr's builtins the program may call title_case, clean_title,
// path_escape and query_escape. Errors are [*Error] with byte offsets in src.
//
// The program runs on a plain map[string]any env (see [Expr.Eval]).
func CompileExpr(src string, scope Scope, kind Kind, opts ...Option) (*Expr, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return compileExpr(src, scope, kind, &o)
}

func compileExpr(src string, scope Scope, kind Kind, o *options) (*Expr, error) {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, exprError(src, scope, err)
	}
	if e := checkScope(src, tree.Node, scope); e != nil {
		return nil, e
	}

	// Type check against a struct built from scope: the checker then knows
	// which names and members exist. The program that runs is compiled
	// separately without an env, so it reads plain maps.
	checkOpts := append(exprOptions(o.clock), expr.Env(scopeSample(scope)))
	switch kind {
	case BoolKind:
		checkOpts = append(checkOpts, expr.AsBool())
	case IntKind:
		checkOpts = append(checkOpts, expr.AsInt())
	case StringKind:
		checkOpts = append(checkOpts, expr.AsKind(reflect.String))
	}
	check, err := expr.Compile(src, checkOpts...)
	if err != nil {
		return nil, exprError(src, scope, err)
	}
	if kind == IntKind {
		// expr's int expectation accepts any number; a float is not an int.
		if t := check.Node().Type(); t != nil && (t.Kind() == reflect.Float64 || t.Kind() == reflect.Float32) {
			return nil, &Error{Lang: "expr", Msg: "expected int, but got " + t.String()}
		}
	}
	prog, err := expr.Compile(src, exprOptions(o.clock)...)
	if err != nil {
		return nil, exprError(src, scope, err)
	}
	return &Expr{src: src, kind: kind, prog: prog}, nil
}

// Source returns the program text given to [CompileExpr].
func (e *Expr) Source() string { return e.src }

// Kind returns the result kind the program was compiled for.
func (e *Expr) Kind() Kind { return e.kind }

// Eval runs the program. env maps the scope's names to their values; values
// may come from json.Decoder.UseNumber (they are passed through [Normalize])
// and a missing name reads as nil. The result has the compiled kind: a bool,
// an int, a string, or for AnyKind whatever the program returns.
func (e *Expr) Eval(env map[string]any) (any, error) {
	return e.eval(normalizeEnv(env))
}

// eval runs the program on an env that is already normalized.
func (e *Expr) eval(env map[string]any) (any, error) {
	m, _ := e.vms.Get().(*vm.VM)
	if m == nil {
		m = &vm.VM{}
	}
	out, err := m.Run(e.prog, env)
	e.vms.Put(m)
	if err != nil {
		return nil, fmt.Errorf("expr: %w", runtimeError(err))
	}
	return e.coerce(out)
}

// EvalBool runs a BoolKind (or AnyKind) program and returns its bool result.
func (e *Expr) EvalBool(env map[string]any) (bool, error) {
	v, err := e.Eval(env)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("expr: expected bool, got %s", typeOf(v))
	}
	return b, nil
}

// EvalInt runs the program and returns its integer result.
func (e *Expr) EvalInt(env map[string]any) (int, error) {
	v, err := e.Eval(env)
	if err != nil {
		return 0, err
	}
	n, ok := toInt(v)
	if !ok {
		return 0, fmt.Errorf("expr: expected int, got %s", typeOf(v))
	}
	return n, nil
}

// EvalString runs the program and returns its string result.
func (e *Expr) EvalString(env map[string]any) (string, error) {
	v, err := e.Eval(env)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("expr: expected string, got %s", typeOf(v))
	}
	return s, nil
}

func (e *Expr) coerce(v any) (any, error) {
	switch e.kind {
	case BoolKind:
		if _, ok := v.(bool); !ok {
			return nil, fmt.Errorf("expr: expected bool, got %s", typeOf(v))
		}
	case IntKind:
		n, ok := toInt(v)
		if !ok {
			return nil, fmt.Errorf("expr: expected int, got %s", typeOf(v))
		}
		return n, nil
	case StringKind:
		if _, ok := v.(string); !ok {
			return nil, fmt.Errorf("expr: expected string, got %s", typeOf(v))
		}
	}
	return v, nil
}

// toInt converts any integral number to int.
func toInt(v any) (int, bool) {
	switch v := v.(type) {
	case int:
		return v, true
	case int64:
		return int(v), int64(int(v)) == v
	case int32:
		return int(v), true
	case uint64:
		return int(v), v <= math.MaxInt
	case uint32:
		return int(v), true
	case float64:
		if v == math.Trunc(v) && math.Abs(v) <= 1<<53 {
			return int(v), true
		}
	case json.Number:
		n, ok := numberValue(v).(int)
		return n, ok
	case *big.Int:
		if v.IsInt64() {
			return toInt(v.Int64())
		}
	}
	return 0, false
}

func normalizeEnv(env map[string]any) map[string]any {
	var out map[string]any
	for k, v := range env {
		n, changed := normalize(v)
		if !changed {
			continue
		}
		if out == nil {
			out = make(map[string]any, len(env))
			for k2, v2 := range env {
				out[k2] = v2
			}
		}
		out[k] = n
	}
	if out == nil {
		return env
	}
	return out
}

// runtimeError drops expr's source snippet from the message of a runtime
// error (callers add their own context, and the snippet spans several lines)
// but keeps the error itself in the chain.
func runtimeError(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return &messageError{msg: fe.Message, err: err}
	}
	return err
}

type messageError struct {
	msg string
	err error
}

func (e *messageError) Error() string { return e.msg }
func (e *messageError) Unwrap() error { return e.err }

// maxScopeDepth bounds the struct built from a Scope, in case of a cycle.
const maxScopeDepth = 32

// scopeSample returns a zero struct value whose fields, tagged with the
// scope's names, let expr's checker verify names and members.
func scopeSample(s Scope) any {
	return reflect.New(scopeType(s, 0)).Elem().Interface()
}

func scopeType(s Scope, depth int) reflect.Type {
	names := s.Names()
	fields := make([]reflect.StructField, 0, len(names))
	for i, name := range names {
		typ := reflect.TypeFor[any]()
		if sub := s[name]; sub != nil && depth < maxScopeDepth {
			typ = scopeType(*sub, depth+1)
		}
		fields = append(fields, reflect.StructField{
			Name: "F" + strconv.Itoa(i),
			Type: typ,
			Tag:  reflect.StructTag("expr:" + strconv.Quote(name)),
		})
	}
	return reflect.StructOf(fields)
}

// checkScope reports the first member access (in source order) that a
// non-nil *Scope does not list, with a "did you mean" hint. The struct check
// that follows would catch it too, but only with a message naming Go types.
func checkScope(src string, root ast.Node, scope Scope) *Error {
	c := scopeChecker{scope: scope, lets: map[string]bool{}}
	ast.Find(root, func(n ast.Node) bool {
		if d, ok := n.(*ast.VariableDeclaratorNode); ok {
			c.lets[d.Name] = true
		}
		return false
	})
	ast.Walk(&root, &c)
	if c.err == nil {
		return nil
	}
	c.err.Offset = runeToByte(src, c.errFrom)
	return c.err
}

type scopeChecker struct {
	scope   Scope
	lets    map[string]bool // names bound by let, which shadow the scope
	err     *Error
	errFrom int // rune offset of err
}

func (c *scopeChecker) Visit(node *ast.Node) {
	m, ok := (*node).(*ast.MemberNode)
	if !ok || m.Method {
		return
	}
	prop, ok := m.Property.(*ast.StringNode)
	if !ok {
		return
	}
	path, ok := c.path(m.Node)
	if !ok {
		return
	}
	s := c.scope
	for _, name := range path[1:] {
		sub := s[name]
		if sub == nil {
			return // unknown here is reported at the inner node; nil is unchecked
		}
		s = *sub
	}
	if _, ok := s[prop.Value]; ok {
		return
	}
	from := prop.Location().From
	if from == 0 && prop.Location().To == 0 {
		from = m.Location().From
	}
	if c.err != nil && c.errFrom <= from {
		return
	}
	owner := strings.Join(path[1:], ".")
	c.err = &Error{Lang: "expr", Msg: fmt.Sprintf("unknown field %s of %s%s", prop.Value, owner, didYouMean(prop.Value, s.Names()))}
	if owner == "" {
		c.err.Msg = fmt.Sprintf("unknown name %s%s", prop.Value, didYouMean(prop.Value, s.Names()))
	}
	c.errFrom = from
}

// path returns the chain of names n reads, starting at an env name:
// parents.apps -> ["$env", "parents", "apps"], where "$env" stands for the
// whole scope (as in expr's own $env.parents). ok is false for anything else.
func (c *scopeChecker) path(n ast.Node) ([]string, bool) {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		if c.lets[n.Value] {
			return nil, false
		}
		if n.Value == "$env" {
			return []string{"$env"}, true
		}
		if _, ok := c.scope[n.Value]; !ok {
			return nil, false
		}
		return []string{"$env", n.Value}, true
	case *ast.MemberNode:
		prop, ok := n.Property.(*ast.StringNode)
		if !ok || n.Method {
			return nil, false
		}
		p, ok := c.path(n.Node)
		if !ok {
			return nil, false
		}
		return append(p, prop.Value), true
	case *ast.ChainNode:
		return c.path(n.Node)
	}
	return nil, false
}

// exprError converts an expr compile error into an *Error with a byte offset.
func exprError(src string, scope Scope, err error) *Error {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return &Error{Lang: "expr", Msg: cleanTypeNames(err.Error())}
	}
	msg := strings.TrimSpace(cleanTypeNames(fe.Message))
	off := runeToByte(src, fe.From)
	if strings.HasPrefix(msg, "unexpected token EOF") {
		off = len(src) // expr points at the last rune
	}
	if name, ok := strings.CutPrefix(msg, "unknown name "); ok {
		// Suggest functions only for a call, names only for a variable.
		cands := scope.Names()
		if rest := strings.TrimLeft(src[min(off+len(name), len(src)):], " \t\r\n"); strings.HasPrefix(rest, "(") {
			cands = slices.Clone(builtin.Names)
			for _, f := range extraFuncs() {
				cands = append(cands, f.name)
			}
		}
		msg += didYouMean(name, cands)
	}
	return &Error{Lang: "expr", Offset: off, Msg: msg}
}

// runeToByte converts expr's rune offset into a byte offset in src.
func runeToByte(src string, runes int) int {
	if runes <= 0 {
		return 0
	}
	n := 0
	for i := range src {
		if n == runes {
			return i
		}
		n++
	}
	return len(src)
}

// cleanTypeNames replaces the anonymous struct types built by scopeType, which
// the checker prints in full, with "map" (what the program sees at run time).
func cleanTypeNames(msg string) string {
	const open = "struct {"
	for {
		i := strings.Index(msg, open)
		if i < 0 {
			return msg
		}
		end := matchBrace(msg, i+len(open)-1)
		if end < 0 {
			return msg
		}
		msg = msg[:i] + "map" + msg[end+1:]
	}
}

// matchBrace returns the index of the '}' that closes the '{' at i, skipping
// Go-quoted strings (the struct tags), or -1.
func matchBrace(s string, i int) int {
	depth := 0
	for ; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		case '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
		}
	}
	return -1
}
