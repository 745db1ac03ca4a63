package eval

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/itchyny/gojq"
)

// JQ is a compiled jq program. It is immutable and safe for concurrent use.
type JQ struct {
	src  string
	code *gojq.Code
	// args are the indexes, among the values of the variables named at
	// compile time, of those the program uses (the only ones compiled in);
	// all says they are 0, 1, …: the first values, in order.
	args []int
	all  bool
	// fast is set when the program is of the subset most mapped fields
	// are written in (".metadata.name", `$parent.id + "/" + .id`,
	// ".tags // []"): First and Run try it before starting gojq's machine.
	fast fastFunc
	// clock says the program calls now, read from its last variable,
	// nowVar, whose value Run and First add (see ContextWithClock).
	clock bool
}

// CompileJQ parses and compiles a jq program. vars are the names of the
// variables the program may use, without '$' (e.g. "parent", "config"); their
// values are passed to [JQ.Run] in the same order. The functions title_case,
// clean_title, path_escape and query_escape are available as filters on the
// input string; $ENV and env are empty, and input/inputs are not allowed.
//
// Only the variables the program uses are compiled in, so its cost grows
// with the program, not with the number of vars.
//
// Programs longer than [MaxProgramLen] or nested deeper than [MaxNesting]
// are refused.
//
// A compile error is an [*Error] whose Offset points into src: for parse errors
// at the offending token, for an undefined variable or function at its first
// use.
func CompileJQ(src string, vars []string) (*JQ, error) {
	for _, v := range vars {
		if !isJQIdent(v) {
			return nil, fmt.Errorf("jq: invalid variable name %q", v)
		}
	}
	return CompileJQVars(src, varList(vars))
}

// Vars are the variables a jq program may use, for [CompileJQVars]: Index
// is the position of a variable's value among the values passed to
// [JQ.Run] (names without '$'); Names lists them all, for messages only.
// It lets a caller whose programs may see thousands of variables answer
// without listing them for every program.
type Vars interface {
	Index(name string) (int, bool)
	Names() []string
}

type varList []string

func (l varList) Index(name string) (int, bool) {
	i := slices.Index(l, name)
	return i, i >= 0
}

func (l varList) Names() []string { return l }

// CompileJQVars is [CompileJQ] with the variables given as [Vars].
func CompileJQVars(src string, vars Vars, opts ...Option) (*JQ, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if e := checkLimits("jq", src); e != nil {
		return nil, e
	}
	q, err := gojq.Parse(src)
	if err != nil {
		return nil, jqParseError(src, err)
	}
	clock := rewriteNow(q)
	// The lexer sees every $name, string interpolations included.
	toks, _ := lexJQ(src)
	type use struct {
		index int
		name  string
	}
	var uses []use
	for _, t := range toks {
		if t.kind != jqVar {
			continue
		}
		i, ok := vars.Index(t.text[1:])
		if ok && !slices.ContainsFunc(uses, func(u use) bool { return u.index == i }) {
			uses = append(uses, use{i, t.text})
		}
	}
	slices.SortFunc(uses, func(a, b use) int { return a.index - b.index })
	args := make([]int, len(uses))
	names := make([]string, len(uses))
	all := true // the values passed to Run can go to gojq as they are
	for i, u := range uses {
		args[i], names[i] = u.index, u.name
		all = all && u.index == i
	}
	if clock {
		names = append(names, nowVar)
		all = false // the values get nowVar's appended
	}
	key := jqKey(src, names)
	code := o.cache.getJQ(key)
	if code == nil {
		if code, err = gojq.Compile(q, append(jqOptions(), gojq.WithVariables(names))...); err != nil {
			return nil, jqCompileError(src, vars.Names(), err)
		}
		o.cache.putJQ(key, code)
	}
	j := &JQ{src: src, code: code, args: args, all: all, clock: clock}
	if !clock {
		j.fast = compileFast(q, vars)
	}
	return j, nil
}

// Source returns the program text given to [CompileJQ].
func (q *JQ) Source() string { return q.src }

// ReadsClock tells a program that calls now: its output depends on the
// run's clock (see ContextWithClock), not only on its input.
func (q *JQ) ReadsClock() bool { return q != nil && q.clock }

// values picks, from the values of every variable named at compile time,
// those of the variables compiled in.
func (q *JQ) values(ctx context.Context, vars []any) []any {
	if q.all {
		return vars[:min(len(q.args), len(vars))]
	}
	out := make([]any, len(q.args), len(q.args)+1)
	for i, a := range q.args {
		if a < len(vars) {
			out[i] = vars[a]
		}
	}
	if q.clock {
		out = append(out, nowValue(ctx))
	}
	return out
}

// tryFast runs the fast evaluator, if the program has one, where gojq
// would run at all: with fewer values than the variables compiled in,
// gojq may fail before the first instruction, even where the fast
// evaluator never reads the missing value (". // $x").
func (q *JQ) tryFast(input any, vars []any) (any, bool) {
	if q.fast == nil || len(vars) < len(q.args) {
		return nil, false
	}
	return q.fast(input, vars)
}

