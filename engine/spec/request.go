package spec

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ferry-etl/ferry/engine/eval"
	"github.com/ferry-etl/ferry/engine/internal/jsonv"
)

// checkRequests reports what would fail a stream's first request although
// the spec alone tells it: a base URL or URL that is not absolute http(s),
// a path without a base URL, a path part that is always empty, a header
// name HTTP refuses, and paging values that cannot go where `in` says.
// It runs after compiling: it reads the compiled templates.
func (p *parser) checkRequests(f *File) {
	p.checkHostURLs(&f.HTTP, "http")
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		path := "streams." + s.Name
		if s.HTTP != nil {
			p.checkHostURLs(s.HTTP, path+".http")
		}
		r := &s.Request
		p.checkHeaderNames(&r.Headers, path+".request.headers")
		if t := r.URL.Template(); t != nil {
			p.checkScheme(r.URL.Str, t, path+".request.url", "request url", false)
		}
		if t := r.Path.Template(); t != nil {
			if !f.HTTP.BaseURL.Set && (s.HTTP == nil || !s.HTTP.BaseURL.Set) {
				p.errorAt(r.Path.P, path+".request.path", "a path needs a base URL: set http.base_url (or this stream's http.base_url), or give request.url")
			}
			if off, ok := t.EmptyPart(); ok {
				p.errorAt(p.progPos(r.Path.Str, off), path+".request.path", "this part is always empty: every request would go to a path with an empty segment")
			}
		}
		if a := s.Async; a != nil && !f.HTTP.BaseURL.Set && (s.HTTP == nil || !s.HTTP.BaseURL.Set) {
			for _, x := range []struct {
				t    *Tmpl
				name string
			}{{&a.Create.Path, "create"}, {&a.Poll.Path, "poll"}, {&a.Download.Path, "download"}} {
				if x.t.Set {
					p.errorAt(x.t.P, path+".async."+x.name+".path", "a path needs a base URL: set http.base_url (or this stream's http.base_url), or give url")
				}
			}
		}
		if pg := s.Paginate; pg != nil {
			p.checkPagingPlace(s, pg, path)
		}
	}
}

// checkHostURLs checks a host block's base URL and header names.
func (p *parser) checkHostURLs(h *HTTP, path string) {
	p.checkHeaderNames(&h.Headers, path+".headers")
	if t := h.BaseURL.Template(); t != nil {
		p.checkScheme(h.BaseURL.Str, t, path+".base_url", "base url", true)
	}
	p.checkTLSFiles(h.TLS, path+".tls")
}

// checkScheme checks that a URL template names an http or https URL: all
// of it when it is literal, else as much as its literal start tells. A
// base URL has neither query nor fragment.
func (p *parser) checkScheme(s Str, t *eval.Template, path, what string, base bool) {
	prefix := strings.ToLower(t.LiteralPrefix())
	if prefix == "" {
		return // the whole URL comes from a template
	}
	schemeOK := strings.HasPrefix(prefix, "http://") || strings.HasPrefix(prefix, "https://") ||
		strings.HasPrefix("http://", prefix) || strings.HasPrefix("https://", prefix)
	if !schemeOK {
		p.errorAt(s.P, path, "%s %q: want an absolute URL starting with https:// or http://", what, shorten(t.LiteralPrefix()))
		return
	}
	if !t.IsLiteral() {
		return
	}
	u, err := url.Parse(t.LiteralPrefix())
	switch {
	case err != nil:
		p.errorAt(s.P, path, "invalid %s: %v", what, err)
	case u.Host == "":
		p.errorAt(s.P, path, "%s %q has no host", what, s.V)
	case base && (u.RawQuery != "" || u.Fragment != ""):
		p.errorAt(s.P, path, "%s %q: a base URL has no query or fragment (put query parameters in request.query)", what, s.V)
	}
}

// checkHeaderNames reports header names HTTP refuses to send.
func (p *parser) checkHeaderNames(m *Map[Tmpl], path string) {
	for _, it := range m.Items {
		if !isToken(it.Key) {
			p.errorAt(it.P, path, "invalid header name %q: letters, digits and !#$%%&'*+-.^_`|~ only", it.Key)
		}
	}
}

