package engine_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// A destination URL's credentials never reach a message, in any form
// PostgreSQL accepts them, whether the URL parses or not. Port 1 on the
// loopback refuses the connection, so every run fails to connect (or to
// parse) and reports the destination.
func TestDestinationCredentialsRedacted(t *testing.T) {
	f := loadSpec(t, t.TempDir())
	const canary = "canaryZq8w"
	dests := []string{
		"postgres://ferry:" + canary + "@127.0.0.1:1/db",
		"postgres://ferry@127.0.0.1:1/db?password=" + canary,
		"postgres://ferry@127.0.0.1:1/db?sslmode=disable&sslpassword=" + canary,
		"postgresql://ferry@127.0.0.1:1/db?connect_timeout=1&PASSWORD=" + canary,
		"postgres://ferry:" + canary + "%21x@127.0.0.1:1/db",        // percent-encoded
		"postgres://ferry:" + canary + "@x@127.0.0.1:1/db",          // an "@" in the password
		"postgres://ferry:" + canary + "?x@127.0.0.1:1/db",          // a "?" in the password: does not parse
		"postgres://ferry:" + canary + "/x@127.0.0.1:1/db",          // a "/" in the password: does not parse
		"postgres://ferry@127.0.0.1:1/db?password=" + canary + "@x", // an "@" in the query
		"postgres://ferry@127.0.0.1:1/db?pass%77ord=" + canary,      // an encoded key
	}
	for _, dest := range dests {
		t.Run(dest, func(t *testing.T) {
			var logs bytes.Buffer
			cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: map[string]string{"url": "http://127.0.0.1:1"}, Getenv: func(string) (string, bool) { return "", false }})
			if err != nil {
				t.Fatal(err)
			}
			_, err = engine.Run(t.Context(), f, cfg, engine.RunOptions{Dest: dest, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err == nil {
				t.Fatal("the run succeeded against a closed port")
			}
			if strings.Contains(err.Error(), canary) || strings.Contains(logs.String(), canary) {
				t.Errorf("credential printed:\nerror: %v\nlogs: %s", err, logs.String())
			}
			if !strings.Contains(err.Error(), "127.0.0.1") && !strings.Contains(err.Error(), "ferry") {
				t.Errorf("the message no longer says which destination: %v", err)
			}
		})
	}
}