// Run runs the program on input and returns all its outputs. vars are the
// values of the variables named at compile time, in the same order. Values
// must be JSON-shaped (nil, bool, int, float64, *big.Int, json.Number, string,
// []any, map[string]any): decode with json.Decoder.UseNumber, never pass
// structs. The first error the program emits stops it and is returned.
func (q *JQ) Run(ctx context.Context, input any, vars ...any) ([]any, error) {
	if v, ok := q.tryFast(input, vars); ok {
		return []any{v}, nil
	}
	iter := q.code.RunWithContext(ctx, input, q.values(ctx, vars)...)
	var out []any
	for {
		v, ok := iter.Next()
		if !ok {
			return out, nil
		}
		if err, ok := v.(error); ok {
			if isHalt(err) {
				return out, nil
			}
			return nil, fmt.Errorf("jq: %w", err)
		}
		out = append(out, v)
	}
}

// First runs the program and returns its first output; ok is false when the
// program produced no output. Later outputs are not computed.
func (q *JQ) First(ctx context.Context, input any, vars ...any) (v any, ok bool, err error) {
	if v, ok := q.tryFast(input, vars); ok {
		return v, true, nil
	}
	iter := q.code.RunWithContext(ctx, input, q.values(ctx, vars)...)
	v, ok = iter.Next()
	if !ok {
		return nil, false, nil
	}
	if err, isErr := v.(error); isErr {
		if isHalt(err) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("jq: %w", err)
	}
	return v, true, nil
}

// isHalt reports whether err is a plain `halt`, which ends the program
// without an error.
func isHalt(err error) bool {
	var h *gojq.HaltError
	return errors.As(err, &h) && h.Value() == nil
}

func jqParseError(src string, err error) error {
	var pe *gojq.ParseError
	if !errors.As(err, &pe) {
		return &Error{Lang: "jq", Msg: err.Error()}
	}
	// Offset is where the lexer stopped, just after the token.
	off := pe.Offset - len(pe.Token)
	if strings.HasPrefix(pe.Error(), "unterminated string") {
		if _, start := lexJQ(src); start >= 0 {
			off = start
		}
	}
	return &Error{Lang: "jq", Offset: clamp(off, len(src)), Msg: pe.Error()}
}

// jqCompileError locates a gojq compile error in src. gojq reports names but
// no positions for these, so the token is found by scanning the source.
func jqCompileError(src string, vars []string, err error) error {
	msg := err.Error()
	toks, _ := lexJQ(src)
	off := 0
	switch {
	case strings.HasPrefix(msg, "variable not defined: "):
		name := strings.TrimPrefix(msg, "variable not defined: ")
		off = findVar(toks, name, "")
		cands := []string{"$ENV", "$__loc__"}
		for _, v := range vars {
			cands = append(cands, "$"+v)
		}
		for i, t := range toks {
			if t.kind == jqVar && i > 0 && toks[i-1].is(jqIdent, "as") {
				cands = append(cands, t.text)
			}
		}
		msg += didYouMean(name, cands)
	case strings.HasPrefix(msg, "label not defined: "):
		off = findVar(toks, strings.TrimPrefix(msg, "label not defined: "), "break")
	case strings.HasPrefix(msg, "function not defined: "):
		name, arity := splitArity(strings.TrimPrefix(msg, "function not defined: "))
		off = findCall(toks, name, arity)
		msg += didYouMean(name, jqFuncNames(toks))
	case strings.HasPrefix(msg, "input(s)"):
		off = findCall(toks, "input", 0)
		if off == 0 {
			off = findCall(toks, "inputs", 0)
		}
	case strings.HasPrefix(msg, "cannot load module"):
		for _, t := range toks {
			if t.is(jqIdent, "import") || t.is(jqIdent, "include") {
				off = t.off
				break
			}
		}
	}
	return &Error{Lang: "jq", Offset: clamp(off, len(src)), Msg: msg}
}

func splitArity(s string) (string, int) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return s, -1
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return s, -1
	}
	return s[:i], n
}

// findVar returns the offset of the first use of variable name ("$x"),
// preferring uses that do not bind it ("as $x"); with after set, only uses
// right after that keyword ("break $x").
func findVar(toks []jqToken, name, after string) int {
	first := -1
	for i, t := range toks {
		if !t.is(jqVar, name) {
			continue
		}
		prev := jqToken{}
		if i > 0 {
			prev = toks[i-1]
		}
		if after != "" {
			if prev.is(jqIdent, after) {
				return t.off
			}
			continue
		}
		if !prev.is(jqIdent, "as") && !prev.is(jqIdent, "def") {
			return t.off
		}
		if first < 0 {
			first = t.off
		}
	}
	return max(first, 0)
}

