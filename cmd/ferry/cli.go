package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"github.com/ferry-etl/ferry/engine"
)

// app is one invocation of ferry: its streams, and the console that owns
// stderr while a run draws progress (restored when ferry is forced to quit).
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// jsonLogs is set by --log-format json: everything on stderr is then
	// one JSON object per line.
	jsonLogs bool
	con      atomic.Pointer[console]
	// redact hides the secrets of the command's inputs once they are
	// resolved (none before), then the run's (which knows the tokens it
	// fetched) once it starts: from the message of a panic (see
	// recovered), on whichever goroutine.
	redact atomic.Pointer[func(string) string]
	// debug is set by --log-level debug: a panic's stack is then shown.
	debug bool
	// panics are the internal errors of the command's own goroutines (see
	// goGuarded), for the command's end.
	panicsMu sync.Mutex
	panics   []error
}

// newApp is an invocation of ferry with the command line args, before
// any goroutine of its starts.
func newApp(args []string, stdin io.Reader, stdout, stderr io.Writer) *app {
	return &app{stdin: stdin, stdout: stdout, stderr: stderr, jsonLogs: wantsJSONLogs(args), debug: flagValue(args, "log-level") == "debug"}
}

// setRedact makes redact what hides secrets from a panic's message.
func (a *app) setRedact(redact func(string) string) { a.redact.Store(&redact) }

// goGuarded runs f on a goroutine of its own (see guard).
func (a *app) goGuarded(f func()) { go a.guard(f) }

// guard runs f, for a goroutine of the command's own: a panic in it is
// recovered as the command's own are (see recovered), rather than the end
// of the process with the runtime's message and stack on stderr,
// unredacted, and exit 2; it is kept for the command's end (see
// takePanics), which it fails with exit 1.
func (a *app) guard(f func()) {
	defer func() {
		if p := recover(); p != nil {
			err := a.recovered(p)
			a.panicsMu.Lock()
			a.panics = append(a.panics, err)
			a.panicsMu.Unlock()
		}
	}()
	f()
}

// takePanics returns the internal errors the command's goroutines kept
// (nil: none), and forgets them: each is shown once.
func (a *app) takePanics() error {
	a.panicsMu.Lock()
	defer a.panicsMu.Unlock()
	err := errors.Join(a.panics...)
	a.panics = nil
	return err
}

// command is one ferry subcommand. Its help is what `run` prints for
// --help (on stdout, exit 0).
type command struct {
	name    string
	summary string // one line, for `ferry --help`
	run     func(ctx context.Context, a *app, args []string) error
}

func commands() []*command {
	return []*command{
		{"run", "extract and load (--dry-run: print what would be written)", cmdRun},
		{"plan", "show what a run would change, writing nothing (exit 2 when something would)", cmdPlan},
		{"check", "try the credentials and every stream's endpoint with one request each; writes nothing", cmdCheck},
		{"validate", "check specs offline; every problem as file:line:col", func(_ context.Context, a *app, args []string) error {
			return cmdValidate(args, a.stdout, a.stderr)
		}},
		{"test", "run specs' test cases offline (replayed cassettes, snapshots, mapping cases)", cmdTest},
		{"graph", "draw a spec's streams, tables and blueprints (Mermaid or DOT)", cmdGraph},
		{"schema", "print the JSON Schema of the spec format (or of the run report)", cmdSchema},
		{"completion", "print a shell completion script (bash, zsh or fish)", cmdCompletion},
		{"version", "print ferry's version and build", cmdVersion},
		{"help", "help about a command", cmdHelp},
	}
}

