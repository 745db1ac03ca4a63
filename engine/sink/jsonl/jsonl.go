// Package jsonl is the dry-run destination: every row and entity that a run
// would write is printed as one JSON object per line, with its target and
// operation, and nothing is written anywhere else.
package jsonl

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/ferry-etl/ferry/engine/internal/jsonv"
	"github.com/ferry-etl/ferry/engine/sink"
)

// Writer prints rows and entities as JSON Lines. It is safe for concurrent
// use; each line is written whole.
type Writer struct {
	mu     sync.Mutex
	w      *bufio.Writer
	buf    []byte              // the line being encoded, reused for the next
	redact func(string) string // nil without secrets
}

// minSecret is the shortest secret redacted, as in package fetch: a value
// of a character or two is no secret worth the name, and replacing it
// would garble every line.
const minSecret = 4

// New returns a Writer on w. Call Flush when done. Every secret value is
// replaced by REDACTED inside the printed strings (keys and values): a
// mapping, or an API echoing its request, must not leak a token to stdout.
// Redaction works on the decoded values, so every line stays valid JSON.
func New(w io.Writer, secrets ...string) *Writer {
	jw := &Writer{w: bufio.NewWriterSize(w, 64<<10)}
	var sec []string
	for _, s := range secrets {
		if len(s) >= minSecret {
			sec = append(sec, s)
		}
	}
	if len(sec) > 0 {
		// Longest first, so a secret that contains another goes whole.
		slices.SortFunc(sec, func(a, b string) int { return len(b) - len(a) })
		args := make([]string, 0, 2*len(sec))
		for _, s := range sec {
			args = append(args, s, "REDACTED")
		}
		jw.redact = strings.NewReplacer(args...).Replace
	}
	return jw
}

// NewRedact is New with redact hiding the secrets from every printed
// string, for a caller that learns secrets while it prints (tokens fetched
// during a run).
func NewRedact(w io.Writer, redact func(string) string) *Writer {
	jw := New(w)
	jw.redact = redact
	return jw
}

// op is what the destination does with a row or entity: upsert, or merge
// into the one of the same key the run wrote before (on_duplicate: merge).
func op(merge bool) string {
	if merge {
		return "merge"
	}
	return "upsert"
}

// Row prints one table row.
func (w *Writer) Row(_ context.Context, r sink.Row) error {
	return w.line("table", r.Table, op(r.Merge), "row", w.clean(r.Data))
}

// Entity prints one Port entity.
func (w *Writer) Entity(_ context.Context, e sink.Entity) error {
	return w.line("blueprint", e.Blueprint, op(e.Merge), "entity", w.clean(e.Data))
}

// clean returns m with every secret redacted from its strings.
func (w *Writer) clean(m map[string]any) map[string]any {
	if w.redact == nil {
		return m
	}
	v, _ := w.value(m)
	return v.(map[string]any)
}

// value returns v with every secret redacted from its strings, and
// whether that changed anything: an object or list without a secret is
// returned as it is instead of copied, as most are.
func (w *Writer) value(v any) (any, bool) {
	switch x := v.(type) {
	case string:
		r := w.redact(x)
		if r == x {
			return v, false // v as it is: boxing r would allocate
		}
		return r, true
	case map[string]any:
		return w.object(x)
	case []any:
		if x == nil {
			return []any{}, true // printed [] as the copy always was
		}
		var out []any // the copy, from the first element changed on
		for i, e := range x {
			r, changed := w.value(e)
			if changed && out == nil {
				out = make([]any, len(x))
				copy(out, x[:i])
			}
			if out != nil {
				out[i] = r
			}
		}
		if out == nil {
			return x, false
		}
		return out, true
	}
	return v, false
}

// object is value for an object: a copy only if a key or a value changed.
// The keys that changed are all removed from the copy before any is added
// under its redacted name, so a key redacted into the old name of another
// key that changed does not take that other's place. (Two keys redacted
// into one name, or one into the name of a key left as it is, print one of
// their values, as the old copy did; this is a dry run's printing only.)
func (w *Writer) object(x map[string]any) (any, bool) {
	type change struct {
		from, to string
		v        any
	}
	if x == nil {
		return map[string]any{}, true // printed {} as the copy always was
	}
	var changes []change
	for k, e := range x {
		rk := w.redact(k)
		r, changed := w.value(e)
		if changed || rk != k {
			changes = append(changes, change{k, rk, r})
		}
	}
	if changes == nil {
		return x, false
	}
	out := maps.Clone(x)
	for _, c := range changes {
		delete(out, c.from)
	}
	for _, c := range changes {
		out[c.to] = c.v
	}
	return out, true
}

// line prints {"<targetKey>":target,"op":op,"<dataKey>":data} encoded
// with jsonv: byte for byte what encoding/json's Encoder (HTML not
// escaped) wrote for the struct of these fields, without its reflection (a
// dry run prints every entity). The keys and op are literals that need no
// escaping.
func (w *Writer) line(targetKey, target, op, dataKey string, data map[string]any) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := append(w.buf[:0], `{"`...)
	b = append(b, targetKey...)
	b = append(b, `":`...)
	b, err := jsonv.Append(b, target, false)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	b = append(b, `,"op":"`...)
	b = append(b, op...)
	b = append(b, `","`...)
	b = append(b, dataKey...)
	b = append(b, `":`...)
	if b, err = jsonv.Append(b, data, false); err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	b = append(b, "}\n"...)
	if cap(b) <= maxKeptLine {
		w.buf = b // reused; an unusually long line's buffer is let go
	} else {
		w.buf = nil
	}
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	return nil
}

// maxKeptLine is the largest line buffer a Writer keeps for the next line.
const maxKeptLine = 1 << 20

// Flush writes out buffered lines.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Flush()
}
