package runner

import (
	"fmt"
	"strings"

	"github.com/ferry-etl/ferry/engine/eval"
	"github.com/ferry-etl/ferry/engine/spec"
)

// recordParts is the source of each part of t that only reads a field
// of a parent, a lookup or the batch (spec.RecordOnlyParts), by index;
// cached a template.
func (r *Runner) recordParts(t *eval.Template) map[int]string {
	if v, ok := r.recordTmpls.Load(t); ok {
		return v.(map[int]string)
	}
	parts := map[int]string{}
	exprs := eval.TemplateExprs(t.Source())
	for i, rec := range spec.RecordOnlyParts(t) {
		if rec && i < len(exprs) {
			parts[i] = strings.TrimSpace(exprs[i])
		}
	}
	v, _ := r.recordTmpls.LoadOrStore(t, parts)
	return v.(map[int]string)
}

// nullRecordEach is the each of eval.Template's RenderParts for a
// request template (a query or body value, a path, a URL, a text body):
// a part that only reads the record and is null fails the render. Left
// out or rendered as nothing, it would send the request without its
// filter ("project_id:", /apps//envs), which may answer for more than
// this parent, or for another: the answer would be written under it. A
// `?? nil` or a condition says null on purpose, and a config input is
// the run's. secret, when not nil, is called with each part as
// RenderEach would. Nil when it has nothing to do.
func (r *Runner) nullRecordEach(t *eval.Template, secret func(int, any, string)) func(int, any, string) error {
	return r.nullRecordEachIn(t, secret, false)
}

// nullRecordPathEach is nullRecordEach for a path: a part is one segment,
// which no `?? nil` may leave empty either.
func (r *Runner) nullRecordPathEach(t *eval.Template, secret func(int, any, string)) func(int, any, string) error {
	return r.nullRecordEachIn(t, secret, true)
}

func (r *Runner) nullRecordEachIn(t *eval.Template, secret func(int, any, string), path bool) func(int, any, string) error {
	use := useValue
	if path {
		use = usePath
	}
	return r.recordPartsCheck(t, secret, use)
}

// partUse is where a request template's value goes, which decides what
// of a part that only reads the record fails besides null.
type partUse uint8

const (
	useValue    partUse = iota // a URL, a JSON or text body: null alone
	usePath                    // a path segment
	useRepeated                // a query value or a form field: a list repeats the parameter
	useHeader                  // a request header
)

// recordPartsCheck is nullRecordEachIn for a template used as use. Where
// a list repeats its parameter (useRepeated), a list that gives no value
// (empty, or of nulls or empty lists only) leaves the parameter out as
// null does; only where the template is that one ${ }: in a longer one a
// list is written into the text as JSON. In a query value, a form field
// or a header, an empty string sends an empty filter, which many APIs
// read as none.
func (r *Runner) recordPartsCheck(t *eval.Template, secret func(int, any, string), use partUse) func(int, any, string) error {
	parts := r.recordParts(t)
	if len(parts) == 0 && secret == nil {
		return nil
	}
	_, single := t.SingleExpr()
	repeated := use == useRepeated && single
	blank := use == useRepeated || use == useHeader
	return func(i int, v any, s string) error {
		e, ok := parts[i]
		list, isList := v.([]any)
		if ok && (v == nil || repeated && isList && len(queryValues(list)) == 0) {
			return &nullReadError{expr: e, lookup: strings.HasPrefix(e, spec.VarLookups), path: use == usePath, empty: v != nil, nulls: len(list) > 0}
		}
		if str, isStr := v.(string); ok && blank && isStr && str == "" {
			return &nullReadError{expr: e, lookup: strings.HasPrefix(e, spec.VarLookups), blank: true}
		}
		if secret != nil {
			secret(i, v, s)
		}
		return nil
	}
}

// renderHeader renders a request header: a part that only reads the
// record and is null fails, as in a query value (nullRecordEach), since
// an API that filters by a header (X-Project) reads an empty one as none.
func (r *Runner) renderHeader(t *eval.Template, env map[string]any) (string, error) {
	each := r.recordPartsCheck(t, nil, useHeader)
	if each == nil {
		return t.RenderString(env)
	}
	v, err := t.RenderParts(env, each)
	if err != nil {
		return "", err
	}
	return eval.FormatScalar(v), nil
}

// nullRecordCheck fails, as nullRecordEach would, when a part of t that
// only reads the record is null, evaluating those parts alone: a text
// body is rendered as each page is sent, with paging values the first
// request does not have yet, and a check must learn that a lookup missed
// while building the request, where it tries another parent, not once
// the chain is its stream's probe.
func (r *Runner) nullRecordCheck(t *eval.Template, env map[string]any) error {
	parts := r.recordParts(t)
	return t.EvalParts(env, parts, func(i int, v any) error {
		if v == nil {
			e := parts[i]
			return &nullReadError{expr: e, lookup: strings.HasPrefix(e, spec.VarLookups)}
		}
		return nil
	})
}

// nullRecordHook is nullRecordEach for each template of a query or body
// value (spec.RenderValueParts), without secrets: the value's are taught
// whole (see Runner.secretValue).
func (r *Runner) nullRecordHook(t *eval.Template) func(int, any, string) error {
	return r.nullRecordEach(t, nil)
}

// repeatedRecordHook is nullRecordHook for a query value or a form body's
// field, whose list repeats the parameter: a part that only reads the
// record and is an empty list fails too, since the request would go out
// without the parameter, as for null (ids=a&ids=b filters; no ids at all
// asks for every one).
func (r *Runner) repeatedRecordHook(t *eval.Template) func(int, any, string) error {
	return r.recordPartsCheck(t, nil, useRepeated)
}

// nullReadError is a request part that only reads a record and is null
// (see nullRecordEach). lookup: the part reads a lookup, which a check
// reads one page of (a run, every page, may find the value).
type nullReadError struct {
	expr         string
	lookup, path bool
	empty        bool // an empty list, where a list repeats the parameter
	nulls        bool // empty: a list of nulls or empty lists only
	blank        bool // an empty string, in a query value, a form field or a header
}

func (e *nullReadError) Error() string {
	if e.blank {
		return fmt.Sprintf("%s is an empty string, and the request would send an empty filter, which many APIs read as none, asking for more than it should (or for another resource): "+
			"give the stream a when that skips such records (when: %s != \"\"), or write ${ %s != \"\" ? %s : nil } to leave it out on purpose", e.expr, e.expr, e.expr, e.expr)
	}
	if e.nulls {
		return fmt.Sprintf("%s is a list of nulls (or empty lists) only, and the request would go out without the parameter it repeats, asking for more than it should (or for another resource): "+
			"give the stream a when that skips such records, or a condition that gives nil to send it without on purpose", e.expr)
	}
	if e.empty {
		return fmt.Sprintf("%s is an empty list, and the request would go out without the parameter it repeats, asking for more than it should (or for another resource): "+
			"give the stream a when that skips such records (when: len(%s) > 0), or write ${ len(%s) > 0 ? %s : nil } to send it without on purpose", e.expr, e.expr, e.expr, e.expr)
	}
	if e.path {
		return fmt.Sprintf("${ %s } is null: it would leave an empty path segment", e.expr)
	}
	return fmt.Sprintf("%s is null, and the request would go out without it, asking for more than it should (or for another resource): write ${ %s ?? nil } to send it without on purpose", e.expr, e.expr)
}
