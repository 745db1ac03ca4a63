package harness

import (
	"encoding/json"
	"math"
	"regexp"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestGenerateDeterministic(t *testing.T) {
	if diff := cmp.Diff(Generate(42, Small), Generate(42, Small)); diff != "" {
		t.Fatalf("same seed, different accounts (-a +b):\n%s", diff)
	}
	// Demo compares as JSON (cmp is slow on big accounts); Large runs the
	// same code with bigger counts, so it is left to TestGenerateShapes.
	for _, size := range []Size{Small, Demo} {
		t.Run(size.String(), func(t *testing.T) {
			ja := mustJSON(t, Generate(42, size))
			if jb := mustJSON(t, Generate(42, size)); string(ja) != string(jb) {
				t.Error("same seed, different JSON")
			}
			if jc := mustJSON(t, Generate(43, size)); string(ja) == string(jc) {
				t.Error("different seeds gave the same account")
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGenerateShapes(t *testing.T) {
	for _, size := range []Size{Small, Demo, Large} {
		t.Run(size.String(), func(t *testing.T) {
			sh := size.Shape()
			a := Generate(1, size)
			if len(a.Projects) != sh.Projects || len(a.Budgets) != sh.Budgets || len(a.OUs) != sh.OUs {
				t.Errorf("got %d projects, %d budgets, %d OUs; want %+v", len(a.Projects), len(a.Budgets), len(a.OUs), sh)
			}
			for _, ou := range a.OUs {
				if len(ou.Incidents) != sh.IncidentsPerOU {
					t.Errorf("OU %d: %d incidents, want %d", ou.RefID, len(ou.Incidents), sh.IncidentsPerOU)
				}
			}
		})
	}
	if Demo.Shape().Projects <= 100 {
		t.Error("Demo must have more than 100 projects so pageSize 100 takes several pages")
	}
	for _, sh := range []Shape{{}, {Projects: 1, Budgets: 1, OUs: 1, IncidentsPerOU: 1}, {Projects: 3}} {
		a := GenerateShape(9, sh)
		if len(a.Projects) != sh.Projects || len(a.Budgets) != sh.Budgets || len(a.OUs) != sh.OUs {
			t.Errorf("GenerateShape(%+v): %d/%d/%d", sh, len(a.Projects), len(a.Budgets), len(a.OUs))
		}
	}
}

var identRE = regexp.MustCompile(`^[a-zA-Z_][0-9a-zA-Z_$]{0,127}$`)

func TestGenerateEdgeCases(t *testing.T) {
	a := Generate(5, Demo)
	keys := map[[2]string]bool{}
	orgsOf := map[string][]string{}
	var unicodeName, punctName, nilDesc, emptyDesc, nilTags, emptyTags, noModules, favourite, tie bool
	lastMod := map[int64]int{}
	for _, p := range a.Projects {
		pr := p.Project
		k := [2]string{pr.OrgIdentifier, pr.Identifier}
		if keys[k] {
			t.Errorf("duplicate project %v", k)
		}
		keys[k] = true
		orgsOf[pr.Identifier] = append(orgsOf[pr.Identifier], pr.OrgIdentifier)
		if !identRE.MatchString(pr.Identifier) || !identRE.MatchString(pr.OrgIdentifier) {
			t.Errorf("invalid Harness identifier %v", k)
		}
		if p.LastModifiedAt < p.CreatedAt {
			t.Errorf("%v modified before created", k)
		}
		for _, r := range pr.Name {
			if r >= utf8.RuneSelf {
				unicodeName = true
			}
		}
		punctName = punctName || regexp.MustCompile(`["'<>&]`).MatchString(pr.Name)
		nilDesc = nilDesc || pr.Description == nil
		emptyDesc = emptyDesc || (pr.Description != nil && *pr.Description == "")
		nilTags = nilTags || pr.Tags == nil
		emptyTags = emptyTags || (pr.Tags != nil && len(pr.Tags) == 0)
		noModules = noModules || len(pr.Modules) == 0
		favourite = favourite || p.IsFavorite
		lastMod[p.LastModifiedAt]++
		tie = tie || lastMod[p.LastModifiedAt] > 1
	}
	checks := map[string]bool{
		"unicode name": unicodeName, "punctuation name": punctName, "null description": nilDesc,
		"empty description": emptyDesc, "missing tags": nilTags, "empty tags": emptyTags,
		"no modules": noModules, "favourite": favourite, "lastModifiedAt tie": tie,
		"default_project in default and platform": keys[[2]string{"default", "default_project"}] && keys[[2]string{"platform", "default_project"}],
	}
	for name, ok := range checks {
		if !ok {
			t.Errorf("Demo lacks edge case: %s", name)
		}
	}
	shared := 0
	for _, orgs := range orgsOf {
		if len(orgs) > 1 {
			shared++
		}
	}
	if shared < 3 {
		t.Errorf("only %d identifiers shared across orgs", shared)
	}

	if len(a.Catalogue) < 5 {
		t.Errorf("%d connector categories", len(a.Catalogue))
	}
	scopes := map[string]bool{}
	uuids := map[string]bool{}
	thresholds := 0
	for _, b := range a.Budgets {
		scopes[b.Scope.Type] = true
		if uuids[b.UUID] {
			t.Errorf("duplicate budget uuid %s", b.UUID)
		}
		uuids[b.UUID] = true
		thresholds += len(b.AlertThresholds)
		if b.AccountID != a.ID {
			t.Errorf("budget %s accountId %s, want %s", b.UUID, b.AccountID, a.ID)
		}
		if b.AlertThresholds == nil || b.EmailAddresses == nil || b.UserGroupIDs == nil {
			t.Errorf("budget %s has a nil list (would be JSON null)", b.UUID)
		}
	}
	if len(scopes) < 3 || thresholds == 0 {
		t.Errorf("budget scopes %v, %d thresholds", scopes, thresholds)
	}
	for _, ou := range a.OUs {
		if ou.Profile == nil || len(ou.Profile.Stages) == 0 || len(ou.IntegrationIDs) == 0 {
			t.Errorf("OU %d incomplete", ou.RefID)
		}
		for _, inc := range ou.Incidents {
			if len(inc.StageSeconds) != len(ou.Profile.Stages) {
				t.Fatalf("incident %s has %d stage durations, want %d", inc.Key, len(inc.StageSeconds), len(ou.Profile.Stages))
			}
		}
	}
}

// TestGenerateIsolated checks accounts share no mutable memory.
func TestGenerateIsolated(t *testing.T) {
	a := Generate(1, Small)
	for i := range a.Projects {
		for j := range a.Projects[i].Project.Modules {
			a.Projects[i].Project.Modules[j] = "MUTATED"
		}
	}
	for i := range a.Catalogue {
		a.Catalogue[i].Connectors[0] = "MUTATED"
	}
	b := Generate(1, Small)
	for _, p := range b.Projects {
		for _, m := range p.Project.Modules {
			if m == "MUTATED" {
				t.Fatal("mutating one account changed another")
			}
		}
	}
	if b.Catalogue[0].Connectors[0] == "MUTATED" {
		t.Fatal("catalogue shared between accounts")
	}
}

func TestJavaDouble(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0.0"},
		{math.Copysign(0, -1), "-0.0"},
		{1000, "1000.0"},
		{812.4567, "812.4567"},
		{-3.5, "-3.5"},
		{0.001, "0.001"},
		{0.0005, "5.0E-4"},
		{1.25e-10, "1.25E-10"},
		{9999999, "9999999.0"},
		{1e7, "1.0E7"},
		{25_000_000, "2.5E7"},
		{12_345_678.9, "1.23456789E7"},
		{-2e21, "-2.0E21"},
	}
	for _, tc := range tests {
		got, err := Double(tc.in).MarshalJSON()
		if err != nil || string(got) != tc.want {
			t.Errorf("Double(%v) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1)} {
		if _, err := Double(bad).MarshalJSON(); err == nil {
			t.Errorf("Double(%v) marshalled without error", bad)
		}
	}
}
