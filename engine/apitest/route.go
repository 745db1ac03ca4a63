package apitest

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// pathPattern is a compiled Route.Path: literal segments and {name}
// segments, each matching exactly one decoded request path segment.
type pathPattern struct {
	segs   []pathSeg
	params bool
}

type pathSeg struct {
	lit   string
	param string // non-empty for a {name} segment
}

func compilePath(p string) (pathPattern, error) {
	if !strings.HasPrefix(p, "/") {
		return pathPattern{}, fmt.Errorf("%q must start with /", p)
	}
	var pp pathPattern
	seen := map[string]bool{}
	for _, s := range strings.Split(p[1:], "/") {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			name := s[1 : len(s)-1]
			if !validParamName(name) {
				return pathPattern{}, fmt.Errorf("%q: bad parameter name %q", p, name)
			}
			if seen[name] {
				return pathPattern{}, fmt.Errorf("%q: parameter %q used twice", p, name)
			}
			seen[name] = true
			pp.segs = append(pp.segs, pathSeg{param: name})
			pp.params = true
			continue
		}
		if strings.ContainsAny(s, "{}") {
			return pathPattern{}, fmt.Errorf("%q: a {name} parameter must be a whole segment", p)
		}
		lit, err := url.PathUnescape(s)
		if err != nil {
			return pathPattern{}, fmt.Errorf("%q: %w", p, err)
		}
		pp.segs = append(pp.segs, pathSeg{lit: lit})
	}
	return pp, nil
}

func validParamName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c == '-' || c >= '0' && c <= '9'):
		default:
			return false
		}
	}
	return true
}

// match matches an escaped request path; parameters come back decoded, so
// /apps/a%2Fb/envs gives app "a/b".
func (pp pathPattern) match(escapedPath string) (map[string]string, bool) {
	if !strings.HasPrefix(escapedPath, "/") {
		return nil, false
	}
	raw := strings.Split(escapedPath[1:], "/")
	if len(raw) != len(pp.segs) {
		return nil, false
	}
	var params map[string]string
	for i, seg := range pp.segs {
		v, err := url.PathUnescape(raw[i])
		if err != nil {
			return nil, false
		}
		if seg.param == "" {
			if v != seg.lit {
				return nil, false
			}
			continue
		}
		if v == "" {
			return nil, false // an empty segment is no value
		}
		if params == nil {
			params = make(map[string]string, len(pp.segs))
		}
		params[seg.param] = v
	}
	return params, true
}

// compiledRoute is a Route ready to serve, with its own hit counter (owned
// by Server.mu) for scripted faults.
type compiledRoute struct {
	Route
	index   int
	pattern pathPattern
	err     error // invalid route: every matching request gets a 500 naming it
	hits    int
}

func compileRoute(r Route, index int) *compiledRoute {
	cr := &compiledRoute{Route: r, index: index}
	if r.Method == "" {
		cr.Method = "GET"
	}
	cr.Method = strings.ToUpper(cr.Method)
	cr.err = r.Validate()
	pp, err := compilePath(r.Path)
	if err != nil {
		// No pattern to match with: the route can never be chosen.
		cr.err = errors.Join(cr.err, err)
		cr.pattern = pathPattern{segs: []pathSeg{{lit: "\x00unmatchable"}}}
		return cr
	}
	cr.pattern = pp
	return cr
}

// queryMatches reports whether every Route.Query entry is satisfied.
func (cr *compiledRoute) queryMatches(q url.Values) bool {
	for k, want := range cr.Query {
		got, ok := q[k]
		if !ok || len(got) == 0 {
			return false
		}
		if want != "*" && got[0] != want {
			return false
		}
	}
	return true
}

// collection returns the items served for one request.
func (cr *compiledRoute) collection(params map[string]string) []any {
	if cr.ItemsFunc != nil {
		return cr.ItemsFunc(params)
	}
	items := make([]any, 0, len(cr.Items))
	rep := replacer(params, "")
	for _, it := range cr.Items {
		items = append(items, substitute(it, rep, ""))
	}
	if g := cr.Generate; g != nil {
		for i := g.Start; i < g.Start+g.Count; i++ {
			idx := strconv.Itoa(i)
			items = append(items, substitute(g.Item, replacer(params, idx), idx))
		}
	}
	return items
}

// replacer substitutes {name} for every path parameter and, for generated
// items, {i} for the index.
func replacer(params map[string]string, index string) *strings.Replacer {
	if len(params) == 0 && index == "" {
		return nil
	}
	pairs := make([]string, 0, 2*len(params)+2)
	for k, v := range params {
		pairs = append(pairs, "{"+k+"}", v)
	}
	if index != "" {
		pairs = append(pairs, "{i}", index)
	}
	return strings.NewReplacer(pairs...)
}

// substitute returns a deep copy of v with placeholders replaced in every
// string value (not in keys). A string that is exactly "{i}" becomes the
// index as a number.
func substitute(v any, rep *strings.Replacer, index string) any {
	switch v := v.(type) {
	case string:
		if index != "" && v == "{i}" {
			n, _ := strconv.Atoi(index)
			return n
		}
		if rep == nil {
			return v
		}
		return rep.Replace(v)
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = substitute(e, rep, index)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = substitute(e, rep, index)
		}
		return s
	default:
		return v
	}
}
