package jsonl

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine/sink"
)

func TestLinesAndRedaction(t *testing.T) {
	var out bytes.Buffer
	w := New(&out, "s3cr\"et<", "")
	ctx := t.Context()
	if err := w.Row(ctx, sink.Row{Table: "t", Data: map[string]any{"b": json.Number("1.50"), "a": "x & <y>", "tok": "s3cr\"et<"}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Entity(ctx, sink.Entity{Blueprint: "bp", Data: map[string]any{"identifier": "a/b"}}); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Error("written before Flush: output is buffered")
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := `{"table":"t","op":"upsert","row":{"a":"x & <y>","b":1.50,"tok":"REDACTED"}}
{"blueprint":"bp","op":"upsert","entity":{"identifier":"a/b"}}
`
	if got := out.String(); got != want {
		t.Errorf("got:\n%swant:\n%s", got, want)
	}
	if strings.Contains(out.String(), "s3cr") {
		t.Error("secret printed")
	}
}

// TestShortSecretsKeepLinesValid: a secret of a character or two is left
// alone (as in package fetch); a real one is redacted inside strings only,
// so every line stays valid JSON even when a secret equals a key, a
// literal such as true, or part of a number.
func TestShortSecretsKeepLinesValid(t *testing.T) {
	var out bytes.Buffer
	w := New(&out, "t", "true", "1234", "tok")
	ctx := t.Context()
	rows := []map[string]any{
		{"true": true, "n": json.Number("12345"), "s": "a true story", "t": "tt"},
		{"list": []any{"1234", map[string]any{"k": "x1234y"}}},
	}
	for _, r := range rows {
		if err := w.Row(ctx, sink.Row{Table: "t", Data: r, Merge: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := `{"table":"t","op":"merge","row":{"REDACTED":true,"n":12345,"s":"a REDACTED story","t":"tt"}}
{"table":"t","op":"merge","row":{"list":["REDACTED",{"k":"xREDACTEDy"}]}}
`
	if got := out.String(); got != want {
		t.Errorf("got:\n%swant:\n%s", got, want)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("invalid JSON line: %s", line)
		}
	}
}

// A line longer than maxKeptLine is printed whole, and its buffer is not
// kept for the lines after it (one huge entity would otherwise hold its
// size for the rest of the run); a short line's buffer is.
func TestLongLineBufferNotKept(t *testing.T) {
	var out bytes.Buffer
	w := New(&out)
	big := strings.Repeat("x", maxKeptLine+1)
	if err := w.Entity(context.Background(), sink.Entity{Blueprint: "b", Data: map[string]any{"identifier": "a", "title": big}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), big) {
		t.Fatal("the long line was not printed whole")
	}
	if cap(w.buf) > maxKeptLine {
		t.Errorf("a %d-byte buffer kept after a long line", cap(w.buf))
	}
	if err := w.Entity(context.Background(), sink.Entity{Blueprint: "b", Data: map[string]any{"identifier": "c"}}); err != nil {
		t.Fatal(err)
	}
	if cap(w.buf) == 0 {
		t.Error("a short line's buffer was not kept")
	}
}
