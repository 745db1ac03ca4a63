package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// versionLine describes this build from the Go build info: the module
// version (a tag for `go install …@v1.2.3`, "(devel)" for a build from a
// checkout), the VCS commit and its time when built from a checkout, and
// the Go version.
func versionLine() string {
	version, commit, when, dirty := "(unknown)", "", "", false
	goVersion := runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	var parts []string
	if commit != "" {
		if len(commit) > 12 {
			commit = commit[:12]
		}
		if dirty {
			commit += "-dirty"
		}
		parts = append(parts, "commit "+commit)
	}
	if when != "" {
		parts = append(parts, when)
	}
	parts = append(parts, goVersion, runtime.GOOS+"/"+runtime.GOARCH)
	return fmt.Sprintf("ferry %s (%s)", version, strings.Join(parts, ", "))
}

func cmdVersion(_ context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.Usage = usageFunc(fs, `Usage: ferry version

Prints ferry's version from its build: the module version, the commit it
was built from, and the Go version (also: ferry --version).

Examples:
  ferry version
`)
	if _, err := parseArgs(fs, args, a.stdout, 0, 0, "no arguments"); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, versionLine())
	return nil
}
