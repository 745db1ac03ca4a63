package humanitec

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGenerateDeterministic(t *testing.T) {
	marshal := func(o *Org) string {
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, size := range []Size{Small(), Demo()} {
		a, b := marshal(Generate(42, size)), marshal(Generate(42, size))
		if a != b {
			t.Errorf("Generate(42, %+v) differs between calls", size)
		}
		if c := marshal(Generate(43, size)); c == a {
			t.Errorf("Generate(43) equals Generate(42) for %+v", size)
		}
	}
}

func TestGenerateMinimums(t *testing.T) {
	org := Generate(1, Size{})
	if len(org.Apps) != 3 || len(org.Apps[0].Envs) != 3 {
		t.Errorf("Size{} gave %d apps, %d envs; want the minimums 3 and 3", len(org.Apps), len(org.Apps[0].Envs))
	}
	n := 0
	for _, a := range org.Apps {
		n += len(a.Pipelines)
	}
	if n != 0 {
		t.Errorf("Size{} gave %d pipelines, want 0", n)
	}
	checkEdgeCases(t, org, false)
}

func TestGenerateEdgeCases(t *testing.T) {
	for _, tc := range []struct {
		name string
		size Size
	}{{"small", Small()}, {"demo", Demo()}, {"large", Large()}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "large" && testing.Short() {
				t.Skip("large org in -short mode")
			}
			checkEdgeCases(t, Generate(99, tc.size), true)
		})
	}
}

func TestGenerateLargeCounts(t *testing.T) {
	if testing.Short() {
		t.Skip("large org in -short mode")
	}
	org := Generate(1, Large())
	var envs, resources, nodes, pipelines, values int
	for _, a := range org.Apps {
		envs += len(a.Envs)
		pipelines += len(a.Pipelines)
		values += len(a.Values)
		for _, e := range a.Envs {
			resources += len(e.Resources)
			for _, g := range e.Graphs {
				nodes += len(g.Nodes)
			}
		}
	}
	for name, n := range map[string]int{"apps": len(org.Apps) * 10, "envs": envs * 2, "resources": resources, "graph nodes": nodes, "pipelines": pipelines, "values": values} {
		if n < 1000 {
			t.Errorf("large org has too few %s (scaled count %d)", name, n)
		}
	}
}

