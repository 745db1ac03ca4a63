package spec

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/ferry-etl/ferry/engine/eval"

	"github.com/ferry-etl/ferry/engine/internal/suggest"
)

// decoder walks yaml.Node trees into the tagged types of this package,
// collecting every problem instead of stopping at the first.
type decoder struct {
	file   string
	errs   ErrorList
	warns  ErrorList                // likely mistakes that do not stop a run
	merged map[*yaml.Node][]pair    // pairs of each mapping, merge keys expanded
	fields map[reflect.Type][]field // fieldsOf each struct type decoded
}

// fieldsOf is the package's fieldsOf, read once per type and parse.
func (d *decoder) fieldsOf(t reflect.Type) []field {
	fs, ok := d.fields[t]
	if !ok {
		if d.fields == nil {
			d.fields = map[reflect.Type][]field{}
		}
		fs = fieldsOf(t)
		d.fields[t] = fs
	}
	return fs
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.add(&Error{File: d.file, Pos: nodePos(n), Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) errorAt(p Pos, path, format string, args ...any) {
	d.add(&Error{File: d.file, Pos: p, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// MaxErrors is how many problems Parse reports before it stops: a spec
// generated with one systematic mistake would otherwise cost a "did you
// mean" search per stream among thousands of names.
const MaxErrors = 100

// tooMany is the panic that ends a Parse that has found MaxErrors problems.
type tooMany struct{}

// warnAt records a likely mistake: valid, but probably not what was meant.
func (d *decoder) warnAt(p Pos, path, format string, args ...any) {
	d.warn(&Error{File: d.file, Pos: p, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) warn(e *Error) {
	if len(d.warns) < MaxErrors {
		d.warns = append(d.warns, e)
	}
}

func (d *decoder) add(e *Error) {
	if len(d.errs) == MaxErrors {
		d.errs = append(d.errs, &Error{File: e.File, Pos: e.Pos, Msg: fmt.Sprintf("too many problems (%d reported); fix these and validate again", MaxErrors)})
		panic(tooMany{})
	}
	d.errs = append(d.errs, e)
}

func nodePos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{}
	}
	return Pos{Line: n.Line, Col: n.Column}
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// pair is one key and value of a mapping.
type pair struct{ k, v *yaml.Node }

// pairs lists the keys of mapping n in file order with YAML merge keys
// (`<<: *defaults`) expanded in place: merged keys come from the anchored
// mappings, and keys written in n itself win over them.
func (d *decoder) pairs(n *yaml.Node, path func() string) []pair {
	if ps, ok := d.merged[n]; ok {
		return ps
	}
	if d.merged == nil {
		d.merged = map[*yaml.Node][]pair{}
	}
	d.merged[n] = nil // against a mapping that merges itself
	explicit := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Tag != "!!merge" {
			explicit[k.Value] = true
		}
	}
	var out []pair
	added := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag != "!!merge" {
			out = append(out, pair{k, v})
			continue
		}
		v = resolveAlias(v)
		srcs := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			srcs = v.Content
		}
		for _, src := range srcs {
			src = resolveAlias(src)
			if src.Kind != yaml.MappingNode {
				d.errorf(src, path(), "a merge key << takes a mapping or a list of mappings, got %s", kindName(src))
				continue
			}
			for _, mp := range d.pairs(src, path) {
				if !explicit[mp.k.Value] && !added[mp.k.Value] {
					added[mp.k.Value] = true
					out = append(out, mp)
				}
			}
		}
	}
	d.merged[n] = out
	return out
}

// nodeDecoder is implemented by the leaf types (scalars, programs, maps).
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string)
}

var nodeDecoderType = reflect.TypeFor[nodeDecoder]()

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// kindName describes what a node holds, quoting short scalars so a type
// error shows the offending value: `string "eight"`, `number 2.5`.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!bool":
			return "boolean " + n.Value
		case "!!int", "!!float":
			return "number " + shorten(n.Value)
		}
		return "string " + strconv.Quote(shorten(n.Value))
	}
	return "an unknown node"
}

// shorten cuts a scalar quoted in a message to a readable length.
func shorten(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	return string([]rune(s)[:max-3]) + "..."
}

