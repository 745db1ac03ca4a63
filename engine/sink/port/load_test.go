package port

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
	"github.com/ferry-etl/ferry/engine/sink"
)

func TestLoadGolden(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	ents := humanitecSet("checkout", "ledger-ü")
	rep, err := e.run(e.sink(), humanitecBlueprints(t, allBlueprints...), ents, completeAll())
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if rep.Upserted != len(ents) || rep.Failed != 0 || rep.Deleted != 0 {
		t.Errorf("report %+v, want %d upserted", rep, len(ents))
	}
	golden(t, "humanitec_catalog.json", e.srv.Catalog().JSON())

	// Every entity went through the bulk route; single upserts never.
	if n := e.srv.CountRequests("POST", "/v1/blueprints/"+bpApp+"/entities"); n != 0 {
		t.Errorf("%d single-entity POSTs", n)
	}
	if n := e.srv.CountRequests("", "/v1/auth/access_token"); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

// The resource graph's self-relation is sent in a second pass, with
// merge=true, after every node exists.
func TestSelfRelationSecondPass(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	if _, err := e.run(e.sink(), humanitecBlueprints(t, allBlueprints...), humanitecSet("a"), completeAll()); err != nil {
		t.Fatal(err)
	}
	var first, second int
	for _, r := range e.srv.Requests() {
		if r.Path != "/v1/blueprints/"+bpGraph+"/entities/bulk" {
			continue
		}
		var body struct{ Entities []map[string]any }
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		for _, ent := range body.Entities {
			rels, _ := ent["relations"].(map[string]any)
			_, hasSelf := rels[bpGraph]
			switch r.Query.Get("merge") {
			case "false":
				first++
				if hasSelf {
					t.Errorf("first pass carries the self-relation: %v", ent)
				}
			case "true":
				second++
				if !hasSelf || ent["properties"] != nil {
					t.Errorf("second pass body %v, want identifier and relations only", ent)
				}
			}
		}
	}
	// 2 envs × 3 nodes; 2 envs × 2 nodes with dependencies.
	if first != 6 || second != 4 {
		t.Errorf("first pass %d entities, second %d; want 6 and 4", first, second)
	}
	got := e.srv.Entity(bpGraph, "a/production/modules.api")["relations"].(map[string]any)[bpGraph]
	if fmt.Sprint(got) != "[a/production/externals.db a/production/dns]" {
		t.Errorf("self relation = %v", got)
	}
}

func TestSecondRunDeletesStale(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bps := humanitecBlueprints(t, allBlueprints...)
	if _, err := e.run(e.sink(), bps, humanitecSet("a", "b", "c"), completeAll()); err != nil {
		t.Fatal(err)
	}
	before := keys(e.srv.Catalog())
	rep, err := e.run(e.sink(), bps, humanitecSet("a", "c"), completeAll())
	if err != nil {
		t.Fatal(err)
	}
	after := keys(e.srv.Catalog())
	var gone []string
	for k := range before {
		if !after[k] {
			gone = append(gone, k)
		}
	}
	slices.Sort(gone)
	var want []string
	for _, ent := range humanitecSet("b") {
		want = append(want, ent.Blueprint+":"+ent.Data["identifier"].(string))
	}
	slices.Sort(want)
	if !slices.Equal(gone, want) {
		t.Errorf("deleted %v\nwant %v", gone, want)
	}
	if rep.Deleted != len(want) || len(rep.DeleteErrors) != 0 || len(rep.SkippedDeletes) != 0 {
		t.Errorf("report %+v, want %d deleted", rep, len(want))
	}
	perBlueprint := map[string]int{}
	for _, g := range want {
		bp, _, _ := strings.Cut(g, ":")
		perBlueprint[bp]++
	}
	for bp, n := range perBlueprint {
		if got := rep.Blueprints[bp].Deleted; got != n {
			t.Errorf("blueprint %s: %d deleted in the report, want %d", bp, got, n)
		}
	}
	// Sources went before their targets: Port never refused a delete.
	for _, r := range e.srv.Requests() {
		if strings.HasSuffix(r.Path, "/bulk/entities/delete") && r.Status != http.StatusOK {
			t.Errorf("%s answered %d", r.Path, r.Status)
		}
	}
	if len(after) != len(before)-len(want) {
		t.Errorf("catalog has %d entities, want %d", len(after), len(before)-len(want))
	}
}

func TestIncompleteDeletesNothing(t *testing.T) {
	tests := []struct {
		name      string
		complete  map[string]bool
		wantGone  int
		deleteErr bool
	}{
		{"nil", nil, 0, false},
		{"all false", map[string]bool{bpApp: false, bpEnv: false, bpWork: false, bpGraph: false}, 0, false},
		// Environments complete, but the stale workloads and nodes (their
		// streams incomplete) still point at them: Port refuses, nothing
		// is forced.
		{"only environments", map[string]bool{bpEnv: true}, 0, true},
		{"only workloads", map[string]bool{bpWork: true}, 2, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, portsim.Options{})
			bps := humanitecBlueprints(t, allBlueprints...)
			if _, err := e.run(e.sink(), bps, humanitecSet("a", "b", "c"), completeAll()); err != nil {
				t.Fatal(err)
			}
			before := len(e.srv.Catalog().Entities)
			rep, err := e.run(e.sink(), bps, humanitecSet("a", "c"), tc.complete)
			if err != nil {
				t.Fatal(err)
			}
			if gone := before - len(e.srv.Catalog().Entities); gone != tc.wantGone || rep.Deleted != tc.wantGone {
				t.Errorf("deleted %d (report %d), want %d", gone, rep.Deleted, tc.wantGone)
			}
			if (len(rep.DeleteErrors) > 0) != tc.deleteErr {
				t.Errorf("delete errors %v, want some: %v", rep.DeleteErrors, tc.deleteErr)
			}
			for _, de := range rep.DeleteErrors {
				if !strings.Contains(de.Message, "dependents") {
					t.Errorf("delete error message %q", de.Message)
				}
			}
		})
	}
}

