package spec

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ferry-etl/ferry/engine/eval"
)

// Variables every program may see, beyond the stream's ancestors.
const (
	VarConfig  = "config"
	VarParent  = "parent"
	VarParents = "parents"
	VarBatch   = "batch"
	VarCursor  = "cursor" // expr, in incremental streams: the saved watermark
	VarWindow  = "window" // expr, in windowed streams: {start, end} of the window
	VarPaging  = "paging" // expr, in a text body paged in: body: {<param>, <size_param>}
)

// BodyText is the body_format of a request whose body is one string,
// sent as it is.
const BodyText = "text"

// DefaultRecords is the records program of a stream that sets none: the
// body must be a JSON list, whose items are the records, or null (APIs
// written in Go often encode an empty list so). Any other body fails the
// request chain: an object where a list was expected is an error answer or
// a changed API, never one record.
const DefaultRecords = `if type == "array" then .[] elif . == null then empty else error("the response body is \({"object": "an object", "string": "a string", "number": "a number", "boolean": "a boolean", "null": "null"}[type]), not a list: set records to select the records") end`

// Parent is the stream this one fans out from, or nil.
func (s *Stream) Parent() *Stream { return s.parent }

// BatchOf is the stream whose per-parent records this one receives as a
// batch, or nil.
func (s *Stream) BatchOf() *Stream { return s.batch }

// Ancestors lists the chain from the direct parent up to the root stream.
// In a spec with a fan-out cycle (which Parse reports) the chain stops
// before it would repeat a stream.
func (s *Stream) Ancestors() []*Stream {
	n := s.ancestorCount()
	out := make([]*Stream, 0, n)
	for a := s.parent; len(out) < n; a = a.parent {
		out = append(out, a)
	}
	return out
}

// Upstream lists every stream whose records lead to s's requests: its
// parents and the streams it batches, and theirs, each once.
func (s *Stream) Upstream() []*Stream {
	var out []*Stream
	seen := map[*Stream]bool{s: true}
	var walk func(x *Stream)
	walk = func(x *Stream) {
		if x == nil || seen[x] {
			return
		}
		seen[x] = true
		out = append(out, x)
		walk(x.parent)
		walk(x.batch)
	}
	walk(s.parent)
	walk(s.batch)
	return out
}

// ancestorCount is how many distinct streams follow s on its parent chain,
// found without allocating (Brent's cycle detection): chains may be
// thousands of streams deep.
func (s *Stream) ancestorCount() int {
	power, length := 1, 1
	tortoise, hare := s, s.parent
	for hare != nil && hare != tortoise {
		if power == length {
			tortoise, power, length = hare, power*2, 0
		}
		hare = hare.parent
		length++
	}
	if hare == nil {
		n := 0
		for a := s.parent; a != nil; a = a.parent {
			n++
		}
		return n
	}
	// A cycle of length streams, entered after first of them: the chain
	// holds first+length distinct streams, s included.
	tortoise, hare = s, s
	for range length {
		hare = hare.parent
	}
	first := 0
	for tortoise != hare {
		tortoise, hare = tortoise.parent, hare.parent
		first++
	}
	return first + length - 1
}

// JQVars lists, in order, the jq variables of programs attached to this
// stream (records, pagination, body_jq, and table/entity mappings from it):
// $config, then $parent, $parents and one $<name> per ancestor when the
// stream fans out, then $batch when it takes one.
func (s *Stream) JQVars() []string {
	vars := []string{VarConfig}
	if s.parent != nil || s.Recurse != nil {
		vars = append(vars, VarParent, VarParents)
		if s.Recurse != nil && isIdent(s.Name) {
			// Its own records are its nearest ancestors (null in a root chain).
			vars = append(vars, s.Name)
		}
		for _, a := range s.Ancestors() {
			// An invalid name is reported once, on the stream; it is no
			// reason to fail every program below it.
			if isIdent(a.Name) {
				vars = append(vars, a.Name)
			}
		}
	}
	if s.batch != nil {
		vars = append(vars, VarBatch)
	}
	if s.lookups {
		vars = append(vars, VarLookups)
	}
	return vars
}

// Stream returns the named stream, or nil.
func (f *File) Stream(name string) *Stream { return f.streams[name] }

// ConfigVar returns the named config input, or nil.
func (f *File) ConfigVar(name string) *ConfigVar { return f.config[name] }

func (f *File) configScope() *eval.Scope {
	sc := eval.Scope{}
	for _, it := range f.Config.Items {
		sc[it.Key] = nil
	}
	return &sc
}

