package spectest

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Suffix ends the name of a test file: humanitec.test.yaml tests
// humanitec.yaml.
const Suffix = ".test.yaml"

// File is a spec's test file.
type File struct {
	Path     string // as given
	Spec     string // the spec's path (relative to the test file, resolved)
	Runs     []Run
	Mappings []Mapping
}

// Pos is a position in the test file (1-based).
type Pos struct{ Line, Col int }

// Run is a run case: the spec run as a dry run with Config, answered from
// Cassette, compared with Snapshot.
type Run struct {
	Pos      Pos
	Name     string
	Config   map[string]any
	Cassette string // resolved against the test file's directory
	Snapshot string // resolved against the test file's directory
	Streams  []string
	Now      time.Time // the run's clock; zero: the real one
	Error    string    // the run must fail with an error holding this
}

// Mapping is a mapping case: one record through one table or entity
// mapping, compared with Want.
type Mapping struct {
	Pos                    Pos
	Name                   string
	Table, Blueprint, From string
	Record                 any
	Parents                map[string]any
	Config                 map[string]any
	Batch                  []any
	Lookups                map[string]any
	Want                   []any  // the rows or entities wanted (an object in the file is a list of one)
	Error                  string // the mapping must fail with an error holding this
}

// Error is a problem of a test file, at its position.
type Error struct {
	File string
	Pos  Pos
	Path string // e.g. runs[0].cassette
	Msg  string
}

func (e *Error) Error() string {
	msg := e.Msg
	if e.Path != "" {
		msg = e.Path + ": " + msg
	}
	if e.Pos.Line == 0 {
		return e.File + ": " + msg
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Pos.Line, e.Pos.Col, msg)
}

// Errors are every problem of a test file, in file order.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// SpecFor names the test file of a spec: beside it, ".test.yaml" for
// ".yaml" (or ".yml").
func SpecFor(spec string) string {
	for _, ext := range []string{".yaml", ".yml"} {
		if base, ok := strings.CutSuffix(spec, ext); ok {
			return base + Suffix
		}
	}
	return spec + Suffix
}

// Load reads and checks a test file. Problems in it come back as Errors.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse checks a test file's text; path names it and is what relative
// paths in it resolve against.
func Parse(path string, data []byte) (*File, error) {
	d := &decoder{file: path, dir: filepath.Dir(path)}
	f := &File{Path: path}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Errors{{File: path, Msg: err.Error()}}
	}
	if len(doc.Content) == 0 {
		return nil, Errors{{File: path, Msg: "empty test file: give runs or mappings"}}
	}
	root := doc.Content[0]
	base, _ := strings.CutSuffix(filepath.Base(path), Suffix)
	f.Spec = filepath.Join(d.dir, base+".yaml")
	d.mapping(root, "", map[string]func(*yaml.Node, string){
		"spec": func(n *yaml.Node, p string) {
			if s := d.path(n, p); s != "" {
				f.Spec = s
			}
		},
		"runs": func(n *yaml.Node, p string) {
			d.list(n, p, func(n *yaml.Node, p string) { f.Runs = append(f.Runs, d.run(n, p)) })
		},
		"mappings": func(n *yaml.Node, p string) {
			d.list(n, p, func(n *yaml.Node, p string) { f.Mappings = append(f.Mappings, d.mappingCase(n, p)) })
		},
	})
	if len(d.errs) == 0 && len(f.Runs)+len(f.Mappings) == 0 {
		d.errorf(root, "", "no cases: give runs or mappings")
	}
	d.uniqueNames(f)
	if len(d.errs) > 0 {
		slices.SortStableFunc(d.errs, func(a, b *Error) int {
			if a.Pos.Line != b.Pos.Line {
				return a.Pos.Line - b.Pos.Line
			}
			return a.Pos.Col - b.Pos.Col
		})
		return nil, d.errs
	}
	return f, nil
}

type decoder struct {
	file, dir string
	errs      Errors
	nodes     int // values built, against alias bombs
}

