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
// quits at once, also with 130.
func realMain(args []string) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, jsonLogs: wantsJSONLogs(args)}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go a.onSignals(sigs, cancel, os.Exit)
	return a.main(ctx, args)
}
