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
	"sync"

	"github.com/ferry-etl/ferry/engine/sink"
)

// Writer prints rows and entities as JSON Lines. It is safe for concurrent
// use; each line is written whole.
type Writer struct {
	mu      sync.Mutex
	w       *bufio.Writer
	buf     bytes.Buffer
	enc     *json.Encoder
	secrets [][]byte
}

// New returns a Writer on w. Call Flush when done. Every secret value is
// replaced by REDACTED in what is printed: a mapping (or an API echoing its
// request) must not leak a token to stdout.
func New(w io.Writer, secrets ...string) *Writer {
	jw := &Writer{w: bufio.NewWriterSize(w, 64<<10)}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		// Secrets are matched as they appear inside the printed JSON
		// strings: escaped the way the line encoder escapes (no HTML
		// escaping).
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s) // a string always encodes
		quoted := bytes.TrimSpace(b.Bytes())
		jw.secrets = append(jw.secrets, quoted[1:len(quoted)-1])
	}
	jw.enc = json.NewEncoder(&jw.buf)
	jw.enc.SetEscapeHTML(false)
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

// Row prints one table row.
func (w *Writer) Row(_ context.Context, r sink.Row) error {
	return w.line(rowLine{Table: r.Table, Op: "upsert", Row: r.Data})
}

// Entity prints one Port entity.
func (w *Writer) Entity(_ context.Context, e sink.Entity) error {
	return w.line(entityLine{Blueprint: e.Blueprint, Op: "upsert", Entity: e.Data})
}

func (w *Writer) line(v any) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Reset()
	if err := w.enc.Encode(v); err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	line := w.buf.Bytes()
	for _, s := range w.secrets {
		if bytes.Contains(line, s) {
			line = bytes.ReplaceAll(line, s, []byte("REDACTED"))
		}
	}
	if _, err := w.w.Write(line); err != nil {
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