// decode decodes n into v. at is where the value is named (its key, or the
// node itself for a list item): errors about the value as a whole, such as a
// missing field, are reported there, and a struct's Pos records it.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, at Pos) {
	n = resolveAlias(n)
	if v.CanAddr() {
		if b, ok := v.Addr().Interface().(*Budgets); ok {
			b.decodeAt(d, n, path, at)
			return
		}
	}
	if v.CanAddr() && v.Addr().Type().Implements(nodeDecoderType) {
		v.Addr().Interface().(nodeDecoder).decodeNode(d, n, path)
		if s, ok := v.Addr().Interface().(*Str); ok && strings.Contains(s.V, "${") && !strings.HasSuffix(path, ".description") && path != "description" {
			// A plain string field is sent as written: a template there
			// (auth scopes were one) reached the server literally.
			d.warnAt(s.P, path, "not a template: %q is used as written, ${ } and all", s.V)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path, at)
	case reflect.Struct:
		d.decodeStruct(n, v, path, at)
	case reflect.Slice:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i), nodePos(item))
		}
		v.Set(s)
	default:
		// Only reachable through a programming error in the spec types.
		d.errorf(n, path, "internal: cannot decode into %s", v.Type())
	}
}

// field is the decoding metadata of one tagged struct field.
type field struct {
	key      string
	index    int
	required bool
	unless   string // the field is not required when one of these (comma-separated) is given
	enum     []string
	only     []string
	names    string // what the keys of a mapping name, when checked: "stream", "table", "config"
	doc      string
}

func fieldsOf(t reflect.Type) []field {
	var fs []field
	for i := range t.NumField() {
		sf := t.Field(i)
		key := sf.Tag.Get("yaml")
		if key == "" || key == "-" {
			continue
		}
		f := field{key: key, index: i, required: sf.Tag.Get("ferry") == "required", unless: sf.Tag.Get("unless"), names: sf.Tag.Get("names"), doc: sf.Tag.Get("doc")}
		if e := sf.Tag.Get("enum"); e != "" {
			f.enum = strings.Split(e, ",")
		}
		if o := sf.Tag.Get("only"); o != "" {
			f.only = strings.Split(o, ",")
		}
		fs = append(fs, f)
	}
	return fs
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string, at Pos) {
	fields := d.fieldsOf(v.Type())
	if n.Kind != yaml.MappingNode {
		if !isNull(n) {
			d.errorf(n, path, "expected a mapping, got %s", kindName(n))
			return
		}
		// An empty block (`apps:` with nothing under it) still lacks its
		// required fields.
		for _, f := range fields {
			if f.required {
				d.errorAt(at, path, "missing required field %q", f.key)
			}
		}
		return
	}
	if pf := v.FieldByName("Pos"); pf.IsValid() && pf.Type() == reflect.TypeFor[Pos]() {
		pf.Set(reflect.ValueOf(at))
	}
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	seen := map[string]*yaml.Node{}
	suggested := map[string]bool{} // keys offered for a misspelt one
	var nulls []field              // required fields given null
	for _, kv := range d.pairs(n, func() string { return path }) {
		k, val := kv.k, kv.v
		name := k.Value
		j := slices.Index(keys, name)
		if j < 0 {
			hint := didYouMean(name, keys)
			if best := suggest.Closest(name, keys); best != "" {
				suggested[best] = true
			}
			d.errorf(k, path, "unknown field %q%s", name, hint)
			continue
		}
		if first, dup := seen[name]; dup {
			d.errorf(k, path, "duplicate field %q (first given on line %d)", name, first.Line)
			continue
		}
		seen[name] = k
		f := fields[j]
		fp := joinPath(path, name)
		if f.required && isNull(resolveAlias(val)) {
			nulls = append(nulls, f)
		}
		d.decode(val, v.Field(f.index), fp, nodePos(k))
		if f.enum != nil {
			d.checkEnum(v.Field(f.index), f.enum, fp)
		}
	}
	needed := func(f field) bool {
		if !f.required {
			return false
		}
		for _, alt := range strings.Split(f.unless, ",") {
			if alt != "" && seen[alt] != nil {
				return false
			}
		}
		return true
	}
	for _, f := range nulls {
		if needed(f) {
			d.errorf(seen[f.key], path, "required field %q has no value", f.key)
		}
	}
	for _, f := range fields {
		// A misspelt key already says what is missing.
		if needed(f) && seen[f.key] == nil && !suggested[f.key] {
			d.errorAt(at, path, "missing required field %q", f.key)
		}
	}
	// Fields that belong to another variant of a polymorphic block.
	if tf := v.FieldByName("Type"); tf.IsValid() && tf.Type() == reflect.TypeFor[Str]() {
		typ := tf.Interface().(Str)
		if i := slices.IndexFunc(fields, func(f field) bool { return f.key == "type" }); !typ.Set || i >= 0 && !slices.Contains(fields[i].enum, typ.V) {
			return // no type, or an unknown one (reported): nothing to compare with
		}
		for _, f := range fields {
			if k, ok := seen[f.key]; ok && f.only != nil && !slices.Contains(f.only, typ.V) {
				d.errorf(k, joinPath(path, f.key), "not used by type %q (only by %s)", typ.V, strings.Join(f.only, ", "))
			}
		}
	}
}

