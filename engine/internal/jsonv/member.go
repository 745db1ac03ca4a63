package jsonv

import "errors"

// Member finds key among the members of the object b and says where its
// value is: b[start:end]. The values of other members are skipped, not
// decoded: a caller that needs one member of a large object (the
// relations of a Port entity) reads only that. b must be valid JSON, as
// Append writes it; found is false when b is not an object or has no such
// member (for a repeated key, the last one, as Decode keeps).
func Member(b []byte, key string) (start, end int, found bool, err error) {
	d := decoder{data: b}
	d.space()
	if d.pos >= len(b) || b[d.pos] != '{' {
		return 0, 0, false, nil
	}
	d.pos++
	d.space()
	if d.pos < len(b) && b[d.pos] == '}' {
		return 0, 0, false, nil
	}
	for {
		if d.pos >= len(b) || b[d.pos] != '"' {
			return 0, 0, false, d.unexpected("looking for beginning of object key string")
		}
		k, err := d.string()
		if err != nil {
			return 0, 0, false, err
		}
		d.space()
		if d.pos >= len(b) || b[d.pos] != ':' {
			return 0, 0, false, d.unexpected("after object key")
		}
		d.pos++
		d.space()
		s := d.pos
		if err := d.skip(); err != nil {
			return 0, 0, false, err
		}
		if k == key {
			start, end, found = s, d.pos, true
		}
		if last, err := d.next('}', "after object key:value pair"); last || err != nil {
			return start, end, found, err
		}
	}
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
