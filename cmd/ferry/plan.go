package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferry-etl/ferry/engine"
)

const planUsage = `Usage: ferry plan SPEC [flags]

Shows what 'ferry run SPEC' would change, writing nothing: it extracts as
--dry-run does, reads the table destination and the spec's Port
blueprints and owned entities, and prints per table and blueprint the
rows and entities a run would create, update (each changed column or
field, old → new, secrets redacted), delete or leave unchanged, and the
deletions the safety rules would refuse, and why. It takes the flags of
'ferry run' that decide what a run does. Logs go to stderr.

Examples:
  ferry plan specs/humanitec.yaml --demo
  ferry plan specs/harness.yaml --dest postgres://user@db/warehouse --format json > plan.json
  ferry plan spec.yaml && echo "nothing to do"

Exit codes (as terraform plan -detailed-exitcode): 0 nothing would
change, 2 something would, 1 the plan failed (extraction failures
included: the plan shown is then incomplete; also when a run would fail
to write entities: conflicts, invalid ones), 3 invalid spec, 64 usage or
config error (not 2, which means changes), 130 interrupted.
`

// cmdPlan is `ferry plan`. Its errors are PlanErrors, which ExitCode maps
// with plan's exit codes.
func cmdPlan(ctx context.Context, a *app, args []string) error {
	err := runPlan(ctx, a, args)
	if err == nil || errors.Is(err, errHelp) {
		return err
	}
	return &engine.PlanError{Err: err}
}

// planFlags are the flags of `ferry plan`: run's that decide what a run
// would do, and --format.
type planFlags struct {
	inputFlags
	format, logLevel, logFormat *choiceFlag
	fullRefresh                 *bool
	resumeWithin                *time.Duration
}

func definePlanFlags(fs *flag.FlagSet) *planFlags {
	f := &planFlags{inputFlags: inputFlags{sets: setFlag{}}}
	f.format = choice(fs, "format", "text", "output `format`: text, or json (for tools)", "text", "json")
	f.demo = fs.Bool("demo", false, "plan against the built-in simulator of a shipped spec (and an empty built-in Port)")
	f.dest = fs.String("dest", "", "table `destination` to compare with: sqlite:FILE (default sqlite:ferry.db) or postgres://…")
	f.config = fs.String("config", "", "YAML or JSON `file` of config values (\"-\": stdin)")
	fs.Var(f.sets, "set", "config value `key=value` (repeatable; highest precedence)")
	f.streams = fs.String("streams", "", "comma-separated `streams` to produce (their parents are fetched too)")
	f.fullRefresh = fs.Bool("full-refresh", false, "plan a run that ignores saved checkpoints and incremental cursors")
	f.resumeWithin = duration(fs, "resume-within", engine.DefaultResumeWithin, "an unfinished sync younger than this `duration` is resumed (and deletes no Port entity)")
	f.noDelete = fs.Bool("no-delete", false, "plan a run that never deletes stale Port entities")
	fs.Var(&f.adoptOwners, "adopt-owner", "plan a run that takes over this former `owner`'s Port entities (repeatable)")
	f.adoptUnowned = fs.Bool("adopt-unowned", false, "plan a run that takes over Port entities without an owner")
	f.logLevel = choice(fs, "log-level", "warn", "`level`: debug, info, warn or error", "debug", "info", "warn", "error")
	f.logFormat = choice(fs, "log-format", "text", "`format` of stderr: text or json", "text", "json")
	return f
}

