package spec

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// VarLookups names the lookups: $lookups in jq, lookups in expr; each
// lookup is a field, an object from key to value.
const VarLookups = "lookups"

// Stage orders a run: a stream runs in a stage after the stages of the
// streams that fill the lookups it reads (and not before its parent's), so
// every lookup is complete before anything reads it. Streams of one stage
// stream together; an ancestor from an earlier stage is read again, without
// writing, to drive its children.
func (s *Stream) Stage() int { return s.stage }

// Reads lists the lookups a stream's own programs read (request, records,
// key, when, recurse.when, partitions.values, async requests, pagination,
// incremental cursor and window end), sorted.
func (s *Stream) Reads() []string { return sortedKeys(s.reads) }

// Reads lists the lookups a table's row program reads, sorted.
func (t *Table) Reads() []string { return sortedKeys(t.reads) }

// Reads lists the lookups an entity mapping reads, sorted.
func (e *Entity) Reads() []string { return sortedKeys(e.reads) }

// LookupsFrom lists the lookups filled from stream name, in spec order.
func (f *File) LookupsFrom(name string) []*Lookup {
	var out []*Lookup
	for i := range f.Lookups.Items {
		if l := &f.Lookups.Items[i].Value; l.From.V == name {
			out = append(out, l)
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }

// A lookup is read as $lookups.name or $lookups["name"] in jq, and as
// lookups.name or lookups["name"] in expr. Any other use of the variable
// (iterating it, a computed name) reads every lookup.
var (
	jqLookupRE   = regexp.MustCompile(`\$lookups\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*"([^"\\]*)"\s*\])?`)
	exprLookupRE = regexp.MustCompile(`\blookups\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*"([^"\\]*)"\s*\])?`)
)

// memberRead is where a program reads a variable: at offset, its member
// name ("" where it reads the variable whole).
type memberRead struct {
	offset int
	name   string
}

// memberReads lists the reads of the variable re matches in src, re being
// one of the jq or expr patterns above ($v.name, $v["name"], $v).
func memberReads(re *regexp.Regexp, src string) []memberRead {
	var out []memberRead
	for _, m := range re.FindAllStringSubmatchIndex(src, -1) {
		rd := memberRead{offset: m[0]}
		switch {
		case m[2] >= 0:
			rd.name = src[m[2]:m[3]]
		case m[4] >= 0:
			rd.name = src[m[4]:m[5]]
		}
		out = append(out, rd)
	}
	return out
}

// lookupReads adds the lookups that program src reads to into, reporting
// an unknown one at its position.
func (p *parser) lookupReads(f *File, src Str, path string, re *regexp.Regexp, into map[string]bool) {
	if !src.Set && src.V == "" {
		return
	}
	names := f.Lookups.Keys()
	for _, rd := range memberReads(re, src.V) {
		name := rd.name
		if name == "" {
			for _, n := range names {
				into[n] = true
			}
			continue
		}
		if f.Lookups.Get(name) == nil {
			// expr's own scope check reports an unknown field of lookups.
			if re == jqLookupRE {
				p.errorAt(p.progPos(src, rd.offset), path, "unknown lookup %q%s", name, didYouMean(name, names))
			}
			continue
		}
		into[name] = true
	}
}

// checkLookups resolves the lookups, what every program reads, the stages
// of the run, and reports lookup cycles.
func (p *parser) checkLookups(f *File) {
	names := f.Streams.Keys()
	for i := range f.Lookups.Items {
		l := &f.Lookups.Items[i].Value
		path := "lookups." + l.Name
		if !identRE.MatchString(l.Name) {
			p.errorAt(l.Pos, "lookups", "invalid lookup name %q: use letters, digits and _", l.Name)
		}
		src := f.streams[l.From.V]
		switch {
		case !l.From.Set:
		case src == nil:
			p.errorAt(l.From.P, path+".from", "unknown stream %q%s", l.From.V, didYouMean(l.From.V, names))
		case src.Incremental != nil:
			p.errorAt(l.From.P, path+".from", "stream %q is incremental: it reads only what changed, so a lookup filled from it would miss the rest", l.From.V)
		default:
			// Below an incremental parent (or batch source), the stream is
			// read only for the records that changed: the same loss.
			if up := incrementalAbove(src); up != nil {
				p.errorAt(l.From.P, path+".from", "stream %q runs below the incremental stream %q: it reads only the children of what changed, so a lookup filled from it would miss the rest", l.From.V, up.Name)
			}
		}
	}
	has := len(f.Lookups.Items) > 0
	streamReads := func(s *Stream) map[string]bool {
		r := map[string]bool{}
		jq := func(q *JQ, at string) { p.lookupReads(f, q.Str, at, jqLookupRE, r) }
		ex := func(v Str, at string) { p.lookupReads(f, v, at, exprLookupRE, r) }
		path := "streams." + s.Name
		ex(s.When.Str, path+".when")
		ex(s.Request.Path.Str, path+".request.path")
		ex(s.Request.URL.Str, path+".request.url")
		for _, it := range s.Request.Headers.Items {
			ex(it.Value.Str, path+".request.headers."+it.Key)
		}
		for _, v := range []*Value{&s.Request.Body} {
			for _, t := range valueStrings(v) {
				ex(t, path+".request.body")
			}
		}
		for _, it := range s.Request.Query.Items {
			for _, t := range valueStrings(&it.Value) {
				ex(t, path+".request.query."+it.Key)
			}
		}
		jq(&s.Request.BodyJQ, path+".request.body_jq")
		if s.Records.Set {
			jq(&s.Records, path+".records")
		}
		jq(&s.Key, path+".key")
		if rc := s.Recurse; rc != nil {
			jq(&rc.When, path+".recurse.when")
		}
		if pt := s.Partitions; pt != nil {
			for _, t := range valueStrings(&pt.Values) {
				ex(t, path+".partitions.values")
			}
		}
		if a := s.Async; a != nil {
			asyncReads(a, path+".async", jq, ex)
		}
		if pg := s.Paginate; pg != nil {
			for name, q := range map[string]*JQ{"token": &pg.Token, "url": &pg.URL, "total_pages": &pg.TotalPages, "total": &pg.Total, "param_value": &pg.ParamValue} {
				jq(q, path+".paginate."+name)
			}
			ex(pg.StopWhen.Str, path+".paginate.stop_when")
		}
		if inc := s.Incremental; inc != nil {
			jq(&inc.Cursor, path+".incremental.cursor")
			jq(&inc.Token, path+".incremental.token")
			if w := inc.Window; w != nil {
				ex(w.End.Str, path+".incremental.window.end")
			}
		}
		for _, l := range f.LookupsFrom(s.Name) {
			jq(&l.Key, "lookups."+l.Name+".key")
			jq(&l.Value, "lookups."+l.Name+".value")
		}
		return r
	}
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		s.lookups = has
		s.reads = streamReads(s)
	}
	for i := range f.Tables.Items {
		t := &f.Tables.Items[i].Value
		t.reads = map[string]bool{}
		p.lookupReads(f, t.Row.Str, "tables."+t.Name+".row", jqLookupRE, t.reads)
	}
	if f.Port != nil {
		for i := range f.Port.Entities {
			e := &f.Port.Entities[i]
			e.reads = map[string]bool{}
			path := fmt.Sprintf("port.entities[%d]", i)
			for name, q := range map[string]*JQ{"selector": &e.Selector, "identifier": &e.Identifier, "title": &e.Title, "icon": &e.Icon, "team": &e.Team} {
				p.lookupReads(f, q.Str, path+"."+name, jqLookupRE, e.reads)
			}
			for _, it := range e.Properties.Items {
				p.lookupReads(f, it.Value.Str, path+".properties."+it.Key, jqLookupRE, e.reads)
			}
			for _, it := range e.Relations.Items {
				p.lookupReads(f, it.Value.Str, path+".relations."+it.Key, jqLookupRE, e.reads)
			}
		}
	}
	if has {
		p.stages(f)
	}
}

// asyncReads passes every program of an async stream's create, poll and
// download requests to jq or ex (they read lookups as its request does).
func asyncReads(a *Async, path string, jq func(*JQ, string), ex func(Str, string)) {
	c, pl, dl := &a.Create, &a.Poll, &a.Download
	for _, t := range []struct {
		v  Str
		at string
	}{{c.Path.Str, ".create.path"}, {c.URL.Str, ".create.url"}, {pl.Path.Str, ".poll.path"}, {pl.URL.Str, ".poll.url"}, {dl.Path.Str, ".download.path"}, {dl.URL.Str, ".download.url"}} {
		ex(t.v, path+t.at)
	}
	for _, hs := range []struct {
		m  Map[Tmpl]
		at string
	}{{c.Headers, ".create.headers."}, {pl.Headers, ".poll.headers."}, {dl.Headers, ".download.headers."}} {
		for _, it := range hs.m.Items {
			ex(it.Value.Str, path+hs.at+it.Key)
		}
	}
	for _, qs := range []struct {
		m  Map[Value]
		at string
	}{{c.Query, ".create.query."}, {pl.Query, ".poll.query."}} {
		for _, it := range qs.m.Items {
			for _, t := range valueStrings(&it.Value) {
				ex(t, path+qs.at+it.Key)
			}
		}
	}
	for _, t := range valueStrings(&c.Body) {
		ex(t, path+".create.body")
	}
	for name, q := range map[string]*JQ{"create.body_jq": &c.BodyJQ, "create.id": &c.ID, "poll.done": &pl.Done, "poll.failed": &pl.Failed, "poll.message": &pl.Message, "download.urls": &dl.URLs} {
		jq(q, path+"."+name)
	}
}

// valueStrings lists the strings of a value (request query and body
// values) that may name a lookup, with their positions.
func valueStrings(v *Value) []Str {
	if !v.Set || v.Node == nil {
		return nil
	}
	var out []Str
	stack := []*yaml.Node{v.Node}
	seen := map[*yaml.Node]bool{}
	for len(stack) > 0 {
		n := resolveAlias(stack[len(stack)-1])
		stack = stack[:len(stack)-1]
		if n == nil || seen[n] {
			continue
		}
		seen[n] = true
		if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, VarLookups) {
			out = append(out, Str{V: n.Value, P: nodePos(n), Set: true, style: n.Style})
		}
		stack = append(stack, n.Content...)
	}
	return out
}

