package panics

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// A panic in a guarded function is its error, its value and its logged
// stack redacted; the stack names where it panicked.
func TestGuardRedacts(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	redact := func(s string) string { return strings.ReplaceAll(s, "s3cret", "REDACTED") }
	err := Guard(func() error { panicWith("key s3cret"); return nil }, redact, log)()
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want an *Error", err)
	}
	if msg := err.Error(); strings.Contains(msg, "s3cret") || !strings.Contains(msg, "internal error") || !strings.Contains(msg, "key REDACTED") {
		t.Errorf("err = %q", msg)
	}
	if l := logs.String(); strings.Contains(l, "s3cret") || !strings.Contains(l, "panicWith") {
		t.Errorf("logged stack holds the secret or not the panicking function:\n%s", l)
	}
	if err := Guard(func() error { return nil }, redact, log)(); err != nil {
		t.Errorf("no panic: err = %v", err)
	}
}

//go:noinline
func panicWith(s string) { panic(s) }