func TestDeleteThreshold(t *testing.T) {
	apps := func(n int) []sink.Entity {
		var out []sink.Entity
		for i := range n {
			out = append(out, sink.Entity{Blueprint: bpApp, Data: map[string]any{"identifier": fmt.Sprintf("app-%02d", i), "properties": map[string]any{}}})
		}
		return out
	}
	tests := []struct {
		name      string
		threshold float64
		keep      int
		wantGone  int
		skipped   bool
	}{
		{"95% stale over default 90%", 0, 1, 0, true},
		{"90% stale at default 90%", 0, 2, 18, false},
		{"95% stale under 100%", 1, 1, 19, false},
		{"50% stale over 40%", 0.4, 10, 0, true},
		{"all stale is skipped", 0, 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, portsim.Options{})
			bps := humanitecBlueprints(t, bpApp)
			if _, err := e.run(e.sink(), bps, apps(20), map[string]bool{bpApp: true}); err != nil {
				t.Fatal(err)
			}
			s := e.sink(func(c *Config) { c.DeleteThreshold = tc.threshold })
			rep, err := e.run(s, bps, apps(tc.keep), map[string]bool{bpApp: true})
			if err != nil {
				t.Fatal(err)
			}
			if left := len(e.srv.Catalog().Entities); 20-left != tc.wantGone || rep.Deleted != tc.wantGone {
				t.Errorf("deleted %d (report %d), want %d", 20-left, rep.Deleted, tc.wantGone)
			}
			if got := len(rep.SkippedDeletes) > 0; got != tc.skipped {
				t.Fatalf("skipped %v, want %v", rep.SkippedDeletes, tc.skipped)
			}
			if tc.skipped {
				sd := rep.SkippedDeletes[0]
				if sd.Blueprint != bpApp || sd.Owned != 20 || sd.Stale != 20-tc.keep {
					t.Errorf("skip %+v", sd)
				}
				if !strings.Contains(e.logs.String(), "port deletion skipped") {
					t.Errorf("no warning logged")
				}
			}
		})
	}
}