var (
	idPattern        = regexp.MustCompile(`^[a-z0-9](?:-?[a-z0-9]+)+$`)
	timestampPattern = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?Z$`)
	valueKeyPattern  = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)
)

// checkEdgeCases asserts every edge case the brief lists is present in org.
// manyPipelines asks for the >100 pipelines of the presets.
func checkEdgeCases(t *testing.T, org *Org, manyPipelines bool) {
	t.Helper()
	has := map[string]bool{}
	mark := func(k string, cond bool) {
		if cond {
			has[k] = true
		}
	}
	names := map[string]bool{}
	pipelineApps := map[string]map[string]bool{}
	pipelines := 0
	for _, a := range org.Apps {
		names[a.Name] = true
		mark("app deleting", a.Status == "deleting" && a.StatusMessage != "")
		if !idPattern.MatchString(a.ID) {
			t.Errorf("app id %q does not match the spec pattern", a.ID)
		}
		for _, ts := range []string{a.CreatedAt, a.StatusChangedAt} {
			if !timestampPattern.MatchString(ts) {
				t.Errorf("app %s timestamp %q does not match the spec pattern", a.ID, ts)
			}
		}
		for _, e := range a.Envs {
			if !idPattern.MatchString(e.ID) {
				t.Errorf("env id %q does not match the spec pattern", e.ID)
			}
			d := e.LastDeploy
			mark("never deployed", d == nil && len(e.Resources) == 0)
			if d != nil {
				mark("deployed without graph id", d.DependencyGraphID == "")
				mark("deploy succeeded", d.Status == "succeeded")
				mark("deploy failed", d.Status == "failed")
				mark("deploy in progress", d.Status == "in progress")
				for _, ts := range []string{d.CreatedAt, d.StatusChangedAt} {
					if !timestampPattern.MatchString(ts) {
						t.Errorf("deployment timestamp %q does not match the spec pattern", ts)
					}
				}
				if d.DependencyGraphID != "" && e.Graph(d.DependencyGraphID) == nil {
					t.Errorf("%s/%s: last_deploy.dependency_graph_id %s has no graph", a.ID, e.ID, d.DependencyGraphID)
				}
				if a.Set(d.SetID) == nil {
					t.Errorf("%s/%s: last_deploy.set_id %s is not a set of the app", a.ID, e.ID, d.SetID)
				}
			}
			workloads := map[string]bool{}
			for _, r := range e.Resources {
				if r.Type == "workload" {
					workloads[r.ResID] = true
				}
			}
			for _, r := range e.Resources {
				mark("res shared.db", r.ResID == "shared.db")
				mark("res dns", r.ResID == "dns")
				mark("workload resource", strings.HasPrefix(r.ResID, "modules.") && r.Type == "workload" && strings.Count(r.ResID, ".") == 1)
				if parts := strings.Split(r.ResID, "."); len(parts) > 2 && parts[0] == "modules" {
					mark("resource of a missing workload", !workloads["modules."+parts[1]])
				}
				mark("scheduled deletion", r.ScheduledDeletion)
				if !timestampPattern.MatchString(r.UpdatedAt) {
					t.Errorf("resource updated_at %q does not match", r.UpdatedAt)
				}
			}
			for _, g := range e.Graphs {
				guresids := map[string]bool{}
				for _, n := range g.Nodes {
					guresids[n.GuResID] = true
				}
				for _, n := range g.Nodes {
					mark("node with several deps", len(n.DependsOn) >= 2)
					mark("node without deps", len(n.DependsOn) == 0)
					for _, dep := range n.DependsOn {
						if !guresids[dep] {
							t.Errorf("graph %s: node %s depends on %s, not a node of the graph", g.ID, n.ID, dep)
						}
					}
				}
				if g.Hash != nodesHash(g.Nodes) {
					t.Errorf("graph %s: hash is not the sha256 of its nodes", g.ID)
				}
			}
			var envSrc, appSrc bool
			overridden := map[string]bool{}
			for _, v := range e.Values {
				overridden[v.Key] = true
				envSrc = true
				mark("env secret", v.IsSecret && v.Value == "" && v.SecretKey != nil && v.SecretStoreID != nil)
			}
			for _, v := range a.Values {
				appSrc = appSrc || !overridden[v.Key]
			}
			mark("env with app and env values", envSrc && appSrc)
		}
		for _, v := range a.Values {
			mark("app secret", v.IsSecret && v.Value == "" && v.SecretKey != nil && v.SecretStoreID != nil && v.SecretVersion != nil)
			if !valueKeyPattern.MatchString(v.Key) {
				t.Errorf("value key %q does not match the spec pattern", v.Key)
			}
			if v.IsSecret && v.Value != "" {
				t.Errorf("secret value %s carries a value", v.Key)
			}
		}
		for _, v := range a.ValueSetVersions {
			mark("vsv with change", len(v.Change) > 0)
			mark("vsv result_of", v.ResultOf != nil)
			mark("vsv null result_of", v.ResultOf == nil)
			mark("vsv restore", v.ResultOf != nil && *v.ResultOf == "app_value_set_version_restore" && v.SourceValueSetVersionID != nil)
		}
		for _, s := range a.Sets {
			mark("set with workloads", len(s.Workloads) > 0)
			mark("empty set", len(s.Modules) == 0)
			if s.ID != hashSet(s).ID {
				t.Errorf("set %s: id is not the hash of its content", s.ID)
			}
		}
		for _, d := range a.Deltas {
			m := d.Metadata
			mark("delta full metadata", m.Name != "" && m.EnvID != "" && m.CreatedBy != "" && m.CreatedAt != "" && m.LastModifiedAt != "")
			mark("delta without name", m.Name == "")
			mark("delta archived", m.Archived)
			mark("delta with workloads", d.Workloads != nil)
		}
		for _, p := range a.Pipelines {
			pipelines++
			if pipelineApps[p.ID] == nil {
				pipelineApps[p.ID] = map[string]bool{}
			}
			pipelineApps[p.ID][a.ID] = true
			mark("pipeline with metadata", p.Metadata != nil)
			mark("pipeline without metadata", p.Metadata == nil)
		}
	}
	for _, n := range []string{"Café / Ünïcode—App", "k8s-cluster", "x--y"} {
		mark("name "+n, names[n])
	}
	for _, apps := range pipelineApps {
		mark("pipeline id in several apps", len(apps) > 1)
	}
	checkUsers(t, org, mark)
	primaries := 0
	for _, s := range org.SecretStores {
		if s.Primary {
			primaries++
		}
		kinds := 0
		for kind, set := range map[string]bool{"awssm": s.AWSSM != nil, "azurekv": s.AzureKV != nil, "gcpsm": s.GCPSM != nil, "vault": s.Vault != nil, "humanitec": s.Humanitec != nil} {
			if set {
				kinds++
				mark("store "+kind, true)
			}
		}
		if kinds > 1 {
			t.Errorf("secret store %s has %d kinds, the spec allows at most one", s.ID, kinds)
		}
	}
	if primaries != 1 {
		t.Errorf("%d primary secret stores, want 1", primaries)
	}

	want := []string{
		"name Café / Ünïcode—App", "name k8s-cluster", "name x--y", "app deleting",
		"never deployed", "deployed without graph id", "deploy succeeded", "deploy failed", "deploy in progress",
		"res shared.db", "res dns", "workload resource", "resource of a missing workload", "scheduled deletion",
		"node with several deps", "node without deps",
		"app secret", "env secret", "env with app and env values",
		"vsv with change", "vsv result_of", "vsv null result_of", "vsv restore",
		"set with workloads", "empty set",
		"delta full metadata", "delta without name", "delta archived", "delta with workloads",
		"store awssm", "store azurekv", "store gcpsm", "store vault", "store humanitec",
		"user in 3 groups", "user in 2 groups", "user in no group", "group without members",
		"service account", "user without invite", "user with invite",
		"microsecond timestamp", "whole-second timestamp", "unicode user name", "unicode group name",
	}
	if manyPipelines {
		want = append(want, "pipeline with metadata", "pipeline without metadata", "pipeline id in several apps")
		if pipelines <= 100 {
			t.Errorf("%d pipelines, want more than 100", pipelines)
		}
	}
	var missing []string
	for _, k := range want {
		if !has[k] {
			missing = append(missing, k)
		}
	}
	if diff := cmp.Diff([]string(nil), missing); diff != "" {
		t.Errorf("missing edge cases (-want +got):\n%s", diff)
	}
}

var (
	groupIDPat           = regexp.MustCompile(`^g-[a-z0-9](?:-?[a-z0-9]+)+$`)
	recordedTimestampPat = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3}|\.[0-9]{6})?Z$`)
)

