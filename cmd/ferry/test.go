package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/ferry-etl/ferry/engine"
)

// maxShownDiffs bounds the differences printed per case; the count of the
// rest follows.
const maxShownDiffs = 20

const testUsage = `Usage: ferry test [--update] [--format text|github] [SPEC|DIR|FILE.test.yaml]...

Runs specs' test cases offline: each run case replays its cassette (the
HTTP answers recorded with 'ferry run --record') and compares what would
be written with its snapshot; each mapping case maps one record and
compares the rows and entities. A spec's cases are in SPEC.test.yaml
beside it; a DIR is searched for them.

Examples:
  ferry test specs/
  ferry test specs/humanitec.yaml
  ferry test --update specs/harness.yaml   # rewrite snapshots, then review the diff
`

func cmdTest(ctx context.Context, a *app, args []string) error {
	stdout, stderr := a.stdout, a.stderr
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	update := fs.Bool("update", false, "rewrite the run cases' snapshots with what the runs give (review the diff before committing)")
	formatFlag := choice(fs, "format", "text", "output `format`: text, or github (also GitHub Actions annotations on the spec)", "text", "github")
	fs.Usage = usageFunc(fs, testUsage)
	paths, err := parseInterspersed(fs, args, stdout)
	if err != nil {
		return err
	}
	format := &formatFlag.value
	files, err := engine.FindTests(paths)
	if err != nil {
		return err
	}
	var passed, failed, updated int
	var specErr error
	for _, path := range files {
		res, err := engine.RunTests(ctx, path, engine.TestOptions{Update: *update})
		if errs := engine.SpecErrors(err); errs != nil {
			w := stderr
			if *format == "github" {
				w = stdout
			}
			printSpecErrors(w, errs, *format)
			fmt.Fprintf(stdout, "FAIL %s: invalid\n", path)
			specErr = printed{err}
			continue
		}
		if err != nil && res == nil {
			return err
		}
		for i := range res.Cases {
			c := &res.Cases[i]
			printCase(stdout, path, c)
			switch {
			case !c.Passed():
				failed++
				if *format == "github" {
					for _, a := range c.Annotations {
						fmt.Fprintf(stdout, "::error file=%s,line=%d,col=%d::%s\n", a.File, a.Line, a.Col, ghEscape(a.Msg))
					}
				}
			case c.Updated:
				updated++
			default:
				passed++
			}
			if c.Passed() && c.Warning != "" && *format == "github" {
				fmt.Fprintf(stdout, "::warning file=%s,line=%d,col=%d::%s\n", path, c.Line, c.Col, ghEscape(c.Warning))
			}
		}
		if err != nil {
			return err // interrupted
		}
	}
	summary := fmt.Sprintf("%d passed, %d failed", passed, failed)
	if *update {
		summary += fmt.Sprintf(", %d snapshot(s) updated", updated)
	}
	fmt.Fprintln(stdout, summary)
	switch {
	case specErr != nil:
		return specErr
	case failed > 0:
		return printed{fmt.Errorf("%d test case(s) failed", failed)}
	}
	return nil
}

// printCase prints one case's outcome, and what differs.
func printCase(w io.Writer, file string, c *engine.CaseResult) {
	name := c.Kind + " " + c.Name
	switch {
	case c.Passed():
		if c.Updated {
			fmt.Fprintf(w, "updated %s: %s: %s\n", file, name, c.Snapshot)
		} else {
			fmt.Fprintf(w, "ok   %s: %s\n", file, name)
		}
		if c.Warning != "" {
			fmt.Fprintf(w, "     warning: %s\n", c.Warning)
		}
		return
	}
	fmt.Fprintf(w, "FAIL %s:%d: %s\n", file, c.Line, name)
	if c.Err != nil {
		for _, line := range strings.Split(c.Err.Error(), "\n") {
			fmt.Fprintln(w, "     "+line)
		}
		return
	}
	if c.Snapshot != "" {
		fmt.Fprintf(w, "     differs from %s (ferry test --update rewrites it):\n", c.Snapshot)
	}
	for i, d := range c.Diffs {
		if i == maxShownDiffs {
			fmt.Fprintf(w, "     … and %d more differences\n", len(c.Diffs)-maxShownDiffs)
			break
		}
		for _, line := range d.Lines() {
			fmt.Fprintln(w, "     "+line)
		}
	}
}