// chainPos places a stream in the fan-out forest, so that "is a an
// ancestor of s" and "where is a among s's jq variables" are answered in
// constant time: a chain may be thousands of streams deep, and listing the
// ancestors for every program would cost depth² for the spec.
type chainPos struct {
	in, out int // interval of a depth-first walk: ancestors' intervals contain their descendants'
	named   int // streams with a valid name from the root to this one, inclusive
	// broken: the stream's fan-out is not known (its for_each or batch names
	// no usable stream, or its chain has a cycle). That is reported once;
	// its programs are checked without their ancestors, so that it is not
	// reported again as every name they would have given.
	broken bool
}

// placeStreams walks the fan-out forest and sets every stream's chainPos.
func placeStreams(f *File) {
	children := map[*Stream][]*Stream{}
	var roots []*Stream
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		s.chain = chainPos{broken: true} // until reached from a root
		if s.parent != nil {
			children[s.parent] = append(children[s.parent], s)
		} else {
			roots = append(roots, s)
		}
	}
	clock := 0
	type frame struct {
		s    *Stream
		next int // index of the next child to visit
	}
	for _, root := range roots {
		root.chain = chainPos{in: clock, named: nameCount(root), broken: root.ForEach.Set}
		clock++
		stack := []frame{{s: root}}
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			kids := children[top.s]
			if top.next == len(kids) {
				top.s.chain.out = clock
				stack = stack[:len(stack)-1]
				continue
			}
			c := kids[top.next]
			top.next++
			c.chain = chainPos{in: clock, named: top.s.chain.named + nameCount(c), broken: top.s.chain.broken}
			clock++
			stack = append(stack, frame{s: c})
		}
	}
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		if s.Batch.Set && s.batch == nil {
			s.chain.broken = true
		}
	}
}

func nameCount(s *Stream) int {
	if isIdent(s.Name) {
		return 1
	}
	return 0
}

// isAncestor reports whether a is an ancestor of s (both placed, s not broken).
func isAncestor(a, s *Stream) bool {
	return a != s && !a.chain.broken && a.chain.in < s.chain.in && s.chain.out <= a.chain.out
}

// streamVars are the jq variables of a stream's programs, in JQVars order,
// answered without listing the ancestors.
type streamVars struct {
	f *File
	s *Stream
}

func (v streamVars) Index(name string) (int, bool) {
	s := v.s
	fans := s.parent != nil || s.Recurse != nil
	switch {
	case name == VarConfig:
		return 0, true
	case fans && name == VarParent:
		return 1, true
	case fans && name == VarParents:
		return 2, true
	}
	self := 0 // a recursive stream's own name comes before its ancestors'
	if s.Recurse != nil && isIdent(s.Name) {
		if name == s.Name {
			return 3, true
		}
		self = 1
	}
	before := 1 // variables before $batch
	if fans {
		before = 3 + self
	}
	if s.parent != nil {
		before = 3 + self + s.parent.chain.named
		if a := v.f.streams[name]; a != nil && isIdent(name) && isAncestor(a, s) {
			// The nearest ancestor comes first.
			return 3 + self + s.parent.chain.named - a.chain.named, true
		}
	}
	if s.batch != nil {
		if name == VarBatch {
			return before, true
		}
		before++
	}
	if s.lookups && name == VarLookups {
		return before, true
	}
	return 0, false
}

func (v streamVars) Names() []string { return v.s.JQVars() }

// varNames are jq variables given as a list.
type varNames []string

func (l varNames) Index(name string) (int, bool) {
	i := slices.Index(l, name)
	return i, i >= 0
}

func (l varNames) Names() []string { return l }

// jqVars are the variables the programs attached to s are compiled with:
// for a stream whose fan-out is not known, every name but its ancestors'.
func (f *File) jqVars(s *Stream) eval.Vars {
	if s.chain.broken {
		return varNames{VarConfig, VarParent, VarParents, VarBatch, VarLookups}
	}
	return streamVars{f, s}
}

// exprEnv is what expr programs of stream s (nil: host settings) are
// compiled against: the names in scope, plus extra ones, with the option
// that checks the members of parents. config is the File's configScope,
// built once: it is shared, never modified.
func (p *parser) exprEnv(s *Stream, config *eval.Scope, extra ...string) *eval.Env {
	sc, opts := p.exprScope(s, config, extra...)
	return eval.NewEnv(sc, opts...)
}

