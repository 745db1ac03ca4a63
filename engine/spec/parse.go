package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/ferry-etl/ferry/engine/eval"
)

// Load reads and parses the spec file at path. Relative references in the
// spec (the Port blueprints file) resolve against the spec's directory.
func Load(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	defer f.Close()
	// A file of any size is read only as far as needed to say it is too large.
	src, err := io.ReadAll(io.LimitReader(f, MaxSpecSize+1))
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	sf, err := Parse(path, src, os.DirFS(filepath.Dir(path)))
	if sf != nil {
		sf.Dir = filepath.Dir(path)
	}
	return sf, err
}

// MaxSpecSize is the largest spec, and side file, ferry reads: validating
// costs a few dozen bytes of memory per byte of spec, and a bound keeps
// that within a small address space (2 GiB). No hand-written spec comes
// near it.
const MaxSpecSize = 8 << 20

// readLimited reads a file, or its first max+1 bytes when it is larger:
// enough to say that it is, without reading a file of any size.
func readLimited(fsys FS, name string, max int) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, int64(max)+1))
}

// tooLarge reports a file over MaxSpecSize at the first byte past it.
func tooLarge(file string, src []byte) *Error {
	return &Error{File: file, Pos: offsetPos(src, MaxSpecSize), Msg: fmt.Sprintf("file larger than %d MiB, the most ferry reads", MaxSpecSize>>20)}
}

// Parse decodes and validates one spec. name is used in error positions;
// fsys resolves files the spec refers to (nil: references are not checked).
// On problems it returns the partly decoded File and an ErrorList.
func Parse(name string, src []byte, fsys FS) (*File, error) {
	src = trimBOM(src)
	f := &File{Path: name}
	if len(src) > MaxSpecSize {
		return f, ErrorList{tooLarge(name, src)}
	}
	if off, msg, bad := badChar(src); bad {
		// yaml.v3 names no place for these.
		return f, ErrorList{&Error{File: name, Pos: offsetPos(src, off), Msg: msg}}
	}
	d := &decoder{file: name}
	p := &parser{decoder: d, lines: splitLines(string(src)), fsys: fsys, maxValueNodes: 100_000 + len(src), cache: eval.NewCache()}
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(tooMany); !ok {
					panic(r)
				}
			}
		}()
		p.parse(f, src)
	}()
	f.warnings = d.warns.sorted()
	if len(d.errs) > MaxErrors {
		// The last one says there are too many: it stays last.
		return f, append(d.errs[:MaxErrors].sorted(), d.errs[MaxErrors])
	}
	if len(d.errs) > 0 {
		return f, d.errs.sorted()
	}
	return f, nil
}

func (p *parser) parse(f *File, src []byte) {
	if !p.decodeFile(f, src) {
		return
	}
	// The YAML tree is unreachable from here on: a large spec's nodes are
	// freed while its programs are compiled.
	p.merged = nil
	p.validate(f)
}

// decodeFile reads the YAML document into f; false when nothing more can
// be checked.
func (p *parser) decodeFile(f *File, src []byte) bool {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(src))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		p.errs = append(p.errs, p.yamlError(err))
		return false
	}
	// yaml.Unmarshal would silently drop everything after a second "---".
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		p.errorAt(p.docStart(next), "", "a spec is one YAML document: remove this second one or its \"---\"")
	case !errors.Is(err, io.EOF):
		p.errs = append(p.errs, p.yamlError(err))
	}
	if len(doc.Content) == 0 {
		p.errorAt(Pos{Line: 1, Col: 1}, "", "empty spec: want a mapping with version, name and streams")
		return false
	}
	root := resolveAlias(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		p.errorf(root, "", "expected a mapping at the top of the spec, got %s", kindName(root))
		return false
	}
	// The version decides how the rest is read, so it is checked first and alone.
	if !p.checkVersion(root) {
		return false
	}
	p.decode(root, reflectValue(f), "", nodePos(root))
	return true
}

