package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/ferry-etl/ferry/engine"
)

// progress shows live per-stream counters: redrawn in place on a terminal,
// as periodic log lines otherwise.
type progress struct {
	w     io.Writer
	mode  string
	log   *slog.Logger
	done  chan struct{}
	wg    sync.WaitGroup
	lines int
}

func newProgress(w io.Writer, mode string, log *slog.Logger) *progress {
	if mode == "auto" {
		mode = "log"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			mode = "live"
		}
	}
	return &progress{w: w, mode: mode, log: log, done: make(chan struct{})}
}

func (p *progress) start(st *engine.Stats) {
	if p.mode != "live" && p.mode != "log" {
		return
	}
	every := 10 * time.Second
	if p.mode == "live" {
		every = 250 * time.Millisecond
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				if p.mode == "live" {
					p.clear()
				}
				return
			case <-t.C:
				p.draw(st)
			}
		}
	}()
}

func (p *progress) draw(st *engine.Stats) {
	snaps, elapsed := st.Snapshot()
	if p.mode == "log" {
		for _, s := range snaps {
			p.log.Info("progress", "stream", s.Stream, "requests", s.Requests, "records", s.Records, "errors", s.Errors)
		}
		return
	}
	p.clear()
	var b strings.Builder
	secs := max(elapsed.Seconds(), 0.001)
	for _, s := range snaps {
		fmt.Fprintf(&b, "%-24s %7d req %9d rec %8.0f rec/s %5d err\n", s.Stream, s.Requests, s.Records, float64(s.Records)/secs, s.Errors)
	}
	p.lines = len(snaps)
	io.WriteString(p.w, b.String())
}

// clear erases the previously drawn block (ANSI: cursor up, erase line).
func (p *progress) clear() {
	for range p.lines {
		io.WriteString(p.w, "\x1b[1A\x1b[2K")
	}
	p.lines = 0
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
}

// printSummary prints the per-stream counters. skipped counts requests
// not sent (a false when) or skipped by a response rule; empty, answers a
// rule read as "no data".
func printSummary(w io.Writer, sum *engine.Summary) {
	var req, rec, out, retries, errs, pages, skipped, empty int64
	fmt.Fprintf(w, "%-24s %9s %7s %9s %9s %7s %6s %7s %5s\n", "stream", "requests", "pages", "records", "written", "retries", "errors", "skipped", "empty")
	for _, s := range sum.Streams {
		fmt.Fprintf(w, "%-24s %9d %7d %9d %9d %7d %6d %7d %5d\n", s.Stream, s.Requests, s.Pages, s.Records, s.Outputs, s.Retries, s.Errors, s.Skipped, s.Empty)
		req, rec, out, retries, errs, pages = req+s.Requests, rec+s.Records, out+s.Outputs, retries+s.Retries, errs+s.Errors, pages+s.Pages
		skipped, empty = skipped+s.Skipped, empty+s.Empty
	}
	fmt.Fprintf(w, "%-24s %9d %7d %9d %9d %7d %6d %7d %5d\n", "total", req, pages, rec, out, retries, errs, skipped, empty)
	fmt.Fprintf(w, "time %s\n", sum.Elapsed.Round(time.Millisecond))
	for _, s := range sum.Streams {
		if s.SkipReason != "" {
			fmt.Fprintf(w, "skipped: stream %s (%s)\n", s.Stream, s.SkipReason)
		}
	}
	for _, d := range sum.Duplicates {
		what := "rows repeated a primary key"
		if d.Kind == "blueprint" {
			what = "entities repeated an identifier"
		}
		var modes []string
		for _, m := range []string{"warn", "fail", "merge"} {
			if n := d.Modes[m]; n > 0 {
				modes = append(modes, fmt.Sprintf("%d %s", n, map[string]string{"warn": "kept the last (warn)", "fail": "failed (fail)", "merge": "merged (merge)"}[m]))
			}
		}
		fmt.Fprintf(w, "duplicates: %s %s: %d %s: %s\n", d.Kind, d.Name, d.Count, what, strings.Join(modes, ", "))
		for _, ex := range d.Examples {
			fmt.Fprintf(w, "  e.g. %s\n", ex)
		}
	}
}

// printDestReport says what the destinations did and where to look.
func printDestReport(w io.Writer, sp *engine.Spec, dest string, rep *engine.Report) {
	tables := sp.Tables()
	for _, name := range tables {
		if n := rep.Tables[name]; n > 0 {
			fmt.Fprintf(w, "table %s: %d rows not seen in this full sync marked _ferry_deleted\n", name, n)
		}
	}
	if len(tables) > 0 {
		if path, ok := strings.CutPrefix(dest, "sqlite:"); ok || !strings.Contains(dest, "://") {
			if !ok {
				path = dest
			}
			path = engine.RedactDest(path)
			fmt.Fprintf(w, "tables written to %s; look with:\n  sqlite3 %s 'SELECT * FROM \"%s__%s\" LIMIT 5'\n", path, path, sp.Name(), tables[0])
		} else {
			fmt.Fprintf(w, "tables written to schema %q of the PostgreSQL database\n", sp.Name())
		}
	}
	if p := rep.Port; p != nil {
		fmt.Fprintf(w, "port (owner %s): %d entities upserted, %d failed, %d stale deleted, %d relations dropped\n", p.Owner, p.Upserted, p.Failed, p.Deleted, p.DroppedRelations)
		if n := len(p.Conflicts); n > 0 {
			fmt.Fprintf(w, "  %d entities of another owner not overwritten (--adopt-owner OWNER or --adopt-unowned takes them over)\n", n)
		}
		if p.Adopted > 0 {
			fmt.Fprintf(w, "  %d entities adopted\n", p.Adopted)
		}
		for i, e := range p.Errors {
			if i == 10 {
				fmt.Fprintf(w, "  … and %d more\n", len(p.Errors)-10)
				break
			}
			fmt.Fprintf(w, "  %v\n", e)
		}
		for _, s := range p.SkippedDeletes {
			fmt.Fprintf(w, "  deletion skipped: %+v\n", s)
		}
		for _, e := range p.ReconcileErrors {
			fmt.Fprintf(w, "  reconciliation failed: %v\n", e)
		}
	}
}