func pos(n *yaml.Node) Pos { return Pos{n.Line, n.Column} }

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Pos: pos(n), Path: path, Msg: fmt.Sprintf(format, args...)})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mapping decodes a mapping node key by key; an unknown key is an error
// that lists the known ones.
func (d *decoder) mapping(n *yaml.Node, path string, fields map[string]func(*yaml.Node, string)) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		fn, ok := fields[k.Value]
		if !ok {
			names := make([]string, 0, len(fields))
			for name := range fields {
				names = append(names, name)
			}
			slices.Sort(names)
			d.errorf(k, path, "unknown key %q (known: %s)", k.Value, strings.Join(names, ", "))
			continue
		}
		if seen[k.Value] {
			d.errorf(k, path, "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		fn(v, join(path, k.Value))
	}
}

func (d *decoder) list(n *yaml.Node, path string, each func(*yaml.Node, string)) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "want a list")
		return
	}
	for i, c := range n.Content {
		each(c, fmt.Sprintf("%s[%d]", path, i))
	}
}

func (d *decoder) str(n *yaml.Node, path string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(n, path, "want a string")
		return ""
	}
	return n.Value
}

func (d *decoder) obj(n *yaml.Node, path string) map[string]any {
	v := d.value(n, path)
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		d.errorf(n, path, "want a mapping")
	}
	return m
}

// required reports a missing key of a case.
func (d *decoder) required(n *yaml.Node, path string, have map[string]bool, keys ...string) {
	for _, k := range keys {
		if !have[k] {
			d.errorf(n, path, "%s is required", k)
		}
	}
}

func keysOf(n *yaml.Node) map[string]bool {
	have := map[string]bool{}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			have[n.Content[i].Value] = true
		}
	}
	return have
}

func (d *decoder) run(n *yaml.Node, path string) Run {
	r := Run{Pos: pos(n)}
	d.mapping(n, path, map[string]func(*yaml.Node, string){
		"name":   func(n *yaml.Node, p string) { r.Name = d.str(n, p) },
		"config": func(n *yaml.Node, p string) { r.Config = d.obj(n, p) },
		// Never empty: a run case without a cassette would read the live
		// API (and --update write its answers into the snapshot).
		"cassette": func(n *yaml.Node, p string) { r.Cassette = d.filePath(n, p, "the cassette's directory") },
		"snapshot": func(n *yaml.Node, p string) { r.Snapshot = d.filePath(n, p, "the snapshot file") },
		"streams": func(n *yaml.Node, p string) {
			d.list(n, p, func(n *yaml.Node, p string) { r.Streams = append(r.Streams, d.str(n, p)) })
		},
		"now": func(n *yaml.Node, p string) {
			t, err := time.Parse(time.RFC3339, d.str(n, p))
			if err != nil {
				d.errorf(n, p, "want an RFC 3339 time, e.g. 2026-01-08T00:00:00Z")
			}
			r.Now = t
		},
		"error": func(n *yaml.Node, p string) { r.Error = d.str(n, p) },
	})
	d.required(n, path, keysOf(n), "name", "cassette", "snapshot")
	return r
}

func (d *decoder) mappingCase(n *yaml.Node, path string) Mapping {
	m := Mapping{Pos: pos(n)}
	d.mapping(n, path, map[string]func(*yaml.Node, string){
		"name":      func(n *yaml.Node, p string) { m.Name = d.str(n, p) },
		"table":     func(n *yaml.Node, p string) { m.Table = d.str(n, p) },
		"blueprint": func(n *yaml.Node, p string) { m.Blueprint = d.str(n, p) },
		"from":      func(n *yaml.Node, p string) { m.From = d.str(n, p) },
		"record":    func(n *yaml.Node, p string) { m.Record = d.value(n, p) },
		"parents":   func(n *yaml.Node, p string) { m.Parents = d.obj(n, p) },
		"config":    func(n *yaml.Node, p string) { m.Config = d.obj(n, p) },
		"batch": func(n *yaml.Node, p string) {
			if l, ok := d.value(n, p).([]any); ok {
				m.Batch = l
			} else {
				d.errorf(n, p, "want a list")
			}
		},
		"lookups": func(n *yaml.Node, p string) { m.Lookups = d.obj(n, p) },
		"want": func(n *yaml.Node, p string) {
			switch v := d.value(n, p).(type) {
			case nil:
				m.Want = []any{}
			case []any:
				m.Want = v
			case map[string]any:
				m.Want = []any{v}
			default:
				d.errorf(n, p, "want the row or entity (a mapping), a list of them, or [] for none")
			}
		},
		"error": func(n *yaml.Node, p string) { m.Error = d.str(n, p) },
	})
	have := keysOf(n)
	d.required(n, path, have, "name", "record")
	switch {
	case have["table"] == have["blueprint"]:
		d.errorf(n, path, "give table or blueprint: the mapping tested")
	}
	if have["want"] == have["error"] {
		d.errorf(n, path, "give want (the rows or entities) or error (what the failure says)")
	}
	return m
}

