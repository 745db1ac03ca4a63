// Package panics turns a panic into an error where a goroutine of the
// engine starts (and where a run enters it): a panic left alone ends the
// process with its message and stack on stderr, unredacted, and the
// message may quote a secret (a URL with a key, a header, a record).
package panics

import (
	"fmt"
	"log/slog"
	"runtime/debug"
)

// Error is a recovered panic: a bug in ferry, not in the spec or the API.
// Its text is redacted when it is made.
type Error struct {
	Value string // the panic's value, as text
}

func (e *Error) Error() string {
	return "internal error (a bug in ferry; the stack is logged at --log-level debug): panic: " + e.Value
}

// New makes the error of the panic p, its value and stack redacted by
// redact (nil: nothing to hide), and logs the stack at debug level for
// whoever debugs it. It is called in the deferred function that
// recovered p, so the stack is the panicking goroutine's.
func New(p any, redact func(string) string, log *slog.Logger) *Error {
	e := &Error{Value: fmt.Sprint(p)}
	stack := string(debug.Stack())
	if redact != nil {
		e.Value, stack = redact(e.Value), redact(stack)
	}
	if log != nil {
		log.Debug("internal error: where ferry panicked", "panic", e.Value, "stack", stack)
	}
	return e
}

// Recover, deferred itself (recover works only there), sets *err to the
// panic in progress, if any (see New).
func Recover(err *error, redact func(string) string, log *slog.Logger) {
	if p := recover(); p != nil {
		*err = New(p, redact, log)
	}
}

// Guard is f with a panic in it returned as its error (see New): for the
// functions an errgroup runs, each on its own goroutine.
func Guard(f func() error, redact func(string) string, log *slog.Logger) func() error {
	return func() (err error) {
		defer Recover(&err, redact, log)
		return f()
	}
}