// stages computes every stream's stage and reports lookup cycles: a stream
// that reads a lookup filled (directly or through others) from itself.
func (p *parser) stages(f *File) {
	// needs: the streams whose completion a stream waits for, with the
	// lookup that makes it wait (for messages).
	type need struct {
		from   *Stream
		lookup string
	}
	readsOf := func(s *Stream) map[string]bool {
		r := maps.Clone(s.reads)
		for _, t := range f.Tables.Items {
			if t.Value.FedBy(s.Name) {
				maps.Copy(r, t.Value.reads)
			}
		}
		if f.Port != nil {
			for i := range f.Port.Entities {
				if f.Port.Entities[i].From.V == s.Name {
					maps.Copy(r, f.Port.Entities[i].reads)
				}
			}
		}
		return r
	}
	needs := map[*Stream][]need{}
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		for _, name := range sortedKeys(readsOf(s)) {
			if l := f.Lookups.Get(name); l != nil && f.streams[l.From.V] != nil {
				needs[s] = append(needs[s], need{f.streams[l.From.V], name})
			}
		}
	}
	const (
		unvisited = iota
		active
		done
	)
	state := map[*Stream]int{}
	reported := false
	// viaLookup: the trail crossed a lookup; a cycle of fan-out edges alone
	// is reported by checkGraph.
	var visit func(s *Stream, trail []string, viaLookup bool) int
	visit = func(s *Stream, trail []string, viaLookup bool) int {
		switch state[s] {
		case done:
			return s.stage
		case active:
			if viaLookup && !reported {
				reported = true
				p.errorAt(s.Pos, "lookups", "lookup cycle: %s (each waits for the stream that fills the lookup it reads)", strings.Join(append(trail, s.Name), " -> "))
			}
			return 0
		}
		state[s] = active
		st := 0
		for _, up := range []*Stream{s.parent, s.batch} {
			if up != nil {
				st = max(st, visit(up, append(slices.Clone(trail), s.Name), viaLookup))
			}
		}
		for _, n := range needs[s] {
			st = max(st, 1+visit(n.from, append(slices.Clone(trail), s.Name+" (reads "+n.lookup+")"), true))
		}
		s.stage = st
		state[s] = done
		return st
	}
	for i := range f.Streams.Items {
		visit(&f.Streams.Items[i].Value, nil, false)
	}
	// An incremental parent's cursor waits for its children; children in a
	// later stage (they read a lookup) would come after it is saved.
	for i := range f.Streams.Items {
		c := &f.Streams.Items[i].Value
		for _, up := range []*Stream{c.parent, c.batch} {
			if up != nil && up.Incremental != nil && c.stage > up.stage {
				p.errorAt(up.Incremental.Pos, "streams."+up.Name+".incremental", "stream %s reads a lookup, so it runs after %s has finished: an incremental %s could not wait for it before saving its cursor", c.Name, up.Name, up.Name)
			}
		}
	}
}

// incrementalAbove is the nearest incremental ancestor or batch source of
// s, nil for none.
func incrementalAbove(s *Stream) *Stream {
	seen := map[*Stream]bool{}
	var walk func(s *Stream) *Stream
	walk = func(s *Stream) *Stream {
		for _, up := range []*Stream{s.parent, s.batch} {
			if up == nil || seen[up] {
				continue
			}
			seen[up] = true
			if up.Incremental != nil {
				return up
			}
			if found := walk(up); found != nil {
				return found
			}
		}
		return nil
	}
	return walk(s)
}
