package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestJSONSummaryAtAnyLevel: with --log-format json the summary is the
// "run finished" record holding the report; like the text summary, which
// no --log-level hides, it is written at warn and error levels too (an
// orchestrator quieting the logs still learns what the run wrote).
func TestJSONSummaryAtAnyLevel(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/broken" {
			http.Error(w, "boom", http.StatusBadRequest)
			return
		}
		w.Write([]byte(`[{"id": 1}, {"id": 2}]`))
	}))
	defer api.Close()
	t.Chdir(t.TempDir())
	spec := "version: 1\nname: js\nconfig:\n  url: {required: true}\nhttp:\n  base_url: ${ config.url }\n  retry: {attempts: 1}\nstreams:\n  items:\n    request: {path: /items}\n  broken:\n    request: {path: /broken}\ntables:\n  items: {from: items}\n  broken: {from: broken}\n"
	if err := os.WriteFile("js.yaml", []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, level := range []string{"info", "warn", "error"} {
		t.Run(level, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), []string{"run", "js.yaml", "--set", "url=" + api.URL, "--dest", "sqlite:" + level + ".db", "--log-format", "json", "--log-level", level}, strings.NewReader(""), &stdout, &stderr)
			if code != engine.ExitFailed {
				t.Fatalf("exit %d, want %d:\n%s", code, engine.ExitFailed, stderr.String())
			}
			var rep *engine.RunReport
			sc := bufio.NewScanner(&stderr)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var rec struct {
					Msg    string            `json:"msg"`
					Report *engine.RunReport `json:"report"`
				}
				if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
					t.Fatalf("stderr line not JSON: %q", sc.Text())
				}
				if rec.Msg == "run finished" {
					rep = rec.Report
				}
			}
			if rep == nil {
				t.Fatalf("no \"run finished\" record on stderr at --log-level %s:\n%s", level, stderr.String())
			}
			rows := map[string]int64{}
			for _, tb := range rep.Tables {
				rows[tb.Name] = tb.RowsWritten
			}
			if rep.ExitCode != engine.ExitFailed || len(rep.Failures) != 1 || len(rows) != 2 || rows["items"] != 2 {
				t.Errorf("summary report: exit %d, failures %+v, tables %+v; want exit 1, broken's failure, 2 rows of items", rep.ExitCode, rep.Failures, rep.Tables)
			}
		})
	}
}

// TestJSONNoticeAtAnyLevel: a notice (here the demo's address) is outside
// the logs' levels: printed as text at check's default level (warn), so
// as a JSON record too.
func TestJSONNoticeAtAnyLevel(t *testing.T) {
	spec, err := filepath.Abs("../../specs/harness.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	for _, format := range []string{"text", "json"} {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), []string{"check", spec, "--demo", "--log-format", format}, strings.NewReader(""), &stdout, &stderr)
		if code != engine.ExitOK {
			t.Fatalf("%s: exit %d:\n%s%s", format, code, stdout.String(), stderr.String())
		}
		if !strings.Contains(stderr.String(), "demo: built-in Harness simulator at ") {
			t.Errorf("--log-format %s: the demo's address is not said:\n%s", format, stderr.String())
		}
	}
}
