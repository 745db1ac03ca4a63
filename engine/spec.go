package engine

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/internal/panics"
	"github.com/ferry-etl/ferry/engine/internal/suggest"
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

// Parse reads and validates a spec given as bytes (e.g. from stdin); name
// is used in error positions, and files it refers to (port.blueprints)
// are looked up in dir.
func Parse(name string, src []byte, dir string) (*Spec, error) {
	f, err := spec.Parse(name, src, os.DirFS(dir))
	if err != nil {
		return nil, err
	}
	f.Dir = dir
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

// Blueprints lists the blueprints the spec's entity mappings produce, in
// the order they first appear.
func (s *Spec) Blueprints() []string {
	var out []string
	if s.f.Port == nil {
		return nil
	}
	for _, e := range s.f.Port.Entities {
		if !slices.Contains(out, e.Blueprint.V) {
			out = append(out, e.Blueprint.V)
		}
	}
	return out
}

// Graph is a spec's data flow: streams, what drives them, and what they
// are written to.
type Graph struct {
	Name    string
	Streams []GraphStream
}

// GraphStream is one stream of a Graph.
type GraphStream struct {
	Name string
	// ForEach is the parent stream it fans out from; BatchOf the sibling
	// whose records it takes as a batch ("" for none).
	ForEach, BatchOf string
	When             string   // its `when` condition, if any
	Tables           []string // tables mapped from it
	Blueprints       []string // blueprints mapped from it
	// Recurse is its recurse.when, when it fans out from its own records
	// (a self-edge), and MaxDepth its recurse.max_depth.
	Recurse  string
	MaxDepth int
}

// Graph returns the spec's stream DAG with its tables and blueprints.
func (s *Spec) Graph() Graph {
	g := Graph{Name: s.Name()}
	for _, it := range s.f.Streams.Items {
		st := &it.Value
		gs := GraphStream{Name: st.Name, When: st.When.V}
		if p := st.Parent(); p != nil {
			gs.ForEach = p.Name
		}
		if b := st.BatchOf(); b != nil {
			gs.BatchOf = b.Name
		}
		if rc := st.Recurse; rc != nil {
			gs.Recurse, gs.MaxDepth = rc.When.V, rc.MaxDepth.V
		}
		for _, t := range s.f.Tables.Items {
			if t.Value.FedBy(st.Name) {
				gs.Tables = append(gs.Tables, t.Key)
			}
		}
		if s.f.Port != nil {
			for _, e := range s.f.Port.Entities {
				if e.From.V == st.Name && !slices.Contains(gs.Blueprints, e.Blueprint.V) {
					gs.Blueprints = append(gs.Blueprints, e.Blueprint.V)
				}
			}
		}
		g.Streams = append(g.Streams, gs)
	}
	return g
}

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
	RunError  = runner.RunError
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

// Exit codes of `ferry plan`, which follows `terraform plan
// -detailed-exitcode`: ExitOK when nothing would change, ExitPlanChanges
// when something would, ExitFailed when the plan failed (extraction
// failures included: the plan is then incomplete). Since 2 then means
// "changes", plan's own usage and config errors exit ExitPlanUsage (64,
// EX_USAGE of sysexits.h) rather than ExitUsage; an invalid spec is still
// ExitInvalidSpec and an interrupt ExitInterrupted.
const (
	ExitPlanChanges = 2
	ExitPlanUsage   = 64
)

// ErrPlanChanges ends a plan that found changes (wrapped in a PlanError).
var ErrPlanChanges = errors.New("the plan has changes")

// PlanError is the error of `ferry plan`: ExitCode maps it with plan's
// codes.
type PlanError struct{ Err error }

func (e *PlanError) Error() string { return e.Err.Error() }
func (e *PlanError) Unwrap() error { return e.Err }

// ExitCode maps the error of a command to its exit code: the one place
// that does. interrupted tells a cancellation by the user from any other.
func ExitCode(err error, interrupted bool) int {
	var ue *UsageError
	var ce *ConfigError
	var se SpecError // a warning made an error (validate --strict)
	var pe *PlanError
	var te *fetch.SetupError // a TLS file named through config
	if errors.As(err, &pe) {
		switch code := ExitCode(pe.Err, interrupted); {
		case errors.Is(pe.Err, ErrPlanChanges):
			return ExitPlanChanges
		case code == ExitUsage:
			return ExitPlanUsage
		default:
			return code
		}
	}
	var ie *panics.Error
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ie):
		// A bug in ferry (a panic) fails the command whatever else
		// happened: an interrupt too.
		return ExitFailed
	case SpecErrors(err) != nil, errors.As(err, &se):
		return ExitInvalidSpec
	case errors.As(err, &ue), errors.As(err, &ce), errors.As(err, &te):
		return ExitUsage
	case interrupted:
		return ExitInterrupted
	}
	return ExitFailed
}

// Closest returns the candidate name nearest to a misspelt one ("" for
// none close enough), for "did you mean" advice.
func Closest(name string, candidates []string) string { return suggest.Closest(name, candidates) }
