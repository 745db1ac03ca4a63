package jsonv

import "errors"

// skipValue moves past the value at d.pos (white space already skipped),
// checking it as value would read it but keeping nothing: a member no
// program reads is still part of an answer that must be JSON. Invalid
// UTF-8 and lone surrogates in its strings are not counted in Replaced:
// nothing read from them is written.
func (d *decoder) skipValue(depth int) error {
	if d.pos >= len(d.data) {
		return errors.New("unexpected end of JSON input")
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		return d.skipComposite(depth+1, '}', "after object key:value pair", true)
	case c == '[':
		return d.skipComposite(depth+1, ']', "after array element", false)
	case c == '"':
		return d.skipStrictString()
	case c == '-' || c >= '0' && c <= '9':
		return d.scanNumber()
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	}
	return d.unexpected("looking for beginning of value")
}

// skipComposite moves past an object (keyed) or an array at d.pos.
func (d *decoder) skipComposite(depth int, closing byte, context string, keyed bool) error {
	if depth > maxDepth {
		return d.errorf("exceeded max depth")
	}
	d.pos++ // { or [
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == closing {
		d.pos++
		return nil
	}
	for {
		if keyed {
			if d.pos >= len(d.data) || d.data[d.pos] != '"' {
				return d.unexpected("looking for beginning of object key string")
			}
			if err := d.skipStrictString(); err != nil {
				return err
			}
			d.space()
			if d.pos >= len(d.data) || d.data[d.pos] != ':' {
				return d.unexpected("after object key")
			}
			d.pos++
			d.space()
		}
		if err := d.skipValue(depth); err != nil {
			return err
		}
		if end, err := d.next(closing, context); end || err != nil {
			return err
		}
	}
}

// skipStrictString moves past the string at d.pos (its opening quote),
// refusing what string refuses: control characters, unknown escapes and
// \u without four hex digits.
func (d *decoder) skipStrictString() error {
	for d.pos++; d.pos < len(d.data); {
		switch c := d.data[d.pos]; {
		case c == '"':
			d.pos++
			return nil
		case c < 0x20:
			return d.unexpected("in string literal")
		case c == '\\':
			d.pos++
			if d.pos >= len(d.data) {
				return errors.New("unexpected end of JSON input")
			}
			switch d.data[d.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.pos++
			case 'u':
				d.pos++
				if _, ok := d.hex4(); !ok {
					return d.unexpected("in \\u hexadecimal character escape")
				}
			default:
				return d.unexpected("in string escape code")
			}
		default:
			d.pos++
		}
	}
	return errors.New("unexpected end of JSON input")
}
