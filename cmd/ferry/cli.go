package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/demo"
)

const usage = `ferry: declarative extraction from HTTP APIs into tables and Port.

Usage:
  ferry run SPEC [flags]        extract and load (--dry-run: print what would be written)
  ferry validate SPEC...        check specs offline; every problem as file:line:col
  ferry schema                  print the JSON Schema of the spec format
  ferry version

Run 'ferry run -h' or 'ferry validate -h' for flags.
`

// printed wraps an error whose message a command has already shown (spec
// problems in their format, a flag error the flag package printed): its
// exit code still counts, its text is not printed twice.
type printed struct{ err error }

func (p printed) Error() string { return p.err.Error() }
func (p printed) Unwrap() error { return p.err }

func usageErr(format string, args ...any) error {
	return &engine.UsageError{Err: fmt.Errorf(format, args...)}
}

// run runs one ferry command and returns its exit code. Errors are printed
// and mapped to exit codes here and only here (engine.ExitCode).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	interrupted := ctx.Err() != nil && errors.Is(err, context.Canceled)
	code := engine.ExitCode(err, interrupted)
	var p printed
	switch {
	case err == nil, errors.As(err, &p):
	case interrupted:
		fmt.Fprintln(stderr, "ferry: interrupted")
	default:
		fmt.Fprintln(stderr, "ferry:", err)
	}
	return code
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return printed{usageErr("no command")}
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "test":
		return cmdTest(ctx, args[1:], stdout, stderr)
	case "schema":
		_, err := stdout.Write(engine.Schema())
		return err
	case "version":
		fmt.Fprintln(stdout, "ferry", version())
		return nil
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "ferry: unknown command %q\n\n%s", args[0], usage)
	return printed{usageErr("unknown command %q", args[0])}
}

// parseInterspersed parses flags wherever they appear among the positional
// arguments, so `ferry run spec.yaml --dry-run` works as users type it.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, printed{&engine.UsageError{Err: err}}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

type setFlag map[string]string

