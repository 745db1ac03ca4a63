package spec

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Load reads and parses the spec file at path. Relative references in the
// spec (the Port blueprints file) resolve against the spec's directory.
func Load(path string) (*File, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	return Parse(path, src, os.DirFS(filepath.Dir(path)))
}

// Parse decodes and validates one spec. name is used in error positions;
// fsys resolves files the spec refers to (nil: references are not checked).
// On problems it returns the partly decoded File and an ErrorList.
func Parse(name string, src []byte, fsys FS) (*File, error) {
	src = trimBOM(src)
	f := &File{Path: name}
	d := &decoder{file: name}
	p := &parser{decoder: d, lines: strings.Split(string(src), "\n"), fsys: fsys}

	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		d.errs = append(d.errs, yamlError(name, err))
		return f, d.errs
	}
	if len(doc.Content) == 0 {
		d.errorAt(Pos{Line: 1, Col: 1}, "", "empty spec: want a mapping with version, name and streams")
		return f, d.errs
	}
	root := resolveAlias(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		d.errorf(root, "", "expected a mapping at the top of the spec, got %s", kindName(root))
		return f, d.errs
	}
	// The version decides how the rest is read, so it is checked first and alone.
	if !p.checkVersion(root) {
		return f, d.errs
	}
	d.decode(root, reflectValue(f), "")
	p.validate(f)
	if len(d.errs) > 0 {
		return f, d.errs.sorted()
	}
	return f, nil
}

func (p *parser) checkVersion(root *yaml.Node) bool {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "version" {
			continue
		}
		v := resolveAlias(root.Content[i+1])
		if v.Kind != yaml.ScalarNode || v.Tag != "!!int" {
			p.errorf(v, "version", "expected an integer, got %s", kindName(v))
			return false
		}
		if v.Value != "1" {
			p.errorf(v, "version", "unsupported version %s: this ferry reads version 1", v.Value)
			return false
		}
		return true
	}
	p.errorf(root, "", "missing required field %q", "version")
	return false
}

// yamlError positions a yaml.v3 syntax error ("yaml: line 3: ...").
func yamlError(name string, err error) *Error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := 0
	if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil {
		msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
	}
	pos := Pos{Line: line, Col: 1}
	if line == 0 {
		pos = Pos{Line: 1, Col: 1}
	}
	return &Error{File: name, Pos: pos, Msg: "yaml: " + msg}
}

// parser carries what validation needs beyond the decoder: the source lines
// (to place errors inside embedded programs) and the files a spec refers to.
type parser struct {
	*decoder
	lines []string
	fsys  FS
}

// progPos maps a byte offset inside an embedded program to its file position,
// taking the scalar's style into account.
func (p *parser) progPos(s Str, off int) Pos {
	n := s.node
	if n == nil {
		return s.P
	}
	off = max(0, min(off, len(s.V)))
	before := s.V[:off]
	line := strings.Count(before, "\n")
	col := utf8.RuneCountInString(before[strings.LastIndex(before, "\n")+1:])
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		indent := p.blockIndent(n.Line)
		if n.Style == yaml.FoldedStyle {
			// Folding joins lines; only the first line maps exactly.
			return Pos{Line: n.Line + 1, Col: indent + 1}
		}
		return Pos{Line: n.Line + 1 + line, Col: indent + 1 + col}
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		if line == 0 {
			return Pos{Line: n.Line, Col: n.Column + 1 + col}
		}
		return Pos{Line: n.Line, Col: n.Column}
	default:
		if line == 0 {
			return Pos{Line: n.Line, Col: n.Column + col}
		}
		return Pos{Line: n.Line, Col: n.Column}
	}
}

// blockIndent is the indentation of the first non-blank line after line
// (1-based), i.e. of a block scalar's content.
func (p *parser) blockIndent(line int) int {
	for i := line; i < len(p.lines); i++ {
		l := p.lines[i]
		if strings.TrimSpace(l) == "" {
			continue
		}
		return len(l) - len(strings.TrimLeft(l, " "))
	}
	return 0
}

// trimBOM drops a UTF-8 byte-order mark some editors add.
func trimBOM(b []byte) []byte { return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) }
