package specs_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/sink"
	"github.com/ferry-etl/ferry/engine/sink/port"
)

// portSchema compiles one request schema extracted from Port's OpenAPI
// document (kept as facts in engine/sim/port/testdata/port-schemas.json).
func portSchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "engine", "sim", "port", "testdata", "port-schemas.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]any
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	// The request schemas refer to shared definitions of Port's document
	// (#/components/schemas/def-N), kept beside them in testdata/port.
	defsRaw, err := os.ReadFile(filepath.Join("..", "testdata", "port", "openapi-defs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(defsRaw, &doc); err != nil {
		t.Fatal(err)
	}
	doc["request"] = all[name]
	c := jsonschema.NewCompiler()
	c.UseRegexpEngine(portRegexp)
	if err := c.AddResource("port.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("port.json#/request")
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return s
}

// portRegexp compiles Port's identifier patterns for Go's RE2, which has no
// lookahead: the leading "(?!\.{1,2}$)" (not "." nor "..") becomes a check
// of its own.
func portRegexp(pattern string) (jsonschema.Regexp, error) {
	const notDots = `^(?!\.{1,2}$)`
	rest, hasNotDots := strings.CutPrefix(pattern, notDots)
	if hasNotDots {
		pattern = "^" + rest
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	return notDotsRegexp{re: re, notDots: hasNotDots}, nil
}

type notDotsRegexp struct {
	re      *regexp.Regexp
	notDots bool
}

func (r notDotsRegexp) MatchString(s string) bool {
	if r.notDots && (s == "." || s == "..") {
		return false
	}
	return r.re.MatchString(s)
}

func (r notDotsRegexp) String() string { return r.re.String() }

func shippedBlueprints(t *testing.T) []json.RawMessage {
	t.Helper()
	data, err := os.ReadFile("humanitec-blueprints.json")
	if err != nil {
		t.Fatal(err)
	}
	var bps []json.RawMessage
	if err := json.Unmarshal(data, &bps); err != nil {
		t.Fatal(err)
	}
	return bps
}

// TestBlueprintsArePortBodies: every shipped blueprint is a valid body for
// POST /v1/blueprints by Port's own schema, and the check can fail.
func TestBlueprintsArePortBodies(t *testing.T) {
	schema := portSchema(t, "blueprint.create.request")
	bps := shippedBlueprints(t)
	// One for each blueprint the spec maps (the whole file was read), not a
	// fixed count: adding an entity as specs/README.md says needs no Go.
	sp, err := engine.Load("humanitec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := len(sp.Blueprints()); len(bps) != want || want == 0 {
		t.Fatalf("%d blueprints, want %d, one for each the spec maps", len(bps), want)
	}
	for _, raw := range bps {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(string(raw)))
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(v); err != nil {
			t.Errorf("%s: %v", raw[:60], err)
		}
	}
	// A blueprint without a schema is not a Port body: the check bites.
	for _, body := range []string{
		`{"identifier": "x", "title": "X"}`,                                 // no schema
		`{"identifier": "..", "title": "X", "schema": {"properties": {}}}`,  // identifier ".."
		`{"identifier": "a b", "title": "X", "schema": {"properties": {}}}`, // a space
	} {
		bad, _ := jsonschema.UnmarshalJSON(strings.NewReader(body))
		if schema.Validate(bad) == nil {
			t.Errorf("%s passed Port's blueprint schema", body)
		}
	}
}

// TestMappedEntitiesFitTheirBlueprints validates every entity of the
// reviewed golden output offline against its shipped blueprint: declared
// properties with the right types, relations of the right shape.
func TestMappedEntitiesFitTheirBlueprints(t *testing.T) {
	byID := map[string]*port.Blueprint{}
	for _, raw := range shippedBlueprints(t) {
		bp, err := port.ParseBlueprint(raw)
		if err != nil {
			t.Fatal(err)
		}
		byID[bp.Identifier] = bp
	}
	f, err := os.Open(filepath.Join("..", "testdata", "golden", "humanitec.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		var line struct {
			Blueprint string         `json:"blueprint"`
			Entity    map[string]any `json:"entity"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		bp := byID[line.Blueprint]
		if bp == nil {
			t.Fatalf("entity of unknown blueprint %s", line.Blueprint)
		}
		if errs := port.ValidateEntity(bp, sink.Entity{Blueprint: line.Blueprint, Data: line.Entity}); errs != nil {
			t.Errorf("%s %v: %v", line.Blueprint, line.Entity["identifier"], errs)
		}
		n++
	}
	if n < 300 {
		t.Fatalf("validated %d entities; the golden file has more", n)
	}
	// The check bites: a property the blueprint lacks, and a wrong type.
	app := byID["humanitecApplication"]
	if port.ValidateEntity(app, sink.Entity{Blueprint: app.Identifier, Data: map[string]any{"identifier": "a", "properties": map[string]any{"nope": 1}}}) == nil {
		t.Error("an undeclared property passed")
	}
	set := byID["humanitecDeploymentSet"]
	if port.ValidateEntity(set, sink.Entity{Blueprint: set.Identifier, Data: map[string]any{"identifier": "a/b", "properties": map[string]any{"version": "0"}}}) == nil {
		t.Error("a string version passed a number property")
	}
}
