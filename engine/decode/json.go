package decode

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/ferry-etl/ferry/engine/internal/jsonv"
)

// RecordsError is a body whose shape the records program cannot read, as
// jq would fail on the whole document (iterating over null, indexing an
// array with a name).
type RecordsError struct{ msg string }

func (e *RecordsError) Error() string { return "records: " + e.msg }

func recordsErr(format string, args ...any) error {
	return &RecordsError{msg: fmt.Sprintf(format, args...)}
}

// decodeValue decodes text, which must hold exactly one JSON value, with
// numbers as json.Number (jsonv: encoding/json's values in one pass).
// Its errors read as encoding/json's, without jsonv's offset: the caller
// names the line.
func decodeValue(jv *jsonv.Decoder, text []byte) (any, error) {
	return decodeValueOnly(jv, text, nil)
}

// decodeValueOnly is decodeValue keeping only some members of an object
// (see jsonv.DecodeOnly).
func decodeValueOnly(jv *jsonv.Decoder, text []byte, only map[string]bool) (any, error) {
	v, err := jv.DecodeOnly(text, only)
	if err == nil {
		return v, nil
	}
	// Read again as followed by a space, as it was in the body: a cut
	// literal or number is then named for the character that cut it, not
	// as the end of the input.
	if _, again := jsonv.Decode(append(slices.Clip(text), ' ')); again != nil {
		err = again
	}
	var se *jsonv.SyntaxError
	if errors.As(err, &se) {
		return nil, errors.New(se.Msg)
	}
	return nil, err
}

// valueError names the line of a value decodeValue failed on.
func valueError(line int, err error) error {
	var key *jsonv.KeyError
	if errors.As(err, &key) {
		return fmt.Errorf("line %d: %w", line, err) // valid JSON, but not one map
	}
	return fmt.Errorf("line %d: invalid JSON: %w", line, err)
}

// jsonStream yields the elements of the array at path (or the values of
// an object there, in key order as jq does), checking the whole document
// around them and keeping the captured paths' values.
type jsonStream struct {
	in      *input
	path    []string
	capture [][]string
	dflt    bool // the default records program: a null body has no records, anything but a list fails
	// only, when set, are the members an element that is an object
	// keeps (Options.Members).
	only map[string]bool

	started, done bool
	inArray       bool  // between the elements of the target array
	first         bool  // no element of the target array read yet
	pending       []any // values of a target object, in key order
	pendingRaw    [][]byte
	doc           map[string]any
	raw           []byte
	line          int
	jv            *jsonv.Decoder // the Decoder's: the elements' keys are shared
}

// where names the target for messages: ".a.b", or "the response body".
func (s *jsonStream) where(n int) string {
	if n == 0 {
		return "the response body"
	}
	return "." + strings.Join(s.path[:n], ".")
}

func (s *jsonStream) next() (any, error) {
	if !s.started {
		s.started = true
		if err := s.open(); err != nil {
			return nil, err
		}
	}
	for {
		switch {
		case len(s.pending) > 0:
			v := s.pending[0]
			s.raw = s.pendingRaw[0]
			s.pending, s.pendingRaw = s.pending[1:], s.pendingRaw[1:]
			return v, nil
		case s.inArray:
			v, ok, err := s.element()
			if err != nil || ok {
				return v, err
			}
			s.inArray = false
		case s.done:
			return nil, io.EOF
		default:
			s.done = true
			if err := s.close(); err != nil {
				return nil, err
			}
		}
	}
}

// open reads up to the start of the target's values.
func (s *jsonStream) open() error {
	in := s.in
	in.skipSpace()
	if _, ok := in.peek(); !ok {
		if in.err != nil && in.err != io.EOF {
			return fmt.Errorf("line %d: %w", in.line, in.err)
		}
		return ErrEmpty
	}
	for level := 0; level < len(s.path); level++ {
		if err := s.enterObject(level); err != nil {
			return err
		}
		found, err := s.members(level, false)
		if err != nil {
			return err
		}
		if !found {
			// .a.b of an object without b is null: nothing to iterate.
			return recordsErr("cannot iterate over %s: it is null (absent)", s.where(level+1))
		}
	}
	return s.target()
}

// enterObject consumes the { of the object at level, or fails as jq would
// indexing something else.
func (s *jsonStream) enterObject(level int) error {
	in := s.in
	in.skipSpace()
	c, ok := in.peek()
	switch {
	case !ok:
		return in.readErr("(expected a value)")
	case c == '{':
		in.advance(1)
		return nil
	case c == 'n':
		if err := in.scanLiteral("null"); err != nil {
			return err
		}
		return recordsErr("cannot iterate over %s: it is null", s.where(len(s.path)))
	}
	if err := in.scanValue(level); err != nil {
		return err
	}
	return recordsErr("cannot index %s with %q: it is %s", s.where(level), s.path[level], kindAt(c))
}