func findCommand(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

func commandNames() []string {
	var out []string
	for _, c := range commands() {
		out = append(out, c.name)
	}
	return out
}

func mainUsage() string {
	var b strings.Builder
	b.WriteString("ferry: declarative extraction from HTTP APIs into tables and Port.\n\nUsage:\n  ferry COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-11s %s\n", c.name, c.summary)
	}
	b.WriteString(`
Examples:
  ferry run specs/harness.yaml --demo        # try it on built-in demo data
  ferry run specs/humanitec.yaml --dry-run   # print what would be written
  ferry validate specs/*.yaml
  ferry graph specs/humanitec.yaml > graph.mmd

Flags:
  -h, --help      help (also: ferry help COMMAND, ferry COMMAND --help)
  -v, --version   print ferry's version

Exit codes: 0 ok, 1 the run failed (in part), 2 usage or config error,
3 invalid spec, 130 interrupted.
`)
	return b.String()
}

// usageFunc prints a command's usage text, then its flags as --name, on
// the flag set's output.
func usageFunc(fs *flag.FlagSet, text string) func() {
	return func() {
		w := fs.Output()
		fmt.Fprint(w, text)
		if !hasFlags(fs) {
			return
		}
		fmt.Fprintln(w, "\nFlags:")
		fs.VisitAll(func(f *flag.Flag) {
			name, usage := flag.UnquoteUsage(f)
			line := "  --" + f.Name
			if name != "" {
				line += " " + name
			}
			if len(line) > 26 {
				line += "\n" + strings.Repeat(" ", 28)
			} else {
				line += strings.Repeat(" ", 28-len(line))
			}
			line += usage
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" {
				line += fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintln(w, line)
		})
		fmt.Fprintf(w, "%-28sthis help\n", "  -h, --help")
	}
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// printed wraps an error whose message a command has already shown (spec
// problems in their format): its exit code still counts, its text is not
// printed twice.
type printed struct{ err error }

func (p printed) Error() string { return p.err.Error() }
func (p printed) Unwrap() error { return p.err }

// errHelp ends a command that printed its help: exit 0.
var errHelp = errors.New("help shown")

func usageErr(format string, args ...any) error {
	return &engine.UsageError{Err: fmt.Errorf(format, args...)}
}

// run runs one ferry command and returns its exit code. Errors are printed
// and mapped to exit codes here and only here (engine.ExitCode).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return newApp(args, stdin, stdout, stderr).main(ctx, args)
}

func (a *app) main(ctx context.Context, args []string) int {
	err := a.dispatchGuarded(ctx, args)
	// A panic of the command's own goroutines that the command did not
	// take (a run takes them, for its report) fails it too.
	bg := a.takePanics()
	if errors.Is(err, errHelp) {
		if bg == nil {
			return engine.ExitOK
		}
		err = nil
	}
	code := exitCode(ctx, errors.Join(err, bg))
	a.showError(err, exitCode(ctx, err) == engine.ExitInterrupted, code)
	a.showError(bg, false, code)
	return code
}

// showError prints the error err (nil: none), an interrupt or not, that
// ends the command with code, unless it was printed already.
func (a *app) showError(err error, interrupted bool, code int) {
	var p printed
	switch {
	case err == nil, errors.As(err, &p):
	case a.jsonLogs:
		msg := "ferry failed"
		if interrupted {
			msg = "interrupted"
		}
		a.jsonLogger().Error(msg, "error", err.Error(), "exit_code", code)
	case interrupted:
		fmt.Fprintln(a.stderr, "ferry: interrupted")
	default:
		fmt.Fprintln(a.stderr, "ferry:", err)
	}
}

// dispatchGuarded is dispatch with a panic on the command's goroutine (the
// engine's own goroutines recover theirs) its error: an internal error,
// redacted, exit 1, instead of the runtime's message and stack on stderr,
// which may quote a secret.
func (a *app) dispatchGuarded(ctx context.Context, args []string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = a.recovered(p)
		}
	}()
	return a.dispatch(ctx, args)
}