func runPlan(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	f := definePlanFlags(fs)
	fs.Usage = usageFunc(fs, planUsage)
	log, sp, in, err := a.specAndInputs(ctx, fs, args, &f.inputFlags, f.logLevel, f.logFormat, " (empty: every entity is a create)")
	if err != nil {
		return err
	}
	defer in.close()
	plan, err := engine.PlanRun(ctx, sp, in.cfg, engine.PlanOptions{Dest: in.dest, Port: in.port, Streams: in.streams,
		FullRefresh: *f.fullRefresh, ResumeWithin: *f.resumeWithin, Logger: log})
	if errors.Is(err, engine.ErrNoPortCredentials) {
		err = &engine.UsageError{Err: fmt.Errorf("%w\n  (%s)", err, portCredentialsHint(sp))}
	}
	if plan != nil && plan.Summary != nil {
		if f.format.value == "json" {
			data, jerr := json.MarshalIndent(plan, "", "  ")
			if jerr != nil {
				return errors.Join(err, jerr)
			}
			if _, werr := a.stdout.Write(append(data, '\n')); werr != nil {
				return errors.Join(err, werr)
			}
		} else {
			printPlan(a.stdout, plan, engine.RedactDest(in.dest))
		}
	}
	switch {
	case err != nil:
		return err
	case plan.Changes:
		return printed{engine.ErrPlanChanges}
	}
	return nil
}

// specAndInputs reads the command line of a command that takes one SPEC
// and run's inputs (plan, check): the spec, its config and Port
// credentials (the demo's simulators started with --demo), and a logger.
func (a *app) specAndInputs(ctx context.Context, fs *flag.FlagSet, args []string, f *inputFlags, level, format *choiceFlag, portNote string) (*slog.Logger, *engine.Spec, *runInputs, error) {
	pos, err := parseArgs(fs, args, a.stdout, 1, 1, "one SPEC")
	if err != nil {
		return nil, nil, nil, err
	}
	specPath := pos[0]
	if specPath == "-" && *f.config == "-" {
		return nil, nil, nil, usageErr("the spec and --config cannot both come from stdin")
	}
	log, err := newLogger(a.stderr, level.value, format.value)
	if err != nil {
		return nil, nil, nil, err
	}
	sp, err := a.readSpec(specPath, "text")
	if err != nil {
		return nil, nil, nil, err
	}
	in, err := a.resolveInputs(ctx, log, sp, specPath, f, sp.WritesPort(), portNote)
	if err != nil {
		return nil, nil, nil, err
	}
	return log, sp, in, nil
}

// planShown bounds the rows or entities of one kind the text form lists
// per table or blueprint; --format json lists all.
const planShown = 20

