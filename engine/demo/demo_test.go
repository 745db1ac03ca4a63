package demo_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/demo"
)

// TestDemoConfigsFitTheShippedSpecs: each demo gives every required input of
// its shipped spec, and its simulator answers at the URL it gives.
func TestDemoConfigsFitTheShippedSpecs(t *testing.T) {
	for _, name := range demo.Specs() {
		t.Run(name, func(t *testing.T) {
			d, err := demo.Start(t.Context(), name)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			f, err := engine.Load(filepath.Join("..", "..", "specs", name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: d.Config, Getenv: func(string) (string, bool) { return "", false }}); err != nil {
				t.Fatalf("demo config does not fit specs/%s.yaml: %v", name, err)
			}
			var base string
			for _, k := range []string{"api_url", "base_url"} {
				if v, ok := d.Config[k]; ok {
					base = v
				}
			}
			if !strings.HasPrefix(base, "http://127.0.0.1:") {
				t.Fatalf("demo base URL %q is not on loopback", base)
			}
			resp, err := http.Get(base + "/")
			if err != nil {
				t.Fatalf("simulator not answering: %v", err)
			}
			resp.Body.Close()
		})
	}
	if _, err := demo.Start(t.Context(), "nope"); err == nil || !strings.Contains(err.Error(), "harness, humanitec") {
		t.Errorf("unknown spec: err = %v", err)
	}
}