func TestOwnershipBoundaries(t *testing.T) {
	tests := []struct {
		name     string
		mut      func(*Config)
		wantGone []string
	}{
		{"owned only", nil, []string{"mine-2"}},
		{"no delete", func(c *Config) { c.NoDelete = true }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, portsim.Options{})
			bps := humanitecBlueprints(t, bpApp)
			mine := []sink.Entity{
				{Blueprint: bpApp, Data: map[string]any{"identifier": "mine-1", "properties": map[string]any{}}},
				{Blueprint: bpApp, Data: map[string]any{"identifier": "mine-2", "properties": map[string]any{}}},
				{Blueprint: bpApp, Data: map[string]any{"identifier": "mine-3", "properties": map[string]any{}}},
			}
			if _, err := e.run(e.sink(), bps, mine, map[string]bool{bpApp: true}); err != nil {
				t.Fatal(err)
			}
			// Someone else's entities in the same blueprint.
			for _, body := range []string{
				`{"identifier":"manual","properties":{}}`,
				`{"identifier":"other-spec","properties":{"ferryOwner":"harness"}}`,
			} {
				if err := e.srv.SeedEntity(bpApp, []byte(body)); err != nil {
					t.Fatal(err)
				}
			}
			before := keys(e.srv.Catalog())
			if _, err := e.run(e.sink(tc.mut), bps, []sink.Entity{mine[0], mine[2]}, map[string]bool{bpApp: true}); err != nil {
				t.Fatal(err)
			}
			after := keys(e.srv.Catalog())
			var gone []string
			for k := range before {
				if !after[k] {
					gone = append(gone, strings.TrimPrefix(k, bpApp+":"))
				}
			}
			if fmt.Sprint(gone) != fmt.Sprint(tc.wantGone) && !(len(gone) == 0 && len(tc.wantGone) == 0) {
				t.Errorf("deleted %v, want %v", gone, tc.wantGone)
			}
		})
	}

	t.Run("no owner: no marker, no deletion", func(t *testing.T) {
		e := newEnv(t, portsim.Options{})
		noOwner := func(c *Config) { c.Owner = "" }
		bps := humanitecBlueprints(t, bpApp)
		one := []sink.Entity{{Blueprint: bpApp, Data: map[string]any{"identifier": "x", "properties": map[string]any{}}}}
		if _, err := e.run(e.sink(noOwner), bps, one, map[string]bool{bpApp: true}); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(e.srv.Catalog().JSON()), OwnerProperty) {
			t.Errorf("ownership property written without an owner")
		}
		if _, err := e.run(e.sink(noOwner), bps, nil, map[string]bool{bpApp: true}); err != nil {
			t.Fatal(err)
		}
		if len(e.srv.Catalog().Entities) != 1 {
			t.Errorf("entity deleted without ownership")
		}
		if n := e.srv.CountRequests("POST", "/v1/blueprints/"+bpApp+"/bulk/entities/delete"); n != 0 {
			t.Errorf("%d delete requests", n)
		}
	})

	t.Run("reserved property", func(t *testing.T) {
		e := newEnv(t, portsim.Options{})
		bad := []sink.Entity{{Blueprint: bpApp, Data: map[string]any{"identifier": "x", "properties": map[string]any{OwnerProperty: "someone"}}}}
		rep, err := e.run(e.sink(), humanitecBlueprints(t, bpApp), bad, nil)
		if !errors.Is(err, ErrEntitiesFailed) || rep.Failed != 1 || !strings.Contains(rep.Errors[0].Message, "reserved") {
			t.Errorf("err %v report %+v", err, rep)
		}
	})
}

