package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/ferry-etl/ferry/engine"
)

const checkUsage = `Usage: ferry check SPEC [flags]

Tries the spec's credentials and endpoints before a run, with one request
per stream: each stream reads one page (under the first parent record
that leads to a request, in the latest time window) and, when the spec
writes Port entities, Port gives a token and lists its blueprints.
Nothing is written and no cursor moves. Requests that would change the
source (export jobs, PUT and PATCH) are not sent: those streams, the
streams below them and those reading a lookup they fill are listed as
left out. A stream whose answer a response rule skipped or read as no
data is listed as skipped (it proves nothing; not a failure). Config
comes as for 'ferry run'. A rotated OAuth2 refresh token is saved where a run keeps it
(--dest, or the state file beside the spec).

Examples:
  ferry check specs/humanitec.yaml --demo
  ferry check spec.yaml --config prod.yaml && ferry run spec.yaml --config prod.yaml
  ferry check spec.yaml --format json | jq '.streams[] | select(.status == "failed")'

Exit codes: 0 every stream asked answered (and Port, when used), 1 one
failed (each is named, with the request, its status and the server's
message, secrets redacted) or none answered (nothing was checked), 2
usage or config error, 3 invalid spec, 130 interrupted.
`

// checkFlags are the flags of `ferry check`: run's that say where the
// source and Port are, and --format.
type checkFlags struct {
	inputFlags
	format, logLevel, logFormat *choiceFlag
}

func defineCheckFlags(fs *flag.FlagSet) *checkFlags {
	// A check deletes and adopts nothing: those run flags are not its own.
	f := &checkFlags{inputFlags: inputFlags{sets: setFlag{}, noDelete: new(bool), adoptUnowned: new(bool)}}
	f.format = choice(fs, "format", "text", "output `format`: text, or json (for tools)", "text", "json")
	f.demo = fs.Bool("demo", false, "check against the built-in simulator of a shipped spec (and the built-in Port)")
	f.dest = fs.String("dest", "", "table `destination` where a run keeps rotated credentials: sqlite:FILE (default sqlite:ferry.db) or postgres://…")
	f.config = fs.String("config", "", "YAML or JSON `file` of config values (\"-\": stdin)")
	fs.Var(f.sets, "set", "config value `key=value` (repeatable; highest precedence)")
	f.streams = fs.String("streams", "", "comma-separated `streams` to check (their parents are asked too)")
	f.logLevel = choice(fs, "log-level", "warn", "`level`: debug, info, warn or error", "debug", "info", "warn", "error")
	f.logFormat = choice(fs, "log-format", "text", "`format` of stderr: text or json", "text", "json")
	return f
}

// cmdCheck is `ferry check`.
func cmdCheck(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	f := defineCheckFlags(fs)
	fs.Usage = usageFunc(fs, checkUsage)
	log, sp, in, err := a.specAndInputs(ctx, fs, args, &f.inputFlags, f.logLevel, f.logFormat, "")
	if err != nil {
		return err
	}
	defer in.close()
	res, err := engine.Check(ctx, sp, in.cfg, engine.CheckOptions{Dest: in.dest, Port: in.port, Streams: in.streams, Logger: log})
	if res == nil {
		return err
	}
	if f.format.value == "json" {
		data, jerr := json.MarshalIndent(res, "", "  ")
		if jerr != nil {
			return errors.Join(err, jerr)
		}
		if _, werr := a.stdout.Write(append(data, '\n')); werr != nil {
			return errors.Join(err, werr)
		}
	} else {
		printCheck(a.stdout, res)
	}
	if errors.Is(err, engine.ErrCheckedNothing) {
		if f.format.value == "json" {
			// stdout is the JSON alone, for tools to parse: the error
			// goes to stderr, as any other.
			return err
		}
		fmt.Fprintf(a.stdout, "\n%v\n", err)
		return printed{err}
	}
	if errors.Is(err, engine.ErrCheckFailed) {
		return printed{err} // each failure is in the output above
	}
	return err
}

// printCheck prints one line per stream (and Port), the failures' reasons
// below them.
func printCheck(w io.Writer, res *engine.CheckResult) {
	var b strings.Builder
	width := len("port")
	for _, s := range res.Streams {
		width = max(width, len(s.Stream))
	}
	failed := 0
	for _, s := range res.Streams {
		line := fmt.Sprintf("%-11s %-*s", s.Status, width, s.Stream)
		switch s.Status {
		case engine.CheckOK:
			if s.Requests > 0 {
				line += fmt.Sprintf("  %d record(s) on the page read", s.Records)
			}
			if s.Detail != "" {
				line += "  (" + s.Detail + ")"
			}
		case engine.CheckFailed:
			failed++
			line += "\n    " + s.Detail
		default:
			line += "  " + s.Detail
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	if p := res.Port; p != nil {
		line := fmt.Sprintf("%-11s %-*s", p.Status, width, "port")
		switch {
		case p.Status == engine.CheckFailed:
			failed++
			line += "\n    " + p.Detail
		case len(p.Changes) > 0:
			line += fmt.Sprintf("  token and blueprints read; a run would create or update %d blueprint(s) (--format json lists them)", len(p.Changes))
		default:
			line += "  token and blueprints read"
		}
		b.WriteString(line + "\n")
	}
	if failed > 0 {
		fmt.Fprintf(&b, "\n%d failed\n", failed)
	}
	io.WriteString(w, b.String())
}
