package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-etl/ferry/engine/internal/jsonv"
	"github.com/ferry-etl/ferry/engine/spec"
	"github.com/ferry-etl/ferry/engine/spectest"
)

// TestSuffix ends a spec's test file name: humanitec.test.yaml tests
// humanitec.yaml.
const TestSuffix = spectest.Suffix

// TestOptions configure RunTests.
type TestOptions struct {
	Update bool         // rewrite the run cases' snapshots with what the runs give
	Logger *slog.Logger // the runs' logs; default discarded
}

// TestResult is the outcome of one test file.
type TestResult struct {
	File  string // the test file
	Spec  string // the spec it tests
	Cases []CaseResult
}

// CaseResult is the outcome of one case.
type CaseResult struct {
	Kind      string // "run" or "mapping"
	Name      string
	Line, Col int    // the case's place in the test file
	Snapshot  string // a run case's snapshot file
	Updated   bool   // --update rewrote the snapshot
	Err       error  // the case could not run, or failed otherwise than its differences say
	// Warning says why a case that passes may check little: a run that
	// wrote no row and no entity.
	Warning string
	Diffs   []TestDiff
	// Annotations place each problem: a difference at the program of the
	// spec that made the field (or at its mapping), an error at the case.
	Annotations []Annotation
}

// Passed reports whether the case got what it wants.
func (c *CaseResult) Passed() bool { return c.Err == nil && len(c.Diffs) == 0 }

// TestDiff is one difference between what a case wants and what it got.
type TestDiff = spectest.Diff

// Annotation is one problem at a place in a file.
type Annotation struct {
	File      string
	Line, Col int
	Msg       string
}

// FindTests resolves `ferry test` arguments to test files: a test file
// itself, a spec (its test file beside it), or a directory (every
// *.test.yaml under it; hidden and testdata directories are skipped).
// No argument means the working directory.
func FindTests(args []string) ([]string, error) {
	if len(args) == 0 {
		args = []string{"."}
	}
	var out []string
	for _, arg := range args {
		st, err := os.Stat(arg)
		if err != nil {
			return nil, usage("%v", err)
		}
		switch {
		case st.IsDir():
			var found []string
			err := filepath.WalkDir(arg, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.IsDir() && path != arg && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
					return filepath.SkipDir
				}
				if !d.IsDir() && strings.HasSuffix(d.Name(), TestSuffix) {
					found = append(found, path)
				}
				return nil
			})
			if err != nil {
				return nil, usage("%v", err)
			}
			if len(found) == 0 {
				return nil, usage("no test files (*%s) under %s", TestSuffix, arg)
			}
			out = append(out, found...)
		case strings.HasSuffix(arg, TestSuffix):
			out = append(out, arg)
		default:
			tf := spectest.SpecFor(arg)
			if _, err := os.Stat(tf); err != nil {
				return nil, usage("%s has no test file: write its cases in %s", arg, tf)
			}
			out = append(out, tf)
		}
	}
	var seen []string
	for _, f := range out {
		if !slices.Contains(seen, f) {
			seen = append(seen, f)
		}
	}
	return seen, nil
}

// RunTests runs the cases of one test file, offline: each run case as a
// dry run answered from its cassette, compared with its snapshot (or, with
// Update, written to it); each mapping case through MapRecord. Problems of
// the test file or its spec come back as an error that SpecErrors lists;
// a case that fails is in the result.
func RunTests(ctx context.Context, path string, opts TestOptions) (*TestResult, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	tf, sp, err := loadTests(path)
	if err != nil {
		return nil, err
	}
	res := &TestResult{File: path, Spec: tf.Spec}
	for _, rc := range tf.Runs {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		res.Cases = append(res.Cases, runCase(ctx, sp, tf, rc, opts))
	}
	for _, mc := range tf.Mappings {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		res.Cases = append(res.Cases, mappingCase(ctx, sp, tf, mc))
	}
	return res, nil
}

// ValidateTests checks a test file offline, as ferry validate checks a
// spec: its format (positioned errors, as [SpecErrors] gives them) and the
// spec it tests.
func ValidateTests(path string) error {
	_, _, err := loadTests(path)
	return err
}

// loadTests reads a test file and the spec it names.
func loadTests(path string) (*spectest.File, *Spec, error) {
	tf, err := spectest.Load(path)
	if es := spectest.AsErrors(err); es != nil {
		list := make(spec.ErrorList, len(es))
		for i, e := range es {
			list[i] = &spec.Error{File: e.File, Pos: spec.Pos{Line: e.Pos.Line, Col: e.Pos.Col}, Path: e.Path, Msg: e.Msg}
		}
		return nil, nil, list
	}
	if err != nil {
		return nil, nil, &UsageError{Err: err}
	}
	sp, err := Load(tf.Spec)
	if err != nil {
		if SpecErrors(err) == nil {
			err = &UsageError{Err: fmt.Errorf("%s: spec: %w", path, err)}
		}
		return nil, nil, err
	}
	return tf, sp, nil
}

