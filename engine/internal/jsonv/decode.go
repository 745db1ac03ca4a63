package jsonv

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Decode decodes one JSON document with numbers kept as json.Number (big
// ids stay exact). Anything after the value but white space is an error: a
// second document or a concatenation is not one answer.
//
// It gives what encoding/json's Decoder with UseNumber gives (objects as
// map[string]any, the last of a repeated key winning; invalid UTF-8 and
// lone surrogates in strings as U+FFFD; nesting limited to 10000), in one
// pass over b: every page of every response goes through here, and the
// standard decoder copies the body into its own buffer and scans it twice.
// One difference: two keys of an object that differ in b but are one once
// read as U+FFFD are a *KeyError, not one key: encoding/json would keep
// one of the two values without a word.
func Decode(b []byte) (any, error) {
	var s Decoder
	return s.Decode(b)
}

// Decoder decodes documents one after another, reusing its scratch and
// the key strings of the objects it met: a page's records share their
// keys, one string each rather than one per record. Its zero value is
// ready for use; it is not safe for concurrent use.
type Decoder struct {
	// members holds the members of the objects being read, innermost
	// last, until each is whole: its map is then made at its size, not
	// grown (and rehashed) member by member.
	members []member
	buf     []byte            // scratch for strings with escapes
	keys    map[string]string // object keys met, each its own value
	// mended holds where the keys Replaced counted are in the document,
	// for the objects being read, innermost last: an object with one
	// checks that no two of its keys became one (see merged).
	mended []mendedKey

	// KeepValues keeps short string values met, boxed, by a hash of
	// their text (values), for a Decoder reused for many documents of one
	// kind: their records repeat statuses, types and parents' ids, each
	// then one string rather than one per record. Its table is 16 KiB,
	// not worth making for one document.
	KeepValues bool
	values     *[valueSlots]boxedValue
	seed       maphash.Seed
	// looked and found count the lookups of the current round of
	// valueRound; bypass is how many strings more skip the table, after a
	// round whose values were mostly met once (ids, times): a lookup
	// that misses costs a hash and a slot's write for nothing.
	looked, found, bypass int

	// Replaced counts the strings (keys included) read with invalid
	// UTF-8 or a lone surrogate escape in them, each read as U+FFFD: the
	// value is then not the source's, which the caller says. Only the
	// slow path counts, so reading it costs the fast path nothing.
	Replaced int
}

// mendedKey is a key Replaced counted: the member it is the key of (an
// index in members) and the offset of its opening quote.
type mendedKey struct {
	member, at int
}

// valueSlots and maxValueLen bound the values a Decoder keeps (see
// values): a slot holds the last value of its hash, so that values met
// once (times, ids) pass through without filling a table.
const (
	valueSlots  = 512
	maxValueLen = 40
	// valueRound is how many lookups tell whether the table pays: under
	// a quarter found, the next 16 rounds' strings skip it.
	valueRound = 256
)

type boxedValue struct {
	text string
	v    any
}

type member struct {
	key string
	val any
}

// Decode is [Decode], reusing what s holds.
func (s *Decoder) Decode(b []byte) (any, error) {
	return s.DecodeOnly(b, nil)
}

// DecodeOnly is Decode keeping only some members of an object document
// (see DecodePrefixOnly).
func (s *Decoder) DecodeOnly(b []byte, only map[string]bool) (any, error) {
	d := decoder{data: b, s: s, only: only}
	d.space()
	v, err := d.value(0)
	if err != nil {
		s.drop()
		return nil, err
	}
	d.space()
	if d.pos < len(d.data) {
		return nil, &SyntaxError{Offset: d.pos, Msg: "trailing data after the JSON value"}
	}
	return v, nil
}

// DecodePrefix decodes the JSON value at the very start of b (no white
// space before it) and returns it with the number of bytes it spans; what
// follows it is not read. It is for a list's elements read where they lie,
// without first finding where each ends.
func (s *Decoder) DecodePrefix(b []byte) (v any, n int, err error) {
	return s.DecodePrefixOnly(b, nil)
}

// DecodePrefixOnly is DecodePrefix keeping, when the value is an object,
// only its members whose keys only holds (nil: all of them). The others
// are checked as JSON, as Decode would, but not built: a record's members
// no program reads (a large nested document beside the few fields a
// mapping takes) cost a scan instead of maps and strings.
func (s *Decoder) DecodePrefixOnly(b []byte, only map[string]bool) (v any, n int, err error) {
	d := decoder{data: b, s: s, only: only}
	if v, err = d.value(0); err != nil {
		s.drop()
		return nil, 0, err
	}
	return v, d.pos, nil
}

// drop forgets the members of the objects an error left unfinished: a
// Decoder reused after errors (decode's stream tries each element in
// place, and one cut by the buffer's end fails) would otherwise keep
// them, and the values they hold, for as long as it lives.
func (s *Decoder) drop() {
	clear(s.members)
	s.members = s.members[:0]
	s.mended = s.mended[:0]
}

// The bounds of a Decoder's keys: a document whose objects are keyed by
// ids (not names) has more distinct keys than it is worth keeping.
const (
	maxKeys   = 4096
	maxKeyLen = 64
)

// intern returns b as a string, the one met before when there is one.
func (s *Decoder) intern(b []byte) string {
	if k, ok := s.keys[string(b)]; ok {
		return k
	}
	k := string(b)
	if len(s.keys) < maxKeys && len(b) <= maxKeyLen {
		if s.keys == nil {
			s.keys = map[string]string{}
		}
		s.keys[k] = k
	}
	return k
}

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

type decoder struct {
	data []byte
	pos  int
	s    *Decoder
	// exact reads invalid UTF-8 and lone surrogates as themselves, each
	// behind a byte no UTF-8 text holds, not as U+FFFD: two keys are
	// alike so only when the source wrote them alike (see merged).
	exact bool
	// only, when set, are the keys of the outermost object's members to
	// keep; the others are checked and skipped (see DecodePrefixOnly).
	only map[string]bool
}

func (d *decoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// SyntaxError is a malformed document: what is wrong, and at which byte.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("offset %d: %s", e.Offset, e.Msg) }

func (d *decoder) errorf(format string, args ...any) error {
	return &SyntaxError{Offset: d.pos, Msg: fmt.Sprintf(format, args...)}
}

func (d *decoder) unexpected(context string) error {
	if d.pos >= len(d.data) {
		return errors.New("unexpected end of JSON input")
	}
	return d.errorf("invalid character %s %s", strconv.QuoteRune(rune(d.data[d.pos])), context)
}

// value reads the value at d.pos (white space already skipped).
func (d *decoder) value(depth int) (any, error) {
	if d.pos >= len(d.data) {
		return nil, errors.New("unexpected end of JSON input")
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		return d.object(depth + 1)
	case c == '[':
		return d.array(depth + 1)
	case c == '"':
		return d.stringValue()
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	}
	return nil, d.unexpected("looking for beginning of value")
}

func (d *decoder) literal(word string) error {
	for i := 0; i < len(word); i++ {
		if d.pos >= len(d.data) {
			return errors.New("unexpected end of JSON input")
		}
		if d.data[d.pos] != word[i] {
			return d.unexpected("in literal " + word)
		}
		d.pos++
	}
	return nil
}

func (d *decoder) object(depth int) (any, error) {
	if depth > maxDepth {
		return nil, d.errorf("exceeded max depth")
	}
	d.pos++ // {
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return map[string]any{}, nil
	}
	base := len(d.s.members) // an error ends the decoding: drop resets then
	mbase := len(d.s.mended)
	for {
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, d.unexpected("looking for beginning of object key string")
		}
		mended, replaced := len(d.s.mended), d.s.Replaced
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		d.space()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return nil, d.unexpected("after object key")
		}
		d.pos++
		d.space()
		if depth == 1 && d.only != nil && !d.only[k] {
			// Not kept: nor is its key among those merged checks, nor
			// counted replaced (nothing of the member is written).
			d.s.mended, d.s.Replaced = d.s.mended[:mended], replaced
			if err := d.skipValue(depth); err != nil {
				return nil, err
			}
		} else {
			v, err := d.value(depth)
			if err != nil {
				return nil, err
			}
			d.s.members = append(d.s.members, member{k, v})
		}
		end, err := d.next('}', "after object key:value pair")
		if err != nil {
			return nil, err
		}
		if end {
			if len(d.s.mended) > mbase {
				if err := d.merged(base, mbase); err != nil {
					return nil, err
				}
				d.s.mended = d.s.mended[:mbase]
			}
			m := make(map[string]any, len(d.s.members)-base)
			for _, e := range d.s.members[base:] {
				m[e.key] = e.val // in order: the last of a repeated key wins
			}
			clear(d.s.members[base:])
			d.s.members = d.s.members[:base]
			return m, nil
		}
	}
}

