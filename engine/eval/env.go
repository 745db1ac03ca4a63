package eval

import (
	"slices"
	"strings"
	"sync"

	"github.com/expr-lang/expr/checker/nature"
	"github.com/expr-lang/expr/types"
	"github.com/itchyny/gojq"
)

// An Env compiles expr programs and templates against one scope and set of
// options. What every program shares (the description of the scope given
// to expr's checker) is prepared once, not per program. It is safe for
// concurrent use.
type Env struct {
	scope Scope
	o     options

	mu      sync.Mutex
	natures map[string]envNature // by the typed members a program reads ("" for none)
}

type envNature struct {
	object types.Map
	nature nature.Nature
}

// NewEnv returns an Env for scope (see [CompileExpr]) and opts.
func NewEnv(scope Scope, opts ...Option) *Env {
	e := &Env{scope: scope, natures: map[string]envNature{}}
	for _, opt := range opts {
		opt(&e.o)
	}
	return e
}

// CompileExpr is [CompileExpr] against the Env's scope and options.
func (e *Env) CompileExpr(src string, kind Kind) (*Expr, error) {
	return e.compileExpr(src, kind)
}

// CompileTemplate is [CompileTemplate] against the Env's scope and options.
func (e *Env) CompileTemplate(s string) (*Template, error) {
	return e.compileTemplate(s)
}

// envNature returns expr's description of the env for a program that
// reads the typed members typed (see envType).
func (e *Env) envNature(typed []string) envNature {
	key := strings.Join(typed, ",")
	e.mu.Lock()
	defer e.mu.Unlock()
	n, ok := e.natures[key]
	if !ok {
		n.object = envType(e.scope, e.o.members, typed, e.o.types)
		n.nature = n.object.Nature()
		e.natures[key] = n
	}
	return n
}

// A Cache gives one compiled program to every compile of an identical
// source whose names mean the same in its scope: a large spec repeats
// `${ config.org_id }` and `.[]` in every stream, and each compiled program
// costs a few kilobytes. Programs that fail to compile are not kept. It is
// safe for concurrent use; every compile through one Cache must use the
// same [WithTypes].
type Cache struct {
	mu   sync.Mutex
	expr map[exprKey]*cachedExpr
	jq   map[string]*gojq.Code // by source and the variables compiled in
}

// NewCache returns an empty Cache.
func NewCache() *Cache {
	return &Cache{expr: map[exprKey]*cachedExpr{}, jq: map[string]*gojq.Code{}}
}

// WithCache makes compiles share programs through c.
func WithCache(c *Cache) Option {
	return func(o *options) { o.cache = c }
}

type exprKey struct {
	src  string
	kind Kind
}

// cachedExpr is a compiled program with what it read of its scope: it
// serves another scope where those names mean the same.
type cachedExpr struct {
	prog    *Expr
	names   map[string]bool // top-level names read: true for those whose members were checked
	members [][]string      // member paths read and checked, top-level name first
}

func (c *Cache) getExpr(src string, kind Kind, e *Env) *Expr {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	ce := c.expr[exprKey{src, kind}]
	c.mu.Unlock()
	if ce == nil || !e.means(ce) {
		return nil
	}
	return ce.prog
}

func (c *Cache) putExpr(ce *cachedExpr) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.expr[exprKey{ce.prog.src, ce.prog.kind}] = ce
	c.mu.Unlock()
}

// means reports whether ce's names mean in e what they meant where it was
// compiled: the same names, checked or not alike, and its members there.
func (e *Env) means(ce *cachedExpr) bool {
	for name, checked := range ce.names {
		sub, ok := e.scope[name]
		if !ok || checked != e.checked(name, sub) {
			return false
		}
	}
	for _, path := range ce.members {
		if !e.hasMember(path) {
			return false
		}
	}
	return true
}

// checked says whether the members of top-level name are checked.
func (e *Env) checked(name string, sub *Scope) bool {
	_, ok := e.o.members[name]
	return ok || sub != nil
}

// hasMember says whether the member path (top-level name first) is known,
// or lies below a member whose own members are not checked.
func (e *Env) hasMember(path []string) bool {
	if m, ok := e.o.members[path[0]]; ok {
		return len(path) > 2 || m.Has(path[1])
	}
	s := e.scope
	for _, name := range path[:len(path)-1] {
		sub := s[name]
		if sub == nil {
			return true
		}
		s = *sub
	}
	_, ok := s[path[len(path)-1]]
	return ok
}

func (c *Cache) getJQ(key string) *gojq.Code {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.jq[key]
}

func (c *Cache) putJQ(key string, code *gojq.Code) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.jq[key] = code
	c.mu.Unlock()
}

// jqKey identifies a jq program by its source and the variables compiled
// in, in order.
func jqKey(src string, names []string) string {
	return src + "\x00" + strings.Join(slices.Clip(names), "\x00")
}
