package engine

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

type stringer string

func (s stringer) String() string { return string(s) }

// A redacting logger hides a secret in the message and in every kind of
// attribute (text, error, Stringer, other values, groups, With's), and
// leaves a value that holds none as it is (a list stays a JSON list); it
// redacts by what its redaction is switched to.
func TestRedactingLogger(t *testing.T) {
	var b bytes.Buffer
	hide := func(s string) string { return strings.ReplaceAll(s, "s3cret", "REDACTED") }
	log, lr := redactingLogger(slog.New(slog.NewJSONHandler(&b, nil)), hide)
	log.With("w", "with s3cret").WithGroup("g").Info("msg s3cret", "s", "a s3cret", "e", errors.New("err s3cret"), "st", stringer("str s3cret"),
		"list", []string{"x", "s3cret"}, "plain", []string{"x", "y"}, slog.Group("grp", "in", "s3cret"))
	out := b.String()
	if strings.Contains(out, "s3cret") || strings.Count(out, "REDACTED") != 7 || !strings.Contains(out, `"plain":["x","y"]`) {
		t.Errorf("logged %s", out)
	}
	b.Reset()
	lr.use(func(s string) string { return strings.ReplaceAll(s, "other", "REDACTED") })
	log.Info("other s3cret")
	if !strings.Contains(b.String(), "REDACTED s3cret") {
		t.Errorf("not switched: %s", b.String())
	}
}
