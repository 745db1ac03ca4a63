package decode

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// XML becomes the usual JSON shape: the document is an object holding the
// root element by its name; an element with neither attributes nor child
// elements is its text (null when empty); any other element is an object
// of its attributes (prefixed "@"), its child elements by name (a repeated
// one becomes a list, in document order) and, when it has some, its text
// ("#text", trimmed). Names are local: namespace prefixes and namespace
// declarations are dropped. Values are strings: XML has no types.

// AttrPrefix and TextKey name attributes and mixed text in the JSON shape.
const (
	AttrPrefix = "@"
	TextKey    = "#text"
)

type xmlElem struct {
	name     string
	attrs    []xml.Attr
	keys     []string // child names in first-seen order
	children map[string][]any
	text     strings.Builder
}

func (e *xmlElem) value() any {
	if len(e.attrs) == 0 && len(e.keys) == 0 {
		if e.text.Len() == 0 {
			return nil
		}
		return e.text.String()
	}
	obj := make(map[string]any, len(e.attrs)+len(e.keys)+1)
	for _, a := range e.attrs {
		obj[AttrPrefix+a.Name.Local] = a.Value
	}
	for _, k := range e.keys {
		if vs := e.children[k]; len(vs) == 1 {
			obj[k] = vs[0]
		} else {
			obj[k] = vs
		}
	}
	if t := strings.TrimSpace(e.text.String()); t != "" {
		obj[TextKey] = t
	}
	return obj
}

func (e *xmlElem) add(name string, v any) {
	if e.children == nil {
		e.children = map[string][]any{}
	}
	if _, ok := e.children[name]; !ok {
		e.keys = append(e.keys, name)
	}
	e.children[name] = append(e.children[name], v)
}

// inputReader reads an input's bytes as an io.Reader.
type inputReader struct{ in *input }

func (r inputReader) Read(p []byte) (int, error) {
	b := r.in.available()
	if len(b) == 0 {
		if r.in.err != nil {
			return 0, r.in.err
		}
		return 0, io.EOF
	}
	n := copy(p, b)
	r.in.advance(n)
	return n, nil
}

// nextXML decodes the whole document, once.
func (d *Decoder) nextXML() (any, error) {
	d.next = func() (any, error) { return nil, io.EOF }
	dec := xml.NewDecoder(inputReader{d.in})
	var stack []*xmlElem
	var doc any
	seenRoot := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, fmt.Errorf("line %d: invalid XML: %s", se.Line, se.Msg)
			}
			return nil, fmt.Errorf("line %d: %w", d.in.line, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) == 0 && seenRoot {
				return nil, fmt.Errorf("line %d: invalid XML: a second root element <%s>", d.in.line, t.Name.Local)
			}
			seenRoot = true
			e := &xmlElem{name: t.Name.Local}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
					continue
				}
				for _, b := range e.attrs {
					if b.Name.Local == a.Name.Local {
						// Without their prefixes both would be one key.
						return nil, fmt.Errorf("line %d: element <%s> has two attributes named %q (namespace prefixes are dropped)", d.in.line, t.Name.Local, a.Name.Local)
					}
				}
				e.attrs = append(e.attrs, a)
			}
			stack = append(stack, e)
		case xml.EndElement:
			e := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				doc = map[string]any{e.name: e.value()}
			} else {
				stack[len(stack)-1].add(e.name, e.value())
			}
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			} else if strings.TrimSpace(string(t)) != "" {
				return nil, fmt.Errorf("line %d: invalid XML: text outside the root element", d.in.line)
			}
		}
	}
	if !seenRoot {
		return nil, ErrEmpty
	}
	d.doc, d.line = doc, 1
	return doc, nil
}
