package jsonl

import (
	"bytes"
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
