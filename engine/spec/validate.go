package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// FS resolves files a spec refers to, relative to the spec's directory.
type FS = fs.FS

func reflectValue(f *File) reflect.Value { return reflect.ValueOf(f).Elem() }

// reserved names cannot be stream names: they are variables in expr and jq
// (ENV and __loc__ are jq's own $ENV and $__loc__).
var reserved = []string{"config", "parent", "parents", "batch", "cursor", "lookups", "window", "response", "page", "records", "env", "now", "input", "ENV", "__loc__"}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Blueprint is the part of a Port blueprint body the validator checks
// mappings against.
type Blueprint struct {
	Identifier string `json:"identifier"`
	Schema     struct {
		Properties map[string]json.RawMessage `json:"properties"`
	} `json:"schema"`
	Relations map[string]json.RawMessage `json:"relations"`
	Raw       json.RawMessage            `json:"-"`
}

// validate runs the phases after structural decoding: names and references,
// the fan-out graph, then the embedded programs.
func (p *parser) validate(f *File) {
	f.config = map[string]*ConfigVar{}
	for i := range f.Config.Items {
		it := &f.Config.Items[i]
		if !identRE.MatchString(it.Key) {
			p.errorAt(it.P, "config", "invalid name %q: use letters, digits and _", it.Key)
		}
		f.config[it.Key] = &it.Value
		for _, e := range it.Value.Env.V {
			if !identRE.MatchString(e.V) {
				p.errorAt(e.P, "config."+it.Key+".env", "invalid environment variable name %q", e.V)
			}
		}
		if it.Value.Required.V && it.Value.Default.Set {
			p.errorAt(it.Value.Default.P, "config."+it.Key+".default", "a required input cannot have a default")
		}
		p.compileValue(&it.Value.Default, "config."+it.Key+".default", nil)
	}
	p.checkStreams(f)
	p.checkIncremental(f)
	p.checkPartitions(f)
	p.checkFormats(f)
	p.checkGraph(f)
	p.checkLookups(f)
	blueprints := p.loadBlueprints(f)
	p.checkTables(f)
	p.checkPort(f, blueprints)
	p.compile(f)
}

// checkIncremental checks the cursor and the time windows of incremental
// streams. (An incremental stream may be a parent: its cursor is saved only
// once every child chain of the records that moved it has finished.)
func (p *parser) checkIncremental(f *File) {
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		inc := s.Incremental
		if inc == nil {
			continue
		}
		path := "streams." + s.Name + ".incremental"
		w := inc.Window
		if w == nil {
			if !inc.Cursor.Set {
				p.errorAt(inc.Pos, path, "missing required field %q (or a window)", "cursor")
			}
			continue
		}
		if w.Step.Set && w.Step.V <= 0 {
			p.errorAt(w.Step.P, path+".window.step", "must be longer than 0")
		}
		if !inc.Initial.Set {
			p.errorAt(inc.Pos, path, "a window needs initial: the start of the first window (an RFC 3339 time)")
		} else if v, ok := inc.Initial.Node.Value, inc.Initial.Node.Kind == yaml.ScalarNode; ok {
			if _, err := time.Parse(time.RFC3339, v); err != nil {
				p.errorAt(inc.Initial.P, path+".initial", "invalid time %q: a window starts at an RFC 3339 time such as 2024-01-01T00:00:00Z", v)
			}
		}
	}
}

