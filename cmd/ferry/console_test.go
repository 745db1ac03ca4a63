package main

import (
	"bytes"
	"strings"
	"testing"
)

// writes records each Write separately.
type writes struct{ list []string }

func (w *writes) Write(p []byte) (int, error) {
	w.list = append(w.list, string(p))
	return len(p), nil
}

// TestConsoleFrames: while the live block is up, each log write is one
// terminal write that erases the block, prints the log line, redraws the
// block and shows the cursor again; a partial line waits for its end;
// stopping erases the block and prints what was left.
func TestConsoleFrames(t *testing.T) {
	w := &writes{}
	c := newConsole(w, -1)
	block := []string{"head", "row"}
	c.mu.Lock()
	c.render = func(int, int) []string { return block }
	c.frame(nil)
	c.mu.Unlock()
	if len(w.list) != 1 || w.list[0] != hideCursor+eraseDown+"head\nrow\n"+showCursor {
		t.Fatalf("first frame = %q", w.list)
	}
	c.Write([]byte("level=WARN msg=one\n"))
	if len(w.list) != 2 {
		t.Fatalf("a log line took %d writes, want 1", len(w.list)-1)
	}
	want := hideCursor + "\r\x1b[2A" + eraseDown + "level=WARN msg=one\n" + "head\nrow\n" + showCursor
	if w.list[1] != want {
		t.Errorf("log frame = %q, want %q", w.list[1], want)
	}
	c.Write([]byte("partial"))
	if len(w.list) != 2 {
		t.Errorf("a partial line was written: %q", w.list[2:])
	}
	c.stop = make(chan struct{})
	c.stopLive()
	last := w.list[len(w.list)-1]
	if !strings.Contains(last, "\r\x1b[2A"+eraseDown+"partial\n") || strings.Contains(last, "head") || !strings.HasSuffix(last, showCursor) {
		t.Errorf("stop frame = %q", last)
	}
	// Without a block, writes go straight through.
	var plain bytes.Buffer
	c = newConsole(&plain, -1)
	c.Write([]byte("a\n"))
	if plain.String() != "a\n" {
		t.Errorf("plain console wrote %q", plain.String())
	}
}
