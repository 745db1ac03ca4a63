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
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/demo"
)

const runUsage = `Usage: ferry run SPEC [flags]

Reads the APIs the spec describes and writes its tables (SQLite or
PostgreSQL) and Port entities. Flags may come before or after SPEC; SPEC
"-" reads the spec from stdin. Config values come from --set, --config,
the environment, a .env file in the working directory, then the spec's
defaults; Port's credentials (PORT_CLIENT_ID, PORT_CLIENT_SECRET,
PORT_BASE_URL) from --config, the environment and .env.

Examples:
  ferry run specs/harness.yaml --demo                # built-in demo data, no credentials
  ferry run specs/humanitec.yaml --dry-run > out.jsonl
  ferry run specs/harness.yaml --dest postgres://user@db/warehouse --report run.json
  ferry run specs/humanitec.yaml --streams envs,resources --log-format json
  ferry run specs/harness.yaml --demo --record cassette/   # then --replay cassette/ offline

Exit codes: 0 ok, 1 the run failed (in part), 2 usage or config error,
3 invalid spec, 130 interrupted (Ctrl-C: what was fetched is written; a
second Ctrl-C quits at once).
`

// runFlags are the flags of `ferry run`.
type runFlags struct {
	inputFlags
	dryRun, fullRefresh           *bool
	report, record, replay        *string
	resumeWithin                  *time.Duration
	logLevel, logFormat, progress *choiceFlag
	profile                       *profileFlags
}

// inputFlags are what `run` and `plan` share: where config, Port and the
// tables are, and what to produce (their help texts differ).
type inputFlags struct {
	demo, noDelete, adoptUnowned *bool
	adoptOwners                  listFlag
	dest, config, streams        *string
	sets                         setFlag
}

func defineRunFlags(fs *flag.FlagSet) *runFlags {
	f := &runFlags{inputFlags: inputFlags{sets: setFlag{}}}
	f.dryRun = fs.Bool("dry-run", false, "print every row and entity that would be written, as JSON Lines on stdout; write nothing")
	f.demo = fs.Bool("demo", false, "run against the built-in simulator of a shipped spec (no credentials, no network)")
	f.dest = fs.String("dest", "", "table `destination`: sqlite:FILE (default sqlite:ferry.db) or postgres://…")
	f.config = fs.String("config", "", "YAML or JSON `file` of config values (\"-\": stdin)")
	fs.Var(f.sets, "set", "config value `key=value` (repeatable; highest precedence)")
	f.streams = fs.String("streams", "", "comma-separated `streams` to produce (their parents are fetched too)")
	f.report = fs.String("report", "", "write a JSON report of the run to `file` (\"-\": stdout, not with --dry-run)")
	f.fullRefresh = fs.Bool("full-refresh", false, "ignore saved checkpoints and incremental cursors; read everything")
	f.resumeWithin = duration(fs, "resume-within", engine.DefaultResumeWithin, "resume an unfinished sync only if it began within this `duration`; older ones start over")
	f.noDelete = fs.Bool("no-delete", false, "never delete stale Port entities")
	fs.Var(&f.adoptOwners, "adopt-owner", "take over the Port entities of this former `owner` (a ferryOwner value, e.g. after the owner key changed): overwrite and re-mark what the run produces, delete its stale ones (repeatable)")
	f.adoptUnowned = fs.Bool("adopt-unowned", false, "overwrite, and mark as this run's, Port entities without an owner (made by hand or by another tool) instead of reporting them as conflicts")
	f.progress = choice(fs, "progress", "auto", "`mode`: auto (live on a terminal, log lines otherwise), live, log or none", "auto", "live", "log", "none")
	f.logLevel = choice(fs, "log-level", "info", "`level`: debug, info, warn or error", "debug", "info", "warn", "error")
	f.logFormat = choice(fs, "log-format", "text", "`format` of stderr: text, or json (every line of stderr a JSON object)", "text", "json")
	f.record = fs.String("record", "", "write every HTTP exchange of the run to a cassette in `dir` (secrets as placeholders)")
	f.replay = fs.String("replay", "", "answer every request from the cassette in `dir`, without the network")
	f.profile = defineProfileFlags(fs)
	return f
}

// Intervals of the progress display.
const (
	liveEvery = 200 * time.Millisecond
	logEvery  = 10 * time.Second
)

