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
	"github.com/ferry-etl/ferry/engine/spec"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // the run failed, or some of it did
	exitUsage   = 2 // bad command line
	exitInvalid = 3 // invalid spec
)

const usage = `ferry: declarative extraction from HTTP APIs into tables and Port.

Usage:
  ferry run SPEC [flags]        extract and load (--dry-run: print what would be written)
  ferry validate SPEC...        check specs offline; every problem as file:line:col
  ferry schema                  print the JSON Schema of the spec format
  ferry version

Run 'ferry run -h' or 'ferry validate -h' for flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "schema":
		stdout.Write(spec.Schema())
		return exitOK
	case "version":
		fmt.Fprintln(stdout, "ferry", version())
		return exitOK
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "ferry: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// parseInterspersed parses flags wherever they appear among the positional
// arguments, so `ferry run spec.yaml --dry-run` works as users type it.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
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
		return nil, fmt.Errorf("--log-level: want debug, info, warn or error, got %q", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: want text or json, got %q", format)
}

// printSpecErrors prints spec problems, plain or as GitHub annotations.
func printSpecErrors(w io.Writer, err error, format string) {
	list := spec.AsList(err)
	if list == nil {
		fmt.Fprintln(w, err)
		return
	}
	for _, e := range list {
		if format == "github" {
			msg := e.Msg
			if e.Path != "" {
				msg = e.Path + ": " + msg
			}
			fmt.Fprintf(w, "::error file=%s,line=%d,col=%d::%s\n", e.File, e.Pos.Line, e.Pos.Col, ghEscape(msg))
			continue
		}
		fmt.Fprintln(w, e.Error())
	}
}

// ghEscape escapes a workflow-command message (%, CR, LF).
func ghEscape(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "text", "output format: text or github (GitHub Actions annotations)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: ferry validate [--format text|github] SPEC...")
		fs.PrintDefaults()
	}
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(files) == 0 || (*format != "text" && *format != "github") {
		fs.Usage()
		return exitUsage
	}
	code := exitOK
	for _, path := range files {
		_, err := spec.Load(path)
		if err == nil {
			continue
		}
		code = exitInvalid
		if spec.AsList(err) == nil {
			fmt.Fprintf(stderr, "%s: %v\n", path, err)
			continue
		}
		printSpecErrors(stdout, err, *format)
	}
	if code == exitOK {
		fmt.Fprintf(stdout, "%d spec(s) valid\n", len(files))
	}
	return code
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dryRun := fs.Bool("dry-run", false, "print every row and entity that would be written, as JSON Lines on stdout; write nothing")
	dest := fs.String("dest", "", "table destination: sqlite:FILE (default sqlite:ferry.db) or postgres://…")
	noDelete := fs.Bool("no-delete", false, "never delete stale Port entities")
	fullRefresh := fs.Bool("full-refresh", false, "ignore the checkpoints of an interrupted run and read everything again")
	configFile := fs.String("config", "", "YAML or JSON file of config values")
	sets := setFlag{}
	fs.Var(sets, "set", "config value key=value (repeatable; highest precedence)")
	streams := fs.String("streams", "", "comma-separated streams to produce (their parents are fetched too)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	demoMode := fs.Bool("demo", false, "run against the built-in simulator of a shipped spec (no credentials, no network)")
	progress := fs.String("progress", "auto", "auto (live on a terminal, log lines otherwise), live, log or none")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: ferry run SPEC [flags]")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitUsage
	}
	log, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		fmt.Fprintln(stderr, "ferry:", err)
		return exitUsage
	}
	f, err := spec.Load(pos[0])
	if err != nil {
		printSpecErrors(stderr, err, "text")
		if spec.AsList(err) != nil {
			return exitInvalid
		}
		return exitUsage // the spec file cannot be read
	}
	src := engine.ConfigSources{Sets: sets, File: *configFile, DotEnv: ".env"}
	portOpts := engine.PortFromEnv(os.LookupEnv)
	portOpts.NoDelete = *noDelete
	var d *demo.Demo
	if *demoMode {
		d, err = demo.Start(ctx, f.Name.V)
		if err != nil {
			fmt.Fprintln(stderr, "ferry:", err)
			return exitUsage
		}
		defer d.Close()
		fmt.Fprintln(stderr, d.About)
		if f.Port != nil && len(f.Port.Entities) > 0 && !*dryRun {
			ps, err := d.StartPort(ctx)
			if err != nil {
				fmt.Fprintln(stderr, "ferry:", err)
				return exitFailed
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
	cfg, err := engine.ResolveConfig(f, src)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %s: config:\n", pos[0])
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(stderr, "  "+line)
		}
		return exitUsage
	}
	var streamList []string
	if *streams != "" {
		streamList = strings.Split(*streams, ",")
		for _, name := range streamList {
			if f.Stream(name) == nil {
				fmt.Fprintf(stderr, "ferry: --streams: unknown stream %q (the spec has: %s)\n", name, strings.Join(f.Streams.Keys(), ", "))
				return exitUsage
			}
		}
	}
	prog := newProgress(stderr, *progress, log)
	tableDest := *dest
	if tableDest == "" {
		tableDest = engine.DefaultDest
	}
	res, err := engine.Run(ctx, f, cfg, engine.RunOptions{
		DryRun: *dryRun, Dest: tableDest, Port: portOpts, Streams: streamList, FullRefresh: *fullRefresh, Stdout: stdout, Logger: log,
		OnStart: prog.start,
	})
	prog.stop()
	if res.Summary != nil {
		printSummary(stderr, res.Summary)
	}
	if res.Dest != nil {
		printDestReport(stderr, f, tableDest, res.Dest)
	}
	if d != nil && res.Dest != nil {
		fmt.Fprint(stderr, d.CatalogSummary())
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, engine.ErrNoPortCredentials):
		fmt.Fprintln(stderr, "ferry:", err)
		return exitUsage
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		if *dryRun || len(f.Tables.Items) == 0 {
			fmt.Fprintln(stderr, "ferry: interrupted")
		} else {
			fmt.Fprintln(stderr, "ferry: interrupted; the rows of every completed page are kept, and the next run resumes from there")
		}
		return exitFailed
	}
	fmt.Fprintln(stderr, "ferry:", err)
	return exitFailed
}

func version() string {
	if v, ok := os.LookupEnv("FERRY_VERSION"); ok {
		return v
	}
	return "dev"
}
