package spec

import (
	"fmt"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"
	exprparser "github.com/expr-lang/expr/parser"

	"github.com/ferry-etl/ferry/engine/eval"
)

// VarJob is the export job in the templates of async poll and download
// requests: job.id.
const VarJob = "job"

// Body formats (response.format).
const (
	FormatJSON   = "json"
	FormatNDJSON = "ndjson"
	FormatCSV    = "csv"
	FormatXML    = "xml"
)

// Format is the stream's response format, json when not given.
func (s *Stream) Format() string {
	if s.Response != nil && s.Response.Format.Set {
		return s.Response.Format.V
	}
	return FormatJSON
}

// Request returns the create request as a stream request.
func (c *AsyncCreate) Request() *Request {
	method := c.Method
	if !method.Set {
		method = Str{V: "POST", Set: true}
	}
	return &Request{Pos: c.Pos, Method: method, Path: c.Path, URL: c.URL, Query: c.Query, Headers: c.Headers, Body: c.Body, BodyJQ: c.BodyJQ, BodyFormat: c.BodyFormat}
}

// Request returns the poll request as a stream request.
func (p *AsyncPoll) Request() *Request {
	return &Request{Pos: p.Pos, Method: p.Method, Path: p.Path, URL: p.URL, Query: p.Query, Headers: p.Headers}
}

// checkFormats checks the response and async blocks of the streams.
func (p *parser) checkFormats(f *File) {
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		path := "streams." + s.Name
		if r := s.Response; r != nil {
			p.checkResponse(s, r, path+".response")
		}
		if a := s.Async; a != nil {
			p.checkAsync(s, a, path)
		}
	}
}

func (p *parser) checkResponse(s *Stream, r *Response, path string) {
	if r.MaxBytes.Set && r.MaxBytes.V < 1 {
		p.errorAt(r.MaxBytes.P, path+".max_bytes", "must be at least 1")
	}
	format := s.Format()
	if c := r.CSV; c != nil {
		if format != FormatCSV {
			p.errorAt(c.Pos, path+".csv", "csv needs format: csv (the format is %s)", format)
		}
		char := func(v Str, key string, empty bool) {
			switch {
			case !v.Set:
			case v.V == "" && empty:
			case utf8.RuneCountInString(v.V) != 1 || len(v.V) != 1:
				p.errorAt(v.P, path+".csv."+key, "want one ASCII character, got %q", v.V)
			case v.V == "\n" || v.V == "\r":
				p.errorAt(v.P, path+".csv."+key, "a line break cannot be the %s", key)
			}
		}
		char(c.Delimiter, "delimiter", false)
		char(c.Quote, "quote", true)
		if c.Delimiter.Set && c.Quote.Set && c.Delimiter.V == c.Quote.V {
			p.errorAt(c.Quote.P, path+".csv.quote", "the quote and the delimiter are both %q", c.Quote.V)
		}
		if len(c.Columns) > 0 && (!c.Header.Set || c.Header.V) {
			p.errorAt(c.Columns[0].P, path+".csv.columns", "columns name the fields of a body without a header row: set header: false")
		}
		seen := map[string]bool{}
		for _, col := range c.Columns {
			if seen[col.V] {
				p.errorAt(col.P, path+".csv.columns", "column %q is named twice", col.V)
			}
			seen[col.V] = true
		}
	}
	if format != FormatNDJSON && format != FormatCSV {
		return
	}
	// A body of lines or rows is no document: what pagination would read
	// in it does not exist.
	if pg := s.Paginate; pg != nil {
		for key, q := range map[string]JQ{"token": pg.Token, "url": pg.URL, "total_pages": pg.TotalPages, "total": pg.Total} {
			if q.Set {
				p.errorAt(q.P, "streams."+s.Name+".paginate."+key, "a body of format %s is %s, not one document: paginate.%s cannot read it (page by a header: token_header, link_header, or by page number or offset)", format, rowsOf(format), key)
			}
		}
		if pg.StopWhen.Set && exprReads(pg.StopWhen.V, "response") {
			p.errorAt(pg.StopWhen.P, "streams."+s.Name+".paginate.stop_when", "a body of format %s is %s, not one document: stop_when cannot read response", format, rowsOf(format))
		}
	}
}

func rowsOf(format string) string {
	if format == FormatCSV {
		return "rows"
	}
	return "lines"
}

// exprReads reports whether an expr program names the variable name.
func exprReads(src, name string) bool {
	tree, err := exprparser.Parse(src)
	if err != nil {
		return false // reported by compilation
	}
	v := &identFinder{name: name}
	ast.Walk(&tree.Node, v)
	return v.found
}

type identFinder struct {
	name  string
	found bool
}

func (v *identFinder) Visit(n *ast.Node) {
	if id, ok := (*n).(*ast.IdentifierNode); ok && id.Value == v.name {
		v.found = true
	}
}