// recovered is the error of a panic p that the command recovered, its
// text redacted by the command's secrets; its stack is shown (redacted)
// with --log-level debug.
func (a *app) recovered(p any) error {
	var log *slog.Logger
	switch {
	case !a.debug:
	case a.jsonLogs:
		log = slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	default:
		log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var redact func(string) string
	if r := a.redact.Load(); r != nil {
		redact = *r
	}
	return engine.InternalError(p, redact, log)
}

// exitCode is the exit code of a command that ended with err.
func exitCode(ctx context.Context, err error) int {
	interrupted := ctx.Err() != nil && errors.Is(err, context.Canceled)
	return engine.ExitCode(err, interrupted)
}

// jsonLogger logs to stderr as JSON, for messages outside a run's logger.
func (a *app) jsonLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(a.stderr, nil)) }

// wantsJSONLogs tells whether the command line asks for --log-format json,
// before flags are parsed: a flag error is then reported as JSON too.
func wantsJSONLogs(args []string) bool { return flagValue(args, "log-format") == "json" }

// flagValue is the value the command line gives flag name (--name V or
// --name=V, the last one given), read before flags are parsed; "" for none.
func flagValue(args []string, name string) string {
	v := ""
	for i, x := range args {
		if x == "--" {
			break
		}
		for _, p := range []string{"--" + name, "-" + name} {
			if s, ok := strings.CutPrefix(x, p+"="); ok {
				v = s
			} else if x == p && i+1 < len(args) {
				v = args[i+1]
			}
		}
	}
	return v
}

func (a *app) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, mainUsage())
		return printed{usageErr("no command")}
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprint(a.stdout, mainUsage())
		return nil
	case "-v", "-version", "--version":
		fmt.Fprintln(a.stdout, versionLine())
		return nil
	case "__streams":
		return cmdStreams(a, args[1:])
	}
	c := findCommand(args[0])
	if c == nil {
		hint := ""
		if best := engine.Closest(args[0], commandNames()); best != "" {
			hint = fmt.Sprintf("; did you mean %q?", best)
		}
		return usageErr("unknown command %q%s\nRun 'ferry --help' for the commands.", args[0], hint)
	}
	return c.run(ctx, a, args[1:])
}

// parseInterspersed parses flags wherever they appear among the positional
// arguments, so `ferry run spec.yaml --dry-run` works as users type it.
// -h/--help prints the usage (fs.Usage, on stdout) and returns errHelp;
// other flag errors come back as usage errors, with did-you-mean.
func parseInterspersed(fs *flag.FlagSet, args []string, stdout io.Writer) ([]string, error) {
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	defer func() { fs.SetOutput(out); fs.Usage = usage }()
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			usage()
			return nil, errHelp
		}
		if err != nil {
			return nil, flagError(fs, err)
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

// flagError rewords the flag package's errors with --names, and a
// did-you-mean for an unknown flag.
func flagError(fs *flag.FlagSet, err error) error {
	more := fmt.Sprintf("\nRun 'ferry %s --help' for usage.", fs.Name())
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		var known []string
		fs.VisitAll(func(f *flag.Flag) { known = append(known, f.Name) })
		hint := ""
		if best := engine.Closest(name, known); best != "" {
			hint = fmt.Sprintf("; did you mean --%s?", best)
		}
		return usageErr("ferry %s: unknown flag --%s%s%s", fs.Name(), name, hint, more)
	}
	msg = strings.ReplaceAll(msg, " -", " --")
	return usageErr("ferry %s: %s%s", fs.Name(), msg, more)
}

// parseArgs is parseInterspersed, then a check that there are lo to hi
// positional arguments (hi < 0: no upper bound); what names them in the
// usage error.
func parseArgs(fs *flag.FlagSet, args []string, stdout io.Writer, lo, hi int, what string) ([]string, error) {
	pos, err := parseInterspersed(fs, args, stdout)
	if err != nil {
		return nil, err
	}
	if len(pos) < lo || hi >= 0 && len(pos) > hi {
		return nil, usageErr("ferry %s takes %s\nRun 'ferry %s --help' for usage.", fs.Name(), what, fs.Name())
	}
	return pos, nil
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

// listFlag collects the values of a repeatable flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	if v == "" {
		return errors.New("want a value")
	}
	*l = append(*l, v)
	return nil
}