// KeyError is an object with two keys that differ in the document but are
// one once invalid UTF-8 or lone surrogates are read as U+FFFD: a map
// would keep one of their values, and the other would be lost. A key the
// document repeats alike is no error: the last wins, as in jq.
type KeyError struct {
	Offset int    // where the replaced one of the two starts
	Key    string // the key both read as
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("key %+q appears twice in one object once invalid UTF-8 and lone surrogates are read as U+FFFD (the document's keys differ): one of its values would be lost", e.Key)
}

// merged checks the keys of the object whose members start at base, some
// of them replaced (those of mended[mbase:]): two keys that read alike
// must be written alike. Rare, so not fast: each replaced key is read
// again, exactly.
func (d *decoder) merged(base, mbase int) error {
	ms := d.s.members[base:]
	exact := make([]string, len(ms))
	at := make([]int, len(ms)) // a replaced key's offset, else -1
	for i, m := range ms {
		exact[i], at[i] = m.key, -1
	}
	for _, mk := range d.s.mended[mbase:] {
		i := mk.member - base
		r := decoder{data: d.data, pos: mk.at, s: &Decoder{}, exact: true}
		var err error
		if exact[i], err = r.string(); err != nil {
			return err // read once already: cannot happen
		}
		at[i] = mk.at
	}
	first := make(map[string]int, len(ms))
	for i, m := range ms {
		j, ok := first[m.key]
		switch {
		case !ok:
			first[m.key] = i
		case exact[i] != exact[j]:
			// Not both plain (those read exactly): one was replaced.
			return &KeyError{Offset: max(at[i], at[j]), Key: m.key}
		}
	}
	return nil
}

