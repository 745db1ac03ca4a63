package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ferry-etl/ferry/engine"
	portsim "github.com/ferry-etl/ferry/engine/sim/port"
)

// reportSchema compiles engine/report.schema.json, the published schema of
// `ferry run --report`.
func reportSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(engine.ReportSchema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("report.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("report.schema.json")
	if err != nil {
		t.Fatalf("compile report schema: %v", err)
	}
	return sch
}

// checkReport validates a report against the schema and decodes it.
func checkReport(t *testing.T, sch *jsonschema.Schema, data []byte) engine.RunReport {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, data)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("report does not fit its schema: %v\n%s", err, data)
	}
	var rep engine.RunReport
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

const reportSpec = `version: 1
name: rep
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  retry: {attempts: 3, initial: 1ms, max: 2ms}
streams:
  items:
    request: {path: /items}
  broken:
    request: {path: /broken}
  extra:
    when: 'false'
    request: {path: /extra}
tables:
  items: {from: items, primary_key: [id]}
port:
  blueprints: bp.json
  entities:
    - {blueprint: item, from: items, identifier: .id}
`

// TestRunReport: --report writes what a run did, fitting the published
// schema: per stream requests, retries, records and state, per table rows
// written, per blueprint entities upserted, Port's totals, every failed
// chain and record, duplicates, and requests per host (Port's included).
// Port's credentials come from .env here.
func TestRunReport(t *testing.T) {
	sch := reportSchema(t)
	var mu sync.Mutex
	calls := map[string]int{}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.URL.Path]++
		first := calls[r.URL.Path] == 1
		mu.Unlock()
		if first {
			// Two requests' 503s: a pair cuts the rate (one alone would
			// not, nor one request's 503 to its retry).
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		switch r.URL.Path {
		case "/items":
			w.Write([]byte(`[{"id": "1"}, {"id": "2"}, {"id": "2"}, {"name": "no id"}]`))
		default:
			http.Error(w, "nope", http.StatusBadRequest)
		}
	}))
	defer api.Close()
	port := portsim.New(portsim.Options{RateLimit: -1})
	defer port.Close()
	dir := t.TempDir()
	t.Chdir(dir)
	writeFiles(t, map[string]string{
		"spec.yaml": reportSpec,
		"bp.json":   `[{"identifier": "item", "title": "Item", "schema": {"properties": {}, "required": []}}]`,
		".env":      "PORT_CLIENT_ID=" + port.ClientID() + "\nexport PORT_CLIENT_SECRET=\"" + port.ClientSecret() + "\" # from .env\nPORT_BASE_URL='" + port.URL() + "'\n",
	})
	stdout, stderr, data := runReported(t, api.URL, engine.ExitFailed)
	rep := checkReport(t, sch, data)
	if rep.Spec != "rep" || rep.ExitCode != engine.ExitFailed || rep.Status != "failed" || !strings.Contains(rep.Error, "failed request chain") {
		t.Errorf("head: spec %q exit %d status %q error %q", rep.Spec, rep.ExitCode, rep.Status, rep.Error)
	}
	streams := map[string]engine.StreamReport{}
	for _, s := range rep.Streams {
		streams[s.Name] = s
	}
	if s := streams["items"]; s.Requests != 2 || s.Retries != 1 || s.Records != 4 || s.Failures != 2 || s.State != "failed" {
		t.Errorf("items: %+v, want 2 requests, 1 retry, 4 records, 2 failures (a row and an entity), failed", s)
	}
	if s := streams["broken"]; s.Failures != 1 || s.State != "failed" || s.Requests != 2 {
		t.Errorf("broken: %+v", s)
	}
	if s := streams["extra"]; s.State != "skipped" || s.SkipReason == "" {
		t.Errorf("extra: %+v, want skipped with its reason", s)
	}
	if len(rep.Tables) != 1 || rep.Tables[0].RowsWritten != 2 || rep.Tables[0].Reconciled {
		t.Errorf("tables: %+v, want items with 2 rows, not reconciled", rep.Tables)
	}
	if len(rep.Blueprints) != 1 || rep.Blueprints[0] != (engine.BlueprintReport{Name: "item", Produced: 2, Upserted: 2}) {
		t.Errorf("blueprints: %+v, want item: 2 produced, 2 upserted", rep.Blueprints)
	}
	if rep.Port == nil || rep.Port.Upserted != 2 || rep.Port.Deleted != 0 {
		t.Errorf("port: %+v", rep.Port)
	}
	kinds := map[string]int{}
	for _, f := range rep.Failures {
		kinds[f.Kind+" "+f.Stream]++
	}
	// The id-less record fails its row and its entity.
	if kinds["chain broken"] != 1 || kinds["record items"] != 2 || len(rep.Failures) != 3 {
		t.Errorf("failures: %+v", rep.Failures)
	}
	if len(rep.Duplicates) != 2 {
		t.Errorf("duplicates: %+v, want the table's and the blueprint's", rep.Duplicates)
	}
	ports := 0
	for _, h := range rep.Hosts {
		if h.Port {
			ports++
			if h.Requests == 0 {
				t.Errorf("Port host %s: no requests", h.Host)
			}
			continue
		}
		// The API's 503 cut the rate sent to it: the report and the
		// summary say so, which explains a slow run.
		if h.RateCuts != 1 || h.PacedPerSecond <= 0 {
			t.Errorf("API host %+v: want 1 rate cut and the rate it paced at", h)
		}
	}
	if said := stdout.String() + stderr.String(); !strings.Contains(said, "the rate was cut 1 time by rate limits or 503s; paced at ") {
		t.Errorf("the summary does not say the rate was cut:\n%s", said)
	}
	if ports != 1 || len(rep.Hosts) != 2 {
		t.Errorf("hosts: %+v, want the API's and Port's", rep.Hosts)
	}
	if got := catalogCount(port, "item"); got != 2 {
		t.Errorf("Port holds %d items, want 2", got)
	}
}

