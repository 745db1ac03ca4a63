package paginate

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ferry-etl/ferry/engine/spec"
)

// param is where a paging value goes: a query parameter (the default), a
// header, a dotted path in the JSON body, or (in "path") the request's
// path itself.
type param struct {
	in, name string
}

// set writes value (a string, an int or a json.Number) into req. In a
// JSON body it keeps its JSON type, so a page number or a numeric token is
// sent as a number, not as "2". The body is replaced by a changed copy,
// never edited in place: it may share maps with the spec or a parent
// record.
func (p param) set(req *Request, value any) error {
	switch p.in {
	case "path":
		// The token is a path the client joins to the base URL, as the
		// spec's own path. A token with a query carries the whole query
		// (Confluence's _links.next), so the spec's is not sent again;
		// one without keeps it.
		next := text(value)
		req.URL = next
		if strings.Contains(next, "?") {
			req.Query = url.Values{}
		}
	case "header":
		if req.Header == nil {
			req.Header = http.Header{}
		}
		req.Header.Set(p.name, text(value))
	case "body":
		m, ok := req.Body.(map[string]any)
		if req.Body == nil {
			m, ok = map[string]any{}, true
		}
		if !ok {
			return fmt.Errorf("paginate: %s goes in the body, but the body is not a JSON object", p.name)
		}
		body, err := setPath(m, strings.Split(p.name, "."), value)
		if err != nil {
			return err
		}
		req.Body = body
	default:
		if req.Query == nil {
			req.Query = url.Values{}
		}
		req.Query.Set(p.name, text(value))
	}
	return nil
}

// position is where a page number or an offset goes: param, with the
// number written by the spec's param_value when it has one (an API that
// takes the position inside a larger value, as Jenkins' tree ranges
// allBuilds[number]{100,200}).
type position struct {
	param
	value jq
}

// set writes the position n into req.
func (p position) set(ctx context.Context, req *Request, n int) error {
	if p.value.q == nil || p.value.q.Code() == nil {
		return p.param.set(req, n)
	}
	v, ok, err := p.value.q.Code().First(ctx, n, p.value.vars...)
	if err != nil {
		return fmt.Errorf("paginate.%s: %w", p.value.name, err)
	}
	switch x := v.(type) {
	case string:
		if x == "" {
			// As no value: the position is lost (the first page again).
			return fmt.Errorf("paginate.%s: got an empty string for %d, want a string holding the position or a number", p.value.name, n)
		}
		return p.param.set(req, x)
	case int:
		return p.param.set(req, x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			// Written "+Inf" or "NaN", no API's position.
			return fmt.Errorf("paginate.%s: got a number that is not finite for %d, want a string or a number", p.value.name, n)
		}
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return p.param.set(req, int(x))
		}
		return p.param.set(req, json.Number(strconv.FormatFloat(x, 'f', -1, 64)))
	case *big.Int:
		// jq's whole numbers past int64: exact.
		if x != nil {
			return p.param.set(req, json.Number(x.String()))
		}
	case json.Number:
		return p.param.set(req, x)
	}
	if !ok {
		// No value is no position: the request would be the first
		// page's again, or the whole list.
		return fmt.Errorf("paginate.%s: gave nothing for %d, want a string or a number", p.value.name, n)
	}
	return fmt.Errorf("paginate.%s: got %s for %d, want a string or a number", p.value.name, kind(v), n)
}

// text is value as it goes in a query string or header.
func text(value any) string {
	switch v := value.(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case json.Number:
		return v.String()
	}
	return fmt.Sprint(value)
}