// exprScope is the scope and options of exprEnv, for a caller that takes
// names out of it.
func (p *parser) exprScope(s *Stream, config *eval.Scope, extra ...string) (eval.Scope, []eval.Option) {
	f := p.spec
	sc := eval.Scope{VarConfig: config}
	opts := []eval.Option{eval.WithCache(p.cache), eval.WithTypes(p.configTypes)}
	for _, name := range extra {
		sc[name] = nil
	}
	if s == nil {
		return sc, opts
	}
	switch {
	case s.chain.broken:
		sc[VarParent], sc[VarParents], sc[VarBatch] = nil, nil, nil
	case s.parent != nil || s.Recurse != nil:
		sc[VarParent], sc[VarParents] = nil, nil
		opts = append(opts, eval.WithMembers(VarParents, eval.Members{
			Has: func(name string) bool {
				a := f.streams[name]
				return a != nil && (isAncestor(a, s) || a == s && s.Recurse != nil)
			},
			Names: func() []string {
				var names []string
				if s.Recurse != nil {
					names = append(names, s.Name)
				}
				for _, a := range s.Ancestors() {
					names = append(names, a.Name)
				}
				return names
			},
		}))
	}
	if s.batch != nil {
		sc[VarBatch] = nil
	}
	if s.Incremental != nil {
		sc[VarCursor] = nil
		if s.Incremental.Window != nil {
			sc[VarWindow] = &eval.Scope{"start": nil, "end": nil}
		}
	}
	if len(f.Lookups.Items) > 0 {
		lk := eval.Scope{}
		for _, name := range f.Lookups.Keys() {
			lk[name] = nil
		}
		sc[VarLookups] = &lk
	}
	return sc, opts
}