// printPlan prints a plan for people, terraform style: + create, ~ update
// (with each change), - delete, ! refused or not written.
func printPlan(w io.Writer, p *engine.Plan, dest string) {
	var b strings.Builder
	line := func(indent int, format string, args ...any) {
		b.WriteString(strings.Repeat("  ", indent))
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	more := func(indent, n int) {
		if n > planShown {
			line(indent, "… and %d more (--format json lists all)", n-planShown)
		}
	}
	changes := func(indent int, cs []engine.Change) {
		for _, c := range cs {
			line(indent, "%s: %s → %s", c.Field, show(c.Old), show(c.New))
		}
	}
	var create, update, del, notWritten int
	if len(p.Tables) > 0 {
		line(0, "Tables (%s):", dest)
		for _, t := range p.Tables {
			create, update, del = create+t.Create, update+t.Update, del+t.Delete
			line(1, "%s: %s", t.Name, counts(t.Create, t.Update, t.Delete, t.Unchanged))
			for _, k := range t.Creates[:min(len(t.Creates), planShown)] {
				line(2, "+ %s", showKey(k))
			}
			more(2, len(t.Creates))
			for _, u := range t.Updates[:min(len(t.Updates), planShown)] {
				line(2, "~ %s", showKey(u.Key))
				changes(4, u.Changes)
			}
			more(2, len(t.Updates))
			verb := "mark deleted"
			if t.Hard {
				verb = "delete"
			}
			for _, k := range t.Deletes[:min(len(t.Deletes), planShown)] {
				line(2, "- %s (%s)", showKey(k), verb)
			}
			more(2, len(t.Deletes))
			if r := t.Refused; r != nil {
				line(2, "! %d rows not seen are kept: %s", r.Count, r.Reason)
			}
		}
	}
	if pp := p.Port; pp != nil {
		if len(p.Tables) > 0 {
			b.WriteByte('\n')
		}
		line(0, "Port (owner %s):", pp.Owner)
		for _, s := range pp.Schemas {
			switch s.Action {
			case "create":
				line(1, "blueprint %s: create", s.Blueprint)
			case "update":
				line(1, "blueprint %s: update (%s)", s.Blueprint, strings.Join(s.Changes, ", "))
			}
		}
		for _, bp := range pp.Blueprints {
			create, update, del = create+bp.Create, update+bp.Update, del+bp.Delete
			notWritten += len(bp.Conflicts) + len(bp.Invalid)
			line(1, "%s: %s", bp.Name, counts(bp.Create, bp.Update, bp.Delete, bp.Unchanged))
			for _, id := range bp.Creates[:min(len(bp.Creates), planShown)] {
				line(2, "+ %s", id)
			}
			more(2, len(bp.Creates))
			for _, u := range bp.Updates[:min(len(bp.Updates), planShown)] {
				if u.AdoptedFrom != "" {
					line(2, "~ %s (adopted from %s)", u.Identifier, u.AdoptedFrom)
				} else {
					line(2, "~ %s", u.Identifier)
				}
				changes(4, u.Changes)
			}
			more(2, len(bp.Updates))
			for _, id := range bp.Deletes[:min(len(bp.Deletes), planShown)] {
				line(2, "- %s", id)
			}
			more(2, len(bp.Deletes))
			if r := bp.Refused; r != nil {
				line(2, "! %d stale entities kept (of %d owned): %s", r.Count, r.Owned, r.Reason)
			}
			for _, c := range bp.Conflicts[:min(len(bp.Conflicts), planShown)] {
				owner := c.Owner
				if owner == "" {
					owner = "nobody (made by hand or by another tool)"
				}
				line(2, "! %s not overwritten: owned by %s", c.Identifier, owner)
			}
			more(2, len(bp.Conflicts))
			for _, e := range bp.Invalid[:min(len(bp.Invalid), planShown)] {
				line(2, "! %s would fail: %s", e.Identifier, e.Error)
			}
			more(2, len(bp.Invalid))
		}
	}
	b.WriteByte('\n')
	switch {
	case !p.Complete:
		line(0, "Incomplete plan: %d failures while extracting (see stderr); deletions of what they fed are refused.", len(p.Failures))
		fallthrough
	case p.Changes:
		line(0, "Plan: %d to create, %d to update, %d to delete.", create, update, del)
	case notWritten == 0:
		line(0, "No changes: the destinations match the source.")
	default:
		line(0, "No changes would be made, but the destinations do not match the source:")
	}
	if notWritten > 0 {
		line(0, "%d entities would not be written (marked !): a run would fail.", notWritten)
	}
	io.WriteString(w, b.String())
}

// counts is one line of a table's or blueprint's counts.
func counts(create, update, del, unchanged int) string {
	if create+update+del == 0 {
		return fmt.Sprintf("no changes (%d unchanged)", unchanged)
	}
	return fmt.Sprintf("%d to create, %d to update, %d to delete, %d unchanged", create, update, del, unchanged)
}

// showKey shows a row key as col=value, columns sorted.
func showKey(k engine.RowKey) string {
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(k)) {
		parts = append(parts, c+"="+show(k[c]))
	}
	return strings.Join(parts, " ")
}

// show is a value as JSON, cut to a line's worth; (none) for null or
// absent.
func show(v any) string {
	if v == nil {
		return "(none)"
	}
	data, err := json.Marshal(v)
	s := string(data)
	if err != nil {
		s = fmt.Sprint(v)
	}
	if utf8.RuneCountInString(s) > 80 {
		s = string([]rune(s)[:79]) + "…"
	}
	return s
}