func cmdRun(ctx context.Context, a *app, args []string) (err error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	f := defineRunFlags(fs)
	fs.Usage = usageFunc(fs, runUsage)
	pos, err := parseArgs(fs, args, a.stdout, 1, 1, "one SPEC")
	if err != nil {
		return err
	}
	specPath := pos[0]
	switch {
	case *f.report == "-" && *f.dryRun:
		return usageErr("--report -: stdout carries the dry run's rows; give the report a file")
	case specPath == "-" && *f.config == "-":
		return usageErr("the spec and --config cannot both come from stdin")
	}
	mode := f.progress.value
	fd, liveOK := liveAllowed(a.stderr)
	if mode == "auto" {
		mode = "log"
		if liveOK {
			mode = "live"
		}
	}
	if mode == "live" && a.jsonLogs {
		mode = "log" // a JSON stream is never redrawn
	}
	con := newConsole(a.stderr, fd)
	a.setConsole(con)
	defer a.setConsole(nil)
	log, err := newLogger(con, f.logLevel.value, f.logFormat.value)
	if err != nil {
		return err
	}

	var sp *engine.Spec
	var res *engine.Result
	if *f.report != "" {
		// The report is written however the run ends, once flags are read.
		defer func() {
			if p := recover(); p != nil {
				// The report says the run failed, with the panic's error
				// (see dispatchGuarded), not that it went well.
				err = a.recovered(p)
			}
			rep := engine.NewRunReport(sp, specPath, res, err, exitCode(ctx, err), *f.dryRun, time.Now())
			switch werr := a.writeReport(*f.report, rep); {
			case werr == nil:
			case err == nil:
				err = werr
			default:
				// The run's own error keeps its exit code; a missing report
				// is still said.
				log.Error("report not written", "error", werr.Error())
			}
		}()
	}
	// After the report's defer: a profile that cannot be made is in the
	// report, and so is one not written at the end (its stop runs first).
	stopProfile, err := f.profile.start()
	if err != nil {
		return err
	}
	defer func() {
		if perr := stopProfile(); perr != nil && err == nil {
			err = perr
		}
	}()
	if sp, err = a.readSpec(specPath, "text"); err != nil {
		return err
	}
	// What validate warns about is worth a line before a run too.
	for _, w := range sp.Warnings() {
		log.Warn("spec: " + w.Error())
	}
	in, err := a.resolveInputs(ctx, log, sp, specPath, &f.inputFlags, sp.WritesPort() && !*f.dryRun, "")
	if err != nil {
		return err
	}
	defer in.close()

	stopLog := make(chan struct{})
	var logDone <-chan struct{}
	onStart := func(l *engine.Live) {
		// From now on a panic's message is redacted as the run's logs are.
		a.setRedact(l.Redact)
		v := newLiveView(sp, l, liveOK)
		switch mode {
		case "live":
			con.startLive(v.render, liveEvery, a.guard)
		case "log":
			logDone = a.startLogProgress(log, v, logEvery, stopLog)
		}
	}
	res, err = engine.Run(ctx, sp, in.cfg, engine.RunOptions{
		DryRun: *f.dryRun, Dest: in.dest, Port: in.port, Streams: in.streams, FullRefresh: *f.fullRefresh,
		ResumeWithin: *f.resumeWithin, Stdout: a.stdout, Logger: log, OnStart: onStart,
		Record: *f.record, Replay: *f.replay,
	})
	con.stopLive()
	close(stopLog)
	if logDone != nil {
		<-logDone
	}
	// A panic of the progress goroutines (or of the signal handler) fails
	// the run, and its report says so.
	if bg := a.takePanics(); bg != nil {
		err = errors.Join(err, bg)
	}
	if errors.Is(err, engine.ErrNoPortCredentials) {
		err = &engine.UsageError{Err: fmt.Errorf("%w\n  (%s)", err, portCredentialsHint(sp))}
	}
	if res.Summary != nil {
		rep := engine.NewRunReport(sp, specPath, res, err, exitCode(ctx, err), *f.dryRun, time.Now())
		if a.jsonLogs {
			// As the text summary: whatever --log-level hides.
			a.jsonLogger().Info("run finished", "report", rep)
		} else {
			width := 0
			if _, tty := isTerminal(a.stderr); tty {
				width, _ = con.size()
			}
			printSummary(a.stderr, rep, in.dest, width)
			if in.demo != nil && res.Dest != nil {
				fmt.Fprint(a.stderr, in.demo.CatalogSummary())
			}
		}
	}
	if err != nil && errors.Is(err, context.Canceled) && ctx.Err() != nil && !*f.dryRun && len(sp.Tables()) > 0 {
		a.notice("interrupted; the rows of every completed page are kept, and the next run resumes from there")
	}
	return err
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// portCredentialsHint says where Port's credentials are read from, and
// offers --demo only for a spec that has one (others fail with "no
// built-in simulator").
func portCredentialsHint(sp *engine.Spec) string {
	hint := "read from --config, the environment or a .env file"
	if slices.Contains(demo.Specs(), sp.Name()) {
		hint += "; or try the spec with --demo"
	}
	return hint
}

// configError prints every config problem, with the ways to give values.
func (a *app) configError(log *slog.Logger, sp *engine.Spec, path string, err error) error {
	var ce *engine.ConfigError
	if !errors.As(err, &ce) {
		return &engine.UsageError{Err: err} // an unreadable --config file
	}
	hint := "put KEY=value lines in a .env file in the working directory, or pass --set, --config"
	if slices.Contains(demo.Specs(), sp.Name()) {
		hint += fmt.Sprintf("; or try it on demo data: ferry run %s --demo", path)
	}
	if a.jsonLogs {
		log.Error("config", "spec", path, "problems", ce.Problems, "hint", hint)
		return printed{err}
	}
	fmt.Fprintf(a.stderr, "ferry: %s: config:\n", path)
	for _, line := range ce.Problems {
		fmt.Fprintln(a.stderr, "  "+line)
	}
	fmt.Fprintf(a.stderr, "  (%s)\n", hint)
	return printed{err}
}

// notice tells the user something outside the logs' levels (demo
// addresses, how an interrupt ends): a line on stderr, or a JSON record
// (not the run's logger, whose --log-level would drop it).
func (a *app) notice(msg string) {
	if a.jsonLogs {
		a.jsonLogger().Info(msg)
		return
	}
	var w io.Writer = a.stderr
	if c := a.console(); c != nil {
		w = c
	}
	fmt.Fprintln(w, strings.TrimRight(msg, "\n"))
}

// writeReport writes the run's JSON report to path ("-": stdout).
func (a *app) writeReport(path string, rep *engine.RunReport) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if path == "-" {
		_, err = a.stdout.Write(data)
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return &engine.UsageError{Err: fmt.Errorf("--report: %w", err)}
	}
	return nil
}