// checkUsers marks the user and group edge cases of org and checks their
// invariants: ids and idp ids match the spec's patterns, ids and e-mails are
// unique, members are listed users of type user, every created_by of the
// organisation is a listed user.
func checkUsers(t *testing.T, org *Org, mark func(string, bool)) {
	t.Helper()
	ids := map[string]bool{}
	emails := map[string]bool{}
	stamp := func(what, ts string) {
		if !recordedTimestampPat.MatchString(ts) {
			t.Errorf("%s created_at %q does not match", what, ts)
		}
		mark("microsecond timestamp", len(ts) == len("2023-05-06T11:24:19.132413Z"))
		mark("whole-second timestamp", len(ts) == len("2023-05-06T11:24:19Z"))
	}
	for _, u := range org.Users {
		if ids[u.ID] || !idPattern.MatchString(u.ID) {
			t.Errorf("user id %q is repeated or does not match the userId pattern", u.ID)
		}
		ids[u.ID] = true
		if u.Email != "" {
			if emails[u.Email] {
				t.Errorf("e-mail %s repeated", u.Email)
			}
			emails[u.Email] = true
		}
		stamp("user "+u.ID, u.CreatedAt)
		n := len(org.GroupsOf(u.ID))
		if u.Type == "user" {
			mark("user in 3 groups", n >= 3)
			mark("user in 2 groups", n == 2)
			mark("user in no group", n == 0)
			mark("user without invite", u.Invite == "")
			mark("user with invite", u.Invite != "")
			mark("unicode user name", strings.ContainsAny(u.Name, "öëüÜï"))
			if u.Email == "" {
				t.Errorf("user %s has no e-mail", u.ID)
			}
		}
		mark("service account", u.Type == "service" && u.Email == "" && u.Invite == "" && n == 0)
	}
	for _, g := range org.Groups {
		if ids[g.ID] || !groupIDPat.MatchString(g.ID) {
			t.Errorf("group id %q is repeated or does not match the groupId pattern", g.ID)
		}
		ids[g.ID] = true
		if !idPattern.MatchString(g.IdpID) {
			t.Errorf("group %s idp_id %q does not match the spec pattern", g.ID, g.IdpID)
		}
		stamp("group "+g.ID, g.CreatedAt)
		mark("group without members", len(g.Members) == 0)
		mark("unicode group name", strings.ContainsAny(g.Name, "–"))
		seen := map[string]bool{}
		for _, m := range g.Members {
			if u := org.User(m); u == nil || u.Type != "user" || seen[m] {
				t.Errorf("group %s: member %s is repeated, not a user or not of type user", g.ID, m)
			}
			seen[m] = true
		}
	}
	for _, a := range org.Apps {
		if org.User(a.CreatedBy) == nil {
			t.Errorf("app %s: created_by %s is not a listed user", a.ID, a.CreatedBy)
		}
	}
}