// A stale entity that a written entity still points at is kept.
func TestStaleButReferencedIsKept(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bps := humanitecBlueprints(t, bpApp, bpEnv)
	run1 := []sink.Entity{
		{Blueprint: bpApp, Data: map[string]any{"identifier": "a", "properties": map[string]any{}}},
		{Blueprint: bpApp, Data: map[string]any{"identifier": "b", "properties": map[string]any{}}},
		{Blueprint: bpApp, Data: map[string]any{"identifier": "c", "properties": map[string]any{}}},
	}
	if _, err := e.run(e.sink(), bps, run1, map[string]bool{bpApp: true}); err != nil {
		t.Fatal(err)
	}
	// App b is no longer produced, but a produced environment relates to it.
	run2 := []sink.Entity{
		run1[0],
		{Blueprint: bpEnv, Data: map[string]any{"identifier": "b/dev", "properties": map[string]any{}, "relations": map[string]any{"humanitecApplication": "b"}}},
	}
	rep, err := e.run(e.sink(), bps, run2, map[string]bool{bpApp: true, bpEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	if e.srv.Entity(bpApp, "b") == nil || e.srv.Entity(bpApp, "c") != nil || rep.Deleted != 1 {
		t.Errorf("b kept=%v c kept=%v deleted=%d; want b kept, c deleted", e.srv.Entity(bpApp, "b") != nil, e.srv.Entity(bpApp, "c") != nil, rep.Deleted)
	}
	// Kept by the sink's own rule, not by Port refusing the delete: never
	// asked to go.
	for _, r := range e.srv.Requests() {
		if strings.HasSuffix(r.Path, "/bulk/entities/delete") && strings.Contains(string(r.Body), `"b"`) {
			t.Errorf("the sink tried to delete a referenced entity: %s", r.Body)
		}
	}
	// But it is stale and stays: not silent (README "Ownership of Port
	// entities": a stale entity not deleted because another relates to it
	// is named in delete_errors, and its blueprint is not reconciled).
	if len(rep.DeleteErrors) != 1 || rep.DeleteErrors[0].Identifier != "b" || !strings.Contains(rep.DeleteErrors[0].Message, "relates to it") {
		t.Errorf("delete errors %+v, want b named as kept because an entity relates to it", rep.DeleteErrors)
	}
}

func TestPartialFailureReported(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	e.srv.RejectEntity(bpEnv, "a/production", http.StatusUnprocessableEntity, "blueprint_schema_mismatch", "rejected for the test")
	ents := humanitecSet("a")
	rep, err := e.run(e.sink(), humanitecBlueprints(t, allBlueprints...), ents, completeAll())
	if !errors.Is(err, ErrEntitiesFailed) {
		t.Fatalf("Finish error %v, want ErrEntitiesFailed", err)
	}
	if rep.Failed != 1 || rep.Upserted != len(ents)-1 {
		t.Errorf("failed %d upserted %d, want 1 and %d", rep.Failed, rep.Upserted, len(ents)-1)
	}
	want := EntityError{Blueprint: bpEnv, Identifier: "a/production", Message: "422 blueprint_schema_mismatch: rejected for the test", Stream: "envs"}
	if len(rep.Errors) != 1 || rep.Errors[0] != want {
		t.Errorf("errors %+v, want %+v", rep.Errors, want)
	}
	// The workload and nodes of the failed environment were still written,
	// their relation to it dropped (default policy).
	w := e.srv.Entity(bpWork, "a/production/api")
	if w == nil || w["relations"].(map[string]any)[bpEnv] != nil {
		t.Errorf("workload of the failed env: %v", w)
	}
	if rep.DroppedRelations != 4 {
		t.Errorf("dropped relations %d, want 4 (1 workload + 3 nodes)", rep.DroppedRelations)
	}
	// The failed entity counts as produced: a second run with it failing
	// again deletes nothing.
	rep, _ = e.run(e.sink(), nil, ents, completeAll())
	if rep.Deleted != 0 {
		t.Errorf("second run deleted %d", rep.Deleted)
	}
}

func TestValidationFailuresReported(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	ents := []sink.Entity{
		{Blueprint: bpApp, Data: map[string]any{"identifier": "ok", "properties": map[string]any{}}},
		{Blueprint: bpApp, Data: map[string]any{"identifier": "bad", "properties": map[string]any{"createdAt": "yesterday"}}},
		{Blueprint: "nope", Data: map[string]any{"identifier": "x"}},
	}
	rep, err := e.run(e.sink(), humanitecBlueprints(t, bpApp), ents, nil)
	if !errors.Is(err, ErrEntitiesFailed) || rep.Failed != 2 || rep.Upserted != 1 {
		t.Fatalf("err %v report %+v", err, rep)
	}
	if rep.Errors[0].Identifier != "bad" || !strings.Contains(rep.Errors[0].Message, "properties.createdAt") {
		t.Errorf("errors %+v", rep.Errors)
	}
	if e.srv.Entity(bpApp, "bad") != nil {
		t.Errorf("invalid entity was sent")
	}
}

func TestRelationPolicies(t *testing.T) {
	tests := []struct {
		name        string
		mut         func(*Config)
		seedApp     bool
		wantErr     bool
		wantRel     any
		wantStub    bool
		wantDropped int
	}{
		{"drop is the default", nil, false, false, nil, false, 1},
		{"stub", func(c *Config) { c.RelationPolicy = RelationStub }, false, false, "ghost", true, 0},
		{"fail", func(c *Config) { c.RelationPolicy = RelationFail }, false, true, nil, false, 0},
		{"per relation override", func(c *Config) {
			c.RelationPolicy = RelationFail
			c.RelationPolicies = map[string]RelationPolicy{bpEnv + ".humanitecApplication": RelationStub}
		}, false, false, "ghost", true, 0},
		{"per blueprint override", func(c *Config) {
			c.RelationPolicies = map[string]RelationPolicy{bpEnv: RelationFail}
		}, false, true, nil, false, 0},
		{"target already in Port", func(c *Config) { c.RelationPolicy = RelationFail }, true, false, "ghost", false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, portsim.Options{})
			s := e.sink()
			if tc.mut != nil {
				s = e.sink(tc.mut)
			}
			if err := s.EnsureBlueprints(t.Context(), humanitecBlueprints(t, bpApp, bpEnv)); err != nil {
				t.Fatal(err)
			}
			if tc.seedApp {
				if err := e.srv.SeedEntity(bpApp, []byte(`{"identifier":"ghost","properties":{}}`)); err != nil {
					t.Fatal(err)
				}
			}
			ent := sink.Entity{Blueprint: bpEnv, Data: map[string]any{"identifier": "ghost/dev", "properties": map[string]any{}, "relations": map[string]any{"humanitecApplication": "ghost"}}}
			if err := s.Write(t.Context(), ent); err != nil {
				t.Fatal(err)
			}
			rep, err := s.Finish(t.Context(), nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Finish error %v, want error: %v", err, tc.wantErr)
			}
			got := e.srv.Entity(bpEnv, "ghost/dev")
			if tc.wantErr {
				if got != nil || rep.Failed != 1 || !strings.Contains(rep.Errors[0].Message, "ghost") {
					t.Errorf("entity %v report %+v", got, rep)
				}
				return
			}
			if got == nil {
				t.Fatal("entity not written")
			}
			if rel := got["relations"].(map[string]any)["humanitecApplication"]; rel != tc.wantRel {
				t.Errorf("relation %v, want %v", rel, tc.wantRel)
			}
			if stub := e.srv.Entity(bpApp, "ghost") != nil && !tc.seedApp; stub != tc.wantStub {
				t.Errorf("stub created %v, want %v", stub, tc.wantStub)
			}
			if rep.DroppedRelations != tc.wantDropped {
				t.Errorf("dropped %d, want %d", rep.DroppedRelations, tc.wantDropped)
			}
			if tc.wantDropped > 0 && !strings.Contains(e.logs.String(), "relation dropped") {
				t.Errorf("no warning for the dropped relation")
			}
		})
	}
}