func (p *parser) compile(f *File) {
	p.spec = f
	p.configTypes = f.exprTypes()
	config := f.configScope()
	top := p.exprEnv(nil, config)
	p.at = nil
	p.compileHTTP(&f.HTTP, "http", top)
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		path := "streams." + s.Name
		sc := p.exprEnv(s, config)
		vars := f.jqVars(s)
		if s.HTTP != nil {
			// Host settings are resolved once per run, before any record exists.
			p.at = nil
			p.compileHTTP(s.HTTP, path+".http", top)
		}
		p.at = s
		p.compileExpr(&s.When, path+".when", sc, eval.BoolKind)
		r := &s.Request
		p.compileTmpl(&r.Path, path+".request.path", sc)
		p.compileTmpl(&r.URL, path+".request.url", sc)
		for j := range r.Query.Items {
			it := &r.Query.Items[j]
			p.compileValue(&it.Value, path+".request.query."+it.Key, sc)
		}
		for j := range r.Headers.Items {
			it := &r.Headers.Items[j]
			p.compileTmpl(&it.Value, path+".request.headers."+it.Key, sc)
		}
		bsc := sc
		if names := textPaging(s); len(names) > 0 {
			// A text body takes the page's values as paging.<param>
			// (see checkPagingPlace); nothing else sees them.
			wsc, opts := p.exprScope(s, config)
			fields := eval.Scope{}
			for _, n := range names {
				fields[n] = nil
			}
			wsc[VarPaging] = &fields
			bsc = eval.NewEnv(wsc, opts...)
		}
		p.compileValue(&r.Body, path+".request.body", bsc)
		p.compileJQ(&r.BodyJQ, path+".request.body_jq", vars)
		if !s.Records.Set {
			s.Records.Str = Str{V: DefaultRecords, Set: false}
		}
		p.compileJQ(&s.Records, path+".records", vars)
		p.warnUncountedList(s, path)
		p.compileJQ(&s.Key, path+".key", vars)
		if rc := s.Recurse; rc != nil {
			p.compileJQ(&rc.When, path+".recurse.when", vars)
		}
		if inc := s.Incremental; inc != nil {
			p.compileJQ(&inc.Cursor, path+".incremental.cursor", vars)
			p.compileJQ(&inc.Token, path+".incremental.token", vars)
			p.compileValue(&inc.Initial, path+".incremental.initial", nil)
			if w := inc.Window; w != nil {
				wsc, opts := p.exprScope(s, config)
				delete(wsc, VarWindow) // the end is known before any window
				p.compileTmpl(&w.End, path+".incremental.window.end", eval.NewEnv(wsc, opts...))
			}
		}
		if pt := s.Partitions; pt != nil {
			p.compileValue(&pt.Values, path+".partitions.values", sc)
		}
		p.compileAsync(s, path, config, sc, vars)
		if pg := s.Paginate; pg != nil {
			pp := path + ".paginate"
			p.compileJQ(&pg.Token, pp+".token", vars)
			p.compileJQ(&pg.URL, pp+".url", vars)
			p.compileJQ(&pg.TotalPages, pp+".total_pages", vars)
			p.compileJQ(&pg.Total, pp+".total", vars)
			p.compileJQ(&pg.ParamValue, pp+".param_value", vars)
			psc := p.exprEnv(s, config, "response", "page", "records")
			p.compileExpr(&pg.StopWhen, pp+".stop_when", psc, eval.BoolKind)
		}
	}
	for i := range f.Lookups.Items {
		l := &f.Lookups.Items[i].Value
		s := f.streams[l.From.V]
		if s == nil {
			continue
		}
		if !l.Value.Set {
			l.Value.Str = Str{V: "."}
		}
		p.at = s
		p.compileJQ(&l.Key, "lookups."+l.Name+".key", f.jqVars(s))
		p.compileJQ(&l.Value, "lookups."+l.Name+".value", f.jqVars(s))
	}
	for i := range f.Tables.Items {
		t := &f.Tables.Items[i].Value
		if !t.Row.Set {
			t.Row.Str = Str{V: "."}
		}
		path := "tables." + t.Name + ".row"
		compiled := false
		for _, name := range t.Streams() {
			s := f.streams[name]
			if s == nil {
				continue
			}
			p.at = s
			if !compiled {
				compiled = true
				p.compileJQ(&t.Row, path, f.jqVars(s))
				if len(t.From.V) > 1 {
					t.rows = map[string]*JQ{name: &t.Row}
				}
				continue
			}
			// Another source stream: the same program with that stream's
			// variables, its errors named with the stream.
			q := &JQ{Str: t.Row.Str}
			p.compileJQ(q, path+" (records of "+name+")", f.jqVars(s))
			t.rows[name] = q
		}
		if compiled {
			p.warnPrimaryKey(t)
		}
	}
	if f.Port != nil {
		// The owner key is rendered once per run, from config only.
		p.at = nil
		p.compileTmpl(&f.Port.Owner, "port.owner", top)
		for i := range f.Port.Entities {
			e := &f.Port.Entities[i]
			s := f.streams[e.From.V]
			if s == nil {
				continue
			}
			path := fmt.Sprintf("port.entities[%d]", i)
			vars := f.jqVars(s)
			p.at = s
			if !e.Selector.Set {
				e.Selector.Str = Str{V: "true"}
			}
			for name, q := range map[string]*JQ{"selector": &e.Selector, "identifier": &e.Identifier, "title": &e.Title, "icon": &e.Icon, "team": &e.Team} {
				p.compileJQ(q, path+"."+name, vars)
			}
			p.warnSelector(&e.Selector, path+".selector")
			for j := range e.Properties.Items {
				it := &e.Properties.Items[j]
				p.compileJQ(&it.Value, path+".properties."+it.Key, vars)
			}
			for j := range e.Relations.Items {
				it := &e.Relations.Items[j]
				p.compileJQ(&it.Value, path+".relations."+it.Key, vars)
			}
		}
	}
}

func (p *parser) compileHTTP(h *HTTP, path string, sc *eval.Env) {
	p.compileTmpl(&h.BaseURL, path+".base_url", sc)
	for j := range h.Headers.Items {
		it := &h.Headers.Items[j]
		p.compileTmpl(&it.Value, path+".headers."+it.Key, sc)
	}
	if a := h.Auth; a != nil {
		for name, t := range map[string]*Tmpl{"token": &a.Token, "value": &a.Value, "username": &a.Username, "password": &a.Password, "token_url": &a.TokenURL, "client_id": &a.ClientID, "client_secret": &a.ClientSecret,
			"access_key_id": &a.AccessKeyID, "secret_access_key": &a.SecretAccessKey, "session_token": &a.SessionToken, "region": &a.Region, "service": &a.Service} {
			p.compileTmpl(t, path+".auth."+name, sc)
		}
		for i := range a.Scopes {
			p.compileTmpl(&a.Scopes[i], fmt.Sprintf("%s.auth.scopes[%d]", path, i), sc)
		}
		p.compileAuthFlow(a, path, sc)
	}
	if t := h.TLS; t != nil {
		for name, x := range map[string]*Tmpl{"ca_file": &t.CAFile, "client_cert_file": &t.ClientCertFile, "client_key_file": &t.ClientKeyFile, "server_name": &t.ServerName,
			"ca_pem": &t.CAPEM, "client_cert_pem": &t.ClientCertPEM, "client_key_pem": &t.ClientKeyPEM} {
			p.compileTmpl(x, path+".tls."+name, sc)
		}
	}
	p.compileRules(h, path)
}

