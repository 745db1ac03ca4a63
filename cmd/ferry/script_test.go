package main

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ferry-etl/ferry/engine/apitest"
)

var update = flag.Bool("update", false, "rewrite testscript files with the actual output")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ferry": func() { os.Exit(realMain(os.Args[1:])) },
	})
}

// TestScripts runs the CLI scripts in testdata/script. The `apisim FIXTURE`
// command starts an apitest simulator from a fixture file of the script and
// exports its address as $API_URL.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		UpdateScripts:       *update,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"cmpjsonl": cmpJSONL,
			"exits":    exits,
			"jsonlines": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: jsonlines FILE")
				}
				text := ts.ReadFile(args[0])
				if strings.TrimSpace(text) == "" {
					ts.Fatalf("%s is empty", args[0])
				}
				for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
					var v map[string]any
					if err := json.Unmarshal([]byte(line), &v); err != nil {
						ts.Fatalf("%s: not a JSON object: %q", args[0], line)
					}
				}
			},
			"apisim": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: apisim FIXTURE")
				}
				s, err := apitest.StartFile(ts.MkAbs(args[0]))
				ts.Check(err)
				ts.Defer(s.Close)
				ts.Setenv("API_URL", s.URL())
			},
		},
	})
}

// cmpJSONL compares dry-run output with a golden file target by target: the
// lines of each table or blueprint must match in order (ferry's order is
// deterministic per stream), while different targets may interleave.
func cmpJSONL(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: cmpjsonl GOT WANT")
	}
	group := func(text string) map[string][]string {
		out := map[string][]string{}
		for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
			if line == "" {
				continue
			}
			var head struct{ Table, Blueprint string }
			if err := json.Unmarshal([]byte(line), &head); err != nil {
				ts.Fatalf("not JSON: %q: %v", line, err)
			}
			key := "table " + head.Table
			if head.Blueprint != "" {
				key = "blueprint " + head.Blueprint
			}
			out[key] = append(out[key], line)
		}
		return out
	}
	got, want := group(ts.ReadFile(args[0])), group(ts.ReadFile(args[1]))
	if diff := cmp.Diff(want, got); diff != "" {
		keys := make([]string, 0, len(want))
		for k := range want {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		ts.Fatalf("%s and %s differ per target (-want +got):\n%s", args[0], args[1], diff)
	}
}

// exits runs a program like exec, keeping its stdout and stderr for the
// commands that follow, and checks its exit code: `exits 2 ferry frob`.
func exits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}
