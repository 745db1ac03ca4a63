package engine_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// panicOnLog is a log handler that panics on the line whose message holds
// msg: a bug in what a line goes through (the CLI draws its live block on
// each log write).
type panicOnLog struct {
	slog.Handler
	msg string
}

func (h panicOnLog) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.msg) {
		panic("forced bug logging: " + r.Message)
	}
	return h.Handler.Handle(ctx, r)
}

// TestChainRestartPanicIsTheChainsError: a chain's goroutine panics
// between its two readings (logging that the API refused its saved
// position, before it reads the chain again from its start): that is the
// chain's failure, an internal error, exit 1, not the end of the process
// (each reading was guarded, what ran between them was not).
func TestChainRestartPanicIsTheChainsError(t *testing.T) {
	api := newChangeAPI(t, 5)
	dir := t.TempDir()
	f, cfg := loadIncremental(t, dir, restartSpec, api.srv.URL)
	dest := "sqlite:" + filepath.Join(dir, "tok.db")
	if _, err := tokenRun(t, f, cfg, dest, false); err != nil {
		t.Fatal(err)
	}
	api.mu.Lock()
	api.expired = map[string]bool{"5": true}
	api.mu.Unlock()
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("the panic left the run: %v", p)
			}
		}()
		log := slog.New(panicOnLog{slog.NewTextHandler(io.Discard, nil), "reading it again from its start"})
		_, err = engine.Run(t.Context(), f, cfg, engine.RunOptions{Dest: dest, Logger: log})
	}()
	if err == nil || !strings.Contains(err.Error(), "internal error") || !strings.Contains(err.Error(), "forced bug logging") {
		t.Fatalf("err = %v, want the panic as the chain's internal error", err)
	}
	if code := engine.ExitCode(err, false); code != engine.ExitFailed {
		t.Errorf("exit code %d, want %d", code, engine.ExitFailed)
	}
}
