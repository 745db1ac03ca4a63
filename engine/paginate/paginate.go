// Package paginate walks one request chain of a stream from page to page.
// Each pagination kind of the spec (cursor, next_url, link_header, page,
// offset) is a Strategy; all share the guards: a token or URL that repeats
// ends the chain with ErrNoProgress, and a chain longer than max_pages fails
// with ErrPageCap rather than looping forever.
package paginate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ferry-etl/ferry/engine/eval"
	"github.com/ferry-etl/ferry/engine/spec"
)

// Sentinel errors a caller may branch on.
var (
	ErrNoProgress = errors.New("pagination made no progress: the next token repeats an earlier one")
	ErrPageCap    = errors.New("pagination reached max_pages")
)

// DefaultMaxPages bounds a chain whose spec sets no max_pages.
const DefaultMaxPages = 10000

// Request is the mutable part of the next request in a chain.
type Request struct {
	URL    string // absolute URL; when set it replaces the spec's path (next_url, link_header)
	Query  url.Values
	Header http.Header
	Body   any
}

// Page is what a strategy inspects after each response.
type Page struct {
	Number  int // 1-based position in the chain
	Body    any // decoded JSON body
	Header  http.Header
	URL     string // URL that was requested, to resolve relative next links
	Records int    // records the page yielded
}

// Pager prepares the requests of one chain. It is not safe for concurrent
// use: a chain is sequential by nature.
type Pager struct {
	cfg      *spec.Paginate
	vars     []any          // jq variable values, in the stream's JQVars order
	env      map[string]any // expr env for stop_when (config, parent, parents)
	seen     map[string]bool
	number   int    // current page number (page kind) or offset (offset kind)
	token    string // token sent with the next request (cursor, page)
	url      string // next URL (next_url, link_header)
	maxPages int
}

// New returns a pager for cfg, or nil when the stream does not paginate.
// vars are the stream's jq variable values; env its expr environment.
func New(cfg *spec.Paginate, vars []any, env map[string]any) *Pager {
	if cfg == nil {
		return nil
	}
	p := &Pager{cfg: cfg, vars: vars, env: env, seen: map[string]bool{}, maxPages: DefaultMaxPages}
	if cfg.MaxPages.Set {
		p.maxPages = cfg.MaxPages.V
	}
	return p
}

// State is where a chain stands after a page: enough to send the next
// request again after a restart. It holds the position only (token, page
// number, offset or next URL), never the request's other values.
type State struct {
	Number int    `json:"n,omitempty"`
	Token  string `json:"token,omitempty"`
	URL    string `json:"url,omitempty"`
}

// State returns the position of the chain after the last Next.
func (p *Pager) State() State {
	if p == nil {
		return State{}
	}
	return State{Number: p.number, Token: p.token, URL: p.url}
}

// Restore moves a freshly initialised request to a saved position.
func (p *Pager) Restore(st State, req *Request) error {
	if p == nil {
		return nil
	}
	c := p.cfg
	p.number, p.token, p.url = st.Number, st.Token, st.URL
	switch c.Type.V {
	case "cursor":
		if st.Token != "" {
			p.seen[st.Token] = true
			return setParam(req, c.In.V, c.Param.V, st.Token)
		}
	case "next_url", "link_header":
		if st.URL != "" {
			p.seen[st.URL] = true
			req.URL, req.Query = st.URL, url.Values{}
		}
	case "page":
		if err := setParam(req, c.In.V, c.Param.V, st.Number); err != nil {
			return err
		}
		if st.Token != "" {
			p.seen[st.Token] = true
			req.Query.Set(c.TokenParam.V, st.Token)
		}
	case "offset":
		return setParam(req, c.In.V, c.Param.V, st.Number)
	}
	return nil
}

// Init sets the paging parameters of the first request.
func (p *Pager) Init(req *Request) error {
	if p == nil {
		return nil
	}
	c := p.cfg
	if c.Size.Set {
		req.Query.Set(c.SizeParam.V, strconv.Itoa(c.Size.V))
	}
	switch c.Type.V {
	case "page":
		p.number = 1
		if c.Start.Set {
			p.number = c.Start.V
		}
		return setParam(req, c.In.V, c.Param.V, p.number)
	case "offset":
		p.number = 0
		return setParam(req, c.In.V, c.Param.V, 0)
	}
	return nil
}

// Next inspects page and rewrites req for the following page. It returns
// false when the chain is complete.
func (p *Pager) Next(ctx context.Context, page Page, req *Request) (bool, error) {
	if p == nil {
		return false, nil
	}
	c := p.cfg
	if c.StopWhen.Program() != nil {
		env := make(map[string]any, len(p.env)+3)
		for k, v := range p.env {
			env[k] = v
		}
		env["response"], env["page"], env["records"] = eval.Normalize(page.Body), page.Number, page.Records
		stop, err := c.StopWhen.Program().EvalBool(env)
		if err != nil {
			return false, fmt.Errorf("paginate.stop_when: %w", err)
		}
		if stop {
			return false, nil
		}
	}
	more, err := p.next(ctx, page, req)
	if err != nil || !more {
		return false, err
	}
	if page.Number >= p.maxPages {
		return false, fmt.Errorf("%w (%d pages)", ErrPageCap, p.maxPages)
	}
	return true, nil
}