func (p *parser) checkVersion(root *yaml.Node) bool {
	for _, kv := range p.pairs(root, func() string { return "" }) {
		if kv.k.Value != "version" {
			continue
		}
		v := resolveAlias(kv.v)
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

// yamlError positions a yaml.v3 syntax error. yaml.v3 gives only a line,
// often that of the enclosing block rather than of the offending token (and
// for parser errors off by one), so the line is found again as the shortest
// prefix of the file that fails with the same problem.
func (p *parser) yamlError(err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil {
		msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
	}
	line = p.yamlErrorLine(max(1, min(line, len(p.lines))), msg)
	text := p.lines[line-1]
	col := 1 + utf8.RuneCountInString(text[:len(text)-len(strings.TrimLeft(text, " "))])
	hint := ""
	switch {
	case strings.HasPrefix(msg, "mapping values are not allowed"):
		// The offending ": " is the one after the key's own, inside a plain
		// value; with none, the line is read as the continuation of the
		// value above it, and its own key is the offence.
		hint = " (check the indentation of this line)"
		t := text + " " // so that a ':' ending the line counts
		if i := strings.Index(t, ": "); i >= 0 {
			col = 1 + utf8.RuneCountInString(text[:i])
			if j := strings.Index(t[i+2:], ": "); j >= 0 {
				col = 1 + utf8.RuneCountInString(text[:i+2+j])
				hint = ` (a value containing ": ", such as a jq object, must be quoted)`
			}
		}
	case strings.HasPrefix(msg, "found character that cannot start any token"):
		if i := strings.IndexAny(text, "\t@`"); i >= 0 {
			col = 1 + utf8.RuneCountInString(text[:i])
			if text[i] == '\t' {
				hint = " (a tab: YAML indents with spaces only)"
			} else {
				hint = fmt.Sprintf(" (a value starting with %q must be quoted)", text[i])
			}
		}
	case strings.HasPrefix(msg, "did not find expected ',' or"):
		// An unclosed flow collection: point at its opening bracket.
		if i := strings.LastIndexAny(text, "{["); i >= 0 {
			col = 1 + utf8.RuneCountInString(text[:i])
		}
		hint = " (a flow mapping or list opened here is not closed)"
	case msg == "did not find expected key", msg == "did not find expected '-' indicator":
		hint = " (check the indentation of this line)"
		if h := p.indentHint(line); h != "" {
			hint = " (check the indentation: " + h + ")"
		}
	}
	return &Error{File: p.file, Pos: Pos{Line: line, Col: col}, Msg: "yaml: " + msg + hint}
}

// indentHint says, for a line whose indentation yaml.v3 found wrong, the
// indentations of the blocks open above it, when the line's matches none:
// the mistake may be the line's, or a line above's (a key one space short
// makes its block's next key the one that fails), and the odd one shows.
// "" when the line's indentation is one of them.
func (p *parser) indentHint(line int) string {
	indent := func(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }
	own := indent(p.lines[line-1])
	type block struct{ indent, line int }
	var open []block
	lowest := own + 1<<20 // above any line's
	for i := line - 2; i >= 0 && lowest > 0; i-- {
		text := p.lines[i]
		rest := strings.TrimLeft(text, " ")
		if rest == "" || strings.HasPrefix(rest, "#") {
			continue
		}
		ind := indent(text)
		if strings.HasPrefix(rest, "- ") && ind+2 < lowest {
			// A list item's keys start after its dash.
			lowest = ind + 2
			open = append(open, block{lowest, i + 1})
		}
		if ind < lowest {
			lowest = ind
			open = append(open, block{ind, i + 1})
		}
	}
	parts := make([]string, 0, len(open))
	for i := len(open) - 1; i >= 0; i-- {
		if open[i].indent == own {
			return ""
		}
		parts = append(parts, fmt.Sprintf("%d (line %d)", open[i].indent, open[i].line))
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("this line, indented %d, matches no block above it, whose keys are indented %s", own, strings.Join(parts, ", "))
}

// yamlErrorLine returns the first line k at or after from such that the
// file's first k lines fail to parse with msg. The problem is usually a few
// lines after the reported one, so those are tried in turn; past them a
// binary search keeps a large file from costing a parse per line.
func (p *parser) yamlErrorLine(from int, msg string) int {
	fails := func(k int) bool {
		dec := yaml.NewDecoder(strings.NewReader(strings.Join(p.lines[:k], "\n")))
		for {
			var n yaml.Node
			if err := dec.Decode(&n); err != nil {
				return !errors.Is(err, io.EOF) && strings.HasSuffix(err.Error(), msg)
			}
		}
	}
	const linear = 16
	for k := from; k <= min(from+linear, len(p.lines)); k++ {
		if fails(k) {
			return k
		}
	}
	lo, hi := from+linear+1, len(p.lines) // the whole file fails: hi is a candidate
	if lo > hi {
		return from
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return hi
}

// docStart is the line of the "---" that starts document n, or of its first
// node.
func (p *parser) docStart(n yaml.Node) Pos {
	line := max(1, min(n.Line, len(p.lines)))
	for i := line - 1; i >= 0; i-- {
		if strings.HasPrefix(p.lines[i], "---") {
			return Pos{Line: i + 1, Col: 1}
		}
	}
	return Pos{Line: line, Col: 1}
}

// parser carries what validation needs beyond the decoder: the source lines
// (to place errors inside embedded programs) and the files a spec refers to.
type parser struct {
	*decoder
	lines []string
	fsys  FS

	spec        *File          // being compiled
	at          *Stream        // whose programs are being compiled; nil for host settings
	cache       *eval.Cache    // shares identical programs
	configTypes map[string]any // samples of the typed config inputs, for expr's checker

	valueNodes, maxValueNodes int // YAML nodes expanded into Value trees, and the cap
	valueTooBig               bool
}

// progPos maps a byte offset inside an embedded program to its file position.
// It walks the scalar's source text alongside its value: the value's
// characters appear in the source in order, except that quotes, escapes,
// indentation and folded line breaks come in between. That one walk serves
// every scalar style, multi-line and escaped ones included.
func (p *parser) progPos(s Str, off int) Pos {
	if s.P.Line < 1 || s.P.Line > len(p.lines) {
		return s.P
	}
	off = max(0, min(off, len(s.V)))

	// src is the file from the scalar's first source character on; base is
	// that character's position.
	base := s.P
	switch s.style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		if s.P.Line == len(p.lines) {
			return s.P
		}
		base = Pos{Line: s.P.Line + 1, Col: 1}
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		base.Col++
	}
	first := p.lines[base.Line-1]
	var b strings.Builder
	b.WriteString(first[runeIndex(first, base.Col-1):])
	// The scalar's source is about as long as its value (escapes and
	// indentation aside): a bounded slice of the file is enough, and keeps
	// many errors in a large file from each copying the rest of it.
	budget := 4*len(s.V) + 1024
	for l := base.Line; l < len(p.lines) && b.Len() < budget; l++ {
		b.WriteByte('\n')
		b.WriteString(p.lines[l])
	}
	src := b.String()

	dq := s.style == yaml.DoubleQuotedStyle
	i := 0 // bytes of src consumed
	for _, r := range s.V[:off] {
		i = matchRune(src, i, r, dq)
	}
	if off < len(s.V) {
		// Skip to the offending character itself.
		r, _ := utf8.DecodeRuneInString(s.V[off:])
		if j, ok := findRune(src, i, r); ok {
			i = j
		}
	}
	before := src[:i]
	nl := strings.Count(before, "\n")
	if nl == 0 {
		return Pos{Line: base.Line, Col: base.Col + utf8.RuneCountInString(before)}
	}
	return Pos{Line: base.Line + nl, Col: 1 + utf8.RuneCountInString(before[strings.LastIndexByte(before, '\n')+1:])}
}

// matchRune consumes, from src[i:], the source text of the value character
// r and returns the new index. When r cannot be found (an escape such as \t
// that is not written as itself), one escape sequence or nothing is consumed.
func matchRune(src string, i int, r rune, dq bool) int {
	if j, ok := findRune(src, i, r); ok {
		return j + utf8.RuneLen(r)
	}
	if dq && i < len(src) && src[i] == '\\' {
		return min(len(src), i+escapeLen(src[i:]))
	}
	return i
}

// findRune returns the index of r in src at or after i, skipping only what
// may stand between two value characters: blanks, line breaks, quotes and
// backslashes.
func findRune(src string, i int, r rune) (int, bool) {
	for j, c := range src[i:] {
		if c == r {
			return i + j, true
		}
		if !strings.ContainsRune(" \t\r\n'\"\\", c) {
			return i, false
		}
	}
	return i, false
}

// escapeLen is the length of the double-quoted escape at the start of s.
func escapeLen(s string) int {
	if len(s) < 2 {
		return len(s)
	}
	switch s[1] {
	case 'x':
		return 4
	case 'u':
		return 6
	case 'U':
		return 10
	}
	return 2
}

// runeIndex is the byte index of the rune at index col in s, clamped to s.
func runeIndex(s string, col int) int {
	for i := range s {
		if col == 0 {
			return i
		}
		col--
	}
	return len(s)
}

// splitLines splits src at the line breaks YAML counts (LF, CRLF, CR, NEL,
// LS and PS), so that line numbers agree with yaml.v3's node positions.
func splitLines(src string) []string {
	var lines []string
	start := 0
	for i := 0; i < len(src); {
		n := 0 // length of the break at i
		switch {
		case src[i] == '\n':
			n = 1
		case src[i] == '\r':
			n = 1
			if i+1 < len(src) && src[i+1] == '\n' {
				n = 2
			}
		case strings.HasPrefix(src[i:], "\u0085"), strings.HasPrefix(src[i:], "\u2028"), strings.HasPrefix(src[i:], "\u2029"):
			_, n = utf8.DecodeRuneInString(src[i:])
		}
		if n == 0 {
			i++
			continue
		}
		lines = append(lines, src[start:i])
		i += n
		start = i
	}
	return append(lines, src[start:])
}

// badChar finds the first character YAML refuses wherever it stands (in a
// comment too): a byte that is not UTF-8, or a control character. A
// UTF-16 file (with its byte-order mark) is left to yaml.v3.
func badChar(src []byte) (off int, msg string, bad bool) {
	if bytes.HasPrefix(src, []byte("\xfe\xff")) || bytes.HasPrefix(src, []byte("\xff\xfe")) {
		return 0, "", false
	}
	for i := 0; i < len(src); {
		r, n := utf8.DecodeRune(src[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			return i, fmt.Sprintf("invalid UTF-8 (byte 0x%02x): a spec is UTF-8 text", src[i]), true
		case !yamlPrintable(r):
			return i, fmt.Sprintf("control character %U is not allowed in YAML (write it as an escape in a double-quoted string)", r), true
		}
		i += n
	}
	return 0, "", false
}

// yamlPrintable reports whether YAML allows r in a file (its c-printable set).
func yamlPrintable(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0x7e || r == 0x85 ||
		r >= 0xa0 && r <= 0xd7ff || r >= 0xe000 && r <= 0xfffd || r >= 0x10000 && r <= 0x10ffff
}

// offsetPos is the position of byte off in src, lines counted as YAML does.
func offsetPos(src []byte, off int) Pos {
	lines := splitLines(string(src[:off]))
	return Pos{Line: len(lines), Col: 1 + utf8.RuneCountInString(lines[len(lines)-1])}
}

// trimBOM drops a UTF-8 byte-order mark some editors add.
func trimBOM(b []byte) []byte { return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) }