// printSummary tells what the run read and wrote, from its report: per
// stream what was read, per table and blueprint what was written, and
// what needs attention. Tables are fitted to width columns (0: any).
func printSummary(w io.Writer, rep *engine.RunReport, dest string, width int) {
	if width <= 0 {
		width = 1 << 16
	}
	width = max(width-1, 20)
	var b strings.Builder
	// Messages wrap (continuations indented); tables drop columns to fit.
	line := func(s string) {
		indent := len(s) - len(strings.TrimLeft(s, " "))
		for i, l := range wrapText(s, max(width-indent-4, 10)) {
			if i > 0 {
				l = strings.Repeat(" ", indent+4) + l
			} else {
				l = strings.Repeat(" ", indent) + l
			}
			b.WriteString(l + "\n")
		}
		if strings.TrimSpace(s) == "" {
			b.WriteString("\n")
		}
	}
	table := func(rows [][]string, prio []int) {
		for _, l := range fitTable(rows, prio, 2, width) {
			b.WriteString(strings.TrimPrefix(l, "  ") + "\n")
		}
	}
	rows := [][]string{{"stream", "state", "requests", "retries", "pages", "records", "outputs", "errors"}}
	var t engine.StreamReport
	for _, s := range rep.Streams {
		rows = append(rows, []string{s.Name, s.State, count(s.Requests), count(s.Retries), count(s.Pages), count(s.Records), count(s.Outputs), count(s.Failures)})
		t.Requests, t.Retries, t.Pages, t.Records, t.Outputs, t.Failures = t.Requests+s.Requests, t.Retries+s.Retries, t.Pages+s.Pages, t.Records+s.Records, t.Outputs+s.Outputs, t.Failures+s.Failures
	}
	rows = append(rows, []string{"total", "", count(t.Requests), count(t.Retries), count(t.Pages), count(t.Records), count(t.Outputs), count(t.Failures)})
	table(rows, []int{0, 3, 5, 4, 7, 1, 6, 2})
	line("records are what the API gave; outputs the rows and entities mapped from them (a record may map to several targets, or to none)")

	if len(rep.Tables) > 0 {
		line("")
		switch path, ok := strings.CutPrefix(dest, "sqlite:"); {
		case rep.DryRun:
			line("tables (a dry run: rows printed, not written; reconciled says whether a real run would reconcile):")
		case ok || !strings.Contains(dest, "://"):
			if !ok {
				path = dest
			}
			path = engine.RedactDest(path)
			line(fmt.Sprintf("tables in %s (SQLite), each named %s__TABLE:", path, rep.Spec))
		default:
			line(fmt.Sprintf("tables in schema %s of the PostgreSQL database:", rep.Spec))
		}
		rows := [][]string{{"table", "", "rows written", "unchanged", "marked deleted", "reconciled"}}
		for _, tb := range rep.Tables {
			rows = append(rows, []string{tb.Name, "", count(tb.RowsWritten), count(tb.RowsUnchanged), count(int64(tb.RowsDeleted)), yesNo(tb.Reconciled)})
		}
		table(rows, []int{0, 1, 2, 4, 3, 5})
		for _, tb := range rep.Tables {
			if tb.SkippedDelete != "" {
				line(fmt.Sprintf("  table %s not reconciled: deletion skipped: %s", tb.Name, tb.SkippedDelete))
			}
		}
	}
	if len(rep.Blueprints) > 0 {
		rows := [][]string{{"Port blueprint", "", "produced", "upserted", "unchanged", "rejected", "deleted", "reconciled"}}
		for _, bp := range rep.Blueprints {
			rows = append(rows, []string{bp.Name, "", count(bp.Produced), count(bp.Upserted), count(bp.Unchanged), count(bp.Rejected), count(bp.Deleted), yesNo(bp.Reconciled)})
		}
		line("")
		if rep.DryRun {
			line("Port blueprints (a dry run: entities printed, not sent; reconciled says whether a real run would reconcile):")
		}
		table(rows, []int{0, 1, 3, 5, 6, 4, 2, 7})
	}
	if p := rep.Port; p != nil {
		line(fmt.Sprintf("port (owner %s): %s upserted, %s unchanged (not sent), %s rejected, %s stale deleted, %s relations dropped", p.Owner, count(int64(p.Upserted)), count(int64(p.Unchanged)), count(int64(p.Rejected)), count(int64(p.Deleted)), count(int64(p.DroppedRelations))))
		if n := len(p.Conflicts); n > 0 {
			line(fmt.Sprintf("  %d entities of another owner not overwritten (--adopt-owner OWNER or --adopt-unowned takes them over)", n))
		}
		if p.Adopted > 0 {
			line(fmt.Sprintf("  %d entities adopted", p.Adopted))
		}
		for i, e := range p.Errors {
			if i == 10 {
				line(fmt.Sprintf("  … and %d more", len(p.Errors)-10))
				break
			}
			line("  " + e)
		}
		for _, s := range p.SkippedDeletes {
			line("  deletion skipped: " + s)
		}
		for _, e := range p.ReconcileErrors {
			line("  reconciliation failed: " + e)
		}
		for _, e := range p.DeleteErrors {
			line("  not deleted: " + e)
		}
	}
	if len(rep.Hosts) > 0 {
		line("")
		for _, h := range rep.Hosts {
			name := h.Host
			if h.Port {
				name = "Port at " + name
			}
			paced := ""
			if h.RateCuts > 0 {
				// Why a run took longer than its requests needed.
				paced = fmt.Sprintf(" (the rate was cut %s by rate limits or 503s; paced at %.4g/s at the end)", plural(h.RateCuts, "time", "times"), h.PacedPerSecond)
			}
			line(fmt.Sprintf("http: %s, %s to %s%s", plural(h.Requests, "request", "requests"), plural(h.Retries, "retry", "retries"), name, paced))
		}
	}
	line(fmt.Sprintf("time %s", time.Duration(rep.Seconds*float64(time.Second)).Round(time.Millisecond)))
	for _, s := range rep.Streams {
		switch {
		case s.SkipReason != "":
			line(fmt.Sprintf("skipped: stream %s (%s)", s.Name, s.SkipReason))
		case s.SkippedParents > 0 || s.Empty > 0:
			line(fmt.Sprintf("stream %s: %s not sent (a when was false, or a response rule skipped it), %s read as no data", s.Name, plural(s.SkippedParents, "request", "requests"), plural(s.Empty, "answer", "answers")))
		}
		if s.WindowsTotal > 0 || s.WindowsDone > 0 {
			line(fmt.Sprintf("stream %s: %d of %d time windows done", s.Name, s.WindowsDone, s.WindowsTotal))
		}
	}
	for _, d := range rep.Duplicates {
		what := "rows repeated a primary key"
		if d.Kind == "blueprint" {
			what = "entities repeated an identifier"
		}
		var modes []string
		for _, m := range []string{"warn", "collision", "fail", "merge"} {
			if n := d.Modes[m]; n > 0 {
				modes = append(modes, fmt.Sprintf("%d %s", n, map[string]string{"warn": "kept the last (warn)", "collision": "kept the last, each another record's key (collision: the run fails)", "fail": "failed (fail)", "merge": "merged (merge)"}[m]))
			}
		}
		line(fmt.Sprintf("duplicates: %s %s: %d %s: %s", d.Kind, d.Name, d.Count, what, strings.Join(modes, ", ")))
		for _, ex := range d.Examples {
			line("  e.g. " + ex)
		}
	}
	if len(rep.Tables) > 0 && !rep.DryRun {
		if path, ok := strings.CutPrefix(dest, "sqlite:"); ok || !strings.Contains(dest, "://") {
			if !ok {
				path = dest
			}
			path = engine.RedactDest(path)
			line("look with:")
			line(fmt.Sprintf("  sqlite3 %s 'SELECT * FROM \"%s__%s\" LIMIT 5'", path, rep.Spec, rep.Tables[0].Name))
		}
	}
	io.WriteString(w, b.String())
}