// findCall returns the offset of the first call of function name with the
// given arity (-1: any), skipping definitions and object keys.
func findCall(toks []jqToken, name string, arity int) int {
	loose := -1
	for i, t := range toks {
		if !t.is(jqIdent, name) {
			continue
		}
		if loose < 0 {
			loose = t.off
		}
		if i > 0 && toks[i-1].is(jqIdent, "def") {
			continue
		}
		var next jqToken
		if i+1 < len(toks) {
			next = toks[i+1]
		}
		if next.is(jqPunct, ":") {
			continue
		}
		if arity < 0 || (arity > 0) == next.is(jqPunct, "(") {
			return t.off
		}
	}
	return max(loose, 0)
}

// jqFuncNames lists the function names a program could have meant: gojq's
// builtins, ferry's extra functions and the program's own definitions.
func jqFuncNames(toks []jqToken) []string {
	var names []string
	if q, err := gojq.Parse("[builtins]"); err == nil {
		if code, err := gojq.Compile(q); err == nil {
			if v, ok := code.Run(nil).Next(); ok {
				if list, ok := v.([]any); ok {
					for _, b := range list {
						if s, ok := b.(string); ok {
							name, _ := splitArity(s)
							names = append(names, name)
						}
					}
				}
			}
		}
	}
	for _, f := range extraFuncs() {
		names = append(names, f.name)
	}
	for i, t := range toks {
		if t.kind == jqIdent && i > 0 && toks[i-1].is(jqIdent, "def") {
			names = append(names, t.text)
		}
	}
	return names
}

func clamp(off, n int) int {
	return min(max(off, 0), n)
}

func isJQIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIdentByte(s[i], i > 0) {
			return false
		}
	}
	return true
}

func isIdentByte(c byte, tail bool) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || tail && '0' <= c && c <= '9'
}

type jqTokenKind int

const (
	jqNone   jqTokenKind = iota
	jqIdent              // name, keyword, module::name
	jqVar                // $name
	jqField              // .name
	jqFormat             // @name
	jqPunct              // one byte of anything else that is not space
)

type jqToken struct {
	kind jqTokenKind
	text string
	off  int
}

func (t jqToken) is(kind jqTokenKind, text string) bool {
	return t.kind == kind && t.text == text
}

// lexJQ splits a jq program into the tokens needed to locate names: it skips
// comments, string literals (but lexes the code inside their \( … )
// interpolations) and numbers. unterminated is the offset of the opening quote
// of an unterminated string literal, or -1.
func lexJQ(src string) (toks []jqToken, unterminated int) {
	l := jqLexer{src: src, unterminated: -1}
	l.code(0, false)
	return l.toks, l.unterminated
}

type jqLexer struct {
	src          string
	toks         []jqToken
	unterminated int
}

// code lexes from i; inside an interpolation it stops after the ')' that
// closes it and returns the offset after it.
func (l *jqLexer) code(i int, interp bool) int {
	depth := 0
	src := l.src
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '"':
			i = l.str(i)
		case c == '$' && i+1 < len(src) && isIdentByte(src[i+1], false):
			j := l.ident(i + 1)
			l.toks = append(l.toks, jqToken{jqVar, src[i:j], i})
			i = j
		case (c == '.' || c == '@') && i+1 < len(src) && isIdentByte(src[i+1], false):
			j := i + 2
			for j < len(src) && isIdentByte(src[j], true) {
				j++
			}
			kind := jqField
			if c == '@' {
				kind = jqFormat
			}
			l.toks = append(l.toks, jqToken{kind, src[i:j], i})
			i = j
		case isIdentByte(c, false):
			j := l.ident(i)
			l.toks = append(l.toks, jqToken{jqIdent, src[i:j], i})
			i = j
		case '0' <= c && c <= '9':
			for i < len(src) && ('0' <= src[i] && src[i] <= '9' || src[i] == '.' ||
				src[i] == 'e' || src[i] == 'E' ||
				(src[i] == '+' || src[i] == '-') && (src[i-1] == 'e' || src[i-1] == 'E')) {
				i++
			}
		default:
			if c == '(' {
				depth++
			} else if c == ')' {
				if interp && depth == 0 {
					return i + 1
				}
				depth--
			}
			l.toks = append(l.toks, jqToken{jqPunct, src[i : i+1], i})
			i++
		}
	}
	return i
}

// ident returns the end of the identifier (with module path) starting at i.
func (l *jqLexer) ident(i int) int {
	src := l.src
	for {
		for i < len(src) && isIdentByte(src[i], true) {
			i++
		}
		if i+2 < len(src) && src[i] == ':' && src[i+1] == ':' && isIdentByte(src[i+2], false) {
			i += 2
			continue
		}
		return i
	}
}

// str skips the string literal whose opening quote is at i.
func (l *jqLexer) str(i int) int {
	start := i
	src := l.src
	for i++; i < len(src); {
		switch src[i] {
		case '"':
			return i + 1
		case '\\':
			if i+1 < len(src) && src[i+1] == '(' {
				i = l.code(i+2, true)
				continue
			}
			i += 2
		default:
			i++
		}
	}
	if l.unterminated < 0 {
		l.unterminated = start
	}
	return i
}
