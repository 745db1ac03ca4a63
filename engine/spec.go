package engine

import (
	"errors"
	"fmt"

	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/spec"
)

// Spec is a loaded, valid spec, ready to run.
type Spec struct{ f *spec.File }

// Load reads, parses and validates the spec at path. Problems in the spec
// come back as an error for which [SpecErrors] lists each one; a file that
// cannot be read is another error.
func Load(path string) (*Spec, error) {
	f, err := spec.Load(path)
	if err != nil {
		return nil, err
	}
	return &Spec{f: f}, nil
}

// Name is the spec's name: its tables' schema and its Port entities' owner.
func (s *Spec) Name() string { return s.f.Name.V }

// Path is the file the spec was loaded from.
func (s *Spec) Path() string { return s.f.Path }

// Streams lists the spec's streams, in spec order.
func (s *Spec) Streams() []string { return s.f.Streams.Keys() }

// Tables lists the spec's tables, in spec order.
func (s *Spec) Tables() []string { return s.f.Tables.Keys() }

// WritesPort reports whether the spec maps entities to Port.
func (s *Spec) WritesPort() bool { return s.f.Port != nil && len(s.f.Port.Entities) > 0 }

// Schema returns the JSON Schema of the spec format.
func Schema() []byte { return spec.Schema() }

// SpecError is one problem of a spec file, at its position.
type SpecError struct {
	File      string
	Line, Col int    // 1-based; 0 when the problem has no position
	Path      string // YAML path, e.g. streams.envs.request.path
	Msg       string
}

func (e SpecError) Error() string {
	return (&spec.Error{File: e.File, Pos: spec.Pos{Line: e.Line, Col: e.Col}, Path: e.Path, Msg: e.Msg}).Error()
}

// Warnings lists what the spec has that is valid but likely mistaken (a
// secret with a default in the spec, a primary-key column the row never
// makes, …), sorted by file and position. They do not stop a run; `ferry
// validate --strict` fails on them.
func (s *Spec) Warnings() []SpecError { return specErrors(s.f.Warnings()) }

// SpecErrors lists the spec problems inside err, sorted by position; nil
// when err holds none.
func SpecErrors(err error) []SpecError {
	return specErrors(spec.AsList(err))
}

func specErrors(list spec.ErrorList) []SpecError {
	if list == nil {
		return nil
	}
	out := make([]SpecError, len(list))
	for i, e := range list {
		out[i] = SpecError{File: e.File, Line: e.Pos.Line, Col: e.Pos.Col, Path: e.Path, Msg: e.Msg}
	}
	return out
}

// The run's live counters and outcome, as the runner keeps them.
type (
	Stats     = runner.Stats
	Snapshot  = runner.Snapshot
	Summary   = runner.Summary
	Failure   = runner.Failure
	Duplicate = runner.Duplicate
)

// UsageError is a problem with how ferry was called rather than with the
// spec or the run: a missing credential, an unknown stream, a destination
// that cannot be used. The CLI exits 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usage(format string, args ...any) error { return &UsageError{Err: fmt.Errorf(format, args...)} }

// Exit codes of ferry's commands.
const (
	ExitOK          = 0
	ExitFailed      = 1   // the run failed, or some of it did
	ExitUsage       = 2   // bad command line, config or destination
	ExitInvalidSpec = 3   // the spec has problems
	ExitInterrupted = 130 // stopped by Ctrl-C or SIGTERM (128 + SIGINT)
)

// ExitCode maps the error of a command to its exit code: the one place
// that does. interrupted tells a cancellation by the user from any other.
func ExitCode(err error, interrupted bool) int {
	var ue *UsageError
	var ce *ConfigError
	var se SpecError // a warning made an error (validate --strict)
	switch {
	case err == nil:
		return ExitOK
	case SpecErrors(err) != nil, errors.As(err, &se):
		return ExitInvalidSpec
	case errors.As(err, &ue), errors.As(err, &ce):
		return ExitUsage
	case interrupted:
		return ExitInterrupted
	}
	return ExitFailed
}