func (s setFlag) String() string { return "" }
func (s setFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	s[k] = val
	return nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErr("--log-level: want debug, info, warn or error, got %q", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErr("--log-format: want text or json, got %q", format)
}

// printSpecErrors prints spec problems, plain or as GitHub annotations.
func printSpecErrors(w io.Writer, errs []engine.SpecError, format string) {
	for _, e := range errs {
		if format == "github" {
			msg := e.Msg
			if e.Path != "" {
				msg = e.Path + ": " + msg
			}
			fmt.Fprintf(w, "::error file=%s,line=%d,col=%d::%s\n", e.File, e.Line, e.Col, ghEscape(msg))
			continue
		}
		fmt.Fprintln(w, e.Error())
	}
}

// ghEscape escapes a workflow-command message (%, CR, LF).
func ghEscape(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// load reads a spec; its problems are printed (to w, in format) and the
// error comes back already printed.
func load(path string, w io.Writer, format string) (*engine.Spec, error) {
	sp, err := engine.Load(path)
	if errs := engine.SpecErrors(err); errs != nil {
		printSpecErrors(w, errs, format)
		return nil, printed{err}
	}
	if err != nil {
		return nil, &engine.UsageError{Err: err} // the file cannot be read
	}
	return sp, nil
}

func cmdValidate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "text", "output format: text or github (GitHub Actions annotations)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: ferry validate [--format text|github] SPEC...")
		fs.PrintDefaults()
	}
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 || (*format != "text" && *format != "github") {
		fs.Usage()
		return printed{usageErr("ferry validate needs SPEC files and --format text or github")}
	}
	var errs []error
	for _, path := range files {
		if _, err := load(path, stdout, *format); err != nil {
			var ue *engine.UsageError
			if errors.As(err, &ue) {
				fmt.Fprintf(stderr, "%s: %v\n", path, err)
				err = printed{err}
			}
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		fmt.Fprintf(stdout, "%d spec(s) valid\n", len(files))
		return nil
	}
	// An invalid spec outranks an unreadable one: exit 3 when any is invalid.
	for _, err := range errs {
		if engine.SpecErrors(err) != nil {
			return err
		}
	}
	return errs[0]
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dryRun := fs.Bool("dry-run", false, "print every row and entity that would be written, as JSON Lines on stdout; write nothing")
	dest := fs.String("dest", "", "table destination: sqlite:FILE (default sqlite:ferry.db) or postgres://…")
	noDelete := fs.Bool("no-delete", false, "never delete stale Port entities")
	fullRefresh := fs.Bool("full-refresh", false, "ignore saved checkpoints and incremental cursors; read everything")
	resumeWithin := fs.Duration("resume-within", engine.DefaultResumeWithin, "resume an unfinished sync (interrupted or failed) only if it began this recently; older ones start over")
	configFile := fs.String("config", "", "YAML or JSON file of config values")
	sets := setFlag{}
	fs.Var(sets, "set", "config value key=value (repeatable; highest precedence)")
	streams := fs.String("streams", "", "comma-separated streams to produce (their parents are fetched too)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	demoMode := fs.Bool("demo", false, "run against the built-in simulator of a shipped spec (no credentials, no network)")
	progress := fs.String("progress", "auto", "auto (live on a terminal, log lines otherwise), live, log or none")
	record := fs.String("record", "", "write every HTTP exchange of the run to a cassette in `DIR` (secrets as placeholders)")
	replay := fs.String("replay", "", "answer every request from the cassette in `DIR`, without the network")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: ferry run SPEC [flags]")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return printed{usageErr("ferry run takes one SPEC")}
	}
	log, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	sp, err := load(pos[0], stderr, "text")
	if err != nil {
		return err
	}
	src := engine.ConfigSources{Sets: sets, File: *configFile, DotEnv: ".env"}
	portOpts := engine.PortFromEnv(os.LookupEnv)
	portOpts.NoDelete = *noDelete
	var d *demo.Demo
	if *demoMode {
		d, err = demo.Start(ctx, sp.Name())
		if err != nil {
			return &engine.UsageError{Err: err}
		}
		defer d.Close()
		fmt.Fprintln(stderr, d.About)
		if sp.WritesPort() && !*dryRun {
			ps, err := d.StartPort(ctx)
			if err != nil {
				return err
			}
			portOpts = engine.PortOptions{BaseURL: ps.URL(), ClientID: ps.ClientID(), ClientSecret: ps.ClientSecret(), NoDelete: *noDelete}
			fmt.Fprintf(stderr, "demo: built-in Port simulator at %s\n", ps.URL())
		}
		// The demo's values win over the environment, so a user's real
		// credentials are never sent to the simulator (and vice versa).
		src = engine.ConfigSources{Sets: d.Config, Getenv: func(string) (string, bool) { return "", false }}
		for k, v := range sets {
			src.Sets[k] = v
		}
	}
	cfg, err := engine.ResolveConfig(sp, src)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %s: config:\n", pos[0])
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(stderr, "  "+line)
		}
		return printed{err}
	}
	var streamList []string
	if *streams != "" {
		streamList = strings.Split(*streams, ",")
	}
	prog := newProgress(stderr, *progress, log)
	tableDest := *dest
	if tableDest == "" {
		tableDest = engine.DefaultDest
	}
	res, err := engine.Run(ctx, sp, cfg, engine.RunOptions{
		DryRun: *dryRun, Dest: tableDest, Port: portOpts, Streams: streamList, FullRefresh: *fullRefresh,
		ResumeWithin: *resumeWithin, Stdout: stdout, Logger: log, OnStart: prog.start,
		Record: *record, Replay: *replay,
	})
	prog.stop()
	if res.Summary != nil {
		printSummary(stderr, res.Summary)
	}
	if res.Dest != nil {
		printDestReport(stderr, sp, tableDest, res.Dest)
	}
	if d != nil && res.Dest != nil {
		fmt.Fprint(stderr, d.CatalogSummary())
	}
	if err != nil && errors.Is(err, context.Canceled) && ctx.Err() != nil && !*dryRun && len(sp.Tables()) > 0 {
		fmt.Fprintln(stderr, "ferry: interrupted; the rows of every completed page are kept, and the next run resumes from there")
		return printed{err}
	}
	return err
}

func version() string {
	if v, ok := os.LookupEnv("FERRY_VERSION"); ok {
		return v
	}
	return "dev"
}
