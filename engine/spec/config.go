package spec

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-etl/ferry/engine/eval"
)

// The types a config input may declare (`type:`). An input without one
// takes any value as given: a string from --set, the environment or .env.
const (
	TypeString   = "string"
	TypeInt      = "int"
	TypeNumber   = "number"
	TypeBool     = "bool"
	TypeList     = "list"
	TypeDuration = "duration"
	TypeDate     = "date"
)

// Convert checks a value given for the input (a string from --set, the
// environment or .env; YAML data from a --config file or the default) and
// converts it to the input's type. The result is JSON-shaped, as jq,
// requests and destinations see it: a string, an int, a float64, a bool, a
// list ([]any), or for a duration or a date the text given. expr sees a
// duration as a time.Duration and a date as a time.Time (see ExprValues).
// The error says what was wanted and what was given.
func (v *ConfigVar) Convert(x any) (any, error) {
	if x == nil || !v.Type.Set {
		return x, nil
	}
	s, isString := x.(string)
	if isString {
		s = strings.TrimSpace(s)
	}
	switch v.Type.V {
	case TypeString:
		switch x := x.(type) {
		case string:
			return x, nil
		case time.Time:
			return dateText(x), nil
		case map[string]any, []any:
			return nil, fmt.Errorf("want a string, got %s", describe(x))
		}
		return eval.FormatScalar(x), nil
	case TypeInt:
		if isString {
			if n, err := strconv.ParseInt(s, 10, 0); err == nil {
				return int(n), nil
			}
		} else if n, ok := wholeNumber(x); ok {
			return n, nil
		}
		return nil, fmt.Errorf("want an integer, got %s", describe(x))
	case TypeNumber:
		if isString {
			if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return f, nil
			}
		} else if f, ok := number(x); ok {
			return f, nil
		}
		return nil, fmt.Errorf("want a number, got %s", describe(x))
	case TypeBool:
		if b, ok := x.(bool); ok {
			return b, nil
		}
		switch strings.ToLower(s) {
		case "true", "yes", "on", "1":
			return true, nil
		case "false", "no", "off", "0":
			return false, nil
		}
		return nil, fmt.Errorf("want true or false, got %s", describe(x))
	case TypeList:
		switch x := x.(type) {
		case []any:
			return x, nil
		case string:
			// A comma-separated list: items trimmed, empty ones dropped.
			items := []any{}
			for _, item := range strings.Split(x, ",") {
				if item = strings.TrimSpace(item); item != "" {
					items = append(items, item)
				}
			}
			return items, nil
		}
		return nil, fmt.Errorf("want a list, or a comma-separated string, got %s", describe(x))
	case TypeDuration:
		if isString {
			if _, err := time.ParseDuration(s); err == nil {
				return s, nil
			}
		}
		return nil, fmt.Errorf("want a duration such as 30s, 15m or 1h30m, got %s", describe(x))
	case TypeDate:
		if t, ok := x.(time.Time); ok {
			return dateText(t), nil
		}
		if isString {
			if _, ok := parseDate(s); ok {
				return s, nil
			}
		}
		return nil, fmt.Errorf("want a date such as 2024-01-31 or 2024-01-31T12:00:00Z, got %s", describe(x))
	}
	return x, nil
}

// exprValue is a converted value as expr sees it.
func (v *ConfigVar) exprValue(x any) any {
	s, ok := x.(string)
	if !ok || !v.Type.Set {
		return x
	}
	switch v.Type.V {
	case TypeDuration:
		if d, err := time.ParseDuration(s); err == nil {
			return d
		}
	case TypeDate:
		if t, ok := parseDate(s); ok {
			return t
		}
	}
	return x
}

// ExprValues returns the resolved config values (converted, see Convert)
// as expr programs see them: durations as time.Duration, dates as
// time.Time; the rest as they are.
func (f *File) ExprValues(values map[string]any) map[string]any {
	out := make(map[string]any, len(values))
	for name, x := range values {
		if v := f.config[name]; v != nil {
			x = v.exprValue(x)
		}
		out[name] = x
	}
	return out
}

// exprTypes are samples of the types expr sees for the typed inputs, for
// the checker (eval.WithTypes): `config.page_size + "x"` is an error when
// page_size is an int.
func (f *File) exprTypes() map[string]any {
	samples := map[string]any{}
	for _, it := range f.Config.Items {
		var sample any
		switch it.Value.Type.V {
		case TypeString:
			sample = ""
		case TypeInt:
			sample = 0
		case TypeNumber:
			sample = 0.0
		case TypeBool:
			sample = false
		case TypeList:
			sample = []any{}
		case TypeDuration:
			sample = time.Duration(0)
		case TypeDate:
			sample = time.Time{}
		default:
			continue
		}
		samples[VarConfig+"."+it.Key] = sample
	}
	return samples
}

// parseDate reads a date (2024-01-31, taken as midnight UTC) or a date
// and time (RFC 3339).
func parseDate(s string) (time.Time, bool) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// dateText writes a YAML timestamp as the date it is, or RFC 3339.
func dateText(t time.Time) string {
	if t.Equal(t.Truncate(24*time.Hour)) && t.Location() == time.UTC {
		return t.Format(time.DateOnly)
	}
	return t.Format(time.RFC3339Nano)
}

func wholeNumber(x any) (int, bool) {
	switch x := x.(type) {
	case int:
		return x, true
	case int64:
		return int(x), true
	case uint64:
		return int(x), x <= math.MaxInt64
	case float64:
		return int(x), x == math.Trunc(x) && math.Abs(x) <= 1<<53
	}
	return 0, false
}

func number(x any) (float64, bool) {
	switch x := x.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// describe names a given value for a message: strings quoted, others by
// kind and value.
func describe(x any) string {
	switch x := x.(type) {
	case string:
		return strconv.Quote(shorten(x))
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case bool:
		return strconv.FormatBool(x)
	}
	return shorten(eval.FormatScalar(x))
}
