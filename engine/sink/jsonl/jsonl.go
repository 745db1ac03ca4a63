// Package jsonl is the dry-run destination: every row and entity that a run
// would write is printed as one JSON object per line, with its target and
// operation, and nothing is written anywhere else.
package jsonl

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/ferry-etl/ferry/engine/sink"
)

// Writer prints rows and entities as JSON Lines. It is safe for concurrent
// use; each line is written whole.
type Writer struct {
	mu     sync.Mutex
	w      *bufio.Writer
	buf    bytes.Buffer
	enc    *json.Encoder
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
	jw.enc = json.NewEncoder(&jw.buf)
	jw.enc.SetEscapeHTML(false)
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

type rowLine struct {
	Table string         `json:"table"`
	Op    string         `json:"op"`
	Row   map[string]any `json:"row"`
}

type entityLine struct {
	Blueprint string         `json:"blueprint"`
	Op        string         `json:"op"`
	Entity    map[string]any `json:"entity"`
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
	return w.line(rowLine{Table: r.Table, Op: op(r.Merge), Row: w.clean(r.Data)})
}

// Entity prints one Port entity.
func (w *Writer) Entity(_ context.Context, e sink.Entity) error {
	return w.line(entityLine{Blueprint: e.Blueprint, Op: op(e.Merge), Entity: w.clean(e.Data)})
}

// clean returns m with every secret redacted from its strings.
func (w *Writer) clean(m map[string]any) map[string]any {
	if w.redact == nil {
		return m
	}
	return w.value(m).(map[string]any)
}

func (w *Writer) value(v any) any {
	switch x := v.(type) {
	case string:
		return w.redact(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[w.redact(k)] = w.value(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = w.value(e)
		}
		return out
	}
	return v
}

func (w *Writer) line(v any) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Reset()
	if err := w.enc.Encode(v); err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	if _, err := w.w.Write(w.buf.Bytes()); err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	return nil
}

// Flush writes out buffered lines.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Flush()
}