// embedErr reports a compile error of an embedded program at its position
// inside the file.
func (p *parser) embedErr(s Str, path string, err error) {
	var ee *eval.Error
	if errors.As(err, &ee) {
		if strings.HasPrefix(ee.Msg, "variable not defined: $") && p.at != nil && p.at.chain.broken {
			// In a stream whose fan-out is broken (reported), any other
			// variable may be an ancestor once that is fixed.
			return
		}
		p.errorAt(p.progPos(s, ee.Offset), path, "%s%s", ee.Error(), p.scopeHint(ee))
		return
	}
	p.errorAt(s.P, path, "%v", err)
}

// scopeHint explains why a name is not in scope where p.at's programs are
// compiled: eval knows which names are in scope, the spec knows where the
// others would be.
func (p *parser) scopeHint(ee *eval.Error) string {
	if strings.Contains(ee.Msg, "did you mean") {
		return ""
	}
	s := p.at
	var name string
	switch {
	case ee.Lang == "jq" && strings.HasPrefix(ee.Msg, "variable not defined: $"):
		name = strings.TrimPrefix(ee.Msg, "variable not defined: $")
	case ee.Lang == "expr" && strings.HasPrefix(ee.Msg, "unknown name "):
		name = strings.TrimPrefix(ee.Msg, "unknown name ")
	case ee.Lang == "expr" && strings.HasPrefix(ee.Msg, "unknown field ") && strings.HasSuffix(ee.Msg, " of parents") && s != nil:
		var names []string
		for _, a := range s.Ancestors() {
			names = append(names, a.Name)
		}
		return fmt.Sprintf(" (the ancestors of stream %s are: %s)", s.Name, strings.Join(names, ", "))
	default:
		return ""
	}
	switch {
	case s == nil && (name == VarParent || name == VarParents || name == VarBatch):
		return " (http settings and port.owner are resolved once per run, before any record: only config is in scope)"
	case s == nil:
		return ""
	case (name == VarParent || name == VarParents) && s.parent == nil:
		return fmt.Sprintf(" (stream %s has no for_each)", s.Name)
	case name == VarBatch && s.batch == nil:
		return fmt.Sprintf(" (stream %s has no batch)", s.Name)
	case ee.Lang == "jq" && p.spec != nil && p.spec.streams[name] != nil:
		return fmt.Sprintf(" (stream %s does not fan out from %s)", s.Name, name)
	case ee.Lang == "jq":
		return " (defined here: $" + strings.Join(s.JQVars(), ", $") + ")"
	}
	return ""
}

func (p *parser) compileJQ(q *JQ, path string, vars eval.Vars) {
	if q.V == "" && !q.Set {
		return
	}
	code, err := eval.CompileJQVars(q.V, vars, eval.WithCache(p.cache))
	if err != nil {
		p.embedErr(q.Str, path, err)
		return
	}
	q.code = code
	p.warnJQ(q, path)
}

func (p *parser) compileExpr(e *Expr, path string, sc *eval.Env, kind eval.Kind) {
	if !e.Set {
		return
	}
	prog, err := sc.CompileExpr(e.V, kind)
	if err != nil {
		p.embedErr(e.Str, path, err)
		return
	}
	e.expr = prog
}

func (p *parser) compileTmpl(t *Tmpl, path string, sc *eval.Env) {
	if !t.Set {
		return
	}
	tmpl, err := sc.CompileTemplate(t.V)
	if err != nil {
		p.embedErr(t.Str, path, err)
		return
	}
	t.tmpl = tmpl
}

// compileValue turns a YAML value into JSON-shaped data whose template
// strings are compiled *eval.Template values.
// compileValue builds v's tree; with a nil scope the tree is plain data
// (a config default), else its "${" strings are compiled templates.
func (p *parser) compileValue(v *Value, path string, sc *eval.Env) {
	if !v.Set {
		return
	}
	vt := valueTree{p: p, sc: sc, base: path, active: map[*yaml.Node]bool{}}
	v.tree = vt.build(v.Node)
}

// valueTree builds the JSON-shaped tree of one Value. The path of the node
// being built is kept as segments and joined only for an error, so deep
// values cost no more than shallow ones.
type valueTree struct {
	p      *parser
	sc     *eval.Env // nil: plain data, "${" is not a template
	base   string
	segs   []string
	active map[*yaml.Node]bool // collections being built, against aliases into themselves
}

