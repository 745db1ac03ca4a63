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

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/types"
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
	clock   func() time.Time
	types   map[string]any
	members map[string]Members
	cache   *Cache
}

// Members are the members of a top-level name, given by a function instead
// of a *Scope (see [WithMembers]).
type Members struct {
	Has   func(name string) bool
	Names func() []string // every member, for "did you mean"; called only on an error
}

// WithMembers checks the members of the top-level name with m instead of
// its *Scope, for names with many members that differ from program to
// program (the ancestors a stream's programs see): the scope then only
// needs to contain name.
func WithMembers(name string, m Members) Option {
	return func(o *options) {
		if o.members == nil {
			o.members = map[string]Members{}
		}
		o.members[name] = m
	}
}

// WithClock makes expr's now() return clock() instead of the wall clock, so
// that date arithmetic is reproducible in tests and dry runs.
func WithClock(clock func() time.Time) Option {
	return func(o *options) { o.clock = clock }
}

// WithTypes gives members of the scope a type the checker enforces, as a
// sample value keyed by the member's dotted path: {"config.page_size": 0}
// makes `config.page_size + "x"` a compile error and `config.page_size > 1`
// a valid condition. The program must then get a value of that Go type at
// run time. Members without a sample may hold anything.
func WithTypes(samples map[string]any) Option {
	return func(o *options) { o.types = samples }
}

// Expr is a compiled expr program. It is safe for concurrent use.
type Expr struct {
	src      string
	kind     Kind
	constant bool // it reads nothing of its env, nor the clock
	prog     *vm.Program
	vms      sync.Pool // of *vm.VM: a VM is reusable but not concurrently
}

// CompileExpr compiles an expr program and checks it against scope: a name
// that is not in scope, or a member that a non-nil *Scope does not list, is
// an error (with "did you mean" when a known name is close), as are type
// errors the checker can see (1 + "a") and a result that cannot be of kind.
// Besides expr's builtins the program may call title_case, clean_title,
// path_escape and query_escape. Errors are [*Error] with byte offsets in src.
//
// Programs longer than [MaxProgramLen] or nested deeper than [MaxNesting]
// are refused.
//
// The program runs on a plain map[string]any env (see [Expr.Eval]). The
// cost of a compile grows with the program, not with the scope: a scope of
// thousands of names costs no more per program than one of three.
func CompileExpr(src string, scope Scope, kind Kind, opts ...Option) (*Expr, error) {
	return NewEnv(scope, opts...).compileExpr(src, kind)
}

func (e *Env) compileExpr(src string, kind Kind) (*Expr, error) {
	if err := checkLimits("expr", src); err != nil {
		return nil, err
	}
	if x := e.o.cache.getExpr(src, kind, e); x != nil {
		return x, nil
	}
	scope := e.scope
	base := baseConfig(e.o.clock)
	tree, err := parser.ParseWithConfig(src, base)
	if err != nil {
		return nil, exprError(src, scope, err)
	}
	read, ee := checkScope(src, tree.Node, scope, e.o.members)
	if ee != nil {
		return nil, ee
	}
	patchNow(&tree.Node, false)
	var typed []string // members read that have a declared type
	for _, path := range read.members {
		if len(path) == 2 {
			if _, ok := e.o.types[path[0]+"."+path[1]]; ok {
				typed = append(typed, path[0]+"."+path[1])
			}
		}
	}
	slices.Sort(typed)
	typed = slices.Compact(typed)

	// Type check against the scope's names (and the declared types of the
	// members the program reads). The program that runs reads plain maps
	// whatever they hold: it must not be specialized for the declared types.
	env := e.envNature(typed)
	check := *base
	check.EnvObject, check.Env, check.Strict = env.object, env.nature, env.nature.Strict
	check.ExpectAny = true // a value of unknown type is checked at run time
	switch kind {
	case BoolKind:
		check.Expect = reflect.Bool
	case IntKind:
		check.Expect = reflect.Int
	case StringKind:
		check.Expect = reflect.String
	}
	e.mu.Lock() // the env's description is shared, and the checker caches into it
	t, err := checker.Check(tree, &check)
	e.mu.Unlock()
	if err != nil {
		return nil, exprError(src, scope, err)
	}
	if kind == IntKind && (t.Kind() == reflect.Float64 || t.Kind() == reflect.Float32) {
		// expr's int expectation accepts any number; a float is not an int.
		return nil, &Error{Lang: "expr", Msg: "expected int, but got " + t.String()}
	}
	var prog *vm.Program
	if len(typed) > 0 || read.dynamic {
		// Compiled again without the declared types, and with $env
		// patched (see patchNow).
		prog, err = compileRun(src, base)
	} else {
		// Every name was of unknown type: the checked tree is what a check
		// without env would give.
		prog, err = compileTree(tree, base)
	}
	if err != nil {
		return nil, exprError(src, scope, err)
	}
	x := &Expr{src: src, kind: kind, prog: prog, constant: read.constant()}
	if !read.dynamic {
		e.o.cache.putExpr(&cachedExpr{prog: x, names: read.names, members: read.members})
	}
	return x, nil
}

