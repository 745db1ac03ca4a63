package jsonv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Append appends the JSON encoding of v to dst: byte for byte what
// encoding/json's Marshal writes (map keys sorted; with html, <, > and &
// escaped as Marshal does, without as an Encoder with SetEscapeHTML(false)).
//
// JSON-shaped values (nil, bool, string, json.Number, Go numbers, []any,
// map[string]any) are encoded directly, without reflection: every entity
// of a Port load is encoded twice or more, and encoding/json spent most of
// that time finding out what it already knew. Anything else goes to
// encoding/json.
//
// The table sink has its own canonical encoder (engine/sink/table
// appendJSON): its bytes are hashed into the _ferry_id of rows already
// stored, so its form is frozen and differs from encoding/json's in small
// ways (no short \b and \f, U+FFFD written as is, no HTML escaping).
func Append(dst []byte, v any, html bool) ([]byte, error) {
	return appendValue(dst, v, html, 0)
}

// appendValue is Append at a depth of nesting: past maxDepth the value is
// refused, as encoding/json refuses a value that contains itself, instead of
// recursing until the stack runs out.
func appendValue(dst []byte, v any, html bool, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("json: value nested more than %d deep (does it contain itself?)", maxDepth)
	}
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case string:
		return appendString(dst, x, html), nil
	case json.Number:
		if x == "" {
			return append(dst, '0'), nil // as encoding/json
		}
		if !validNumber(string(x)) {
			return nil, fmt.Errorf("json: invalid number literal %q", string(x))
		}
		return append(dst, x...), nil
	case float64:
		return appendFloat(dst, x, 64)
	case float32:
		return appendFloat(dst, float64(x), 32)
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(dst, x, 10), nil
	case []any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendValue(dst, e, html, depth+1); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		return appendObject(dst, x, html, depth)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...), nil
}

// appendObject is appendValue for an object. Its keys are sorted in a
// slice on this frame (not the recursive appendValue's) for the usual
// object of at most 16: every Port entity is encoded several times.
func appendObject(dst []byte, x map[string]any, html bool, depth int) ([]byte, error) {
	if x == nil {
		return append(dst, "null"...), nil
	}
	var onStack [16]string
	keys := onStack[:0]
	for k := range x {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k, html)
		dst = append(dst, ':')
		var err error
		if dst, err = appendValue(dst, x[k], html, depth+1); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

// Marshal is Append to nothing, with HTML escaped: encoding/json.Marshal's
// output.
func Marshal(v any) ([]byte, error) { return Append(nil, v, true) }

// appendFloat writes f as encoding/json does: the shortest representation,
// exponent form only below 1e-6 or from 1e21, no NaN or infinity.
func appendFloat(dst []byte, f float64, bits int) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("json: unsupported value: %s", strconv.FormatFloat(f, 'g', -1, bits))
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// e-09 is written e-9.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

// validNumber reports whether s is a JSON number, all of it.
func validNumber(s string) bool {
	d := decoder{data: []byte(s)}
	if len(s) == 0 || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return false
	}
	_, err := d.number()
	return err == nil && d.pos == len(s)
}

const hexDigits = "0123456789abcdef"

// appendString writes s quoted, escaped as encoding/json escapes it:
// quote, backslash and control characters; <, > and & with html; invalid
// UTF-8 as U+FFFD; U+2028 and U+2029 (JavaScript's line separators).
func appendString(dst []byte, s string, html bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && (!html || (c != '<' && c != '>' && c != '&')) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