// checkPartitions checks streams that give values instead of requesting.
func (p *parser) checkPartitions(f *File) {
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		path := "streams." + s.Name
		pt := s.Partitions
		if pt == nil {
			continue
		}
		switch {
		case pt.Values.Set && pt.Range != nil:
			p.errorAt(pt.Range.From.P, path+".partitions.range", "give values or range, not both")
		case !pt.Values.Set && pt.Range == nil:
			p.errorAt(pt.Pos, path+".partitions", "missing required field %q (or %q)", "values", "range")
		case pt.Range != nil && pt.Range.Step.Set && pt.Range.Step.V == 0:
			p.errorAt(pt.Range.Step.P, path+".partitions.range.step", "must not be 0")
		case pt.Values.Set && pt.Values.Node.Kind == yaml.MappingNode:
			p.errorAt(pt.Values.P, path+".partitions.values", "expected a list or a ${ } template giving one, got a mapping")
		}
		for _, x := range []struct {
			set  bool
			pos  Pos
			name string
		}{
			{s.Request.Pos.Line > 0, s.Request.Pos, "request"},
			{s.Paginate != nil, posOf(s.Paginate), "paginate"},
			{s.Records.Set, s.Records.P, "records"},
			{s.HTTP != nil, Pos{}, "http"},
			{s.Incremental != nil, posOf(s.Incremental), "incremental"},
			{s.Response != nil, Pos{}, "response"},
		} {
			if x.set {
				at := x.pos
				if at.Line == 0 {
					at = pt.Pos
				}
				p.errorAt(at, path+"."+x.name, "a stream with partitions sends no request: %s has no use here", x.name)
			}
		}
	}
}

// posOf is the position of an optional block, zero for none.
func posOf[T interface{ *Paginate | *Incremental }](b T) Pos {
	switch x := any(b).(type) {
	case *Paginate:
		if x != nil {
			return x.Pos
		}
	case *Incremental:
		if x != nil {
			return x.Pos
		}
	}
	return Pos{}
}

func (p *parser) checkStreams(f *File) {
	f.streams = map[string]*Stream{}
	names := f.Streams.Keys()
	if f.Streams.Set && len(f.Streams.Items) == 0 {
		p.errorAt(f.Streams.P, "streams", "no streams: a spec reads at least one")
	}
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		f.streams[s.Name] = s
	}
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		path := "streams." + s.Name
		switch {
		case !identRE.MatchString(s.Name):
			p.errorAt(s.Pos, "streams", "invalid stream name %q: use letters, digits and _", s.Name)
		case slices.Contains(reserved, s.Name):
			p.errorAt(s.Pos, "streams", "stream name %q is reserved (it names a variable in expr and jq)", s.Name)
		}
		if s.ForEach.Set {
			if parent, ok := f.streams[s.ForEach.V]; ok {
				s.parent = parent
			} else {
				p.errorAt(s.ForEach.P, path+".for_each", "unknown stream %q%s", s.ForEach.V, didYouMean(s.ForEach.V, names))
			}
		}
		if s.Batch.Set {
			b, ok := f.streams[s.Batch.V]
			switch {
			case !ok:
				p.errorAt(s.Batch.P, path+".batch", "unknown stream %q%s", s.Batch.V, didYouMean(s.Batch.V, names))
			case !s.ForEach.Set:
				p.errorAt(s.Batch.P, path+".batch", "batch needs for_each: the batch is collected per parent record")
			case b.ForEach.V != s.ForEach.V:
				p.errorAt(s.Batch.P, path+".batch", "stream %q fans out from %q, not from %q: a batch must share this stream's parent", b.Name, b.ForEach.V, s.ForEach.V)
			default:
				s.batch = b
			}
		}
		r := &s.Request
		switch {
		case s.Partitions != nil:
			// Values instead of a request: checkPartitions.
		case r.Pos.Line == 0:
			// No usable request block: decoding said so already.
		case r.Path.Set && r.URL.Set:
			p.errorAt(r.URL.P, path+".request.url", "give path or url, not both")
		case !r.Path.Set && !r.URL.Set:
			p.errorAt(r.Pos, path+".request", "missing required field %q (or %q)", "path", "url")
		}
		if r.Body.Set && r.BodyJQ.Set {
			p.errorAt(r.BodyJQ.P, path+".request.body_jq", "give body or body_jq, not both")
		}
		if (r.Body.Set || r.BodyJQ.Set) && (!r.Method.Set || r.Method.V == "GET") {
			pos, field := r.Body.P, "body"
			if r.BodyJQ.Set && !r.Body.Set {
				pos, field = r.BodyJQ.P, "body_jq"
			}
			if r.Method.Set {
				p.errorAt(pos, path+".request."+field, "a request body needs method POST, PUT or PATCH, not %s", r.Method.V)
			} else {
				p.errorAt(pos, path+".request."+field, "a request body needs method POST, PUT or PATCH (the default is GET)")
			}
		}
		if s.HTTP != nil {
			p.checkHTTP(s.HTTP, path+".http")
		}
		if pg := s.Paginate; pg != nil {
			p.checkPaginate(pg, path+".paginate")
		}
		p.checkRequestFormat(r, path+".request")
	}
	p.checkHTTP(&f.HTTP, "http")
}