// durationFlag is flag.Duration with an error that says what a duration
// looks like (the flag package says only "parse error"), refusing one not
// longer than 0.
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f durationFlag) Set(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("want a duration such as 24h or 90m, got %q", v)
	}
	if d <= 0 {
		// The engine reads 0 as its default and a negative as "always":
		// neither is what the number says.
		return fmt.Errorf("want a duration longer than 0, such as 24h or 90m, got %q", v)
	}
	*f.d = d
	return nil
}

func duration(fs *flag.FlagSet, name string, def time.Duration, usage string) *time.Duration {
	d := def
	fs.Var(durationFlag{&d}, name, usage)
	return &d
}

// choiceFlag is a string flag limited to a few values.
type choiceFlag struct {
	value   string
	choices []string
}

func (c *choiceFlag) String() string { return c.value }
func (c *choiceFlag) Set(v string) error {
	if !slices.Contains(c.choices, v) {
		return fmt.Errorf("want %s, got %q", strings.Join(c.choices, ", "), v)
	}
	c.value = v
	return nil
}

func choice(fs *flag.FlagSet, name, def, usage string, choices ...string) *choiceFlag {
	c := &choiceFlag{value: def, choices: choices}
	fs.Var(c, name, usage)
	return c
}

// readSpec loads the spec at path, "-" meaning stdin. Spec problems are
// printed (as text, GitHub annotations or JSON log records) and the error
// comes back already printed.
func (a *app) readSpec(path string, format string) (*engine.Spec, error) {
	var sp *engine.Spec
	var err error
	if path == "-" {
		var src []byte
		if src, err = io.ReadAll(a.stdin); err != nil {
			return nil, &engine.UsageError{Err: fmt.Errorf("read spec from stdin: %w", err)}
		}
		sp, err = engine.Parse("stdin", src, ".")
	} else {
		sp, err = engine.Load(path)
	}
	if errs := engine.SpecErrors(err); errs != nil {
		a.printSpecErrors(errs, format)
		return nil, printed{err}
	}
	if err != nil {
		return nil, &engine.UsageError{Err: err} // the file cannot be read
	}
	return sp, nil
}

// printSpecErrors prints spec problems: plain on stderr, as GitHub
// annotations, or as JSON log records.
func (a *app) printSpecErrors(errs []engine.SpecError, format string) {
	switch {
	case format == "github":
		printSpecErrors(a.stdout, errs, format)
	case a.jsonLogs:
		log := a.jsonLogger()
		for _, e := range errs {
			log.Error("invalid spec", "file", e.File, "line", e.Line, "col", e.Col, "path", e.Path, "problem", e.Msg)
		}
	default:
		printSpecErrors(a.stderr, errs, format)
	}
}

// printSpecErrors prints spec problems, plain or as GitHub annotations.
func printSpecErrors(w io.Writer, errs []engine.SpecError, format string) {
	printSpecProblems(w, errs, format, "error")
}

// printSpecProblems prints spec problems of a level ("error" or
// "warning"): plain, a warning marked as one, or as GitHub annotations.
func printSpecProblems(w io.Writer, errs []engine.SpecError, format, level string) {
	for _, e := range errs {
		msg := e.Msg
		if e.Path != "" {
			msg = e.Path + ": " + msg
		}
		switch {
		case format == "github":
			fmt.Fprintf(w, "::%s file=%s,line=%d,col=%d::%s\n", level, e.File, e.Line, e.Col, ghEscape(msg))
		case level == "warning":
			fmt.Fprintf(w, "%s:%d:%d: warning: %s\n", e.File, e.Line, e.Col, msg)
		default:
			fmt.Fprintln(w, e.Error())
		}
	}
}