func catalogCount(p *portsim.Server, blueprint string) int {
	n := 0
	for _, e := range p.Catalog().Entities {
		if e.Blueprint == blueprint {
			n++
		}
	}
	return n
}

// TestRunReportOutcomes: a report is written however a run ends once its
// flags are read, to stdout with "-", and fits the schema each time.
func TestRunReportOutcomes(t *testing.T) {
	sch := reportSchema(t)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`[{"id": 1}]`))
	}))
	defer api.Close()
	dir := t.TempDir()
	t.Chdir(dir)
	spec := "version: 1\nname: ok\nconfig:\n  url: {required: true}\nhttp:\n  base_url: ${ config.url }\nstreams:\n  items:\n    request: {path: /items}\ntables:\n  items: {from: items}\n"
	if err := os.WriteFile("ok.yaml", []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("bad.yaml", []byte("version: 1\nname: bad\nstreams: {a: {}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		status string
	}{
		{"ok to stdout", []string{"run", "ok.yaml", "--set", "url=" + api.URL, "--report", "-"}, 0, "ok"},
		{"config error", []string{"run", "ok.yaml", "--report", "-"}, engine.ExitUsage, "usage"},
		{"invalid spec", []string{"run", "bad.yaml", "--report", "-"}, engine.ExitInvalidSpec, "invalid_spec"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), append(tc.args, "--progress", "none"), strings.NewReader(""), &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tc.code, stderr.String())
			}
			rep := checkReport(t, sch, stdout.Bytes())
			if rep.ExitCode != tc.code || rep.Status != tc.status {
				t.Errorf("report: exit %d status %q, want %d %q", rep.ExitCode, rep.Status, tc.code, tc.status)
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"run", "ok.yaml", "--dry-run", "--report", "-"}, strings.NewReader(""), &stdout, &stderr); code != engine.ExitUsage {
		t.Errorf("--dry-run --report -: exit %d, want %d", code, engine.ExitUsage)
	}
}

