package engine_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
	portsim "github.com/ferry-etl/ferry/engine/sim/port"
)

// TestPlanAndCheckPanicIsARedactedError: a panic during a plan or a check,
// on its own goroutine (Port's blueprints) or on one it starts (a stream's
// request chain), ends it with an internal error, exit 1, rather than the
// process; its message quotes Port's access token, which the plan or check
// fetched: it is redacted by their pool's redaction, as a run's is, not
// only by the secrets of the config. So is the stack logged at debug level.
func TestPlanAndCheckPanicIsARedactedError(t *testing.T) {
	sp, api := panicSpec(t)
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{Sets: map[string]string{"url": api.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	type call func(t *testing.T, tr http.RoundTripper, po engine.PortOptions, log *slog.Logger) error
	plan := func(t *testing.T, tr http.RoundTripper, po engine.PortOptions, log *slog.Logger) error {
		_, err := engine.PlanRun(t.Context(), sp, cfg, engine.PlanOptions{Dest: "sqlite:" + filepath.Join(t.TempDir(), "p.db"), Port: po, Logger: log, Transport: tr})
		return err
	}
	check := func(t *testing.T, tr http.RoundTripper, po engine.PortOptions, log *slog.Logger) error {
		res, err := engine.Check(t.Context(), sp, cfg, engine.CheckOptions{Dest: "sqlite:" + filepath.Join(t.TempDir(), "c.db"), Port: po, Logger: log, Transport: tr})
		if errors.Is(err, engine.ErrCheckFailed) {
			// A chain's panic fails its stream, as a run's fails its
			// chain: the check fails, saying why.
			for _, s := range res.Streams {
				err = fmt.Errorf("%w; stream %s: %s", err, s.Stream, s.Detail)
			}
		}
		return err
	}
	for _, tc := range []struct {
		name, cut string
		call      call
		// token: the panic quotes Port's token (a request to Port), else
		// none (a request to the source): only the error is checked then.
		token bool
	}{
		{"plan blueprints", "/v1/blueprints", plan, true},
		{"plan chain", "/items", plan, false},
		{"check blueprints", "/v1/blueprints", check, true},
		{"check chain", "/items", check, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pt := portsim.New(portsim.Options{RateLimit: -1})
			defer pt.Close()
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("the panic left %s: %v", tc.name, p)
					}
				}()
				err = tc.call(t, panicOn{tc.cut}, engine.PortOptions{BaseURL: pt.URL(), ClientID: pt.ClientID(), ClientSecret: pt.ClientSecret()}, log)
			}()
			if err == nil || !strings.Contains(err.Error(), "internal error") || !strings.Contains(err.Error(), "transport broke on") {
				t.Fatalf("err = %v, want the panic as an internal error", err)
			}
			if code := engine.ExitCode(err, false); code != engine.ExitFailed {
				t.Errorf("exit code %d, want %d", code, engine.ExitFailed)
			}
			if tc.token && !strings.Contains(err.Error(), "Bearer REDACTED") {
				t.Errorf("err = %v, want the token redacted", err)
			}
			for _, s := range []string{"portsim-token", pt.ClientSecret()} {
				if strings.Contains(err.Error(), s) || strings.Contains(logs.String(), s) {
					t.Errorf("%s shown:\nerror: %v\nlogs:\n%s", s, err, logs.String())
				}
			}
			if !strings.Contains(logs.String(), "goroutine") {
				t.Errorf("no stack logged at debug level:\n%s", logs.String())
			}
		})
	}
}