// wrapText breaks s into lines of at most width runes, at spaces (a word
// longer than a line is cut).
func wrapText(s string, width int) []string {
	var out []string
	var cur strings.Builder
	for _, word := range strings.Fields(s) {
		for utf8.RuneCountInString(word) > width {
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
			r := []rune(word)
			out = append(out, string(r[:width]))
			word = string(r[width:])
		}
		if cur.Len() > 0 && utf8.RuneCountInString(cur.String())+1+utf8.RuneCountInString(word) > width {
			out = append(out, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(word)
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// runInputs are a run's (or a plan's) resolved inputs.
type runInputs struct {
	cfg     *engine.Config
	port    engine.PortOptions
	streams []string
	dest    string     // the table destination, defaulted
	demo    *demo.Demo // with --demo: the simulators, closed by close
}

func (in *runInputs) close() {
	if in.demo != nil {
		in.demo.Close()
	}
}

// resolveInputs reads the config (from --config, "-" being stdin, --set,
// the environment and .env, or the demo's values with --demo) and Port's
// options. With --demo and startPort the built-in Port simulator is
// started too; portNote is added to the line that announces it.
func (a *app) resolveInputs(ctx context.Context, log *slog.Logger, sp *engine.Spec, specPath string, f *inputFlags, startPort bool, portNote string) (_ *runInputs, err error) {
	in := &runInputs{dest: orDefault(*f.dest, engine.DefaultDest)}
	defer func() {
		if err != nil {
			in.close() // the demo's simulators, if started
		}
	}()
	src := engine.ConfigSources{Sets: f.sets, File: *f.config, DotEnv: ".env"}
	if *f.config == "-" {
		data, rerr := io.ReadAll(a.stdin)
		if rerr != nil {
			return nil, &engine.UsageError{Err: fmt.Errorf("--config -: %w", rerr)}
		}
		src.File, src.FileData = "stdin", data
	}
	var demoPort *engine.PortOptions
	if *f.demo {
		if in.demo, err = demo.Start(ctx, sp.Name()); err != nil {
			return nil, &engine.UsageError{Err: err}
		}
		a.notice(in.demo.About)
		if startPort {
			ps, err := in.demo.StartPort(ctx)
			if err != nil {
				return nil, err
			}
			demoPort = &engine.PortOptions{BaseURL: ps.URL(), ClientID: ps.ClientID(), ClientSecret: ps.ClientSecret()}
			a.notice("demo: built-in Port simulator at " + ps.URL() + portNote)
		}
		// The demo's values win over the environment, so a user's real
		// credentials are never sent to the simulator (and vice versa).
		src = engine.ConfigSources{Sets: in.demo.Config, Getenv: func(string) (string, bool) { return "", false }}
		maps.Copy(src.Sets, f.sets)
	}
	if in.cfg, err = engine.ResolveConfig(sp, src); err != nil {
		return nil, a.configError(log, sp, specPath, err)
	}
	in.port = in.cfg.Port
	if demoPort != nil {
		in.port = *demoPort
	}
	a.setRedact(engine.Redactor(in.cfg, in.port))
	in.port.NoDelete, in.port.AdoptOwners, in.port.AdoptUnowned = *f.noDelete, f.adoptOwners, *f.adoptUnowned
	if *f.streams != "" {
		in.streams = strings.Split(*f.streams, ",")
	}
	return in, nil
}