// next reads what follows a member of an object or an element of an array:
// a comma (false: another one comes) or the closing byte (true).
func (d *decoder) next(closing byte, context string) (bool, error) {
	d.space()
	if d.pos >= len(d.data) {
		return false, errors.New("unexpected end of JSON input")
	}
	switch d.data[d.pos] {
	case ',':
		d.pos++
		d.space()
		return false, nil
	case closing:
		d.pos++
		return true, nil
	}
	return false, d.unexpected(context)
}

func (d *decoder) array(depth int) (any, error) {
	if depth > maxDepth {
		return nil, d.errorf("exceeded max depth")
	}
	d.pos++ // [
	a := []any{}
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return a, nil
	}
	for {
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		if end, err := d.next(']', "after array element"); end || err != nil {
			return a, err
		}
	}
}

// number reads a number as written, checked against JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *decoder) number() (any, error) {
	start := d.pos
	if err := d.scanNumber(); err != nil {
		return nil, err
	}
	return json.Number(d.data[start:d.pos]), nil
}

// scanNumber moves past a number, checked as number checks it.
func (d *decoder) scanNumber() error {
	digits := func() int {
		n := 0
		for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
			d.pos++
			n++
		}
		return n
	}
	if d.data[d.pos] == '-' {
		d.pos++
	}
	switch {
	case d.pos < len(d.data) && d.data[d.pos] == '0':
		d.pos++
	case digits() == 0:
		return d.unexpected("in numeric literal")
	}
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		d.pos++
		if digits() == 0 {
			return d.unexpected("after decimal point in numeric literal")
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if digits() == 0 {
			return d.unexpected("in exponent of numeric literal")
		}
	}
	return nil
}

// key reads an object's key at d.pos (its opening quote): one of plain
// ASCII is interned, any other read as a string is.
func (d *decoder) key() (string, error) {
	start := d.pos + 1
	for i := start; i < len(d.data); i++ {
		switch c := d.data[i]; {
		case c == '"':
			d.pos = i + 1
			return d.s.intern(d.data[start:i]), nil
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return d.otherKey()
		}
	}
	return d.string()
}

// otherKey reads a key that is not plain ASCII as a string; one read with
// U+FFFD is noted in mended, as the key of the member to come (the object
// checks its keys at its end: see merged). Only here, off the fast path.
func (d *decoder) otherKey() (string, error) {
	at, n := d.pos, d.s.Replaced
	k, err := d.string()
	if err == nil && d.s.Replaced != n {
		d.s.mended = append(d.s.mended, mendedKey{len(d.s.members), at})
	}
	return k, err
}

