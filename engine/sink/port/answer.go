package port

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// answerReader is an answer type that decodes itself as json.Unmarshal
// would decode into it, results and errors alike (apiClient.do).
type answerReader interface {
	readAnswer(b []byte) error
}

// readAnswer decodes a bulk answer as json.Unmarshal does, and refuses
// one with an element that has no index. Every bulk request's answer is
// read, and the standard decoder spends its time scanning twice and
// reflecting: the usual answer (plain keys, strings without escapes,
// integer indexes) is read by scanBulk in one pass; any other goes to
// json.Unmarshal, so what is malformed still fails as it did.
func (r *bulkResult) readAnswer(b []byte) error {
	if err := r.decode(b); err != nil {
		return err
	}
	// index is the one key of an element Port documents as reliable (an
	// identifier may come back "unknown"): without it the element says
	// nothing of which entity it is about, and taking it as the first
	// would mark that one written or failed for another's outcome.
	for i, e := range r.Entities {
		if !e.Index.Set {
			return fmt.Errorf("entities[%d] has no index", i)
		}
	}
	for i, e := range r.Errors {
		if !e.Index.Set {
			return fmt.Errorf("errors[%d] has no index", i)
		}
	}
	return nil
}

// decode is json.Unmarshal(b, r), by scanBulk where it can.
func (r *bulkResult) decode(b []byte) error {
	if scanBulk(b, r) {
		return nil
	}
	*r = bulkResult{}
	return json.Unmarshal(b, r)
}

// bulkIndex is an element's index in a bulk answer, and whether the
// answer gave it.
type bulkIndex struct {
	N   int
	Set bool
}

// UnmarshalJSON reads the index as encoding/json reads an int; null
// unsets it, even after a value of an earlier "index" key of the element
// (JSON.parse, as Port's own code would, keeps a repeated key's last
// value: the element then names no entity).
func (x *bulkIndex) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*x = bulkIndex{}
		return nil
	}
	if err := json.Unmarshal(b, &x.N); err != nil {
		return err
	}
	x.Set = true
	return nil
}

// scanBulk reads b into r when b is valid JSON of the usual shape (see
// readAnswer) and reports whether it did; false leaves r to be reset.
func scanBulk(b []byte, r *bulkResult) bool {
	s := scanner{b: b}
	s.space()
	ok := s.object(func(key []byte) bool {
		switch string(key) {
		case "entities":
			if r.Entities != nil {
				return false // a repeated list: encoding/json reuses the first's elements
			}
			r.Entities = make([]bulkEntity, 0, maxBulkEntities)
			return s.array(func() bool {
				var e bulkEntity
				ok := s.object(func(key []byte) bool {
					switch string(key) {
					case "identifier":
						return s.str(&e.Identifier)
					case "index":
						e.Index.Set = true
						return s.integer(&e.Index.N)
					case "created":
						return s.boolean(&e.Created)
					}
					return s.other(key, "identifier", "index", "created")
				})
				r.Entities = append(r.Entities, e)
				return ok
			})
		case "errors":
			if r.Errors != nil {
				return false
			}
			r.Errors = []bulkError{}
			return s.array(func() bool {
				var e bulkError
				ok := s.object(func(key []byte) bool {
					switch string(key) {
					case "identifier":
						return s.str(&e.Identifier)
					case "index":
						e.Index.Set = true
						return s.integer(&e.Index.N)
					case "statusCode":
						return s.integer(&e.StatusCode)
					case "error":
						return s.str(&e.Error)
					case "message":
						return s.str(&e.Message)
					}
					return s.other(key, "identifier", "index", "statusCode", "error", "message")
				})
				r.Errors = append(r.Errors, e)
				return ok
			})
		}
		return s.other(key, "entities", "errors")
	})
	s.space()
	return ok && s.pos == len(b)
}

// scanner reads the subset of JSON scanBulk takes; each method reports
// false at anything else (or anything invalid), never guessing.
type scanner struct {
	b   []byte
	pos int
}