// kindAt names the kind of the value starting with c.
func kindAt(c byte) string {
	switch c {
	case '[':
		return "an array"
	case '{':
		return "an object"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// members reads the members of the object at level (its { consumed, or,
// with resume, the value of its previous member consumed). Before the path
// key it stops right after that key, found true; members that are not on
// the path are captured or skipped.
func (s *jsonStream) members(level int, resume bool) (found bool, err error) {
	in := s.in
	if resume {
		end, err := in.next('}', "object")
		if err != nil || end {
			return false, err
		}
	} else {
		in.skipSpace()
		if c, ok := in.peek(); ok && c == '}' {
			in.advance(1)
			return false, nil
		}
	}
	for {
		in.skipSpace()
		key, err := in.readKey()
		if err != nil {
			return false, err
		}
		if err := in.expect(':', "a colon"); err != nil {
			return false, err
		}
		if key == s.path[level] {
			return true, nil
		}
		if err := s.other(level, key); err != nil {
			return false, err
		}
		end, err := in.next('}', "object")
		if err != nil || end {
			return false, err
		}
	}
}

// other consumes the value of a member off the path: decoded into the
// captured document when a capture path runs through it, else skipped.
func (s *jsonStream) other(level int, key string) error {
	at := append(slices.Clone(s.path[:level]), key)
	keep := false
	for _, c := range s.capture {
		if len(c) > level && slices.Equal(c[:level+1], at) {
			keep = true
			break
		}
	}
	if !keep {
		return s.in.scanValue(level + 1)
	}
	s.in.skipSpace()
	s.in.startRecording()
	err := s.in.scanValue(level + 1)
	raw := s.in.stopRecording()
	if err != nil {
		return err
	}
	v, err := s.jv.Decode(raw)
	if err != nil {
		return valueError(s.in.line, err)
	}
	if s.doc == nil {
		s.doc = map[string]any{}
	}
	m := s.doc
	for _, k := range s.path[:level] {
		sub, ok := m[k].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[k] = sub
		}
		m = sub
	}
	m[key] = v
	return nil
}

// target starts iterating the value at the path.
func (s *jsonStream) target() error {
	in := s.in
	in.skipSpace()
	c, ok := in.peek()
	if !ok {
		return in.readErr("(expected a value)")
	}
	switch c {
	case '[':
		in.advance(1)
		s.inArray, s.first = true, true
		return nil
	case 'n':
		if err := in.scanLiteral("null"); err != nil {
			return err
		}
		if s.dflt {
			return nil // null: no records
		}
		return recordsErr("cannot iterate over %s: it is null", s.where(len(s.path)))
	}
	if c != '{' || s.dflt {
		// Not iterable: but a body that is not JSON at all says so first.
		if err := in.scanValue(len(s.path)); err != nil {
			return err
		}
		if s.dflt {
			return recordsErr("the response body is %s, not a list: set records to select the records", kindAt(c))
		}
		return recordsErr("cannot iterate over %s: it is %s", s.where(len(s.path)), kindAt(c))
	}
	// .[] of an object yields its values, sorted by key as jq does: the
	// object is read whole. Each member is a record: of a key given twice
	// (or two that decode alike, invalid UTF-8 read as U+FFFD) jq would
	// see the last only, and the other record would vanish.
	depth := len(s.path)
	if depth > maxDepth {
		return in.syntaxError("nested too deeply")
	}
	seen := map[string]bool{}
	in.startRecording()
	in.advance(1) // {
	err := in.scanObject(depth, func(key string) error {
		if seen[key] {
			return fmt.Errorf("line %d: key %q appears twice in %s: one of its records would be lost", in.line, key, s.where(depth))
		}
		seen[key] = true
		return in.scanValue(depth + 1)
	})
	raw := in.stopRecording()
	if err != nil {
		return err
	}
	v, err := s.jv.Decode(raw)
	if err != nil {
		return valueError(in.line, err)
	}
	obj := v.(map[string]any)
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		b, err := json.Marshal(obj[k])
		if err != nil {
			return err
		}
		s.pending = append(s.pending, obj[k])
		s.pendingRaw = append(s.pendingRaw, b)
	}
	return nil
}

// element reads the next element of the target array; ok is false after
// its closing bracket.
func (s *jsonStream) element() (v any, ok bool, err error) {
	in := s.in
	in.skipSpace()
	if s.first {
		s.first = false
		if c, ok := in.peek(); ok && c == ']' {
			in.advance(1)
			return nil, false, nil
		}
	} else {
		end, err := in.next(']', "array")
		if err != nil || end {
			return nil, false, err
		}
		in.skipSpace()
	}
	s.line = in.line
	if v, ok := s.inPlace(); ok {
		return v, true, nil
	}
	in.startRecording()
	err = in.scanBounds()
	s.raw = in.stopRecording()
	if err != nil {
		return nil, false, err
	}
	if v, err = decodeValueOnly(s.jv, s.raw, s.only); err != nil {
		return nil, false, valueError(s.line, err)
	}
	return v, true, nil
}

// inPlace decodes the next element in one pass where it lies in the
// buffer, its raw text a slice of it, not a copy: when it is whole there
// and well formed, and followed by a byte that may end it (a literal or a
// number runs up to one). Otherwise (ok false) nothing is consumed, and
// the element is read as before, bounds first: that path names what is
// wrong, or reads past the buffer's end.
func (s *jsonStream) inPlace() (v any, ok bool) {
	in := s.in
	b := in.buf[in.pos:in.end]
	replaced := s.jv.Replaced // the element read again counts again
	v, n, err := s.jv.DecodePrefixOnly(b, s.only)
	if err != nil || n >= len(b) {
		s.jv.Replaced = replaced
		return nil, false
	}
	switch b[0] {
	case '{', '[', '"':
	default:
		if c := b[n]; c != ',' && c != ']' && c != '}' && !isSpace(c) {
			s.jv.Replaced = replaced
			return nil, false
		}
	}
	s.raw = b[:n]
	in.advance(n)
	return v, true
}

// close reads the rest of the document after the target: the remaining
// members of every enclosing object, then nothing but white space.
func (s *jsonStream) close() error {
	for level := len(s.path) - 1; level >= 0; level-- {
		found, err := s.members(level, true)
		if err != nil {
			return err
		}
		if found {
			// jq would see only the last one: streaming both would give
			// records a whole-document reading never gives.
			return fmt.Errorf("line %d: key %q appears twice in %s", s.in.line, s.path[level], s.where(level))
		}
	}
	return s.in.atEnd()
}