func (d *decoder) checkEnum(v reflect.Value, allowed []string, path string) {
	check := func(s Str, p string) {
		if s.Set && !slices.Contains(allowed, s.V) {
			d.errorAt(s.P, p, "invalid value %q: want one of %s%s", s.V, strings.Join(allowed, ", "), didYouMean(s.V, allowed))
		}
	}
	switch x := v.Addr().Interface().(type) {
	case *Str:
		check(*x, path)
	case *Map[Str]:
		for _, it := range x.Items {
			check(it.Value, joinPath(path, it.Key))
		}
	}
}

// Str is a string scalar with its position.
type Str struct {
	V     string
	P     Pos
	Set   bool
	style yaml.Style // how it is written, to place errors inside it; not the node, so the YAML tree can be freed after decoding
}

func (s *Str) decodeNode(d *decoder, n *yaml.Node, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected a string, got %s", kindName(n))
		return
	}
	*s = Str{V: n.Value, P: nodePos(n), Set: true, style: n.Style}
}

// Int is an integer scalar with its position.
type Int struct {
	V   int
	P   Pos
	Set bool
}

func (x *Int) decodeNode(d *decoder, n *yaml.Node, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		d.errorf(n, path, "expected an integer, got %s", kindName(n))
		return
	}
	v, err := strconv.ParseInt(n.Value, 0, 64)
	if err != nil {
		d.errorf(n, path, "invalid integer %q", n.Value)
		return
	}
	*x = Int{V: int(v), P: nodePos(n), Set: true}
}

// Float is a number scalar with its position.
type Float struct {
	V   float64
	P   Pos
	Set bool
}

func (x *Float) decodeNode(d *decoder, n *yaml.Node, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		d.errorf(n, path, "expected a number, got %s", kindName(n))
		return
	}
	v, err := strconv.ParseFloat(n.Value, 64)
	if err != nil {
		d.errorf(n, path, "invalid number %q", n.Value)
		return
	}
	*x = Float{V: v, P: nodePos(n), Set: true}
}

// Bool is a boolean scalar with its position.
type Bool struct {
	V   bool
	P   Pos
	Set bool
}

func (x *Bool) decodeNode(d *decoder, n *yaml.Node, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		d.errorf(n, path, "expected true or false, got %s", kindName(n))
		return
	}
	*x = Bool{V: n.Value == "true" || n.Value == "True" || n.Value == "TRUE", P: nodePos(n), Set: true}
}

// Duration is a Go duration string such as "30s" or "1m30s".
type Duration struct {
	V   time.Duration
	P   Pos
	Set bool
}

func (x *Duration) decodeNode(d *decoder, n *yaml.Node, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected a duration such as 30s, got %s", kindName(n))
		return
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		d.errorf(n, path, "invalid duration %q: want a value such as 500ms, 30s or 2m", n.Value)
		return
	}
	*x = Duration{V: v, P: nodePos(n), Set: true}
}

// Strs is one string or a list of strings.
type Strs struct {
	V []Str
	P Pos
}

func (x *Strs) decodeNode(d *decoder, n *yaml.Node, path string) {
	if isNull(n) {
		return
	}
	x.P = nodePos(n)
	if n.Kind == yaml.MappingNode {
		d.errorf(n, path, "expected a string or a list of strings, got %s", kindName(n))
		return
	}
	if n.Kind == yaml.SequenceNode {
		for i, item := range n.Content {
			var s Str
			s.decodeNode(d, resolveAlias(item), fmt.Sprintf("%s[%d]", path, i))
			if s.Set {
				x.V = append(x.V, s)
			}
		}
		return
	}
	var s Str
	s.decodeNode(d, n, path)
	if s.Set {
		x.V = []Str{s}
	}
}