// TestRunReportNamesSkippedRequest: a response rule skips one parent's
// child request; its records are unknown, not written, so the report names
// it: the stream, the parent chain it was for, and why.
func TestRunReportNamesSkippedRequest(t *testing.T) {
	sch := reportSchema(t)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/tickets":
			w.Write([]byte(`[{"id": "t1"}, {"id": "t2"}]`))
		case "/tickets/t1/comments":
			w.Write([]byte(`[{"id": "c1"}]`))
		case "/tickets/t2/comments":
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		default:
			http.Error(w, "nope", http.StatusNotFound)
		}
	}))
	defer api.Close()
	t.Chdir(t.TempDir())
	spec := `version: 1
name: skips
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  retry: {attempts: 1}
streams:
  tickets:
    request: {path: /tickets}
  comments:
    for_each: tickets
    http:
      rules:
        - {status: 503, action: skip}
    request: {path: '/tickets/${ parent.id }/comments'}
tables:
  comments: {from: comments, row: '{ticket: $parent.id, id}', primary_key: [ticket, id]}
`
	if err := os.WriteFile("spec.yaml", []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"run", "spec.yaml", "--set", "url=" + api.URL, "--progress", "none", "--report", "report.json"}, strings.NewReader(""), &stdout, &stderr)
	data, err := os.ReadFile("report.json")
	if err != nil {
		t.Fatalf("exit %d, no report: %v\n%s", code, err, stderr.String())
	}
	checkReport(t, sch, data)
	var raw struct {
		Skipped []map[string]any `json:"skipped_requests"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Skipped) != 1 {
		t.Fatalf("skipped_requests = %v, want t2's comments request\n%s", raw.Skipped, data)
	}
	s := raw.Skipped[0]
	if s["stream"] != "comments" || s["parents"] != "tickets[id=t2]" || s["page"] != 1.0 || !strings.Contains(fmt.Sprint(s["reason"]), "503") {
		t.Errorf("skipped request = %v, want stream comments, parents tickets[id=t2], page 1 and the reason", s)
	}
}

// TestReportNotWrittenIsSaid: a --report that cannot be written is said,
// on a failed run too (whose own error keeps the exit code): an
// orchestrator that finds no report must learn why from stderr.
func TestReportNotWrittenIsSaid(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/broken" {
			http.Error(w, "boom", http.StatusBadRequest)
			return
		}
		w.Write([]byte(`[{"id": 1}]`))
	}))
	defer api.Close()
	dir := t.TempDir()
	t.Chdir(dir)
	spec := "version: 1\nname: rf\nconfig:\n  url: {required: true}\nhttp:\n  base_url: ${ config.url }\nstreams:\n  items:\n    request: {path: /items}\n  broken:\n    request: {path: /broken}\ntables:\n  items: {from: items}\n  broken: {from: broken}\n"
	if err := os.WriteFile("rf.yaml", []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "no-such-dir", "report.json")
	for _, tc := range []struct {
		name    string
		streams string
		code    int
	}{
		{"ok run", "items", engine.ExitUsage},
		{"failed run", "items,broken", engine.ExitFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), []string{"run", "rf.yaml", "--set", "url=" + api.URL, "--streams", tc.streams, "--progress", "none", "--report", missing}, strings.NewReader(""), &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d:\n%s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), "--report") || !strings.Contains(stderr.String(), "no-such-dir") {
				t.Errorf("stderr does not say the report was not written:\n%s", stderr.String())
			}
		})
	}
}

// TestReportNamesUndeletedStaleEntities: a stale entity Port refuses to
// delete (another entity relates to it) is logged, and the report names it
// too, with its blueprint not reconciled: an orchestrator reading the
// report must not see a reconciled catalog that still holds it.
func TestReportNamesUndeletedStaleEntities(t *testing.T) {
	sch := reportSchema(t)
	ids := `[{"id": "1"}, {"id": "2"}]`
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(ids))
	}))
	defer api.Close()
	port := portsim.New(portsim.Options{RateLimit: -1})
	defer port.Close()
	dir := t.TempDir()
	t.Chdir(dir)
	spec := "version: 1\nname: stale\nconfig:\n  url: {required: true}\nhttp:\n  base_url: ${ config.url }\nstreams:\n  items:\n    request: {path: /items}\nport:\n  blueprints: bp.json\n  entities:\n    - {blueprint: item, from: items, identifier: .id}\n"
	writeFiles(t, map[string]string{
		"spec.yaml": spec,
		"bp.json":   `[{"identifier": "item", "title": "Item", "schema": {"properties": {}, "required": []}}]`,
		".env":      "PORT_CLIENT_ID=" + port.ClientID() + "\nPORT_CLIENT_SECRET=" + port.ClientSecret() + "\nPORT_BASE_URL=" + port.URL() + "\n",
	})
	ferry := func() (int, string) {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), []string{"run", "spec.yaml", "--set", "url=" + api.URL, "--progress", "none", "--report", "report.json"}, strings.NewReader(""), &stdout, &stderr)
		return code, stderr.String()
	}
	if code, stderr := ferry(); code != engine.ExitOK {
		t.Fatalf("first run: exit %d:\n%s", code, stderr)
	}
	// A hand-made entity relates to item 2, which the next run finds stale.
	if err := port.SeedBlueprint([]byte(`{"identifier": "note", "title": "Note", "schema": {"properties": {}}, "relations": {"item": {"title": "Item", "target": "item", "many": false, "required": false}}}`)); err != nil {
		t.Fatal(err)
	}
	if err := port.SeedEntity("note", []byte(`{"identifier": "n1", "relations": {"item": "2"}}`)); err != nil {
		t.Fatal(err)
	}
	ids = `[{"id": "1"}]`
	_, stderr := ferry()
	if port.Entity("item", "2") == nil {
		t.Fatalf("Port deleted item 2 despite its dependent:\n%s", stderr)
	}
	data, err := os.ReadFile("report.json")
	if err != nil {
		t.Fatal(err)
	}
	rep := checkReport(t, sch, data)
	if rep.Port == nil || len(rep.Port.DeleteErrors) != 1 || !strings.Contains(rep.Port.DeleteErrors[0], `blueprint item entity "2"`) {
		t.Errorf("port: %+v, want item 2 among delete_errors", rep.Port)
	}
	if len(rep.Blueprints) != 1 || rep.Blueprints[0].Reconciled {
		t.Errorf("blueprints: %+v, want item not reconciled", rep.Blueprints)
	}
	if !strings.Contains(stderr, `not deleted: blueprint item entity "2"`) {
		t.Errorf("the summary does not name the entity not deleted:\n%s", stderr)
	}
}

// TestRunReportSkippedDelete: a replace table whose deletion the
// threshold skipped is reported not reconciled, with the reason, in a
// report that fits the schema; the run exits 0.
func TestRunReportSkippedDelete(t *testing.T) {
	sch := reportSchema(t)
	var mu sync.Mutex
	body := `[{"id": "1"}, {"id": "2"}, {"id": "3"}]`
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Write([]byte(body))
	}))
	defer api.Close()
	t.Chdir(t.TempDir())
	spec := `version: 1
name: rep
config:
  url: {required: true}
http:
  base_url: ${ config.url }
streams:
  items:
    request: {path: /items}
tables:
  items: {from: items, primary_key: [id], mode: replace}
`
	if err := os.WriteFile("spec.yaml", []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	runOnce := func() engine.TableReport {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), []string{"run", "spec.yaml", "--set", "url=" + api.URL, "--progress", "none", "--report", "report.json"}, strings.NewReader(""), &stdout, &stderr)
		if code != engine.ExitOK {
			t.Fatalf("exit %d, want 0:\n%s", code, stderr.String())
		}
		data, err := os.ReadFile("report.json")
		if err != nil {
			t.Fatal(err)
		}
		return checkReport(t, sch, data).Tables[0]
	}
	if tr := runOnce(); !tr.Reconciled || tr.SkippedDelete != "" {
		t.Fatalf("first run: %+v", tr)
	}
	mu.Lock()
	body = `[]`
	mu.Unlock()
	want := "would delete 3 of 3 live rows, above the 90% threshold (tables.items.delete_threshold)"
	if tr := runOnce(); tr.Reconciled || tr.RowsDeleted != 0 || tr.SkippedDelete != want {
		t.Errorf("empty answer: %+v; want not reconciled, nothing deleted, skipped_delete %q", tr, want)
	}
}

// TestRunReportNamesPortRejectionOrigin: Port refuses one entity of a
// child stream; the report (port.errors and port.entity_errors) and the
// summary name the stream and the parent chain its record was read under,
// as a failed record's are: among many entities, the user must find which
// source record made the bad one.
func TestRunReportNamesPortRejectionOrigin(t *testing.T) {
	sch := reportSchema(t)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/apps":
			w.Write([]byte(`[{"id": "a"}, {"id": "b"}]`))
		case "/apps/a/envs":
			w.Write([]byte(`[{"id": "dev"}, {"id": "prod"}]`))
		case "/apps/b/envs":
			w.Write([]byte(`[{"id": "qa"}]`))
		default:
			http.Error(w, "nope", http.StatusNotFound)
		}
	}))
	defer api.Close()
	port := portsim.New(portsim.Options{RateLimit: -1})
	defer port.Close()
	// Port refuses every write that holds prod (a 422 its offline
	// validation could not foresee): the bulk request, then prod alone.
	port.InjectFault(portsim.Fault{Method: http.MethodPost, Path: "*/entities/bulk", BodyContains: `"identifier":"prod"`, Kind: portsim.FaultStatus, Status: http.StatusUnprocessableEntity})
	t.Chdir(t.TempDir())
	spec := `version: 1
name: origin
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  retry: {attempts: 1}
streams:
  apps:
    request: {path: /apps}
  envs:
    for_each: apps
    request: {path: '/apps/${ parent.id }/envs'}
port:
  blueprints: bp.json
  entities:
    - {blueprint: env, from: envs, identifier: .id}
`
	writeFiles(t, map[string]string{
		"spec.yaml": spec,
		"bp.json":   `[{"identifier": "env", "title": "Env", "schema": {"properties": {}, "required": []}}]`,
		".env":      "PORT_CLIENT_ID=" + port.ClientID() + "\nPORT_CLIENT_SECRET=" + port.ClientSecret() + "\nPORT_BASE_URL=" + port.URL() + "\n",
	})
	stdout, stderr, data := runReported(t, api.URL, engine.ExitFailed)
	rep := checkReport(t, sch, data)
	if rep.Port == nil || rep.Port.Rejected != 1 || len(rep.Port.Errors) != 1 {
		t.Fatalf("port: %+v, want prod rejected\n%s", rep.Port, data)
	}
	msg := rep.Port.Errors[0]
	for _, want := range []string{`entity "prod"`, "stream envs", "apps[id=a]", "422"} {
		if !strings.Contains(msg, want) {
			t.Errorf("port.errors[0] = %q, does not name %s", msg, want)
		}
	}
	var raw struct {
		Port struct {
			EntityErrors []map[string]any `json:"entity_errors"`
		} `json:"port"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Port.EntityErrors) != 1 {
		t.Fatalf("port.entity_errors = %v, want prod's", raw.Port.EntityErrors)
	}
	e := raw.Port.EntityErrors[0]
	if e["blueprint"] != "env" || e["identifier"] != "prod" || e["stream"] != "envs" || e["parents"] != "apps[id=a]" || !strings.Contains(fmt.Sprint(e["error"]), "422") {
		t.Errorf("port.entity_errors[0] = %v, want env prod from stream envs, parents apps[id=a], with Port's 422", e)
	}
	if said := stdout.String() + stderr.String(); !strings.Contains(said, `entity "prod" (stream envs, parents apps[id=a])`) {
		t.Errorf("the summary does not name prod's stream and parents:\n%s", said)
	}
	if got := catalogCount(port, "env"); got != 2 {
		t.Errorf("Port holds %d envs, want dev and qa", got)
	}
}

// writeFiles writes each file (name: content) in the working directory.
func writeFiles(t *testing.T, files map[string]string) {
	t.Helper()
	for name, body := range files {
		if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// runReported runs spec.yaml of the working directory against the API at
// url with --report report.json, wants exit code want, and returns what
// it printed and the report.
func runReported(t *testing.T, url string, want int) (stdout, stderr *bytes.Buffer, report []byte) {
	t.Helper()
	stdout, stderr = new(bytes.Buffer), new(bytes.Buffer)
	code := run(t.Context(), []string{"run", "spec.yaml", "--set", "url=" + url, "--progress", "none", "--report", "report.json"}, strings.NewReader(""), stdout, stderr)
	if code != want {
		t.Fatalf("exit %d, want %d:\n%s", code, want, stderr.String())
	}
	report, err := os.ReadFile("report.json")
	if err != nil {
		t.Fatal(err)
	}
	return stdout, stderr, report
}