func (s *scanner) space() {
	for s.pos < len(s.b) {
		switch s.b[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// next consumes c after white space.
func (s *scanner) next(c byte) bool {
	s.space()
	if s.pos < len(s.b) && s.b[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

// object reads an object, calling member with each key, the scanner at
// its value.
func (s *scanner) object(member func(key []byte) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	for {
		s.space()
		key, ok := s.raw()
		if !ok || !s.next(':') {
			return false
		}
		s.space()
		if !member(key) {
			return false
		}
		if s.next('}') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// array reads an array, calling elem with the scanner at each element.
func (s *scanner) array(elem func() bool) bool {
	if !s.next('[') {
		return false
	}
	if s.next(']') {
		return true
	}
	for {
		s.space()
		if !elem() {
			return false
		}
		if s.next(']') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// str reads a string without escapes or control characters, valid UTF-8:
// what encoding/json would give is then its bytes.
func (s *scanner) str(out *string) bool {
	raw, ok := s.raw()
	if ok {
		*out = string(raw)
	}
	return ok
}

// raw is str without the copy: the string's bytes where they are.
func (s *scanner) raw() ([]byte, bool) {
	if s.pos >= len(s.b) || s.b[s.pos] != '"' {
		return nil, false
	}
	ascii := true
	for i := s.pos + 1; i < len(s.b); i++ {
		switch c := s.b[i]; {
		case c == '"':
			raw := s.b[s.pos+1 : i]
			if !ascii && !utf8.Valid(raw) {
				return nil, false
			}
			s.pos = i + 1
			return raw, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// integer reads a JSON number that encoding/json puts into an int: an
// integer literal within int (int32 on a 32-bit build: encoding/json
// refuses a wider index there, and one cut to int would name another
// entity).
func (s *scanner) integer(out *int) bool {
	start := s.pos
	if !s.number() {
		return false
	}
	n, err := strconv.ParseInt(string(s.b[start:s.pos]), 10, strconv.IntSize)
	if err != nil {
		return false
	}
	*out = int(n)
	return true
}

// boolean reads true, false or null (nil) into out.
func (s *scanner) boolean(out **bool) bool {
	for _, lit := range [...]string{"true", "false", "null"} {
		if end := s.pos + len(lit); end <= len(s.b) && string(s.b[s.pos:end]) == lit {
			s.pos = end
			*out = nil
			if lit != "null" {
				v := lit == "true"
				*out = &v
			}
			return true
		}
	}
	return false
}

// number reads a JSON number, as the grammar has it.
func (s *scanner) number() bool {
	digits := func() int {
		n := 0
		for s.pos < len(s.b) && s.b[s.pos] >= '0' && s.b[s.pos] <= '9' {
			s.pos++
			n++
		}
		return n
	}
	if s.pos < len(s.b) && s.b[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(s.b) && s.b[s.pos] == '0':
		s.pos++
	case digits() == 0:
		return false
	}
	if s.pos < len(s.b) && s.b[s.pos] == '.' {
		s.pos++
		if digits() == 0 {
			return false
		}
	}
	if s.pos < len(s.b) && (s.b[s.pos] == 'e' || s.b[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.b) && (s.b[s.pos] == '+' || s.b[s.pos] == '-') {
			s.pos++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

// other skips the value of a key that is none of fields: encoding/json
// ignores it too, unless it matches a field but for case (it takes such a
// key for the field), which is left to it, as is a key outside ASCII
// (whose case folding is Unicode's).
func (s *scanner) other(key []byte, fields ...string) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	for _, f := range fields {
		if asciiFold(key, f) {
			return false
		}
	}
	return s.skip(0)
}

// asciiFold reports whether the ASCII key and name are equal but for case.
func asciiFold(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i, c := range key {
		if lower(c) != lower(name[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// skip reads any JSON value of the subset, ignoring it.
func (s *scanner) skip(depth int) bool {
	if depth > 100 || s.pos >= len(s.b) {
		return false
	}
	switch c := s.b[s.pos]; {
	case c == '{':
		return s.object(func([]byte) bool { return s.skip(depth + 1) })
	case c == '[':
		return s.array(func() bool { return s.skip(depth + 1) })
	case c == '"':
		_, ok := s.raw()
		return ok
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	for _, lit := range [...]string{"true", "false", "null"} {
		if end := s.pos + len(lit); end <= len(s.b) && string(s.b[s.pos:end]) == lit {
			s.pos += len(lit)
			return true
		}
	}
	return false
}
