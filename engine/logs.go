package engine

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
)

// redactingLogger returns log with the message and the attributes of each
// line redacted by lr (redact to begin with; a run switches it to its
// pool's, which learns the tokens it fetches): the engine's lines name
// parents, reasons and errors, any of which may quote a secret (an expr
// error quotes the value it failed on), and slog redacts nothing itself.
func redactingLogger(log *slog.Logger, redact func(string) string) (_ *slog.Logger, lr *logRedaction) {
	lr = &logRedaction{}
	lr.use(redact)
	return slog.New(&redactHandler{next: log.Handler(), lr: lr}), lr
}

// logRedaction is the redaction a redactingLogger applies, switched once
// the run's pool exists.
type logRedaction struct {
	f atomic.Pointer[func(string) string]
}

func (lr *logRedaction) use(f func(string) string) { lr.f.Store(&f) }

func (lr *logRedaction) text(s string) string { return (*lr.f.Load())(s) }

type redactHandler struct {
	next slog.Handler
	lr   *logRedaction
}

func (h *redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *redactHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.lr.text(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

// attr is a redacted: a text as text, an error, a Stringer or any other
// value by the text it prints as, replaced by that text redacted only when
// redaction changed it (a list stays a list in JSON logs).
func (h *redactHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.lr.text(v.String()))
	case slog.KindGroup:
		as := v.Group()
		out := make([]slog.Attr, len(as))
		for i, x := range as {
			out[i] = h.attr(x)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	case slog.KindAny:
		var s string
		switch x := v.Any().(type) {
		case error:
			s = x.Error()
		case fmt.Stringer:
			s = x.String()
		default:
			s = fmt.Sprint(x)
		}
		if clean := h.lr.text(s); clean != s {
			return slog.String(a.Key, clean)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h *redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = h.attr(a)
	}
	return &redactHandler{next: h.next.WithAttrs(out), lr: h.lr}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{next: h.next.WithGroup(name), lr: h.lr}
}