// stringValue reads a string value at d.pos (its opening quote): a short
// one of plain text is the one met before where its slot holds it.
func (d *decoder) stringValue() (any, error) {
	if !d.s.KeepValues {
		return d.string()
	}
	if d.s.bypass > 0 {
		d.s.bypass--
		return d.string()
	}
	start := d.pos + 1
	end := min(len(d.data), start+maxValueLen+1)
	for i := start; i < end; i++ {
		switch c := d.data[i]; {
		case c == '"':
			text := d.data[start:i]
			s := d.s
			if s.values == nil {
				s.values = new([valueSlots]boxedValue)
				s.seed = maphash.MakeSeed()
			}
			slot := &s.values[maphash.Bytes(s.seed, text)&(valueSlots-1)]
			d.pos = i + 1
			if s.looked++; s.looked == valueRound {
				if s.found < valueRound/4 {
					s.bypass = valueRound * 16
				}
				s.looked, s.found = 0, 0
			}
			if slot.v != nil && slot.text == string(text) {
				s.found++
				return slot.v, nil
			}
			str := string(text)
			slot.text, slot.v = str, str
			return slot.v, nil
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return d.string()
		}
	}
	return d.string()
}

// string reads a string at d.pos (its opening quote).
func (d *decoder) string() (string, error) {
	d.pos++ // "
	start := d.pos
	// The common case: no escape, valid UTF-8, one allocation.
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			s := string(d.data[start:d.pos])
			d.pos++
			return s, nil
		case c == '\\':
			return d.escaped(start)
		case c < 0x20:
			return "", d.unexpected("in string literal")
		case c < utf8.RuneSelf:
			d.pos++
		default:
			r, size := utf8.DecodeRune(d.data[d.pos:])
			if r == utf8.RuneError && size == 1 {
				return d.escaped(start) // invalid UTF-8: replaced, the slow way
			}
			d.pos += size
		}
	}
	return "", errors.New("unexpected end of JSON input")
}

// escaped finishes a string that has escapes or invalid UTF-8, from d.pos;
// the string began at start.
func (d *decoder) escaped(start int) (string, error) {
	b := append(d.s.buf[:0], d.data[start:d.pos]...)
	replaced := false
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			d.s.buf = b
			if replaced {
				d.s.Replaced++
			}
			return string(b), nil
		case c < 0x20:
			return "", d.unexpected("in string literal")
		case c == '\\':
			d.pos++
			if d.pos >= len(d.data) {
				return "", errors.New("unexpected end of JSON input")
			}
			switch e := d.data[d.pos]; e {
			case '"', '\\', '/':
				b = append(b, e)
				d.pos++
			case 'b':
				b = append(b, '\b')
				d.pos++
			case 'f':
				b = append(b, '\f')
				d.pos++
			case 'n':
				b = append(b, '\n')
				d.pos++
			case 'r':
				b = append(b, '\r')
				d.pos++
			case 't':
				b = append(b, '\t')
				d.pos++
			case 'u':
				d.pos++
				r, ok := d.hex4()
				if !ok {
					return "", d.unexpected("in \\u hexadecimal character escape")
				}
				if utf16.IsSurrogate(r) {
					// A pair is one character; a lone half is U+FFFD.
					lone := r
					r2 := utf8.RuneError
					if d.pos+1 < len(d.data) && d.data[d.pos] == '\\' && d.data[d.pos+1] == 'u' {
						save := d.pos
						d.pos += 2
						if lo, ok := d.hex4(); ok {
							if dec := utf16.DecodeRune(r, lo); dec != utf8.RuneError {
								r2 = dec
							} else {
								d.pos = save // not a pair: the next escape stands alone
							}
						} else {
							return "", d.unexpected("in \\u hexadecimal character escape")
						}
					}
					if r2 == utf8.RuneError {
						replaced = true
						if d.exact {
							// 0xFE, not UTF-8: the half as itself.
							b = append(b, 0xFE, byte(lone>>8), byte(lone))
							continue
						}
					}
					r = r2
				}
				b = utf8.AppendRune(b, r)
			default:
				return "", d.unexpected("in string escape code")
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			d.pos++
		default:
			r, size := utf8.DecodeRune(d.data[d.pos:])
			switch {
			case r == utf8.RuneError && size == 1 && d.exact:
				b = append(b, 0xFF, c) // 0xFF, not UTF-8: the byte as itself
			case r == utf8.RuneError && size == 1:
				b = utf8.AppendRune(b, utf8.RuneError)
				replaced = true
			default:
				b = append(b, d.data[d.pos:d.pos+size]...)
			}
			d.pos += size
		}
	}
	return "", errors.New("unexpected end of JSON input")
}

// hex4 reads the four hex digits of a \u escape.
func (d *decoder) hex4() (rune, bool) {
	if d.pos+4 > len(d.data) {
		return 0, false
	}
	var r rune
	for _, c := range d.data[d.pos : d.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	d.pos += 4
	return r, true
}
