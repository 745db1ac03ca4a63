package table

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// appendJSON appends the canonical JSON text of v: object keys sorted
// bytewise, no insignificant space, numbers as their literal, no HTML
// escaping. The same value always gives the same bytes, which is what makes
// _ferry_id hashes stable across runs. With pg, NUL characters are dropped
// (PostgreSQL rejects \u0000 in jsonb).
func appendJSON(dst []byte, v any, pg bool) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case string:
		return appendString(dst, x, pg)
	case bool:
		if x {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case map[string]any:
		// One pass over the map into a stack buffer, then sort: no second
		// lookup per key.
		var buf [16]member
		ms := buf[:0]
		for k, v := range x {
			ms = append(ms, member{k, v})
		}
		if len(ms) <= len(buf) {
			for i := 1; i < len(ms); i++ {
				for j := i; j > 0 && ms[j].k < ms[j-1].k; j-- {
					ms[j], ms[j-1] = ms[j-1], ms[j]
				}
			}
		} else {
			slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.k, b.k) })
		}
		dst = append(dst, '{')
		for i, m := range ms {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, m.k, pg)
			dst = append(dst, ':')
			dst = appendJSON(dst, m.v, pg)
		}
		return append(dst, '}')
	case json.Number:
		if validNumber(string(x)) {
			return append(dst, x...)
		}
		return appendString(dst, string(x), pg)
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSON(dst, e, pg)
		}
		return append(dst, ']')
	}
	switch k, num := classify(v); k {
	case kindNumber:
		return append(dst, num...)
	case kindString:
		return appendString(dst, stringOf(v, k, num), pg)
	case kindNull:
		return append(dst, "null"...)
	}
	// Not JSON-shaped (a struct, a typed map): go through encoding/json,
	// then re-canonicalise so keys are sorted the same way.
	b, err := json.Marshal(v)
	if err != nil {
		return appendString(dst, fmt.Sprint(v), pg)
	}
	var back any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&back); err != nil {
		return appendString(dst, string(b), pg)
	}
	return appendJSON(dst, back, pg)
}

// member is one key and value of a JSON object.
type member struct {
	k string
	v any
}

const hexDigits = "0123456789abcdef"

// plainASCII marks the bytes a JSON string holds as they are.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string, pg bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plainASCII[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case 0:
				if !pg {
					dst = append(dst, `\u0000`...)
				}
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// cleanPG makes a string acceptable to PostgreSQL text: no NUL bytes, valid
// UTF-8.
func cleanPG(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\ufffd")
	}
	return s
}

// hashRow is the _ferry_id of a row without a primary key: the sha256 of the
// canonical JSON of its data, in hex.
func hashRow(buf []byte, data map[string]any) ([]byte, string) {
	buf = appendJSON(buf[:0], data, false)
	sum := sha256.Sum256(buf)
	return buf, hex.EncodeToString(sum[:])
}