// compileRun compiles the program that runs, as expr.Compile does but on a
// copy of the shared base configuration instead of a new one per program
// (which copies every builtin).
func compileRun(src string, base *conf.Config) (*vm.Program, error) {
	cfg := *base
	tree, err := parser.ParseWithConfig(src, &cfg)
	if err != nil {
		return nil, err
	}
	patchNow(&tree.Node, true)
	if _, err := checker.Check(tree, &cfg); err != nil {
		return nil, err
	}
	return compileTree(tree, base)
}

// compileTree optimizes and compiles a checked tree.
func compileTree(tree *parser.Tree, base *conf.Config) (*vm.Program, error) {
	cfg := *base
	if err := optimizer.Optimize(&tree.Node, &cfg); err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, fe.Bind(tree.Source)
		}
		return nil, err
	}
	return compiler.Compile(tree, &cfg)
}

// baseConfig is expr's configuration with ferry's functions and no env. It
// is never modified: each compile works on a shallow copy (the copy's type
// cache is its own; the function tables are only read).
func baseConfig(clock func() time.Time) *conf.Config {
	if clock == nil {
		return defaultConfig()
	}
	return newBaseConfig(clock)
}

// defaultConfig is built once: it is the same for every program.
var defaultConfig = sync.OnceValue(func() *conf.Config { return newBaseConfig(nil) })

func newBaseConfig(clock func() time.Time) *conf.Config {
	c := conf.CreateNew()
	for _, opt := range exprOptions(clock) {
		opt(c)
	}
	c.Check()
	return c
}