func TestBatching(t *testing.T) {
	apps := func(n, size int) []sink.Entity {
		var out []sink.Entity
		for i := range n {
			props := map[string]any{}
			out = append(out, sink.Entity{Blueprint: bpApp, Data: map[string]any{
				"identifier": fmt.Sprintf("app-%03d", i), "title": strings.Repeat("t", size), "properties": props,
			}})
		}
		return out
	}
	bulkPath := "/v1/blueprints/" + bpApp + "/entities/bulk"
	tests := []struct {
		name       string
		opts       portsim.Options
		n, size    int
		wantCounts []int // entities per successful bulk request, in order of sending (sorted)
		want413    bool
	}{
		{"by count", portsim.Options{}, 45, 10, []int{5, 20, 20}, false},
		{"by bytes", portsim.Options{}, 12, 200_000, []int{2, 5, 5}, false},
		{"413 splits", portsim.Options{MaxBodyBytes: 450_000}, 12, 200_000, []int{1, 1, 2, 2, 2, 2, 2}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts)
			rep, err := e.run(e.sink(), humanitecBlueprints(t, bpApp), apps(tc.n, tc.size), nil)
			if err != nil || rep.Upserted != tc.n {
				t.Fatalf("err %v report %+v", err, rep)
			}
			var counts []int
			saw413 := false
			for _, r := range e.srv.Requests() {
				if r.Path != bulkPath {
					continue
				}
				if r.Status == http.StatusRequestEntityTooLarge {
					saw413 = true
					continue
				}
				if len(r.Body) > 1<<20 {
					t.Errorf("request body %d bytes > 1 MiB", len(r.Body))
				}
				var body struct{ Entities []any }
				if err := json.Unmarshal(r.Body, &body); err != nil {
					t.Fatal(err)
				}
				counts = append(counts, len(body.Entities))
			}
			slices.Sort(counts)
			if !slices.Equal(counts, tc.wantCounts) {
				t.Errorf("bulk sizes %v, want %v", counts, tc.wantCounts)
			}
			if saw413 != tc.want413 {
				t.Errorf("saw 413: %v, want %v", saw413, tc.want413)
			}
		})
	}
	t.Run("entity over 1 MiB fails alone", func(t *testing.T) {
		e := newEnv(t, portsim.Options{})
		ents := apps(3, 10)
		ents[1].Data["title"] = strings.Repeat("x", 1<<20)
		rep, err := e.run(e.sink(), humanitecBlueprints(t, bpApp), ents, nil)
		if !errors.Is(err, ErrEntitiesFailed) || rep.Failed != 1 || rep.Upserted != 2 || !strings.Contains(rep.Errors[0].Message, "request limit") {
			t.Errorf("err %v report %+v", err, rep)
		}
	})
}