func (p *parser) checkHTTP(h *HTTP, path string) {
	if h.Concurrency.Set && h.Concurrency.V < 1 {
		p.errorAt(h.Concurrency.P, path+".concurrency", "must be at least 1")
	}
	if r := h.Retry; r != nil {
		if r.Attempts.Set && r.Attempts.V < 1 {
			p.errorAt(r.Attempts.P, path+".retry.attempts", "must be at least 1")
		}
		for i, st := range r.On {
			if st.Set && st.V < 400 || st.V > 599 {
				p.errorAt(st.P, fmt.Sprintf("%s.retry.on[%d]", path, i), "%d is not an HTTP error status (400-599)", st.V)
			}
		}
	}
	if rl := h.RateLimit; rl != nil && rl.PerSecond.Set && rl.PerSecond.V <= 0 {
		p.errorAt(rl.PerSecond.P, path+".rate_limit.per_second", "must be greater than 0")
	}
	if a := h.Auth; a != nil {
		need := map[string][]string{
			"bearer": {"token"}, "header": {"header", "value"}, "query": {"param", "value"},
			"basic": {"username"}, "oauth2": {"token_url", "client_id", "client_secret"},
		}[a.Type.V]
		av := reflect.ValueOf(a).Elem()
		for _, key := range need {
			for _, fl := range fieldsOf(av.Type()) {
				if fl.key == key && !av.Field(fl.index).FieldByName("Set").Bool() {
					p.errorAt(a.Pos, path+".auth", "auth type %q needs field %q", a.Type.V, key)
				}
			}
		}
		p.checkAuthFlow(a, path)
	}
	p.checkRules(h, path)
}

func (p *parser) checkPaginate(pg *Paginate, path string) {
	p.checkCursor(pg, path)
	need := map[string][]string{
		"next_url": {"url"},
		"page":     {"param"},
		"offset":   {"param"},
	}[pg.Type.V]
	pv := reflect.ValueOf(pg).Elem()
	missing := map[string]bool{}
	for _, key := range need {
		for _, fl := range fieldsOf(pv.Type()) {
			if fl.key == key && !pv.Field(fl.index).FieldByName("Set").Bool() {
				missing[key] = true
				p.errorAt(pg.Pos, path, "pagination type %q needs field %q", pg.Type.V, key)
			}
		}
	}
	if pg.TokenParam.Set && !pg.Token.Set && !missing["token"] {
		p.errorAt(pg.TokenParam.P, path+".token_param", "token_param needs token")
	}
	if pg.Type.V == "page" && pg.Token.Set && !pg.TokenParam.Set {
		p.errorAt(pg.Token.P, path+".token", "token needs token_param, the query parameter that carries it")
	}
	if pg.Size.Set && pg.Size.V < 1 {
		p.errorAt(pg.Size.P, path+".size", "must be at least 1")
	}
	if pg.MaxPages.Set && pg.MaxPages.V < 1 {
		p.errorAt(pg.MaxPages.P, path+".max_pages", "must be at least 1")
	}
	switch {
	case pg.Size.Set && !pg.SizeParam.Set:
		p.errorAt(pg.Size.P, path+".size", "size needs size_param, the parameter that carries it")
	case pg.SizeParam.Set && !pg.Size.Set:
		p.errorAt(pg.SizeParam.P, path+".size_param", "size_param needs size, the page size to send")
	}
	// param and size_param go to the same place (in); there they must not
	// be one parameter, nor, in a body, one path inside the other.
	if pg.In.V == "body" {
		for key, f := range map[string]Str{"param": pg.Param, "size_param": pg.SizeParam} {
			if f.Set && slices.Contains(strings.Split(f.V, "."), "") {
				p.errorAt(f.P, path+"."+key, "%q is not a body path: a dotted path has no empty part", f.V)
			}
		}
	}
	if pg.Param.Set && pg.SizeParam.Set && sameParam(pg.In.V, pg.Param.V, pg.SizeParam.V) {
		p.errorAt(pg.SizeParam.P, path+".size_param", "size_param %q and param %q collide in the %s", pg.SizeParam.V, pg.Param.V, placeOf(pg.In.V))
	}
}

