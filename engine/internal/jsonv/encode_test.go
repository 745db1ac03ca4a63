package jsonv

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// referenceEncode is encoding/json's encoding of v, HTML escaped or not.
func referenceEncode(v any, html bool) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

var encodeCases = []any{
	nil, true, false, "", "plain", `quote " backslash \ slash /`,
	"ctl \x00\x01\x07\b\f\n\r\t\x1f\x7f end", "<a href='x'>&amp;</a>",
	"bad utf-8 \xff\xfe here, cut \xe2\x82", "line \u2028 para \u2029", "é€😀",
	json.Number("0"), json.Number("-12.5e+3"), json.Number(""), json.Number("12345678901234567890123"),
	0.0, math.Copysign(0, -1), 1.0, -2.5, 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 123456789.125, 5e-324, math.MaxFloat64,
	float32(0.1), float32(1e-7), float32(3e21), 7, -7, int64(math.MinInt64), int32(-3), uint64(math.MaxUint64),
	[]any{}, []any(nil), map[string]any{}, map[string]any(nil),
	map[string]any{"b": 1, "a": []any{"x", nil, map[string]any{"z": true, "<k>": "v&"}}, "": 0.5},
	// Not JSON-shaped: encoding/json decides.
	map[string]string{"k": "v"}, []string{"a"}, big.NewInt(42), time.Date(2026, 12, 4, 1, 2, 3, 0, time.UTC),
	struct {
		A int `json:"a"`
	}{1},
}

func TestAppendMatchesEncodingJSON(t *testing.T) {
	for _, html := range []bool{true, false} {
		for _, v := range encodeCases {
			want, werr := referenceEncode(v, html)
			got, gerr := Append([]byte("prefix:"), v, html)
			if werr != nil || gerr != nil {
				t.Fatalf("%#v: errors %v, encoding/json %v", v, gerr, werr)
			}
			if !bytes.Equal(got, append([]byte("prefix:"), want...)) {
				t.Errorf("html=%v %#v:\n got %s\nwant prefix:%s", html, v, got, want)
			}
		}
	}
}

func TestAppendRefusesWhatEncodingJSONRefuses(t *testing.T) {
	for _, v := range []any{math.NaN(), math.Inf(1), float32(math.Inf(-1)), json.Number("01"), json.Number("1."), json.Number("-"), json.Number("0x10"), json.Number(" 1"),
		map[string]any{"a": []any{math.NaN()}}, selfContaining()} {
		if _, err := referenceEncode(v, true); err == nil {
			t.Fatalf("%#v: encoding/json accepts it; the case is wrong", v)
		}
		if got, err := Append(nil, v, true); err == nil {
			t.Errorf("%#v: encoded as %s, want an error", v, got)
		}
	}
}

// Random JSON-shaped values, strings of any bytes and numbers of any
// magnitude, encode as encoding/json encodes them.
func TestAppendRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	str := func() string {
		var b strings.Builder
		for range rng.IntN(12) {
			switch rng.IntN(4) {
			case 0:
				b.WriteByte(byte(rng.IntN(256)))
			case 1:
				b.WriteRune(rune(rng.IntN(0x3000)))
			default:
				b.WriteByte(byte('a' + rng.IntN(26)))
			}
		}
		return b.String()
	}
	var gen func(depth int) any
	gen = func(depth int) any {
		switch n := rng.IntN(9); {
		case n == 0:
			return nil
		case n == 1:
			return rng.IntN(2) == 0
		case n == 2:
			return str()
		case n == 3:
			return math.Float64frombits(rng.Uint64())
		case n == 4:
			return (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(50)-25))
		case n == 5:
			return rng.Int64() >> rng.IntN(64)
		case n == 6 && depth < 4:
			l := make([]any, rng.IntN(4))
			for i := range l {
				l[i] = gen(depth + 1)
			}
			return l
		case depth < 4:
			m := map[string]any{}
			for range rng.IntN(5) {
				m[str()] = gen(depth + 1)
			}
			return m
		}
		return "leaf"
	}
	for i := range 20000 {
		v := gen(0)
		html := i%2 == 0
		want, werr := referenceEncode(v, html)
		got, gerr := Append(nil, v, html)
		if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("%#v:\n got %s (%v)\nwant %s (%v)", v, got, gerr, want, werr)
		}
	}
}

// BenchmarkAppend encodes an entity-like object; encoding/json's Marshal is
// the baseline in the same run.
func BenchmarkAppend(b *testing.B) {
	v := map[string]any{
		"identifier": "workload-1234", "title": "Workload 1234 of app <x>",
		"properties": map[string]any{"createdAt": "2026-12-04T01:02:03Z", "replicas": 3, "cpu": 0.25, "labels": []any{"a", "b"}, "ready": true, "note": nil},
		"relations":  map[string]any{"environment": "env-7", "app": "app-3"},
	}
	b.Run("jsonv", func(b *testing.B) {
		var buf []byte
		for range b.N {
			buf, _ = Append(buf[:0], v, true)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for range b.N {
			_, _ = json.Marshal(v)
		}
	})
}

// selfContaining is a list that holds itself: encoding/json refuses it, and
// so must Append, not overflow the stack.
func selfContaining() any {
	l := []any{nil}
	l[0] = l
	return l
}

// An entity-sized object is encoded into a buffer of room enough without
// allocating: its keys are sorted on the stack.
func TestAppendObjectDoesNotAllocate(t *testing.T) {
	v := map[string]any{
		"identifier": "w-1", "title": "W 1",
		"properties": map[string]any{"a": "x", "b": 2, "c": []any{"y"}, "d": true},
		"relations":  map[string]any{"app": "a-1", "env": []any{"e-1", "e-2"}},
	}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { _, _ = Append(buf[:0], v, true) }); n != 0 {
		t.Errorf("%v allocations per encoding, want 0", n)
	}
}

// Objects of more keys than appendObject sorts on its frame (16), and of
// keys that sort only by bytes past an escape, encode as encoding/json
// encodes them, nested in each other too.
func TestAppendObjectOfManyKeys(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	keys := []string{"a", "A", "b", "é", "<", "\x00", "\xff", "\u2028", "ab", "a\"", "a\\", "z", "0", ""}
	for n := range 41 {
		m := map[string]any{}
		for len(m) < n {
			k := keys[rng.IntN(len(keys))] + keys[rng.IntN(len(keys))] + string(rune('a'+rng.IntN(26)))
			m[k] = len(m)
			if rng.IntN(4) == 0 {
				inner := map[string]any{}
				for j := range 17 + rng.IntN(5) {
					inner[keys[j%len(keys)]+string(rune('a'+j))] = j
				}
				m[k] = inner
			}
		}
		for _, html := range []bool{true, false} {
			want, err := referenceEncode(m, html)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := Append(nil, m, html); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%d keys:\n got %s (%v)\nwant %s", n, got, err, want)
			}
		}
	}
}
