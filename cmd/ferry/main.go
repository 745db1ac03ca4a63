// Command ferry runs declarative extraction specs: it reads APIs described in
// YAML and loads tables and Port entities. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		tuneGC() // see gctune.go
	}
	os.Exit(realMain(os.Args[1:]))
}

// realMain runs ferry as a process: the first Ctrl-C (or SIGTERM) cancels
// the run, which then writes what it fetched and exits 130; a second one
// quits at once, also with 130. A run's broken stdout pipe is an error.
func realMain(args []string) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := newApp(args, os.Stdin, os.Stdout, os.Stderr)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	a.watchSignals(sigs, cancel, os.Exit)
	if len(args) > 0 && args[0] == "run" {
		// A run whose stdout reader is gone (--dry-run | head) gets EPIPE
		// from its writes, fails saying so and writes its --report, rather
		// than being killed by SIGPIPE without a word. Only run: the other
		// commands' output is short, and a pipe cut there stays SIGPIPE's.
		pipe := make(chan os.Signal, 1)
		signal.Notify(pipe, syscall.SIGPIPE)
		defer signal.Stop(pipe)
	}
	return a.main(ctx, args)
}