// path resolves a path against the test file's directory.
// filePath is path for a value that must name something: what says what.
func (d *decoder) filePath(n *yaml.Node, path, what string) string {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" && strings.TrimSpace(n.Value) == "" {
		d.errorf(n, path, "empty: want the path of %s", what)
		return ""
	}
	return d.path(n, path)
}

func (d *decoder) path(n *yaml.Node, path string) string {
	s := d.str(n, path)
	if s == "" || filepath.IsAbs(s) {
		return s
	}
	return filepath.Join(d.dir, s)
}

// maxNodes bounds the values of a test file once aliases are expanded.
const maxNodes = 1 << 20

// value turns a YAML value into JSON-shaped data: maps, lists, strings,
// bools, int64 and float64; timestamps stay the text written.
func (d *decoder) value(n *yaml.Node, path string) any {
	if d.nodes++; d.nodes > maxNodes {
		if d.nodes == maxNodes+1 {
			d.errorf(n, path, "value too large once YAML aliases are expanded")
		}
		return nil
	}
	switch n.Kind {
	case yaml.AliasNode:
		return d.value(n.Alias, path)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.AliasNode && k.Alias != nil {
				k = k.Alias
			}
			if k.Tag == "!!merge" {
				if inner, ok := d.value(v, path).(map[string]any); ok {
					for ik, iv := range inner {
						if _, set := m[ik]; !set {
							m[ik] = iv
						}
					}
				}
				continue
			}
			if _, dup := m[k.Value]; dup {
				d.errorf(k, path, "duplicate key %q", k.Value)
			}
			m[k.Value] = d.value(v, join(path, k.Value))
		}
		return m
	case yaml.SequenceNode:
		l := make([]any, len(n.Content))
		for i, c := range n.Content {
			l[i] = d.value(c, fmt.Sprintf("%s[%d]", path, i))
		}
		return l
	case yaml.DocumentNode:
		if len(n.Content) > 0 {
			return d.value(n.Content[0], path)
		}
		return nil
	}
	return d.scalar(n, path)
}

func (d *decoder) scalar(n *yaml.Node, path string) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			d.errorf(n, path, "%v", err)
		}
		return b
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			d.errorf(n, path, "%v", err)
		}
		return i
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			d.errorf(n, path, "%s is not a JSON number", n.Value)
			return nil
		}
		return f
	}
	return n.Value
}

// uniqueNames: a case is known by its name, which must be unique in its
// list.
func (d *decoder) uniqueNames(f *File) {
	check := func(kind string, names []string, poss []Pos) {
		seen := map[string]bool{}
		for i, name := range names {
			if name != "" && seen[name] {
				d.errs = append(d.errs, &Error{File: d.file, Pos: poss[i], Msg: fmt.Sprintf("two %s cases are named %q", kind, name)})
			}
			seen[name] = true
		}
	}
	var names []string
	var poss []Pos
	for _, r := range f.Runs {
		names, poss = append(names, r.Name), append(poss, r.Pos)
	}
	check("run", names, poss)
	names, poss = nil, nil
	for _, m := range f.Mappings {
		names, poss = append(names, m.Name), append(poss, m.Pos)
	}
	check("mapping", names, poss)
}

// AsErrors returns the test-file problems inside err, or nil.
func AsErrors(err error) Errors {
	var es Errors
	if errors.As(err, &es) {
		return es
	}
	return nil
}