// isToken reports whether s is an HTTP token (a valid header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// checkPagingPlace checks that the paging values can go where `in` puts
// them: header names, and a JSON object body.
func (p *parser) checkPagingPlace(s *Stream, pg *Paginate, path string) {
	r := &s.Request
	params := []struct {
		key string
		v   Str
	}{{"param", pg.Param}, {"size_param", pg.SizeParam}}
	switch pg.In.V {
	case "header":
		for _, x := range params {
			if x.v.Set && !isToken(x.v.V) {
				p.errorAt(x.v.P, path+".paginate."+x.key, "invalid header name %q: letters, digits and !#$%%&'*+-.^_`|~ only", x.v.V)
			}
		}
	case "body":
		var first Str // the first value in the body, to name in messages
		for _, x := range params {
			if x.v.Set {
				first = x.v
				break
			}
		}
		if !first.Set {
			return
		}
		switch {
		case r.BodyFormat.V == BodyText:
			p.checkTextPaging(r, params[0].v, params[1].v, path)
		case r.Body.Set:
			if kind := bodyKind(r.Body.Node); kind != "" {
				p.errorAt(r.Body.P, path+".request.body", "paginate puts %s in the body (in: body), so the body must be a JSON object, not %s", first.V, kind)
				return
			}
			for _, x := range params {
				if x.v.Set {
					p.checkBodyPath(r.Body.Tree(), x.v, path+".paginate."+x.key)
				}
			}
		case r.BodyJQ.Set:
			if built := eval.InspectJQ(r.BodyJQ.V).Builds; built != "" {
				p.errorAt(r.BodyJQ.P, path+".request.body_jq", "paginate puts %s in the body (in: body), so the body must be a JSON object, but body_jq builds %s", first.V, built)
			}
		case !r.Method.Set || r.Method.V == "GET":
			p.errorAt(pg.In.P, path+".paginate.in", "in: body puts %s in a JSON body, which a GET request does not send: set request.method to POST, PUT or PATCH", first.V)
		}
	}
}

// bodyKind names what a literal request body is when that is not an
// object; "" for a mapping, or a single template (whose value is not known).
func bodyKind(n *yaml.Node) string {
	n = resolveAlias(n)
	switch {
	case n == nil || n.Kind == yaml.MappingNode:
		return ""
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str" && eval.HasTemplate(n.Value) && strings.HasPrefix(strings.TrimSpace(n.Value), "${") && strings.HasSuffix(strings.TrimSpace(n.Value), "}"):
		return ""
	}
	return kindName(n)
}

// checkBodyPath reports a dotted body path that would replace a value of
// the body that is not an object or list (paging would drop what the spec
// sends), or name a list's item that is not there (paging would fail).
// Inside a list a part is an item's index.
func (p *parser) checkBodyPath(tree any, param Str, path string) {
	parts := strings.Split(param.V, ".")
	at := tree
	for i, part := range parts[:len(parts)-1] {
		var v any
		switch x := at.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[part]; !ok {
				return // paging adds the object
			}
		case []any:
			n, err := strconv.Atoi(part)
			switch {
			case err != nil || n < 0 || strconv.Itoa(n) != part:
				p.errorAt(param.P, path, "%q goes inside the body's %s, which is a list: name an item by its index (%s.0)", param.V, strings.Join(parts[:i], "."), strings.Join(parts[:i], "."))
				return
			case n >= len(x):
				p.errorAt(param.P, path, "%q names item %d of the body's %s, a list of %d: paging would fail", param.V, n, strings.Join(parts[:i], "."), len(x))
				return
			}
			v = x[n]
		default:
			return
		}
		switch v.(type) {
		case map[string]any, []any:
			at = v
		case *eval.Template:
			return // may well render to an object
		default:
			p.errorAt(param.P, path, "%q goes inside the body's %s, which is %s, not an object: paging would replace it", param.V, strings.Join(parts[:i+1], "."), valueKind(v))
			return
		}
	}
	if list, ok := at.([]any); ok {
		// The last part names an item to replace.
		last := parts[len(parts)-1]
		n, err := strconv.Atoi(last)
		where := strings.Join(parts[:len(parts)-1], ".")
		switch {
		case err != nil || n < 0 || strconv.Itoa(n) != last:
			p.errorAt(param.P, path, "%q goes inside the body's %s, which is a list: name an item by its index (%s.0)", param.V, where, where)
		case n >= len(list):
			p.errorAt(param.P, path, "%q names item %d of the body's %s, a list of %d: paging would fail", param.V, n, where, len(list))
		}
	}
}

