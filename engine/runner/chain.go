package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ferry-etl/ferry/engine/eval"
	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/paginate"
	"github.com/ferry-etl/ferry/engine/spec"
)

// chain is a record and its ancestry: the parent a run fans out from.
type chain struct {
	stream string
	data   any
	key    string // identifies the record among its siblings (see recordKey)
	label  string // names the record in messages, e.g. "[id=a]"
	up     *chain
}

func (c *chain) describe() string {
	var parts []string
	for x := c; x != nil; x = x.up {
		parts = append(parts, x.stream+x.label)
	}
	slices.Reverse(parts)
	return strings.Join(parts, " > ")
}

// run is one request chain of a stream: for one parent, or the only one of a
// root stream.
type run struct {
	parent      *chain
	batch       []any
	batchStream bool // the stream takes a batch (batch may still be empty)
	partition   string
	out         chan item
}

type item struct {
	rec  any
	out  *mapped // what rec maps to; nil for a record of a page committed before a restart, which only drives children
	err  error
	mark *pageState // end of a page: checkpoint
}

// env is the expr environment of a run.
func (r *Runner) env(rn *run) map[string]any {
	env := map[string]any{spec.VarConfig: r.exprConfig}
	if rn.parent != nil {
		env[spec.VarParent] = eval.Normalize(rn.parent.data)
		parents := map[string]any{}
		for c := rn.parent; c != nil; c = c.up {
			parents[c.stream] = eval.Normalize(c.data)
		}
		env[spec.VarParents] = parents
	}
	if rn.batchStream {
		// Always a list, empty when the batch source had no records.
		env[spec.VarBatch] = eval.Normalize(nonNil(rn.batch))
	}
	return env
}

// jqVars are the values of the stream's jq variables, in JQVars order.
func (r *Runner) jqVars(s *spec.Stream, rn *run) []any {
	names := s.JQVars()
	vals := make([]any, 0, len(names))
	byName := map[string]any{}
	for c := rn.parent; c != nil; c = c.up {
		if _, ok := byName[c.stream]; !ok {
			byName[c.stream] = c.data
		}
	}
	for _, n := range names {
		switch n {
		case spec.VarConfig:
			vals = append(vals, r.opts.Config)
		case spec.VarParent:
			vals = append(vals, rn.parent.data)
		case spec.VarParents:
			vals = append(vals, byName)
		case spec.VarBatch:
			vals = append(vals, nonNil(rn.batch))
		default:
			vals = append(vals, byName[n])
		}
	}
	return vals
}

func nonNil(l []any) []any {
	if l == nil {
		return []any{}
	}
	return l
}