// TestGenerateUsersLeaveTheRestAlone proves users and groups come from their
// own random stream: changing their number changes nothing else, so golden
// files built before users existed stay valid.
func TestGenerateUsersLeaveTheRestAlone(t *testing.T) {
	rest := func(o *Org) string {
		b, err := json.Marshal(Org{ID: o.ID, Apps: o.Apps, SecretStores: o.SecretStores})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	few, many := Small(), Small()
	many.Users, many.Groups = 50, 9
	a, b := Generate(5, few), Generate(5, many)
	if rest(a) != rest(b) {
		t.Error("the number of users changed the apps or secret stores")
	}
	if len(b.Users) != 51 || len(b.Groups) != 9 {
		t.Errorf("got %d accounts and %d groups, want 50 users + 1 service account and 9 groups", len(b.Users), len(b.Groups))
	}
	// The first users are the same accounts whatever the size.
	if a.Users[0].ID != b.Users[0].ID || a.Groups[0].ID != b.Groups[0].ID {
		t.Error("the first user or group differs between sizes")
	}
}

// TestGeneratedWireShapes checks edge cases as a client sees them: the
// never-deployed env has no last_deploy key at all, and the graph id of a
// deployed env resolves.
func TestGeneratedWireShapes(t *testing.T) {
	org := Generate(1, Small())
	h := NewServer(org, Options{})
	a := org.Apps[0]
	rec := do(h, DefaultToken, "/orgs/"+org.ID+"/apps/"+a.ID+"/envs")
	var envs []map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &envs); err != nil {
		t.Fatal(err)
	}
	var never, noGraph, withGraph int
	for _, e := range envs {
		raw, ok := e["last_deploy"]
		if !ok {
			never++
			continue
		}
		var d map[string]any
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		id, ok := d["dependency_graph_id"].(string)
		if !ok {
			noGraph++
			continue
		}
		withGraph++
		var envID string
		_ = json.Unmarshal(e["id"], &envID)
		g := do(h, DefaultToken, "/orgs/"+org.ID+"/apps/"+a.ID+"/envs/"+envID+"/resources/graphs/"+id)
		if g.Code != 200 {
			t.Errorf("graph %s of env %s: status %d", id, envID, g.Code)
		}
	}
	if never != 1 || noGraph != 1 || withGraph != 1 {
		t.Errorf("first app envs: never deployed %d, no graph id %d, with graph %d; want 1 each", never, noGraph, withGraph)
	}
}
