// Package jsonv holds the helpers every package needs for JSON-shaped values
// (nil, bool, json.Number and other numbers, string, []any, map[string]any):
// decoding a document exactly, naming a value's kind in messages, and
// reading a number.
package jsonv

import (
	"encoding/json"
)

// Kind names a value's kind for messages: "null", "a boolean", "a number",
// "a string", "a list" or "an object".
func Kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return "a number"
}

// Float reads a number of any Go numeric type or a json.Number.
func Float(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint64:
		return float64(x), true
	}
	return 0, false
}