// envType describes scope to expr's checker: its top-level names, strictly
// (any other name is an error); members of a nested scope hold anything
// (checkScope has checked them), except the typed ones ("config.page_size")
// a program reads, which get their declared types.
func envType(scope Scope, members map[string]Members, typed []string, samples map[string]any) types.Map {
	env := make(types.Map, len(scope)+1)
	env[ClockVar] = types.Any // read by now() (patchNow), set by the run
	for name, sub := range scope {
		if _, ok := members[name]; sub == nil && !ok {
			env[name] = types.Any
			continue
		}
		env[name] = types.Map{types.Extra: types.Any}
	}
	for _, path := range typed {
		name, member, _ := strings.Cut(path, ".")
		if m, ok := env[name].(types.Map); ok {
			m[member] = types.TypeOf(samples[path])
		}
	}
	return env
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

// checkScope reports the first member access (in source order) that a
// non-nil *Scope does not list, with a "did you mean" hint, and otherwise
// says what the program reads of the scope. A name bound by let to a scope
// path (`let c = config`) is checked as that path.
func checkScope(src string, root ast.Node, scope Scope, members map[string]Members) (scopeRead, *Error) {
	c := scopeChecker{scope: scope, members: members, lets: map[string][]string{}, read: scopeRead{names: map[string]bool{}}}
	var decls []*ast.VariableDeclaratorNode
	ast.Find(root, func(n ast.Node) bool {
		if d, ok := n.(*ast.VariableDeclaratorNode); ok {
			decls = append(decls, d)
		}
		return false
	})
	// In source order, so that a let may alias an earlier one.
	slices.SortFunc(decls, func(a, b *ast.VariableDeclaratorNode) int { return a.Location().From - b.Location().From })
	for _, d := range decls {
		p, _ := c.path(d.Value)
		c.lets[d.Name] = p
	}
	ast.Walk(&root, &c)
	if c.err == nil {
		return c.read, nil
	}
	c.err.Offset = runeToByte(src, c.errFrom)
	return scopeRead{}, c.err
}

// scopeRead is what a program reads of its scope.
type scopeRead struct {
	names   map[string]bool // top-level names: true for those whose members are checked
	members [][]string      // member paths checked and found, top-level name first
	dynamic bool            // it reads $env as a whole
	clock   bool            // it calls now()
}

// constant reports whether a program that read this gives the same value
// whatever its env and whenever it runs.
func (r scopeRead) constant() bool { return len(r.names) == 0 && !r.dynamic && !r.clock }

type scopeChecker struct {
	scope   Scope
	members map[string]Members
	lets    map[string][]string // names bound by let: the scope path they alias, or nil (they shadow the scope)
	read    scopeRead
	err     *Error
	errFrom int // rune offset of err
}

func (c *scopeChecker) Visit(node *ast.Node) {
	if b, ok := (*node).(*ast.BuiltinNode); ok && b.Name == "now" {
		c.read.clock = true
		return
	}
	if id, ok := (*node).(*ast.IdentifierNode); ok {
		if _, let := c.lets[id.Value]; !let {
			sub, ok := c.scope[id.Value]
			if ok {
				_, fn := c.members[id.Value]
				c.read.names[id.Value] = fn || sub != nil
			}
			c.read.dynamic = c.read.dynamic || id.Value == "$env"
			c.read.clock = c.read.clock || !ok && id.Value == "now"
		}
		return
	}
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
	var fn *Members
	for i, name := range path[1:] {
		if m, ok := c.members[name]; ok && i == 0 {
			if len(path) > 2 {
				return // a member of a member: unchecked
			}
			fn = &m
			break
		}
		sub := s[name]
		if sub == nil {
			return // unknown here is reported at the inner node; nil is unchecked
		}
		s = *sub
	}
	has := func(n string) bool { _, ok := s[n]; return ok }
	names := s.Names
	if fn != nil {
		has, names = fn.Has, fn.Names
	}
	if has(prop.Value) {
		if len(path) > 1 {
			c.read.members = append(c.read.members, append(slices.Clone(path[1:]), prop.Value))
		}
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
	c.err = &Error{Lang: "expr", Msg: fmt.Sprintf("unknown field %s of %s%s", prop.Value, owner, didYouMean(prop.Value, names()))}
	if owner == "" {
		c.err.Msg = fmt.Sprintf("unknown name %s%s", prop.Value, didYouMean(prop.Value, names()))
	}
	c.errFrom = from
}

// path returns the chain of names n reads, starting at an env name:
// parents.apps -> ["$env", "parents", "apps"], where "$env" stands for the
// whole scope (as in expr's own $env.parents). ok is false for anything else.
func (c *scopeChecker) path(n ast.Node) ([]string, bool) {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		if p, ok := c.lets[n.Value]; ok {
			return p, p != nil
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
		return append(slices.Clip(p), prop.Value), true
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

// cleanTypeNames names the env's maps as the program sees them at run
// time, "map", instead of in Go syntax.
func cleanTypeNames(msg string) string {
	return strings.ReplaceAll(msg, "map[string]interface {}", "map")
}