// ghEscape escapes a workflow-command message (%, CR, LF).
func ghEscape(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErr("--log-level: want debug, info, warn or error, got %q", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// load reads a spec ("-": stdin); its problems are printed (to w, in
// format) and the error comes back already printed.
func load(path string, w io.Writer, format string) (*engine.Spec, error) {
	a := &app{stdin: os.Stdin, stdout: w, stderr: w}
	return a.readSpec(path, format)
}

// Validating allocates and frees compile garbage around a live heap the
// size of the spec: it runs with Go's default collector setting (not the
// allowance main gives runs, chosen for mapping records) and a soft memory limit, so that a
// large spec fits in a small address space. GOGC and GOMEMLIMIT still win.
const validateMemoryLimit = 256 << 20

func cmdValidate(args []string, stdout, stderr io.Writer) error {
	if _, set := os.LookupEnv("GOGC"); !set {
		defer debug.SetGCPercent(debug.SetGCPercent(100))
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(validateMemoryLimit))
	}
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	formatFlag := choice(fs, "format", "text", "output `format`: text or github (GitHub Actions annotations)", "text", "github")
	strict := fs.Bool("strict", false, "fail (exit 3) on warnings too")
	fs.Usage = usageFunc(fs, validateUsage)
	files, err := parseInterspersed(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		fs.Usage()
		return printed{usageErr("ferry validate needs SPEC files")}
	}
	format := &formatFlag.value
	var errs []error
	warned := 0 // specs valid but for warnings, under --strict
	for _, path := range files {
		if strings.HasSuffix(path, ".test.yaml") {
			// A spec's test file (ferry test): its format and its spec.
			err := engine.ValidateTests(path)
			if es := engine.SpecErrors(err); es != nil {
				(&app{stdin: os.Stdin, stdout: stdout, stderr: stdout}).printSpecErrors(es, *format)
				err = printed{err}
			} else if err != nil {
				fmt.Fprintf(stderr, "%s: %v\n", path, err)
				err = printed{err}
			}
			if err != nil {
				errs = append(errs, err)
			}
			continue
		}
		sp, err := load(path, stdout, *format)
		if err != nil {
			var ue *engine.UsageError
			if errors.As(err, &ue) {
				fmt.Fprintf(stderr, "%s: %v\n", path, err)
				err = printed{err}
			}
			errs = append(errs, err)
			continue
		}
		ws := sp.Warnings()
		printSpecProblems(stdout, ws, *format, "warning")
		if *strict && len(ws) > 0 {
			warned++
			errs = append(errs, printed{ws[0]})
		}
	}
	if len(errs) == 0 {
		// Test files apart: "4 spec(s)" for specs/*.yaml read as four specs.
		tests := 0
		for _, path := range files {
			if strings.HasSuffix(path, ".test.yaml") {
				tests++
			}
		}
		if tests == 0 {
			fmt.Fprintf(stdout, "%d spec(s) valid\n", len(files))
		} else {
			fmt.Fprintf(stdout, "%d spec(s) and %d test file(s) valid\n", len(files)-tests, tests)
		}
		return nil
	}
	if warned > 0 {
		fmt.Fprintf(stdout, "%d spec(s) with warnings (--strict)\n", warned)
	}
	// An invalid spec outranks an unreadable one: exit 3 when any is invalid.
	for _, err := range errs {
		if engine.SpecErrors(err) != nil {
			return err
		}
	}
	return errs[0]
}

const validateUsage = `Usage: ferry validate [--format text|github] [--strict] SPEC...

Checks specs without any network access: structure, references, jq and
expr programs, Port blueprints. Every problem is printed as file:line:col.
Warnings (valid but likely mistaken) exit 0 unless --strict.
SPEC "-" reads a spec from stdin; a FILE.test.yaml (ferry test's cases) is
checked as a test file, with the spec it names.

Examples:
  ferry validate specs/*.yaml
  ferry validate --format github specs/*.yaml   # GitHub Actions annotations
  ferry validate --strict specs/*.yaml          # warnings fail too
  cat spec.yaml | ferry validate -
`

func cmdSchema(_ context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("schema", flag.ContinueOnError)
	fs.Usage = usageFunc(fs, `Usage: ferry schema [spec|report]

Prints a JSON Schema: of the spec format (the default; point your editor's
YAML language server at it), or of the JSON report of 'ferry run --report'.

Examples:
  ferry schema > ferry.schema.json
  ferry schema report
`)
	pos, err := parseArgs(fs, args, a.stdout, 0, 1, "at most one argument: spec or report")
	if err != nil {
		return err
	}
	which := "spec"
	if len(pos) == 1 {
		which = pos[0]
	}
	switch which {
	case "spec":
		_, err = a.stdout.Write(engine.Schema())
	case "report":
		_, err = a.stdout.Write(engine.ReportSchema())
	default:
		return usageErr("ferry schema: want spec or report, got %q", which)
	}
	return err
}

func cmdHelp(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(a.stdout, mainUsage())
		return nil
	}
	c := findCommand(args[0])
	if slices.Contains([]string{"-h", "-help", "--help"}, args[0]) {
		c = findCommand("help") // every command takes --help, help too
	}
	if c == nil {
		hint := ""
		if best := engine.Closest(args[0], commandNames()); best != "" {
			hint = fmt.Sprintf("; did you mean %q?", best)
		}
		return usageErr("ferry help: unknown command %q%s", args[0], hint)
	}
	if c.name == "help" {
		fmt.Fprint(a.stdout, "Usage: ferry help [COMMAND]\n\nPrints the help of a command, as 'ferry COMMAND --help' does.\n\nExamples:\n  ferry help run\n")
		return nil
	}
	return c.run(ctx, a, []string{"--help"})
}