func (p *parser) checkAsync(s *Stream, a *Async, path string) {
	ap := path + ".async"
	if s.Partitions != nil {
		p.errorAt(a.Pos, ap, "give partitions or async, not both")
	}
	if s.Request.Pos.Line > 0 {
		p.errorAt(s.Request.Pos, path+".request", "an async stream sends async.create, async.poll and async.download: request has no use")
	}
	if inc := s.Incremental; inc != nil && inc.Window != nil {
		p.errorAt(inc.Pos, path+".incremental.window", "an async stream reads one export per run: time windows are not supported")
	}
	p.checkTarget(a.Create.Path, a.Create.URL, a.Create.Pos, ap+".create")
	if a.Create.Body.Set && a.Create.BodyJQ.Set {
		p.errorAt(a.Create.BodyJQ.P, ap+".create.body_jq", "give body or body_jq, not both")
	}
	if (a.Create.Body.Set || a.Create.BodyJQ.Set) && a.Create.Method.V == "GET" {
		p.errorAt(a.Create.Method.P, ap+".create.method", "a request body needs method POST, PUT or PATCH, not GET")
	}
	if k := a.Create.IdempotencyKey; k.Set && !isToken(k.V) {
		p.errorAt(k.P, ap+".create.idempotency_key", "invalid header name %q: letters, digits and !#$%%&'*+-.^_`|~ only", k.V)
	}
	p.checkTarget(a.Poll.Path, a.Poll.URL, a.Poll.Pos, ap+".poll")
	for key, d := range map[string]Duration{"every": a.Poll.Every, "timeout": a.Poll.Timeout} {
		if d.Set && d.V <= 0 {
			p.errorAt(d.P, ap+".poll."+key, "must be longer than 0")
		}
	}
	if a.Expires.Set && a.Expires.V <= 0 {
		p.errorAt(a.Expires.P, ap+".expires", "must be longer than 0")
	}
	dl := a.Download
	n := 0
	for _, set := range []bool{dl.URLs.Set, dl.Path.Set, dl.URL.Set} {
		if set {
			n++
		}
	}
	switch {
	case n == 0 && dl.Pos.Line > 0:
		p.errorAt(dl.Pos, ap+".download", "missing required field %q (or %q, or %q)", "urls", "path", "url")
	case n > 1:
		p.errorAt(dl.Pos, ap+".download", "give one of urls, path and url")
	}
}

// checkTarget checks that a request block gives path or url.
func (p *parser) checkTarget(path, url Tmpl, at Pos, where string) {
	switch {
	case at.Line == 0:
	case path.Set && url.Set:
		p.errorAt(url.P, where+".url", "give path or url, not both")
	case !path.Set && !url.Set:
		p.errorAt(at, where, "missing required field %q (or %q)", "path", "url")
	}
}

// compileAsync compiles the programs of an async stream: create sees the
// stream's scope, poll and download also job.
func (p *parser) compileAsync(s *Stream, path string, config *eval.Scope, sc *eval.Env, vars eval.Vars) {
	a := s.Async
	if a == nil {
		return
	}
	ap := path + ".async"
	c := &a.Create
	p.compileTmpl(&c.Path, ap+".create.path", sc)
	p.compileTmpl(&c.URL, ap+".create.url", sc)
	for j := range c.Query.Items {
		it := &c.Query.Items[j]
		p.compileValue(&it.Value, ap+".create.query."+it.Key, sc)
	}
	for j := range c.Headers.Items {
		it := &c.Headers.Items[j]
		p.compileTmpl(&it.Value, ap+".create.headers."+it.Key, sc)
	}
	p.compileValue(&c.Body, ap+".create.body", sc)
	p.compileJQ(&c.BodyJQ, ap+".create.body_jq", vars)
	p.compileJQ(&c.ID, ap+".create.id", vars)

	jscope, opts := p.exprScope(s, config)
	jscope[VarJob] = &eval.Scope{"id": nil}
	jsc := eval.NewEnv(jscope, opts...)
	pl := &a.Poll
	p.compileTmpl(&pl.Path, ap+".poll.path", jsc)
	p.compileTmpl(&pl.URL, ap+".poll.url", jsc)
	for j := range pl.Query.Items {
		it := &pl.Query.Items[j]
		p.compileValue(&it.Value, ap+".poll.query."+it.Key, jsc)
	}
	for j := range pl.Headers.Items {
		it := &pl.Headers.Items[j]
		p.compileTmpl(&it.Value, ap+".poll.headers."+it.Key, jsc)
	}
	p.compileJQ(&pl.Done, ap+".poll.done", vars)
	p.compileJQ(&pl.Failed, ap+".poll.failed", vars)
	p.compileJQ(&pl.Message, ap+".poll.message", vars)

	dl := &a.Download
	p.compileJQ(&dl.URLs, ap+".download.urls", vars)
	p.compileTmpl(&dl.Path, ap+".download.path", jsc)
	p.compileTmpl(&dl.URL, ap+".download.url", jsc)
	for j := range dl.Headers.Items {
		it := &dl.Headers.Items[j]
		p.compileTmpl(&it.Value, ap+".download.headers."+it.Key, jsc)
	}
}

// SideEffects names the requests of the spec that change the source: an
// async stream's create request (it starts an export job), and requests
// sent with PUT or PATCH. A dry run sends them too: it reads the source as
// a run would, writing nothing of its own.
func (f *File) SideEffects() []string {
	var out []string
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		if se := s.SideEffect(); se != "" {
			out = append(out, "stream "+s.Name+": "+se)
		}
	}
	return out
}

// SideEffect says how the stream's own requests may change the source
// ("" when they only read): an export job created, a PUT or PATCH.
func (s *Stream) SideEffect() string {
	if a := s.Async; a != nil {
		rq := a.Create.Request()
		return fmt.Sprintf("async.create %s %s creates an export job", rq.Method.V, target(rq))
	}
	if m := s.Request.Method.V; m == "PUT" || m == "PATCH" {
		return fmt.Sprintf("request %s %s may change the source", m, target(&s.Request))
	}
	return ""
}

func target(rq *Request) string {
	if rq.URL.Set {
		return rq.URL.V
	}
	return rq.Path.V
}