// testConfig is a run case's config: its values, and for a required
// secret it does not give, the secret's placeholder, which a cassette
// matches as it matches any value of the secret.
func testConfig(sp *Spec, values map[string]any) (*Config, error) {
	vals := maps.Clone(values)
	if vals == nil {
		vals = map[string]any{}
	}
	for _, it := range sp.f.Config.Items {
		if _, ok := vals[it.Key]; !ok && it.Value.Secret.V && it.Value.Required.V {
			vals[it.Key] = "<secret:" + it.Key + ">"
		}
	}
	return ResolveConfig(sp, ConfigSources{Values: vals, Getenv: func(string) (string, bool) { return "", false }})
}

func runCase(ctx context.Context, sp *Spec, tf *spectest.File, rc spectest.Run, opts TestOptions) (res CaseResult) {
	res = CaseResult{Kind: "run", Name: rc.Name, Line: rc.Pos.Line, Col: rc.Pos.Col, Snapshot: rc.Snapshot}
	defer res.annotateError(tf.Path)
	cfg, err := testConfig(sp, rc.Config)
	if err != nil {
		res.Err = fmt.Errorf("config: %w", err)
		return res
	}
	// A replay keeps rotated tokens in memory: nothing is written.
	var out bytes.Buffer
	ropts := RunOptions{DryRun: true, Replay: rc.Cassette, Streams: rc.Streams, Stdout: &out, Logger: opts.Logger}
	if !rc.Now.IsZero() {
		ropts.Now = func() time.Time { return rc.Now }
	}
	_, err = Run(ctx, sp, cfg, ropts)
	if res.Err = wantError(err, rc.Error, "run"); res.Err != nil {
		return res
	}
	key := snapshotKey(sp.f)
	got, err := spectest.ParseLines(out.Bytes(), key)
	if err != nil {
		res.Err = fmt.Errorf("dry-run output: %w", err)
		return res
	}
	if len(got) == 0 && rc.Error == "" {
		// Its snapshot is empty whatever the mappings do: it checks only
		// that the cassette's requests were made.
		res.Warning = "the run wrote no row and no entity, so its snapshot checks no mapping: record the cassette from a source that holds records"
	}
	if opts.Update {
		// A snapshot the run matches is left as it is: the parts of a merged
		// record may come in another order, and that is no change to review.
		if old, err := os.ReadFile(rc.Snapshot); err == nil {
			if want, err := spectest.ParseLines(old, key); err == nil && len(spectest.Compare(want, got)) == 0 {
				return res
			}
		}
		res.Updated, res.Err = writeSnapshot(rc.Snapshot, spectest.Format(got))
		return res
	}
	data, err := os.ReadFile(rc.Snapshot)
	if errors.Is(err, fs.ErrNotExist) {
		res.Err = fmt.Errorf("no snapshot %s: write it with ferry test --update, then review it", rc.Snapshot)
		return res
	}
	if err != nil {
		res.Err = err
		return res
	}
	want, err := spectest.ParseLines(data, key)
	if err != nil {
		res.Err = fmt.Errorf("snapshot %s: %w", rc.Snapshot, err)
		return res
	}
	res.Diffs = spectest.Compare(want, got)
	res.annotateDiffs(sp.f, "run "+rc.Name, nil)
	return res
}

// wantError checks a case's outcome against the error it wants ("": none).
func wantError(err error, want, what string) error {
	switch {
	case want == "" && err != nil:
		return err
	case want == "":
		return nil
	case err == nil:
		return fmt.Errorf("the %s succeeded; the case wants it to fail with %q", what, want)
	case !strings.Contains(err.Error(), want):
		return fmt.Errorf("the %s failed with an error without %q: %w", what, want, err)
	}
	return nil
}

func writeSnapshot(path string, data []byte) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return false, err
	}
	return true, nil
}

// snapshotKey identifies a row by its primary key (the whole row without
// one) and an entity by its identifier.
func snapshotKey(f *spec.File) spectest.KeyFunc {
	return func(target string, data map[string]any) string {
		if name, ok := strings.CutPrefix(target, "table "); ok {
			if t := f.Tables.Get(name); t != nil && len(t.PrimaryKey) > 0 {
				vals := make([]any, len(t.PrimaryKey))
				for i, k := range t.PrimaryKey {
					vals[i] = data[k.V]
				}
				if len(vals) == 1 {
					return compactJSON(vals[0])
				}
				return compactJSON(vals)
			}
			return compactJSON(data)
		}
		return compactJSON(data["identifier"])
	}
}