// isTerminal reports whether w is a terminal, and its descriptor.
func isTerminal(w io.Writer) (int, bool) {
	f, ok := w.(*os.File)
	if !ok {
		return -1, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// setConsole records the console that owns stderr during a run (nil
// after), for messages from other goroutines and for a forced quit.
func (a *app) setConsole(c *console) { a.con.Store(c) }

func (a *app) console() *console { return a.con.Load() }

// watchSignals runs onSignals on a goroutine of its own (see goGuarded).
// After a panic there, signals are no longer caught: a Ctrl-C then has
// its default effect, the end of the process, rather than none.
func (a *app) watchSignals(sigs chan os.Signal, cancel func(), exit func(int)) {
	a.goGuarded(func() {
		ok := false
		defer func() {
			if !ok {
				signal.Stop(sigs)
			}
		}()
		a.onSignals(sigs, cancel, exit)
		ok = true
	})
}

// onSignals handles Ctrl-C and SIGTERM: the first cancels the run (cancel),
// the second restores the terminal and exits 130 at once.
func (a *app) onSignals(sigs <-chan os.Signal, cancel func(), exit func(int)) {
	if _, ok := <-sigs; !ok {
		return
	}
	cancel()
	a.message("interrupted: stopping, and writing what was fetched (Ctrl-C again to quit at once)")
	if _, ok := <-sigs; !ok {
		return
	}
	if c := a.console(); c != nil {
		c.restore()
	}
	a.message("interrupted twice: quitting at once; the next run resumes from the last committed page")
	exit(engine.ExitInterrupted)
}

// message prints a line from ferry itself on stderr (above a live block),
// or a JSON record.
func (a *app) message(msg string) {
	if a.jsonLogs {
		a.jsonLogger().Warn(msg)
		return
	}
	var w io.Writer = a.stderr
	if c := a.console(); c != nil {
		w = c
	}
	fmt.Fprintln(w, "ferry: "+msg)
}
