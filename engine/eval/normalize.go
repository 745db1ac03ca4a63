package eval

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Normalize returns v with every json.Number replaced by a Go number that both
// expr and gojq accept: an int for an integer that fits, a float64 for any
// other number. An integer too large for int stays a json.Number, so that it
// renders exactly in templates (arithmetic on it in expr is an error, not a
// silent loss of precision). Maps and slices are copied only along paths where
// something changed: v itself is never modified, so a record shared between
// goroutines may be normalized by each of them.
//
// [Expr.Eval] and [Template.Render] normalize their env themselves; gojq
// handles json.Number natively, so jq inputs need no normalizing.
func Normalize(v any) any {
	n, _ := normalize(v)
	return n
}

func normalize(v any) (any, bool) {
	switch v := v.(type) {
	case json.Number:
		n := numberValue(v)
		_, same := n.(json.Number)
		return n, !same
	case map[string]any:
		var out map[string]any
		for k, e := range v {
			n, changed := normalize(e)
			if !changed {
				continue
			}
			if out == nil {
				out = make(map[string]any, len(v))
				for k2, e2 := range v {
					out[k2] = e2
				}
			}
			out[k] = n
		}
		if out == nil {
			return v, false
		}
		return out, true
	case []any:
		var out []any
		for i, e := range v {
			n, changed := normalize(e)
			if !changed {
				continue
			}
			if out == nil {
				out = append([]any(nil), v...)
			}
			out[i] = n
		}
		if out == nil {
			return v, false
		}
		return out, true
	default:
		return v, false
	}
}

func numberValue(n json.Number) any {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 0); err == nil {
			return int(i)
		}
		return n // too large for int: keep it exact
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f
	}
	return n
}