func TestConcurrencyBound(t *testing.T) {
	for _, conc := range []int{1, 3} {
		t.Run(fmt.Sprint(conc), func(t *testing.T) {
			e := newEnv(t, portsim.Options{Latency: 15 * time.Millisecond})
			var ents []sink.Entity
			for i := range 200 {
				ents = append(ents, sink.Entity{Blueprint: bpApp, Data: map[string]any{"identifier": fmt.Sprint("a", i), "properties": map[string]any{}}})
			}
			if _, err := e.run(e.sink(func(c *Config) { c.Concurrency = conc }), humanitecBlueprints(t, bpApp), ents, nil); err != nil {
				t.Fatal(err)
			}
			if p := e.srv.PeakInFlight(); p > conc {
				t.Errorf("peak in flight %d > concurrency %d", p, conc)
			}
			if conc > 1 && e.srv.PeakInFlight() < 2 {
				t.Errorf("peak in flight %d: requests were not concurrent", e.srv.PeakInFlight())
			}
		})
	}
}

func TestWriteDedupAndOrderIndependence(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	ents := humanitecSet("a")
	slices.Reverse(ents)
	ents = append(ents, sink.Entity{Blueprint: bpApp, Data: map[string]any{"identifier": "a", "title": "last wins", "properties": map[string]any{}}})
	rep, err := e.run(e.sink(), humanitecBlueprints(t, allBlueprints...), ents, nil)
	if err != nil || rep.Upserted != len(ents)-1 {
		t.Fatalf("err %v report %+v", err, rep)
	}
	if got := e.srv.Entity(bpApp, "a")["title"]; got != "last wins" {
		t.Errorf("title %v", got)
	}
	if n := len(keys(e.srv.Catalog())); n != len(ents)-1 {
		t.Errorf("%d entities in Port, want %d", n, len(ents)-1)
	}
}

// TestNoDeleteSaysSo: with NoDelete a stale owned entity stays, and the
// report says its blueprint's deletion was skipped (so it is not
// reconciled), also for a blueprint the run wrote nothing to; a blueprint
// with nothing stale is not named.
func TestNoDeleteSaysSo(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bps := humanitecBlueprints(t, bpApp, bpEnv)
	ents := []sink.Entity{
		{Blueprint: bpApp, Data: map[string]any{"identifier": "a", "properties": map[string]any{}}},
		{Blueprint: bpApp, Data: map[string]any{"identifier": "b", "properties": map[string]any{}}},
		{Blueprint: bpApp, Data: map[string]any{"identifier": "c", "properties": map[string]any{}}},
		{Blueprint: bpEnv, Data: map[string]any{"identifier": "a/dev", "properties": map[string]any{}}},
	}
	complete := map[string]bool{bpApp: true, bpEnv: true}
	if _, err := e.run(e.sink(), bps, ents, complete); err != nil {
		t.Fatal(err)
	}
	noDelete := func(c *Config) { c.NoDelete = true }
	rep, err := e.run(e.sink(noDelete), bps, []sink.Entity{ents[0], ents[1], ents[3]}, complete)
	if err != nil {
		t.Fatal(err)
	}
	if e.srv.Entity(bpApp, "c") == nil || rep.Deleted != 0 {
		t.Fatalf("no-delete deleted %d (c kept: %v)", rep.Deleted, e.srv.Entity(bpApp, "c") != nil)
	}
	if len(rep.SkippedDeletes) != 1 || rep.SkippedDeletes[0].Blueprint != bpApp || rep.SkippedDeletes[0].Stale != 1 || !strings.Contains(rep.SkippedDeletes[0].Reason, "no-delete") {
		t.Errorf("skipped deletes %+v, want %s's one stale entity kept by no-delete", rep.SkippedDeletes, bpApp)
	}
	// The environment is gone from the source: nothing of it is written,
	// its owned entities are listed for the report all the same.
	rep, err = e.run(e.sink(noDelete), bps, []sink.Entity{ents[0], ents[1]}, complete)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, sd := range rep.SkippedDeletes {
		got[sd.Blueprint] = sd.Stale
	}
	if len(got) != 2 || got[bpApp] != 1 || got[bpEnv] != 1 || e.srv.Entity(bpEnv, "a/dev") == nil {
		t.Errorf("skipped deletes %+v, want one stale entity each of %s and %s, kept", rep.SkippedDeletes, bpApp, bpEnv)
	}
}
