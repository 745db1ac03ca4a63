package decode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"
)

// The scanner below walks JSON text without building it: it validates a
// value while consuming (and, when in.recording, recording) its bytes. It
// is what lets a document be streamed: the values around the records are
// checked and skipped, or recorded and decoded, one at a time.

// maxDepth bounds nesting, as encoding/json does.
const maxDepth = 10000

// syntaxError reports malformed JSON at the input's line.
func (in *input) syntaxError(format string, args ...any) error {
	return fmt.Errorf("line %d: invalid JSON: %s", in.line, fmt.Sprintf(format, args...))
}

// skipSpace consumes white space.
func (in *input) skipSpace() {
	for {
		b := in.available()
		i := 0
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i > 0 {
			in.advance(i)
		}
		if i < len(b) || len(b) == 0 {
			return
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// expect consumes byte c after white space.
func (in *input) expect(c byte, what string) error {
	in.skipSpace()
	got, ok := in.peek()
	if !ok {
		return in.readErr("(expected " + what + ")")
	}
	if got != c {
		return in.syntaxError("expected %s, found %s", what, quoteByte(got))
	}
	in.advance(1)
	return nil
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", string(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// scanValue consumes one JSON value (after white space).
func (in *input) scanValue(depth int) error {
	if depth > maxDepth {
		return in.syntaxError("nested too deeply")
	}
	in.skipSpace()
	c, ok := in.peek()
	if !ok {
		return in.readErr("(expected a value)")
	}
	switch {
	case c == '{':
		in.advance(1)
		return in.scanObject(depth, nil)
	case c == '[':
		in.advance(1)
		in.skipSpace()
		if c, ok := in.peek(); ok && c == ']' {
			in.advance(1)
			return nil
		}
		for {
			if err := in.scanValue(depth + 1); err != nil {
				return err
			}
			end, err := in.next(']', "array")
			if err != nil || end {
				return err
			}
		}
	case c == '"':
		return in.scanString()
	case c == '-' || c >= '0' && c <= '9':
		return in.scanNumber()
	case c == 't':
		return in.scanLiteral("true")
	case c == 'f':
		return in.scanLiteral("false")
	case c == 'n':
		return in.scanLiteral("null")
	}
	return in.syntaxError("unexpected %s", quoteByte(c))
}

// next consumes the separator after an element or member: a comma (more
// follows) or the closing bracket (end is true).
func (in *input) next(close byte, what string) (end bool, err error) {
	in.skipSpace()
	c, ok := in.peek()
	switch {
	case !ok:
		return false, in.readErr("(inside an " + what + ")")
	case c == ',':
		in.advance(1)
		return false, nil
	case c == close:
		in.advance(1)
		return true, nil
	}
	return false, in.syntaxError("expected , or %c in an %s, found %s", close, what, quoteByte(c))
}

// scanObject consumes the members of an object whose { was consumed. With
// member set, it is called after each key with the key and must consume
// the value; otherwise values are scanned.
func (in *input) scanObject(depth int, member func(key string) error) error {
	in.skipSpace()
	if c, ok := in.peek(); ok && c == '}' {
		in.advance(1)
		return nil
	}
	for {
		in.skipSpace()
		var err error
		if member != nil {
			var key string
			if key, err = in.readKey(); err == nil {
				if err = in.expect(':', "a colon"); err == nil {
					err = member(key)
				}
			}
		} else if err = in.scanKey(); err == nil {
			if err = in.expect(':', "a colon"); err == nil {
				err = in.scanValue(depth + 1)
			}
		}
		if err != nil {
			return err
		}
		end, err := in.next('}', "object")
		if err != nil || end {
			return err
		}
	}
}

// scanKey consumes an object key.
func (in *input) scanKey() error {
	c, ok := in.peek()
	if !ok {
		return in.readErr("(expected an object key)")
	}
	if c != '"' {
		return in.syntaxError("expected an object key, found %s", quoteByte(c))
	}
	return in.scanString()
}

// readKey consumes an object key and returns it decoded.
func (in *input) readKey() (string, error) {
	c, ok := in.peek()
	if !ok {
		return "", in.readErr("(expected an object key)")
	}
	if c != '"' {
		return "", in.syntaxError("expected an object key, found %s", quoteByte(c))
	}
	outer := in.recording
	if !outer {
		in.startRecording()
	}
	saved := len(in.rec)
	err := in.scanString()
	raw := in.rec[saved:]
	var key string
	switch {
	case err != nil:
	case bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw):
		key = string(raw[1 : len(raw)-1])
	default:
		if err = json.Unmarshal(raw, &key); err != nil {
			err = in.syntaxError("object key: %v", err)
		}
	}
	if !outer {
		in.stopRecording()
	}
	return key, err
}

// stringSafe marks the bytes that need no attention inside a string.
var stringSafe = func() (t [256]bool) {
	for i := 0x20; i < 256; i++ {
		t[i] = true
	}
	t['"'], t['\\'] = false, false
	return t
}()

// scanString consumes a string literal, escapes checked.
func (in *input) scanString() error {
	in.advance(1) // the opening quote
	for {
		b := in.available()
		if len(b) == 0 {
			return in.readErr("(inside a string)")
		}
		i := 0
		for i < len(b) && stringSafe[b[i]] {
			i++
		}
		if i == len(b) {
			in.advance(i)
			continue
		}
		switch c := b[i]; {
		case c == '"':
			in.advance(i + 1)
			return nil
		case c == '\\':
			in.advance(i + 1)
			if err := in.scanEscape(); err != nil {
				return err
			}
		default:
			return in.syntaxError("control character %s in a string", quoteByte(c))
		}
	}
}

func (in *input) scanEscape() error {
	c, ok := in.peek()
	if !ok {
		return in.readErr("(inside a string)")
	}
	switch c {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		in.advance(1)
		return nil
	case 'u':
		in.advance(1)
		for range 4 {
			h, ok := in.peek()
			if !ok {
				return in.readErr("(inside a string)")
			}
			if !isHex(h) {
				return in.syntaxError("invalid \\u escape")
			}
			in.advance(1)
		}
		return nil
	}
	return in.syntaxError("invalid escape \\%c", c)
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// scanNumber consumes a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (in *input) scanNumber() error {
	if c, _ := in.peek(); c == '-' {
		in.advance(1)
	}
	c, ok := in.peek()
	switch {
	case !ok:
		return in.readErr("(inside a number)")
	case c == '0':
		in.advance(1)
	case c >= '1' && c <= '9':
		in.digits()
	default:
		return in.syntaxError("invalid number")
	}
	if c, ok := in.peek(); ok && c == '.' {
		in.advance(1)
		if n := in.digits(); n == 0 {
			return in.syntaxError("invalid number: no digits after the decimal point")
		}
	}
	if c, ok := in.peek(); ok && (c == 'e' || c == 'E') {
		in.advance(1)
		if c, ok := in.peek(); ok && (c == '+' || c == '-') {
			in.advance(1)
		}
		if n := in.digits(); n == 0 {
			return in.syntaxError("invalid number: no digits in the exponent")
		}
	}
	return nil
}

func (in *input) digits() int {
	n := 0
	for {
		c, ok := in.peek()
		if !ok || c < '0' || c > '9' {
			return n
		}
		in.advance(1)
		n++
	}
}

func (in *input) scanLiteral(lit string) error {
	for i := range len(lit) {
		c, ok := in.peek()
		if !ok {
			return in.readErr("(inside " + lit + ")")
		}
		if c != lit[i] {
			return in.syntaxError("invalid literal, expected %s", lit)
		}
		in.advance(1)
	}
	return nil
}

// atEnd checks that nothing but white space follows the document.
func (in *input) atEnd() error {
	in.skipSpace()
	if c, ok := in.peek(); ok {
		return in.syntaxError("data after the JSON value (%s)", quoteByte(c))
	}
	if in.err != nil && in.err != io.EOF {
		return in.err
	}
	return nil
}

// boundaryStop marks the bytes that matter when finding a value's end.
var boundaryStop = func() (t [256]bool) {
	for _, c := range []byte(`"\\{}[]`) {
		t[c] = true
	}
	return t
}()

// scanBounds consumes one value (after white space) without checking it:
// it only finds where the value ends, minding strings and nesting. It is
// for text that is decoded right after (whose decoder checks it all) and
// followed by a strictly checked separator.
func (in *input) scanBounds() error {
	in.skipSpace()
	c, ok := in.peek()
	if !ok {
		return in.readErr("(expected a value)")
	}
	if c != '{' && c != '[' && c != '"' {
		// A literal or a number: up to the next delimiter.
		for {
			b := in.available()
			if len(b) == 0 {
				return nil
			}
			i := 0
			for i < len(b) && b[i] != ',' && b[i] != ']' && b[i] != '}' && !isSpace(b[i]) {
				i++
			}
			in.advance(i)
			if i < len(b) {
				return nil
			}
		}
	}
	depth, inString, escaped := 0, false, false
	for {
		b := in.available()
		if len(b) == 0 {
			return in.readErr("(inside a value)")
		}
		for i := 0; i < len(b); i++ {
			c := b[i]
			if inString {
				switch {
				case escaped:
					escaped = false
				case c == '\\':
					escaped = true
				case c == '"':
					inString = false
					if depth == 0 {
						in.advance(i + 1)
						return nil
					}
				}
				continue
			}
			if !boundaryStop[c] {
				continue
			}
			switch c {
			case '"':
				inString = true
			case '{', '[':
				depth++
				if depth > maxDepth {
					in.advance(i)
					return in.syntaxError("nested too deeply")
				}
			case '}', ']':
				depth--
				if depth <= 0 {
					in.advance(i + 1)
					return nil
				}
			}
		}
		in.advance(len(b))
	}
}
