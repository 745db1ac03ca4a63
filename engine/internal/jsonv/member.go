package jsonv

import "errors"

// Member finds key among the members of the object b and says where its
// value is: b[start:end]. The values of other members are skipped, not
// decoded: a caller that needs one member of a large object (the
// relations of a Port entity) reads only that. b must be valid JSON, as
// Append writes it; found is false when b is not an object or has no such
// member (for a repeated key, the last one, as Decode keeps).
func Member(b []byte, key string) (start, end int, found bool, err error) {
	var span [1][2]int
	err = Members(b, []string{key}, span[:])
	return span[0][0], span[0][1], span[0][1] > 0, err
}

// Members is Member for several keys in one scan of b: spans[i] is where
// the value of keys[i] is, b[spans[i][0]:spans[i][1]], or {0, 0} when b
// has no such member (a value is never empty, so end is 0 only then). A
// Port entity's body is made from two of its members (properties and
// relations): scanning it once for both halves the work. Keys without
// escapes are compared where they are, not copied.
func Members(b []byte, keys []string, spans [][2]int) error {
	clear(spans)
	var scratch Decoder // for a key with escapes
	d := decoder{data: b, s: &scratch}
	d.space()
	if d.pos >= len(b) || b[d.pos] != '{' {
		return nil
	}
	d.pos++
	d.space()
	if d.pos < len(b) && b[d.pos] == '}' {
		return nil
	}
	for {
		if d.pos >= len(b) || b[d.pos] != '"' {
			return d.unexpected("looking for beginning of object key string")
		}
		k, err := d.rawKey()
		if err != nil {
			return err
		}
		d.space()
		if d.pos >= len(b) || b[d.pos] != ':' {
			return d.unexpected("after object key")
		}
		d.pos++
		d.space()
		s := d.pos
		if err := d.skip(); err != nil {
			return err
		}
		for i, key := range keys {
			if string(k) == key {
				spans[i] = [2]int{s, d.pos}
			}
		}
		if last, err := d.next('}', "after object key:value pair"); last || err != nil {
			return err
		}
	}
}

// rawKey reads an object key at d.pos (its opening quote), as string does:
// one of plain ASCII (the usual key) is returned where it is in d.data,
// without a copy; any other goes to string.
func (d *decoder) rawKey() ([]byte, error) {
	for i := d.pos + 1; i < len(d.data); i++ {
		switch c := d.data[i]; {
		case c == '"':
			k := d.data[d.pos+1 : i]
			d.pos = i + 1
			return k, nil
		case c == '\\' || c < 0x20 || c >= 0x80:
			s, err := d.string()
			return []byte(s), err
		}
	}
	_, err := d.string() // the same error for a key never closed
	return nil, err
}

// skip moves past the value at d.pos without decoding it: strings to
// their closing quote (escapes skipped), objects and arrays to the
// bracket that closes them, numbers and literals to the next delimiter.
func (d *decoder) skip() error {
	depth := 0
	for d.pos < len(d.data) {
		switch c := d.data[d.pos]; c {
		case '"':
			if err := d.skipString(); err != nil {
				return err
			}
		case '{', '[':
			depth++
			d.pos++
			continue
		case '}', ']':
			if depth == 0 {
				return nil
			}
			depth--
			d.pos++
		default:
			if depth == 0 {
				for d.pos < len(d.data) && !isDelimiter(d.data[d.pos]) {
					d.pos++
				}
				return nil
			}
			d.pos++
			continue
		}
		if depth == 0 {
			return nil
		}
	}
	if depth > 0 {
		return errors.New("unexpected end of JSON input")
	}
	return nil
}

// skipString moves past the string at d.pos.
func (d *decoder) skipString() error {
	for d.pos++; d.pos < len(d.data); d.pos++ {
		switch d.data[d.pos] {
		case '\\':
			d.pos++
		case '"':
			d.pos++
			return nil
		}
	}
	return errors.New("unexpected end of JSON input")
}

func isDelimiter(c byte) bool {
	switch c {
	case ',', ':', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}
