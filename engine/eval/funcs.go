package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"reflect"
	"strconv"
	"time"

	"github.com/expr-lang/expr"
	"github.com/itchyny/gojq"
)

// extraFunc is one of the functions ferry adds to both languages: a function
// of one string (jq: the input; expr: the only argument).
type extraFunc struct {
	name string
	fn   func(string) string
	// numbers says whether a number argument is accepted (formatted as in
	// templates); identifiers such as ids may be numbers in API payloads.
	numbers bool
}

// extraFuncs lists the functions added to jq and expr. It is a function, not a
// package variable, so that nothing at package level is mutable.
func extraFuncs() []extraFunc {
	return []extraFunc{
		{name: "title_case", fn: TitleCase},
		{name: "clean_title", fn: CleanTitle},
		{name: "path_escape", fn: url.PathEscape, numbers: true},
		{name: "query_escape", fn: url.QueryEscape, numbers: true},
	}
}

// argString returns v as the string argument of f.
func (f extraFunc) argString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case int, int64, int32, float64, json.Number, *big.Int:
		if f.numbers {
			return formatScalar(v), nil
		}
	}
	return "", fmt.Errorf("%s cannot be applied to: %s", f.name, typeOf(v))
}

// jqOptions returns the gojq compiler options that add the extra functions.
func jqOptions() []gojq.CompilerOption {
	fs := extraFuncs()
	opts := make([]gojq.CompilerOption, 0, len(fs))
	for _, f := range fs {
		opts = append(opts, gojq.WithFunction(f.name, 0, 0, func(v any, _ []any) any {
			s, err := f.argString(v)
			if err != nil {
				return err
			}
			return f.fn(s)
		}))
	}
	return opts
}

// exprOptions returns the expr options that add the extra functions and
// now(), which reads the env's clock, else clock when set, else the wall
// clock, in UTC.
func exprOptions(clock func() time.Time) []expr.Option {
	fs := extraFuncs()
	opts := make([]expr.Option, 0, len(fs)+2)
	for _, f := range fs {
		// Declared types let the checker reject e.g. clean_title(1) at validate time.
		var typ any = new(func(string) string)
		if f.numbers {
			typ = new(func(any) string)
		}
		opts = append(opts, expr.Function(f.name, func(params ...any) (any, error) {
			if len(params) != 1 {
				return nil, fmt.Errorf("%s takes 1 argument, got %d", f.name, len(params))
			}
			s, err := f.argString(params[0])
			if err != nil {
				return nil, err
			}
			return f.fn(s), nil
		}, typ))
	}
	// now() and now(location), given the env's clock by patchNow.
	opts = append(opts, nowFunction(clock), envFunction())
	return opts
}

// typeOf names the type of v for error messages, jq style: "number (42)".
func typeOf(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool, int, float64, *big.Int, json.Number, string, []any, map[string]any:
		return gojq.TypeOf(v) + " (" + gojq.Preview(v) + ")"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// formatScalar renders a value the way templates concatenate it: nil as "",
// integers and floats in plain decimal (no exponent, no trailing ".0"),
// json.Number as written in the input, times as RFC 3339, maps and slices as
// compact JSON, anything else with fmt.
func formatScalar(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case int32:
		return strconv.FormatInt(int64(v), 10)
	case int16:
		return strconv.FormatInt(int64(v), 10)
	case int8:
		return strconv.FormatInt(int64(v), 10)
	case uint:
		return strconv.FormatUint(uint64(v), 10)
	case uint64:
		return strconv.FormatUint(v, 10)
	case uint32:
		return strconv.FormatUint(uint64(v), 10)
	case uint16:
		return strconv.FormatUint(uint64(v), 10)
	case uint8:
		return strconv.FormatUint(uint64(v), 10)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(v), 'f', -1, 32)
	case json.Number:
		return string(v)
	case *big.Int:
		return v.String()
	case time.Time:
		return v.Format(time.RFC3339Nano)
	case time.Duration:
		return v.String()
	case fmt.Stringer:
		return v.String()
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Map, reflect.Slice, reflect.Array, reflect.Struct:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err == nil {
			return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
		}
	}
	return fmt.Sprint(v)
}