func compactJSON(v any) string {
	b, err := jsonv.Append(nil, v, false)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func mappingCase(ctx context.Context, sp *Spec, tf *spectest.File, mc spectest.Mapping) (res CaseResult) {
	res = CaseResult{Kind: "mapping", Name: mc.Name, Line: mc.Pos.Line, Col: mc.Pos.Col}
	defer res.annotateError(tf.Path)
	in := MapInput{Table: mc.Table, Blueprint: mc.Blueprint, From: mc.From, Record: mc.Record,
		Parents: mc.Parents, Config: mc.Config, Batch: mc.Batch, Lookups: mc.Lookups}
	got, err := MapRecord(ctx, sp, in)
	if res.Err = wantError(err, mc.Error, "mapping"); res.Err != nil || mc.Error != "" {
		return res
	}
	gotShaped, err := jsonShaped(got)
	if err != nil {
		res.Err = err
		return res
	}
	wantShaped, err := jsonShaped(mc.Want)
	if err != nil {
		res.Err = fmt.Errorf("want: %w", err)
		return res
	}
	gl, _ := gotShaped.([]any)
	wl, _ := wantShaped.([]any)
	target := "table " + mc.Table
	if mc.Blueprint != "" {
		target = "blueprint " + mc.Blueprint
	}
	for i := 0; i < max(len(gl), len(wl)); i++ {
		d := TestDiff{Target: target}
		if len(gl) > 1 || len(wl) > 1 {
			d.Key = "#" + strconv.Itoa(i+1)
		}
		switch {
		case i >= len(gl):
			d.Kind, d.Record = spectest.Missing, compactJSON(wl[i])
		case i >= len(wl):
			d.Kind, d.Record = spectest.Extra, compactJSON(gl[i])
		default:
			if d.Fields = spectest.FieldDiffs(wl[i], gl[i]); len(d.Fields) == 0 {
				continue
			}
		}
		res.Diffs = append(res.Diffs, d)
	}
	var only *spec.Entity
	if mc.Blueprint != "" {
		only, _ = entityMapping(sp.f, mc.Blueprint, mc.From)
	}
	res.annotateDiffs(sp.f, "mapping "+mc.Name, only)
	return res
}

// annotateError places a case's error at the case.
func (c *CaseResult) annotateError(file string) {
	if c.Err != nil {
		c.Annotations = append(c.Annotations, Annotation{File: file, Line: c.Line, Col: c.Col, Msg: c.Kind + " " + c.Name + ": " + c.Err.Error()})
	}
}

// maxAnnotations bounds the annotations of one case: CI shows a handful
// per file, and the text output has the rest.
const maxAnnotations = 10

// annotateDiffs places each difference at the spec program that made the
// field, or at the mapping of its table or blueprint. only, when set, is
// the entity mapping a mapping case used.
func (c *CaseResult) annotateDiffs(f *spec.File, what string, only *spec.Entity) {
	for _, d := range c.Diffs {
		head := what + ": " + d.Target + ", " + d.Name()
		if d.Kind != spectest.Changed {
			p := mappingPos(f, d.Target, "", only)
			c.Annotations = append(c.Annotations, Annotation{File: f.Path, Line: p.Line, Col: p.Col, Msg: what + ": " + d.Lines()[0]})
			continue
		}
		for _, fd := range d.Fields {
			p := mappingPos(f, d.Target, fd.Path, only)
			c.Annotations = append(c.Annotations, Annotation{File: f.Path, Line: p.Line, Col: p.Col, Msg: head + ": " + fd.String()})
		}
	}
	if len(c.Annotations) > maxAnnotations {
		c.Annotations = c.Annotations[:maxAnnotations]
	}
}

// mappingPos finds where in the spec a field of a target is made.
func mappingPos(f *spec.File, target, field string, only *spec.Entity) spec.Pos {
	if name, ok := strings.CutPrefix(target, "table "); ok {
		t := f.Tables.Get(name)
		switch {
		case t == nil:
			return spec.Pos{}
		case t.Row.Set:
			return t.Row.P
		}
		return t.Pos
	}
	name := strings.TrimPrefix(target, "blueprint ")
	head, rest, _ := strings.Cut(field, ".")
	head, _, _ = strings.Cut(head, "[")
	rest, _, _ = strings.Cut(rest, ".")
	rest, _, _ = strings.Cut(rest, "[")
	var first *spec.Entity
	if f.Port == nil {
		return spec.Pos{}
	}
	for i := range f.Port.Entities {
		e := &f.Port.Entities[i]
		if e.Blueprint.V != name || (only != nil && e != only) {
			continue
		}
		if first == nil {
			first = e
		}
		var q *spec.JQ
		switch head {
		case "identifier":
			q = &e.Identifier
		case "title":
			q = &e.Title
		case "icon":
			q = &e.Icon
		case "team":
			q = &e.Team
		case "properties":
			q = e.Properties.Get(rest)
		case "relations":
			q = e.Relations.Get(rest)
		}
		if q != nil && q.Set {
			return q.P
		}
	}
	if first == nil {
		return spec.Pos{}
	}
	return first.Pos
}