// decodeAt reads one block, or a list of them; a single block's errors
// are placed as before lists were taken (at its key).
func (b *Budgets) decodeAt(d *decoder, n *yaml.Node, path string, at Pos) {
	if isNull(n) {
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		b.V, b.P, b.Set = make([]RateLimitHeaders, 1), at, true
		d.decodeStruct(n, reflect.ValueOf(&b.V[0]).Elem(), path, at)
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			d.errorf(n, path, "an empty list names no budget: give one block or a list of them, or leave rate_limit_headers out")
			return
		}
		b.V, b.P, b.Set, b.List = make([]RateLimitHeaders, len(n.Content)), at, true, true
		for i, item := range n.Content {
			// An entry that is no mapping is an error here, and keeps no
			// Pos: validation passes over it.
			item = resolveAlias(item)
			d.decodeStruct(item, reflect.ValueOf(&b.V[i]).Elem(), fmt.Sprintf("%s[%d]", path, i), nodePos(item))
		}
	default:
		d.errorf(n, path, "expected a mapping or a list of mappings, got %s", kindName(n))
	}
}

// Value is any YAML value (a literal request body, a default). Strings in it
// may hold ${ … } templates, compiled during validation.
type Value struct {
	Node *yaml.Node
	P    Pos
	Set  bool
	tree any // decoded value; strings with templates are *eval.Template
}

func (x *Value) decodeNode(d *decoder, n *yaml.Node, path string) {
	if isNull(n) {
		return
	}
	*x = Value{Node: n, P: nodePos(n), Set: true}
}

// Tree returns the value as JSON-shaped data (maps, lists, strings, bool,
// int, float64, nil; YAML timestamps stay their text). In request query and
// body values the strings holding ${ … } are compiled *eval.Template values:
// render those with RenderValue. A config default is plain data.
func (x *Value) Tree() any { return x.tree }

// JQ is an embedded jq program.
type JQ struct {
	Str
	code *eval.JQ
}

func (q *JQ) decodeNode(d *decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.MappingNode && n.Style == yaml.FlowStyle {
		// `row: {id: .id}` is YAML's own mapping syntax, not jq's.
		d.errorf(n, path, "expected a jq program, got a mapping: quote a jq object, as in '{id: .id}'")
		return
	}
	q.Str.decodeNode(d, n, path)
}

// Tmpl is a string that may contain ${ … } expr templates.
type Tmpl struct {
	Str
	tmpl *eval.Template
}

// Template returns the compiled template, or nil when unset.
func (t *Tmpl) Template() *eval.Template { return t.tmpl }

// Expr is an embedded expr program.
type Expr struct {
	Str
	expr *eval.Expr
}

// Program returns the compiled program, or nil when unset.
func (e *Expr) Program() *eval.Expr { return e.expr }

// MapItem is one key of a Map with its position.
type MapItem[T any] struct {
	Key   string
	P     Pos
	Value T
}

// Map is a YAML mapping kept in file order, with key positions.
type Map[T any] struct {
	Items []MapItem[T]
	P     Pos
	Set   bool
}

// Get returns the value of key, or nil.
func (m *Map[T]) Get(key string) *T {
	for i := range m.Items {
		if m.Items[i].Key == key {
			return &m.Items[i].Value
		}
	}
	return nil
}

// Keys lists the keys in file order.
func (m *Map[T]) Keys() []string {
	keys := make([]string, len(m.Items))
	for i, it := range m.Items {
		keys[i] = it.Key
	}
	return keys
}

func (m *Map[T]) decodeNode(d *decoder, n *yaml.Node, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	m.P, m.Set = nodePos(n), true
	index := map[string]int{}
	ps := d.pairs(n, func() string { return path })
	m.Items = make([]MapItem[T], 0, len(ps)) // not grown by doubling: items can be large and many
	for _, kv := range ps {
		k, val := kv.k, kv.v
		if i, dup := index[k.Value]; dup {
			d.errorf(k, path, "duplicate key %q (first given on line %d)", k.Value, m.Items[i].P.Line)
			continue
		}
		index[k.Value] = len(m.Items)
		m.Items = append(m.Items, MapItem[T]{Key: k.Value, P: nodePos(k)})
		item := &m.Items[len(m.Items)-1]
		ev := reflect.ValueOf(&item.Value).Elem()
		d.decode(val, ev, joinPath(path, k.Value), nodePos(k))
		if ev.Kind() == reflect.Struct {
			if nf := ev.FieldByName("Name"); nf.IsValid() && nf.Kind() == reflect.String {
				nf.SetString(k.Value)
			}
			// Set here too: a null value skips decodeStruct.
			if pf := ev.FieldByName("Pos"); pf.IsValid() && pf.Type() == reflect.TypeFor[Pos]() {
				pf.Set(reflect.ValueOf(nodePos(k)))
			}
		}
	}
}