func (vt *valueTree) path() string { return vt.base + strings.Join(vt.segs, "") }

func (vt *valueTree) build(alias *yaml.Node) any {
	p := vt.p
	n := resolveAlias(alias)
	// Aliases can repeat a subtree exponentially (a "billion laughs" file);
	// an honest value is at most as large as the file.
	if p.valueNodes++; p.valueNodes > p.maxValueNodes {
		if !p.valueTooBig {
			p.valueTooBig = true
			p.errorf(n, vt.path(), "value too large once YAML aliases are expanded")
		}
		return nil
	}
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		if vt.active[n] {
			p.errorf(alias, vt.path(), "YAML alias *%s refers to a value that contains it", alias.Value)
			return nil
		}
		vt.active[n] = true
		defer delete(vt.active, n)
	}
	switch n.Kind {
	case yaml.MappingNode:
		ps := p.pairs(n, vt.path)
		m := make(map[string]any, len(ps))
		for _, kv := range ps {
			k := kv.k.Value
			if _, dup := m[k]; dup {
				p.errorf(kv.k, vt.path(), "duplicate key %q", k)
				continue
			}
			vt.segs = append(vt.segs, "."+k)
			m[k] = vt.build(kv.v)
			vt.segs = vt.segs[:len(vt.segs)-1]
		}
		return m
	case yaml.SequenceNode:
		l := make([]any, len(n.Content))
		for i, c := range n.Content {
			vt.segs = append(vt.segs, "["+strconv.Itoa(i)+"]")
			l[i] = vt.build(c)
			vt.segs = vt.segs[:len(vt.segs)-1]
		}
		return l
	case yaml.ScalarNode:
		return p.scalarValue(n, vt.path, vt.sc)
	}
	return nil
}

// scalarValue is the JSON value of a scalar in a Value: null, a boolean, a
// number, or a string that may be a compiled template. Timestamps and other
// tags stay the text written, so `since: 2024-01-01` sends 2024-01-01.
func (p *parser) scalarValue(n *yaml.Node, path func() string, sc *eval.Env) any {
	switch n.Tag {
	case "!!null":
		return nil
	case "!!bool", "!!int", "!!float":
		var v any
		if err := n.Decode(&v); err != nil {
			p.errorf(n, path(), "invalid value %q: %v", n.Value, err)
			return nil
		}
		if f, ok := v.(float64); ok && (math.IsInf(f, 0) || math.IsNaN(f)) {
			p.errorf(n, path(), "%s is not a JSON number", n.Value)
			return nil
		}
		return v
	}
	if sc == nil || !eval.HasTemplate(n.Value) {
		return n.Value
	}
	t, err := sc.CompileTemplate(n.Value)
	if err != nil {
		p.embedErr(Str{V: n.Value, P: nodePos(n), Set: true, style: n.Style}, path(), err)
		return nil
	}
	if t.IsLiteral() {
		// Only $${ escapes: keep the plain text, with them undone.
		if s, err := t.RenderString(nil); err == nil {
			return s
		}
	}
	return t
}

// RenderValue renders a compiled Value tree against env: templates are
// evaluated, everything else is copied.
func RenderValue(tree any, env map[string]any) (any, error) {
	return RenderValueParts(tree, env, nil)
}

// RenderValueParts is RenderValue, rendering each template of the tree
// with eval.Template.RenderParts and the each that hook gives for it
// (nil: none).
func RenderValueParts(tree any, env map[string]any, hook func(*eval.Template) func(int, any, string) error) (any, error) {
	switch x := tree.(type) {
	case *eval.Template:
		if hook == nil {
			return x.Render(env)
		}
		return x.RenderParts(env, hook(x))
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, v := range x {
			r, err := RenderValueParts(v, env, hook)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, v := range x {
			r, err := RenderValueParts(v, env, hook)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = r
		}
		return out, nil
	}
	return tree, nil
}

// textPaging names the paging values a stream's text body gets as
// paging.<name>: param and size_param of a paginate block in: body.
func textPaging(s *Stream) []string {
	pg := s.Paginate
	if s.Request.BodyFormat.V != BodyText || pg == nil || pg.In.V != "body" {
		return nil
	}
	var names []string
	for _, n := range []Str{pg.Param, pg.SizeParam} {
		if n.Set && n.V != "" {
			names = append(names, n.V)
		}
	}
	return names
}