func (p *Pager) next(ctx context.Context, page Page, req *Request) (bool, error) {
	c := p.cfg
	switch c.Type.V {
	case "cursor":
		tok, err := p.str(ctx, c.Token, page.Body, "token")
		if err != nil || tok == "" {
			return false, err
		}
		if err := p.guard(tok); err != nil {
			return false, err
		}
		p.token = tok
		return true, setParam(req, c.In.V, c.Param.V, tok)
	case "next_url":
		next, err := p.str(ctx, c.URL, page.Body, "url")
		if err != nil || next == "" {
			return false, err
		}
		return p.follow(page.URL, next, req)
	case "link_header":
		next := NextLink(page.Header.Values("Link"))
		if next == "" {
			return false, nil
		}
		return p.follow(page.URL, next, req)
	case "page":
		if page.Records == 0 {
			return false, nil
		}
		if c.TotalPages.Code() != nil {
			v, _, err := c.TotalPages.Code().First(ctx, page.Body, p.vars...)
			if err != nil {
				return false, fmt.Errorf("paginate.total_pages: %w", err)
			}
			if total, ok := toInt(v); ok && page.Number >= total {
				return false, nil
			}
		}
		p.number++
		if err := setParam(req, c.In.V, c.Param.V, p.number); err != nil {
			return false, err
		}
		if c.Token.Code() != nil {
			tok, err := p.str(ctx, c.Token, page.Body, "token")
			if err != nil {
				return false, err
			}
			p.token = tok
			if tok == "" {
				req.Query.Del(c.TokenParam.V)
			} else {
				if err := p.guard(tok); err != nil {
					return false, err
				}
				req.Query.Set(c.TokenParam.V, tok)
			}
		}
		return true, nil
	case "offset":
		if page.Records == 0 || (c.Size.Set && page.Records < c.Size.V) {
			return false, nil
		}
		p.number += page.Records
		return true, setParam(req, c.In.V, c.Param.V, p.number)
	}
	return false, fmt.Errorf("unknown pagination type %q", c.Type.V)
}

// follow points req at a next URL, resolved against the current one. The
// next URL carries its own query, so the spec's query is dropped.
func (p *Pager) follow(current, next string, req *Request) (bool, error) {
	base, err := url.Parse(current)
	if err != nil {
		return false, fmt.Errorf("paginate: current URL: %w", err)
	}
	ref, err := url.Parse(next)
	if err != nil {
		return false, fmt.Errorf("paginate: next URL %q: %w", next, err)
	}
	abs := base.ResolveReference(ref).String()
	if err := p.guard(abs); err != nil {
		return false, err
	}
	req.URL = abs
	req.Query = url.Values{}
	p.url = abs
	return true, nil
}

func (p *Pager) guard(token string) error {
	if p.seen[token] {
		return ErrNoProgress
	}
	p.seen[token] = true
	return nil
}

func (p *Pager) str(ctx context.Context, q spec.JQ, body any, name string) (string, error) {
	if q.Code() == nil {
		return "", nil
	}
	v, ok, err := q.Code().First(ctx, body, p.vars...)
	if err != nil {
		return "", fmt.Errorf("paginate.%s: %w", name, err)
	}
	if !ok || v == nil || v == false {
		return "", nil
	}
	switch x := v.(type) {
	case string:
		return x, nil
	default:
		return fmt.Sprint(x), nil
	}
}

// setParam puts a token, page number or offset where the spec says: query
// (default), header, or a dotted path in the JSON body, where a number stays
// a number.
func setParam[V string | int](req *Request, in, name string, value V) error {
	switch in {
	case "header":
		req.Header.Set(name, fmt.Sprint(value))
	case "body":
		m, ok := req.Body.(map[string]any)
		if req.Body == nil {
			m, ok = map[string]any{}, true
		}
		if !ok {
			return fmt.Errorf("paginate: token goes in the body, but the body is not a JSON object")
		}
		req.Body = setPath(m, strings.Split(name, "."), value)
	default:
		req.Query.Set(name, fmt.Sprint(value))
	}
	return nil
}

// setPath returns a copy of m with the dotted path set, so the spec's body
// template is never mutated.
func setPath(m map[string]any, path []string, value any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	if len(path) == 1 {
		out[path[0]] = value
		return out
	}
	child, _ := out[path[0]].(map[string]any)
	out[path[0]] = setPath(child, path[1:], value)
	return out
}

func toInt(v any) (int, bool) {
	switch x := eval.Normalize(v).(type) {
	case int:
		return x, true
	case int64:
		return int(x), true
	case float64:
		return int(x), true
	}
	return 0, false
}
