package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// jsonFile is a side file of a spec (the Port blueprints), kept with its
// text so that problems in it are reported at its own line and column.
type jsonFile struct {
	name  string // as reported: relative to where the spec was named
	data  []byte
	lines []int // byte offset at which each line starts
}

func newJSONFile(name string, data []byte) *jsonFile {
	j := &jsonFile{name: name, data: data, lines: []int{0}}
	for i, c := range data {
		if c == '\n' {
			j.lines = append(j.lines, i+1)
		}
	}
	return j
}

// pos is the line and column (in characters) of byte offset off.
func (j *jsonFile) pos(off int) Pos {
	off = max(0, min(off, len(j.data)))
	line := 0
	for lo, hi := 0, len(j.lines)-1; lo <= hi; {
		mid := (lo + hi) / 2
		if j.lines[mid] <= off {
			line, lo = mid, mid+1
		} else {
			hi = mid - 1
		}
	}
	return Pos{Line: line + 1, Col: 1 + utf8.RuneCount(j.data[j.lines[line]:off])}
}

// syntaxError checks that the file is UTF-8 and one JSON value, and
// otherwise returns the offset of the offending byte and what is wrong.
func (j *jsonFile) syntaxError() (int, string, bool) {
	if !utf8.Valid(j.data) {
		off := invalidUTF8(j.data)
		return off, fmt.Sprintf("invalid UTF-8 (byte 0x%02x)", j.data[off]), true
	}
	dec := json.NewDecoder(bytes.NewReader(j.data))
	var v any
	err := dec.Decode(&v)
	if err == nil {
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return skipJSONSpace(j.data, int(dec.InputOffset())), "invalid JSON: more after the first value", true
		}
		return 0, "", false
	}
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		// Offset counts the offending byte, except at the end of input.
		off := int(se.Offset)
		if off > 0 && off <= len(j.data) && se.Error() != "unexpected end of JSON input" {
			off--
		}
		return off, "invalid JSON: " + se.Error(), true
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return len(j.data), "invalid JSON: unexpected end of input", true
	}
	return 0, "invalid JSON: " + err.Error(), true
}

// invalidUTF8 is the offset of the first byte of data that is not UTF-8.
func invalidUTF8(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(data)
}

// valueAt returns the offset of the value at path in a valid JSON file:
// ints index lists, strings key objects. ok is false when there is none.
func (j *jsonFile) valueAt(path ...any) (off int, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(j.data))
	next := func() (json.Token, int, error) {
		off := skipJSONSpace(j.data, int(dec.InputOffset()))
		tok, err := dec.Token()
		return tok, off, err
	}
	tok, off, err := next()
	if err != nil {
		return 0, false
	}
	for _, step := range path {
		found := false
		switch step := step.(type) {
		case int:
			if tok != json.Delim('[') {
				return 0, false
			}
			for i := 0; dec.More() && !found; i++ {
				if i == step {
					tok, off, err = next()
					found = err == nil
				} else if skipJSONValue(dec) != nil {
					return 0, false
				}
			}
		case string:
			if tok != json.Delim('{') {
				return 0, false
			}
			for dec.More() && !found {
				key, _, err := next()
				if err != nil {
					return 0, false
				}
				if key == step {
					tok, off, err = next()
					found = err == nil
				} else if skipJSONValue(dec) != nil {
					return 0, false
				}
			}
		}
		if !found {
			return 0, false
		}
	}
	return off, true
}

// skipJSONValue reads the next value whole.
func skipJSONValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// skipJSONSpace skips what may stand before a token: blanks and the
// separators the decoder reads with the next token.
func skipJSONSpace(data []byte, i int) int {
	for i < len(data) && bytes.IndexByte([]byte(" \t\r\n,:"), data[i]) >= 0 {
		i++
	}
	return i
}