// sameParam reports whether a and b collide where in puts them: equal
// query names, equal header names (case-insensitive), or body paths of
// which one is the other or lies inside it.
func sameParam(in, a, b string) bool {
	switch in {
	case "header":
		return strings.EqualFold(a, b)
	case "body":
		return a == b || strings.HasPrefix(a, b+".") || strings.HasPrefix(b, a+".")
	}
	return a == b
}

func placeOf(in string) string {
	if in == "" {
		return "query"
	}
	return in
}

// checkGraph reports fan-out cycles with their path. Batch edges count: a
// stream waits for its batch stream.
func (p *parser) checkGraph(f *File) {
	type edge struct {
		to  *Stream
		ref Str // the for_each or batch naming it
		key string
	}
	deps := func(s *Stream) []edge {
		var out []edge
		if t, ok := f.streams[s.ForEach.V]; ok && s.ForEach.Set {
			out = append(out, edge{t, s.ForEach, "for_each"})
		}
		if t, ok := f.streams[s.Batch.V]; ok && s.Batch.Set {
			out = append(out, edge{t, s.Batch, "batch"})
		}
		return out
	}
	const (
		unvisited = iota
		active
		done
	)
	state := map[string]int{}
	reported := map[string]bool{}
	var stack []*Stream
	var visit func(s *Stream)
	visit = func(s *Stream) {
		state[s.Name] = active
		stack = append(stack, s)
		for _, e := range deps(s) {
			switch state[e.to.Name] {
			case unvisited:
				visit(e.to)
			case active:
				// The cycle is stack[i:], closed by this edge; it is read from
				// the stream whose edge closes it, where it is reported.
				cycle := stack[slices.Index(stack, e.to):]
				names := []string{s.Name}
				for _, c := range cycle {
					names = append(names, c.Name)
				}
				key := strings.Join(sortedCopy(names[1:]), ",")
				if !reported[key] {
					reported[key] = true
					p.errorAt(e.ref.P, "streams."+s.Name+"."+e.key, "fan-out cycle: %s (each stream waits for the next)", strings.Join(names, " -> "))
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[s.Name] = done
	}
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		if state[s.Name] == unvisited {
			visit(s)
		}
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func (p *parser) loadBlueprints(f *File) map[string]*Blueprint {
	if f.Port == nil || !f.Port.Blueprints.Set || p.fsys == nil {
		return nil
	}
	ref := f.Port.Blueprints
	if !fs.ValidPath(ref.V) {
		p.errorAt(ref.P, "port.blueprints", "%q: want a path inside the spec's directory, such as blueprints.json (no leading /, no ..)", ref.V)
		return nil
	}
	data, err := fs.ReadFile(p.fsys, ref.V)
	if err != nil {
		msg := err.Error()
		if errors.Is(err, fs.ErrNotExist) {
			msg = "file not found"
		}
		p.errorAt(ref.P, "port.blueprints", "cannot read %q: %s", ref.V, msg)
		return nil
	}
	raws, msg := blueprintList(data)
	if msg != "" {
		p.errorAt(ref.P, "port.blueprints", "%s: %s", ref.V, msg)
		return nil
	}
	f.blueprints = raws
	out := map[string]*Blueprint{}
	for i, raw := range raws {
		var bp Blueprint
		if err := json.Unmarshal(raw, &bp); err != nil {
			var v any
			_ = json.Unmarshal(raw, &v)
			msg := "want a blueprint object, got " + jsonKind(v)
			if _, ok := v.(map[string]any); ok {
				msg = "invalid blueprint: identifier must be a string, schema.properties and relations objects"
			}
			p.errorAt(ref.P, "port.blueprints", "%s[%d]: %s", ref.V, i, msg)
			continue
		}
		if bp.Identifier == "" {
			p.errorAt(ref.P, "port.blueprints", "%s[%d]: blueprint has no \"identifier\"", ref.V, i)
			continue
		}
		bp.Raw = raw
		out[bp.Identifier] = &bp
	}
	return out
}

// blueprintList splits a blueprints file into its bodies, or says in a
// message what is wrong with it, with the line of a syntax error.
func blueprintList(data []byte) ([]json.RawMessage, string) {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
			return nil, fmt.Sprintf("invalid JSON on line %d: %v", line, se)
		}
		return nil, fmt.Sprintf("invalid JSON: %v", err)
	}
	if _, ok := v.([]any); !ok {
		return nil, "want a JSON list of blueprint bodies, got " + jsonKind(v)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		return nil, fmt.Sprintf("invalid JSON: %v", err) // unreachable: it parsed as a list
	}
	return raws, ""
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

func (p *parser) checkTables(f *File) {
	names := f.Streams.Keys()
	for i := range f.Tables.Items {
		t := &f.Tables.Items[i].Value
		path := "tables." + t.Name
		if !identRE.MatchString(t.Name) {
			p.errorAt(t.Pos, "tables", "invalid table name %q: use letters, digits and _", t.Name)
		}
		if t.From.Set && f.streams[t.From.V] == nil {
			p.errorAt(t.From.P, path+".from", "unknown stream %q%s", t.From.V, didYouMean(t.From.V, names))
		}
		seen := map[string]bool{}
		for j, k := range t.PrimaryKey {
			if seen[k.V] {
				p.errorAt(k.P, fmt.Sprintf("%s.primary_key[%d]", path, j), "duplicate column %q", k.V)
			}
			seen[k.V] = true
		}
		if t.Mode.V == "append" && len(t.PrimaryKey) > 0 {
			p.errorAt(t.Mode.P, path+".mode", "append mode does not use a primary key")
		}
		if t.HardDelete.V && t.Mode.V != "replace" {
			p.errorAt(t.HardDelete.P, path+".hard_delete", "hard_delete needs mode: replace (only a replace table deletes rows)")
		}
		if t.OnDuplicate.Set && len(t.PrimaryKey) == 0 {
			p.errorAt(t.OnDuplicate.P, path+".on_duplicate", "on_duplicate needs a primary_key: without one, rows are keyed by their whole content and cannot be duplicates")
		}
	}
}

func (p *parser) checkPort(f *File, blueprints map[string]*Blueprint) {
	if f.Port == nil {
		return
	}
	names := f.Streams.Keys()
	var bpNames []string
	for k := range blueprints {
		bpNames = append(bpNames, k)
	}
	slices.Sort(bpNames)
	for i := range f.Port.Entities {
		e := &f.Port.Entities[i]
		path := fmt.Sprintf("port.entities[%d]", i)
		if e.From.Set && f.streams[e.From.V] == nil {
			p.errorAt(e.From.P, path+".from", "unknown stream %q%s", e.From.V, didYouMean(e.From.V, names))
		}
		if blueprints == nil || !e.Blueprint.Set {
			continue
		}
		bp, ok := blueprints[e.Blueprint.V]
		if !ok {
			p.errorAt(e.Blueprint.P, path+".blueprint", "unknown blueprint %q in %s%s", e.Blueprint.V, f.Port.Blueprints.V, didYouMean(e.Blueprint.V, bpNames))
			continue
		}
		props := mapKeys(bp.Schema.Properties)
		for _, it := range e.Properties.Items {
			if _, ok := bp.Schema.Properties[it.Key]; !ok {
				p.errorAt(it.P, path+".properties", "blueprint %q has no property %q%s", bp.Identifier, it.Key, didYouMean(it.Key, props))
			}
		}
		rels := mapKeys(bp.Relations)
		for _, it := range e.Relations.Items {
			if _, ok := bp.Relations[it.Key]; !ok {
				p.errorAt(it.P, path+".relations", "blueprint %q has no relation %q%s", bp.Identifier, it.Key, didYouMean(it.Key, rels))
			}
		}
	}
}

func mapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
