package runner

import (
	"context"
	"maps"
	"reflect"
	"slices"

	"github.com/ferry-etl/ferry/engine/eval"
	"github.com/ferry-etl/ferry/engine/spec"
)

// bodyJQSecrets teaches the pool the values of a body_jq program's
// output v that a secret input it reads decides: jq cannot tell which
// values came from where, so the program runs again with each such input
// changed (every letter and digit moved on by one, a number by one), and
// a value that changes with them is derived from them. The body's other
// values (a parent's id, a query) stay readable. When the second run
// fails, or a secret input is neither text nor a number, every text of
// the output is taught: in doubt, a credential.
func (r *Runner) bodyJQSecrets(ctx context.Context, q *spec.JQ, names []string, input any, vars []any, v any) {
	if r.opts.Pool == nil {
		return
	}
	secrets := r.f.JQSecretInputs(q.V)
	if len(secrets) == 0 {
		return
	}
	at := slices.Index(names, spec.VarConfig)
	if at < 0 || at >= len(vars) {
		return // the program cannot read $config
	}
	var vals []string
	alt, ok := altered(r.opts.Config, secrets)
	if ok {
		altVars := slices.Clone(vars)
		altVars[at] = alt
		if w, _, err := q.Code().First(ctx, input, altVars...); err == nil {
			vals = changedTexts(v, w, nil)
		} else {
			ok = false
		}
	}
	if !ok {
		vals = leafTexts(v, nil)
	}
	if len(vals) > 0 {
		r.opts.Pool.AddSecrets(vals...)
	}
}

// altered is config with each of the named inputs changed (see
// bodyJQSecrets); false when one is neither text nor a number.
func altered(config map[string]any, names []string) (map[string]any, bool) {
	out := maps.Clone(config)
	if out == nil {
		out = map[string]any{}
	}
	for _, n := range names {
		switch x := out[n].(type) {
		case nil:
		case string:
			out[n] = shifted(x)
		case int:
			out[n] = x + 1
		case int64:
			out[n] = x + 1
		case float64:
			out[n] = x + 1
		default:
			return nil, false
		}
	}
	return out, true
}

// shifted moves every ASCII letter and digit of s on by one, within its
// kind (z to a, 9 to 0): any slice of a secret holding one changes, and
// an encoding of it (base64, hex of digits) still decodes.
func shifted(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = 'a' + (c-'a'+1)%26
		case c >= 'A' && c <= 'Z':
			b[i] = 'A' + (c-'A'+1)%26
		case c >= '0' && c <= '9':
			b[i] = '0' + (c-'0'+1)%10
		}
	}
	return string(b)
}

// changedTexts appends to out the texts of v (leafTexts) that w, the same
// program's output with the secret inputs changed, does not hold at the
// same place: a key only v has is taught with its value.
func changedTexts(v, w any, out []string) []string {
	switch x := v.(type) {
	case map[string]any:
		m, ok := w.(map[string]any)
		if !ok {
			return leafTexts(v, out)
		}
		for k, e := range x {
			we, ok := m[k]
			if !ok {
				out = append(out, k)
				out = leafTexts(e, out)
				continue
			}
			out = changedTexts(e, we, out)
		}
		return out
	case []any:
		l, ok := w.([]any)
		if !ok || len(l) != len(x) {
			return leafTexts(v, out)
		}
		for i, e := range x {
			out = changedTexts(e, l[i], out)
		}
		return out
	}
	if reflect.DeepEqual(v, w) || eval.FormatScalar(v) == eval.FormatScalar(w) {
		return out
	}
	return leafTexts(v, out)
}
