package engine_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

func TestPortOwner(t *testing.T) {
	const head = `version: 1
name: src
config:
  org_id: {required: true}
  region: {required: true}
  token: {required: true, secret: true}
  page_size: {default: 10}
streams:
  apps:
    request: {url: https://api.example.com/apps}
port:
`
	const entities = `  entities:
    - {blueprint: app, from: apps, identifier: .id}
`
	tests := []struct {
		name, port string
		sets       map[string]string
		want       string
		wantErr    bool
	}{
		{"declared, as written", "  owner: ${ config.org_id }/x\n", nil, "src/acme/x", false},
		{"default: required non-secret inputs, escaped", "", map[string]string{"region": "eu/1"}, "src/acme/eu%2F1", false},
		{"declared empty", "  owner: '${ config.page_size == 10 ? \"\" : \"x\" }'\n", nil, "", true},
		{"declared secret", "  owner: ${ config.token }\n", nil, "", true},
		{"failing on a secret", "  owner: ${ int(config.token) }\n", nil, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.yaml")
			if err := os.WriteFile(path, []byte(head+tc.port+entities), 0o644); err != nil {
				t.Fatal(err)
			}
			sp, err := engine.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			sets := map[string]string{"org_id": "acme", "region": "eu", "token": "tok-secret"}
			for k, v := range tc.sets {
				sets[k] = v
			}
			cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{Sets: sets, Getenv: func(string) (string, bool) { return "", false }})
			if err != nil {
				t.Fatal(err)
			}
			got, err := engine.PortOwner(sp, cfg)
			var ce *engine.ConfigError
			if tc.wantErr {
				if !errors.As(err, &ce) {
					t.Errorf("owner %q, err %v; want a config error", got, err)
				}
				if err != nil && strings.Contains(err.Error(), "tok-secret") {
					t.Errorf("the error shows the secret: %v", err)
				}
				// A dry run refuses it as a real run would, before any request.
				_, err := engine.Run(t.Context(), sp, cfg, engine.RunOptions{DryRun: true, Stdout: io.Discard})
				if !errors.As(err, &ce) {
					t.Errorf("dry run: err %v; want a config error", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("owner %q, err %v; want %q", got, err, tc.want)
			}
		})
	}
	t.Run("no identifying input: the name alone", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "s.yaml")
		src := "version: 1\nname: lone\nstreams:\n  apps:\n    request: {url: https://api.example.com/apps}\nport:\n" + entities
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		sp, err := engine.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := engine.PortOwner(sp, &engine.Config{}); err != nil || got != "lone" {
			t.Errorf("owner %q, err %v", got, err)
		}
	})
}
