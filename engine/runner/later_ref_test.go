package runner

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/internal/jsonv"
)

// refLater is later as it was written first, every number through
// big.Rat and both cursors read at each call: the fast paths must answer
// as it does.
func refLater(a, b any) bool {
	if b == nil {
		return a != nil
	}
	if a == nil {
		return false
	}
	if na, ok := refNumeric(a); ok {
		if nb, ok := refNumeric(b); ok {
			return na.Cmp(nb) > 0
		}
	}
	ta, aok := refInstant(a)
	tb, bok := refInstant(b)
	switch {
	case aok && bok:
		return ta.After(tb)
	case aok || bok:
		// Beside times, a value that is not one ("Invalid date", "n/a")
		// is no cursor: sent back, an API may match nothing with it.
		return aok
	}
	return fmt.Sprint(a) > fmt.Sprint(b)
}

// numeric reads cursor v as an exact number: a JSON number, or a string
// of digits with an optional fraction (Slack's ts).
func refNumeric(v any) (*big.Rat, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
		if strings.ContainsAny(s, "eE") {
			// Read as a float: an exponent of billions would make
			// big.Rat build a number of that many digits.
			f, ok := jsonv.Float(x)
			return refRatOf(f, ok)
		}
	case string:
		if !refDecimal(x) {
			return nil, false
		}
		s = x
	// What a cursor program computes (jq's arithmetic, tonumber): exact
	// too, not through float64.
	case int:
		return new(big.Rat).SetInt64(int64(x)), true
	case int64:
		return new(big.Rat).SetInt64(x), true
	case int32:
		return new(big.Rat).SetInt64(int64(x)), true
	case uint64:
		return new(big.Rat).SetUint64(x), true
	case *big.Int:
		if x == nil {
			return nil, false
		}
		return new(big.Rat).SetInt(x), true
	default:
		return refRatOf(jsonv.Float(v))
	}
	return new(big.Rat).SetString(s)
}

func refRatOf(f float64, ok bool) (*big.Rat, bool) {
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, false
	}
	return new(big.Rat).SetFloat64(f), true
}

func refInstant(v any) (time.Time, bool) {
	s, ok := v.(string)
	if !ok || len(s) < len("2006-01-02T15:04:05Z") {
		return time.Time{}, false
	}
	for _, layout := range [...]string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999Z07",
		"2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z0700", "2006-01-02 15:04:05.999999999Z07"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// refDecimal tells digits with at most one point between digits.
func refDecimal(s string) bool {
	whole, frac, _ := strings.Cut(s, ".")
	digits := func(t string) bool {
		return t != "" && strings.Trim(t, "0123456789") == ""
	}
	return digits(whole) && (frac == "" && !strings.HasSuffix(s, ".") || digits(frac))
}

// TestLaterAsReference: later, with its fast paths and a cursor read once,
// answers as refLater for every pair of a set of cursors of every kind.
func TestLaterAsReference(t *testing.T) {
	vals := []any{nil, "", "x", "b", "a", "Invalid date", "n/a", "1.2.3", "1.2", "-5", ".5", "5.", "1e3", "0x10",
		"0", "00", "000.000", ".", "..", "1..2", "1.", "12a", "\u0661\u0662", "010", "9", "0.0", "1", "01", "1.0", "1.00", "1.5", "1.50", "01.5", "1.05", "99", "100", "0099",
		"1714550400.000200", "1714550400.0002", "1714550400.000201", "123456789012345678901234567890", "123456789012345678901234567891",
		json.Number("0"), json.Number("-0"), json.Number("-0.0"), json.Number("1"), json.Number("-1"), json.Number("-1.5"), json.Number("-1.25"),
		json.Number("1.5"), json.Number("1.50"), json.Number("0.1"), json.Number("-0.1"), json.Number("1e3"), json.Number("1E3"), json.Number("-1e-3"),
		json.Number("1761353400000000100"), json.Number("1761353400000000000"), json.Number("99"), json.Number("100"),
		json.Number("123456789012345678901234567890"), json.Number("-123456789012345678901234567890"), json.Number("1e400"),
		0, 1, -1, 2, 99, 100, int64(1761353400000000100), int32(-7), uint64(18446744073709551615), 0.1, -0.1, 1.5, 2.5, 1e3, math.Inf(1), math.NaN(), float32(0.5),
		bigInt("10000000000000000000"), bigInt("-10000000000000000000"), bigInt("99"),
		true, false, map[string]any{"a": 1}, []any{1, "x"},
		"2026-10-25T02:10:00+01:00", "2026-10-25T02:50:00+02:00", "2026-10-25T02:10:00.000+0100", "2024-05-01T10:00:00Z",
		"2024-05-01T10:00:00.5Z", "2024-05-01T10:00:00.55Z", "2024-05-01T08:00:00Z", "2024-05-01T10:00:00+02:00", "2024-05-01",
		"2024-05-01T10:00:00", "2024-05-01 10:00:00Z", "2024-05-01 10:00:00+02", "2024-05-01T03:00:00.5-05", "2024-05-01 10:00:00.25+0200",
		"2024-05-01 10:00:00+02:00", "2024-05-01_10:00:00Z", "2024-05-01 10:00:00 +0200",
	}
	for _, a := range vals {
		for _, b := range vals {
			want := refLater(a, b)
			if got := later(a, b); got != want {
				t.Errorf("later(%#v, %#v) = %v, reference %v", a, b, got, want)
			}
			if got := keyOf(a).after(keyOf(b)); got != want {
				t.Errorf("keyOf(%#v).after(keyOf(%#v)) = %v, reference %v", a, b, got, want)
			}
		}
	}
}