// setPath returns a copy of m with the dotted path set. A part that meets
// a list is an item's index (filterGroups.0.filters.0.value: where a
// search API keeps its filter). Only the maps and lists on the path are
// copied; the rest is shared, and nothing is modified. A list item that
// is not there is an error, never an object made of the list.
func setPath(m map[string]any, path []string, value any) (map[string]any, error) {
	v, err := setIn(m, path, value, 0)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// setIn sets path[at:] inside v (a map, a list, or nothing: an object is
// made) and returns the changed copy.
func setIn(v any, path []string, value any, at int) (any, error) {
	if at == len(path) {
		return value, nil
	}
	part := path[at]
	if list, ok := v.([]any); ok {
		i, err := strconv.Atoi(part)
		switch {
		case err != nil || i < 0 || strconv.Itoa(i) != part:
			return nil, fmt.Errorf("paginate: %s is a list: name an item by its index, not %q", strings.Join(path[:at], "."), part)
		case i >= len(list):
			return nil, fmt.Errorf("paginate: %s has no item %d (it has %d)", strings.Join(path[:at], "."), i, len(list))
		}
		item, err := setIn(list[i], path, value, at+1)
		if err != nil {
			return nil, err
		}
		out := append([]any(nil), list...)
		out[i] = item
		return out, nil
	}
	m, _ := v.(map[string]any)
	out := make(map[string]any, len(m)+1)
	for k, x := range m {
		out[k] = x
	}
	child, err := setIn(m[part], path, value, at+1)
	if err != nil {
		return nil, err
	}
	out[part] = child
	return out, nil
}

// jq is one jq program of the paginate block, with the stream's variables
// and its field name for errors.
type jq struct {
	q    *spec.JQ
	vars []any
	name string
}

// first runs the program on body; set is false when there is no program
// or it yields nothing or null.
func (j jq) first(ctx context.Context, body any) (v any, set bool, err error) {
	if j.q == nil || j.q.Code() == nil {
		return nil, false, nil
	}
	v, ok, err := j.q.Code().First(ctx, body, j.vars...)
	if err != nil {
		return nil, false, fmt.Errorf("paginate.%s: %w", j.name, err)
	}
	return v, ok && v != nil, nil
}

// token is a position a server handed out: text, or the text of a JSON
// number that goes back into a JSON body as a number.
type token struct {
	text   string
	number bool
}

func (t token) value() any {
	if t.number {
		return json.Number(t.text)
	}
	return t.text
}

// token reads a token: nothing, null, false or "" ends the chain (ok is
// false); a string or a number is the token; anything else is an error
// rather than a silent end.
func (j jq) token(ctx context.Context, body any) (token, bool, error) {
	v, set, err := j.first(ctx, body)
	if err != nil || !set {
		return token{}, false, err
	}
	switch x := v.(type) {
	case string:
		return token{text: x}, x != "", nil
	case bool:
		if !x {
			return token{}, false, nil
		}
	case int:
		return token{text: strconv.Itoa(x), number: true}, true, nil
	case float64:
		return token{text: strconv.FormatFloat(x, 'f', -1, 64), number: true}, true, nil
	case *big.Int:
		return token{text: x.String(), number: true}, true, nil
	case json.Number:
		return token{text: x.String(), number: true}, true, nil
	}
	return token{}, false, fmt.Errorf("paginate.%s: got %s, want a string or a number (null, false or \"\" ends paging)", j.name, kind(v))
}

// count reads a total: set is false when the program yields nothing or
// null; a whole number (or a string holding one) is the count; anything
// else is an error.
func (j jq) count(ctx context.Context, body any) (n int, set bool, err error) {
	v, set, err := j.first(ctx, body)
	if err != nil || !set {
		return 0, false, err
	}
	whole := false
	switch x := v.(type) {
	case int:
		n, whole = x, true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			n, whole = int(x), true
		}
	case json.Number:
		n, err = strconv.Atoi(x.String())
		whole = err == nil
	case string:
		n, err = strconv.Atoi(strings.TrimSpace(x))
		whole = err == nil
	}
	switch {
	case whole && n >= 0:
		return n, true, nil
	case whole:
		// A count below zero (an API's -1 for "unknown") taken as one
		// would end paging at once, or pass every total check.
		return 0, false, fmt.Errorf("paginate.%s: got %d, want a whole number", j.name, n)
	}
	if s, ok := v.(string); ok {
		return 0, false, fmt.Errorf("paginate.%s: got string %q, want a whole number", j.name, s)
	}
	return 0, false, fmt.Errorf("paginate.%s: got %s, want a whole number", j.name, kind(v))
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return "number"
}
