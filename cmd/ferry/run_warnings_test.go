package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// A run says what validate would warn about, with the position, and is not
// stopped by it.
func TestRunPrintsSpecWarnings(t *testing.T) {
	t.Chdir(t.TempDir())
	spec := `version: 1
name: warned
config:
  token: {secret: true, default: s3cr3t-in-the-spec}
http: {base_url: https://api.example.com}
streams:
  items:
    when: "false"
    request: {path: /items}
`
	if err := os.WriteFile("spec.yaml", []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"run", "spec.yaml", "--dry-run", "--progress", "none"}, strings.NewReader(""), &stdout, &stderr)
	if code != engine.ExitOK {
		t.Fatalf("exit %d, want 0 (a warning does not stop a run):\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "spec.yaml:4:34: config.token.default: a secret's value does not belong in the spec") {
		t.Errorf("stderr lacks the positioned warning:\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), "s3cr3t-in-the-spec") {
		t.Errorf("the secret's value reached stderr:\n%s", stderr.String())
	}
}