// fetch runs one request chain and sends its records, page by page. A page
// is sent whole or not at all: every record of it, then its checkpoint. A
// failure ends the chain with a failure item; what was sent before it is
// covered by the checkpoints sent before it.
func (r *Runner) fetch(ctx context.Context, st *streamState, rn *run) {
	send := func(it item) bool {
		select {
		case rn.out <- it:
			return true
		case <-ctx.Done():
			return false
		}
	}
	fail := func(err error) { send(item{err: err}) }
	s := st.s
	env := r.env(rn)
	cp := r.resumePoint(st, rn.partition)
	var since, maxCursor any
	if s.Incremental != nil {
		var saved bool
		since, saved = r.watermark(st, rn.partition)
		if cp != nil && cp.Since != nil {
			since, saved = cp.Since, true
		}
		if saved {
			// This chain reads only what changed: its stream's targets
			// cannot tell a deleted record from an unchanged one.
			st.stat.partial()
		}
		env[spec.VarCursor] = eval.Normalize(since)
	}
	if w := s.When.Program(); w != nil {
		ok, err := w.EvalBool(env)
		if err != nil {
			fail(fmt.Errorf("when: %w", err))
			return
		}
		if !ok {
			st.stat.skipped()
			return
		}
	}
	client, err := st.client.get()
	if err != nil {
		fail(err)
		return
	}
	vars := r.jqVars(s, rn)
	req, target, err := r.buildRequest(ctx, s, rn, env, vars)
	if err != nil {
		fail(err)
		return
	}
	pager := paginate.New(s.Paginate, vars, env)
	if err := pager.Init(&req); err != nil {
		fail(err)
		return
	}
	first, replayUntil := 1, 0
	if cp != nil {
		switch {
		case len(st.children) > 0 || len(st.batchers) > 0 || len(st.entities) > 0:
			// Children need the parent records again, and Port entities
			// are only sent when a run ends: re-read the committed pages,
			// writing no row from them.
			replayUntil = cp.Pages
		case cp.Done:
			return
		default:
			if err := pager.Restore(cp.Next, &req); err != nil {
				fail(fmt.Errorf("resume: %w", err))
				return
			}
			first, maxCursor = cp.Pages+1, cp.Max
			if cp.Redo {
				// The last committed page's records were delivered, but
				// what follows it was never learnt: ask for it again,
				// without writing it twice.
				first, replayUntil = cp.Pages, cp.Pages
			}
		}
	}
	allowEmpty := s.Response != nil && s.Response.AllowEmpty.V
	for page := first; ; page++ {
		u := target
		if req.URL != "" {
			u = req.URL
		}
		resp, err := client.Do(ctx, &fetch.Request{Method: st.method, URL: u, Query: req.Query, Header: req.Header, Body: req.Body})
		if resp != nil {
			st.stat.request(resp.Attempts)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			fail(fmt.Errorf("page %d: %w", page, err))
			return
		}
		st.stat.page()
		var body any
		var recs []any
		switch {
		case resp.Status == http.StatusNoContent:
			// No content: no records, whatever the records program says.
		case len(bytes.TrimSpace(resp.Body)) == 0 && !allowEmpty:
			fail(fmt.Errorf("page %d: %s %s: %d: empty body where JSON was expected (a stream whose API answers empty for \"no records\" sets response.allow_empty)", page, st.method, resp.URL, resp.Status))
			return
		case len(bytes.TrimSpace(resp.Body)) == 0:
		default:
			if body, err = decodeJSON(resp.Body); err != nil {
				fail(fmt.Errorf("page %d: %s %s: %d: response is not valid JSON: %w", page, st.method, resp.URL, resp.Status, err))
				return
			}
			if recs, err = s.Records.Code().Run(ctx, body, vars...); err != nil {
				fail(fmt.Errorf("page %d: %s %s: records: %w", page, st.method, resp.URL, err))
				return
			}
		}
		if inc := s.Incremental; inc != nil {
			// Cursors first: a page is sent whole or not at all.
			for _, rec := range recs {
				c, _, err := inc.Cursor.Code().First(ctx, rec, vars...)
				if err != nil {
					fail(fmt.Errorf("page %d: incremental.cursor: %w", page, err))
					return
				}
				if later(c, maxCursor) {
					maxCursor = c
				}
			}
		}
		replay := page <= replayUntil
		for _, rec := range recs {
			m, err := r.mapRecord(ctx, st, rn, rec, vars, !replay)
			if err != nil {
				return // cancelled
			}
			if !send(item{rec: rec, out: m}) {
				return
			}
		}
		st.stat.records(len(recs))
		at := pager.State()
		more, err := pager.Next(ctx, paginate.Page{Number: page, Body: body, Header: resp.Header, URL: resp.URL, Records: len(recs)}, &req)
		if err != nil {
			// The page's records went out; what follows it is unknown. The
			// checkpoint says so, so a resumed run asks this page again
			// (writing nothing from it) rather than losing or doubling it.
			if !replay {
				send(item{mark: &pageState{Pages: page, Next: at, Since: since, Max: maxCursor, Redo: true}})
			}
			fail(fmt.Errorf("page %d: %s %s: %w", page, st.method, resp.URL, err))
			return
		}
		mark := &pageState{Pages: page, Next: pager.State(), Done: !more, Since: since, Max: maxCursor}
		if !more && s.Incremental != nil && maxCursor != nil {
			mark.cursor = maxCursor
		}
		if (!replay || mark.cursor != nil) && !send(item{mark: mark}) {
			return
		}
		if !more {
			return
		}
	}
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

// buildRequest renders the first request of a run. target is the URL or
// path the HTTP client resolves against the base URL.
func (r *Runner) buildRequest(ctx context.Context, s *spec.Stream, rn *run, env map[string]any, vars []any) (paginate.Request, string, error) {
	rq := &s.Request
	req := paginate.Request{Query: url.Values{}, Header: http.Header{}}
	var target string
	var err error
	if t := rq.URL.Template(); t != nil {
		if target, err = t.RenderString(env); err != nil {
			return req, "", fmt.Errorf("request url %s: %w", rq.URL.V, err)
		}
	} else if t := rq.Path.Template(); t != nil {
		if target, err = t.RenderPath(env); err != nil {
			return req, "", fmt.Errorf("request path %s: %w", rq.Path.V, err)
		}
	}
	for _, it := range rq.Query.Items {
		v, err := spec.RenderValue(it.Value.Tree(), env)
		if err != nil {
			return req, "", fmt.Errorf("request query %s: %w", it.Key, err)
		}
		for _, sv := range queryValues(v) {
			req.Query.Add(it.Key, sv)
		}
	}
	for _, it := range rq.Headers.Items {
		v, err := it.Value.Template().RenderString(env)
		if err != nil {
			return req, "", fmt.Errorf("request header %s: %w", it.Key, err)
		}
		req.Header.Set(it.Key, v)
	}
	switch {
	case rq.Body.Set:
		req.Body, err = spec.RenderValue(rq.Body.Tree(), env)
		if err != nil {
			return req, "", fmt.Errorf("request body: %w", err)
		}
	case rq.BodyJQ.Code() != nil:
		var input any
		if rn.parent != nil {
			input = rn.parent.data
		}
		v, _, err := rq.BodyJQ.Code().First(ctx, input, vars...)
		if err != nil {
			return req, "", fmt.Errorf("request body_jq: %w", err)
		}
		req.Body = v
	}
	return req, target, nil
}

// queryValues turns a rendered query value into parameter values: a list
// repeats the parameter, null omits it.
func queryValues(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, queryValues(e)...)
		}
		return out
	case string:
		return []string{x}
	case map[string]any:
		b, _ := json.Marshal(x)
		return []string{string(b)}
	}
	return []string{eval.FormatScalar(v)}
}