// portSystemBlueprints are the blueprints every Port account has: a
// relation may target them without the blueprints file defining them.
var portSystemBlueprints = []string{"_team", "_user"}

// warnJQ warns of jq text that is valid but likely mistaken.
func (p *parser) warnJQ(q *JQ, path string) {
	if !q.Set || q.code == nil {
		return
	}
	if off := eval.InspectJQ(q.V).Dollar; off >= 0 {
		p.warnAt(p.progPos(q.Str, off), path, "jq takes ${ … } as plain text, not a template: use $config.name (or \\(…) inside a string)")
	}
}

// warnSelector warns of a selector that assigns (=) where it likely meant
// to compare (==): it outputs the changed record, never true.
func (p *parser) warnSelector(q *JQ, path string) {
	if !q.Set || q.code == nil {
		return
	}
	if off := eval.InspectJQ(q.V).Assign; off >= 0 {
		p.warnAt(p.progPos(q.Str, off), path, "= assigns, it does not compare: the selector outputs the changed record, never true, so every record is skipped; did you mean ==?")
	}
}

// warnPrimaryKey warns of primary-key columns that the row mapping never
// makes, when its keys are written out.
func (p *parser) warnPrimaryKey(t *Table) {
	if !t.Row.Set || t.Row.code == nil || len(t.PrimaryKey) == 0 {
		return
	}
	keys := eval.InspectJQ(t.Row.V).Keys
	if keys == nil {
		return
	}
	for i, k := range t.PrimaryKey {
		if !slices.Contains(keys, k.V) {
			p.warnAt(k.P, fmt.Sprintf("tables.%s.primary_key[%d]", t.Name, i), "row never makes column %q (it makes %s): its key would always be null%s", k.V, strings.Join(keys, ", "), didYouMean(k.V, keys))
		}
	}
}

// valueKind names what a decoded Value holds, for messages.
func valueKind(v any) string {
	switch v.(type) {
	case int, int64, uint64, float64:
		return "a number"
	}
	return jsonv.Kind(v)
}

// checkTextPaging checks paging values in: body for a text body: each goes
// into its template as paging.<name>, so a name is one identifier, and
// the body uses it (a value it never uses would send every page the same
// request: the first page again and again, or a list read short).
func (p *parser) checkTextPaging(r *Request, param, sizeParam Str, path string) {
	// Only the ${ } parts count: paging.offset written as literal text
	// (a ${ } forgotten, or escaped as $${) is sent as it is, the same
	// on every page.
	src, literal := "", false
	if n := resolveAlias(r.Body.Node); r.Body.Set && n != nil && n.Kind == yaml.ScalarNode {
		src, literal = strings.Join(eval.TemplateExprs(n.Value), "\n"), true
	}
	for _, x := range []struct {
		key string
		v   Str
	}{{"param", param}, {"size_param", sizeParam}} {
		switch {
		case !x.v.Set:
		case !identRe.MatchString(x.v.V):
			p.errorAt(x.v.P, path+".paginate."+x.key, "a text body takes %q as paging.%s: give a name of letters, digits and _ (no dots: the body is no JSON object)", x.v.V, x.v.V)
		case literal && !regexp.MustCompile(`\b`+VarPaging+`\s*\.\s*`+x.v.V+`\b`).MatchString(src):
			p.errorAt(r.Body.P, path+".request.body", "paginate puts %s in the body (in: body), but the text body never uses ${ %s.%s }: every page would send the same request", x.v.V, VarPaging, x.v.V)
		}
	}
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
