package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestRunReportDryRunAndInterruptFitSchema: the reports of a dry run
// (rows printed, entities checked offline, no Port section) and of a run
// interrupted mid-way (exit 130) fit the published schema and say what
// happened: dry_run, the rows printed, the entity that does not fit its
// blueprint; status interrupted, and the stream cut short incomplete.
func TestRunReportDryRunAndInterruptFitSchema(t *testing.T) {
	sch := reportSchema(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			cancel() // the user's Ctrl-C, while the child's request is out
			<-r.Context().Done()
			return
		}
		w.Write([]byte(`[{"id": "1", "x": "a"}, {"id": "2"}]`))
	}))
	defer api.Close()
	t.Chdir(t.TempDir())
	spec := "version: 1\nname: rs\nconfig:\n  url: {required: true}\nhttp:\n  base_url: ${ config.url }\n  retry: {attempts: 1}\nstreams:\n  items:\n    request: {path: /items}\n  slow:\n    for_each: items\n    when: 'config.slow == \"yes\"'\n    request: {path: /slow}\ntables:\n  items: {from: items, primary_key: [id]}\n  slow: {from: slow}\nport:\n  blueprints: bp.json\n  entities:\n    - {blueprint: item, from: items, identifier: .id, properties: {x: .x}}\n"
	for name, body := range map[string]string{
		"rs.yaml": strings.Replace(spec, "  url: {required: true}\n", "  url: {required: true}\n  slow: {default: 'no'}\n", 1),
		"bp.json": `[{"identifier": "item", "title": "Item", "schema": {"properties": {"x": {"type": "string"}}, "required": ["x"]}}]`,
	} {
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"run", "rs.yaml", "--set", "url=" + api.URL, "--dry-run", "--progress", "none", "--report", "dry.json"}, strings.NewReader(""), &stdout, &stderr)
	if code != engine.ExitFailed {
		t.Fatalf("dry run: exit %d, want %d (entity 2 lacks x):\n%s", code, engine.ExitFailed, stderr.String())
	}
	data, err := os.ReadFile("dry.json")
	if err != nil {
		t.Fatal(err)
	}
	rep := checkReport(t, sch, data)
	if !rep.DryRun || rep.Status != "failed" || rep.Port != nil || !strings.Contains(rep.Error, "entity 2") {
		t.Errorf("dry run report: dry_run %v status %q port %+v error %q", rep.DryRun, rep.Status, rep.Port, rep.Error)
	}
	tables := map[string]int64{}
	for _, tb := range rep.Tables {
		tables[tb.Name] = tb.RowsWritten
	}
	if tables["items"] != 2 || len(rep.Blueprints) != 1 || rep.Blueprints[0].Produced != 2 {
		t.Errorf("dry run report: tables %+v, blueprints %+v; want 2 rows printed and 2 entities", rep.Tables, rep.Blueprints)
	}

	stdout.Reset()
	stderr.Reset()
	code = run(ctx, []string{"run", "rs.yaml", "--set", "url=" + api.URL, "--set", "slow=yes", "--dry-run", "--progress", "none", "--report", "cut.json"}, strings.NewReader(""), &stdout, &stderr)
	if code != engine.ExitInterrupted {
		t.Fatalf("interrupted run: exit %d, want %d:\n%s", code, engine.ExitInterrupted, stderr.String())
	}
	if data, err = os.ReadFile("cut.json"); err != nil {
		t.Fatal(err)
	}
	rep = checkReport(t, sch, data)
	states := map[string]string{}
	for _, s := range rep.Streams {
		states[s.Name] = s.State
	}
	if rep.ExitCode != engine.ExitInterrupted || rep.Status != "interrupted" || states["slow"] != "incomplete" {
		t.Errorf("interrupted report: exit %d status %q streams %v", rep.ExitCode, rep.Status, states)
	}
}
