package humanitec

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"time"
)

// DemoOrgID is the organisation id of generated data.
const DemoOrgID = "ferry-demo"

// Size says how much data [Generate] produces. Values below the minimums
// the edge cases need (3 apps, 3 envs per app, 2 workloads per env, 4 values
// per app, 2 sets and 3 deltas per app, 6 users, 4 groups) are raised to
// them. Pipelines is the
// total across the org and is not raised: ask for more than 100 to get
// several pages at the default page size.
type Size struct {
	Apps            int
	EnvsPerApp      int
	WorkloadsPerEnv int
	ValuesPerApp    int
	SetsPerApp      int
	DeltasPerApp    int
	Pipelines       int
	// Users is the number of accounts of type user (a service account is
	// added), Groups the number of IdP groups.
	Users  int
	Groups int
}

// Small is the size for unit and golden tests: 3 apps, 103 pipelines, 8
// users in 4 groups.
func Small() Size {
	return Size{Apps: 3, EnvsPerApp: 3, WorkloadsPerEnv: 2, ValuesPerApp: 4, SetsPerApp: 2, DeltasPerApp: 3, Pipelines: 103,
		Users: 8, Groups: 4}
}

// Demo is the size `ferry run --demo` serves: 8 apps, 137 pipelines, 14
// users in 6 groups.
func Demo() Size {
	return Size{Apps: 8, EnvsPerApp: 4, WorkloadsPerEnv: 3, ValuesPerApp: 6, SetsPerApp: 3, DeltasPerApp: 4, Pipelines: 137,
		Users: 14, Groups: 6}
}

// Large is the size for benchmarks: thousands of entities of each kind.
func Large() Size {
	return Size{Apps: 120, EnvsPerApp: 5, WorkloadsPerEnv: 8, ValuesPerApp: 10, SetsPerApp: 4, DeltasPerApp: 6, Pipelines: 2500,
		Users: 400, Groups: 40}
}

func (s Size) withMinimums() Size {
	s.Apps = max(s.Apps, 3)
	s.EnvsPerApp = max(s.EnvsPerApp, 3)
	s.WorkloadsPerEnv = max(s.WorkloadsPerEnv, 2)
	s.ValuesPerApp = max(s.ValuesPerApp, 4)
	s.SetsPerApp = max(s.SetsPerApp, 2)
	s.DeltasPerApp = max(s.DeltasPerApp, 3)
	s.Pipelines = max(s.Pipelines, 0)
	s.Users = max(s.Users, creators)
	s.Groups = max(s.Groups, len(fixedGroups))
	return s
}

// Timestamp formats t the way most Humanitec timestamps look:
// UTC with milliseconds, e.g. 2024-01-08T09:00:00.123Z.
func Timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// timestampSeconds is the other form the API uses (no fraction).
func timestampSeconds(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// creators is the number of user ids that appear as created_by; they are
// the first users of the organisation.
const creators = 6

// gen carries the seeded random source; every choice goes through it in a
// fixed order so output depends on the seed only.
type gen struct {
	r     *rand.Rand
	org   string
	base  time.Time
	users []string
}

// Generate builds a deterministic organisation for seed and size. The first
// apps always carry the edge cases (see the package documentation); the rest
// is random but fixed by the seed.
func Generate(seed int64, size Size) *Org {
	size = size.withMinimums()
	g := &gen{
		r:    rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)),
		org:  DemoOrgID,
		base: time.Date(2024, 1, 8, 9, 0, 0, 0, time.UTC),
	}
	for range creators {
		g.users = append(g.users, g.uuid())
	}
	org := &Org{ID: g.org}
	org.SecretStores = g.secretStores()
	for i := range size.Apps {
		org.Apps = append(org.Apps, g.app(i, size, org.SecretStores))
	}
	g.pipelines(org, size.Pipelines)
	org.Users, org.Groups = usersAndGroups(seed, size, g.users)
	return org
}

func (g *gen) uuid() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(g.r.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func (g *gen) hex(n int) string {
	const digits = "0123456789abcdef"
	var sb strings.Builder
	for range n {
		sb.WriteByte(digits[g.r.IntN(16)])
	}
	return sb.String()
}

// at returns a time dayOffset days after the base plus random seconds and
// milliseconds, so timestamps are distinct and carry a fraction.
func (g *gen) at(dayOffset int) time.Time {
	return g.base.AddDate(0, 0, dayOffset).
		Add(time.Duration(g.r.IntN(86400)) * time.Second).
		Add(time.Duration(g.r.IntN(1000)) * time.Millisecond)
}

func (g *gen) user() string { return g.users[g.r.IntN(len(g.users))] }

func (g *gen) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

func sha1Hex(parts ...string) string {
	sum := sha1.Sum([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:])
}

func strPtr(s string) *string { return &s }
func boolPtr(b bool) *bool    { return &b }

func (g *gen) secretStores() []SecretStore {
	mk := func(id string, day int) SecretStore {
		c := g.at(day - 60)
		u := c.Add(time.Duration(g.r.IntN(30*24)) * time.Hour)
		return SecretStore{
			ID: id, CreatedAt: timestampSeconds(c), CreatedBy: g.user(),
			UpdatedAt: timestampSeconds(u), UpdatedBy: g.user(),
		}
	}
	aws := mk("aws-secrets-prod", 0)
	aws.Primary = true
	aws.AWSSM = &AWSSM{Region: "eu-central-1"}
	az := mk("azure-kv-eu", 1)
	az.AzureKV = &AzureKV{TenantID: g.uuid(), URL: "https://ferry-demo-kv.vault.azure.net/"}
	gcp := mk("gcp-secrets", 2)
	gcp.GCPSM = &GCPSM{ProjectID: "ferry-demo-41237"}
	vault := mk("vault-onprem", 3)
	vault.Vault = &Vault{URL: "https://vault.internal.example.com:8200", Path: "secret/data/humanitec", AgentID: "vault-agent-1"}
	hum := mk("humanitec", 4)
	hum.Humanitec = &struct{}{}
	// A second AWS store without an endpoint override and one with it.
	aws2 := mk("aws-secrets-staging", 5)
	aws2.AWSSM = &AWSSM{Region: "us-east-1", Endpoint: "https://secretsmanager.us-east-1.amazonaws.com"}
	return []SecretStore{aws, az, gcp, vault, hum, aws2}
}

// appIdentity names the first apps after the title-cleaning edge cases.
var appIdentities = [...][2]string{
	{"cafe-unicode-app", "Café / Ünïcode—App"},
	{"k8s-cluster", "k8s-cluster"},
	{"x-y", "x--y"},
	{"my-app", "my-app"},
	{"hello-world", "hello_world"},
	{"app-v2", "AppV2"},
	{"aws-secrets", "AWS-secrets"},
	{"v2beta", "v2beta"},
	{"xx", "__x"},
}

var appWords = []string{"payments", "checkout", "inventory", "search", "billing", "ledger", "notifications", "catalog", "shipping", "identity"}

type envSpec struct{ id, name, typ string }

var envSpecs = []envSpec{
	{"development", "Development", "development"},
	{"staging", "Staging", "staging"},
	{"production", "Production (EU) – primär", "production"},
	{"preview", "Preview", "development"},
	{"qa", "QA", "staging"},
	{"perf", "Perf / Load", "staging"},
	{"sandbox", "Sandbox", "development"},
}

func envSpecAt(j int) envSpec {
	if j < len(envSpecs) {
		return envSpecs[j]
	}
	return envSpec{fmt.Sprintf("env-%d", j), fmt.Sprintf("Env %d", j), "development"}
}

var workloadNames = []string{"api", "worker", "frontend", "cron", "gateway", "auth", "search", "mailer"}

func workloadAt(k int) string {
	if k < len(workloadNames) {
		return workloadNames[k]
	}
	return fmt.Sprintf("svc-%d", k)
}

func (g *gen) app(i int, size Size, stores []SecretStore) *App {
	var id, name string
	if i < len(appIdentities) {
		id, name = appIdentities[i][0], appIdentities[i][1]
	} else {
		w := appWords[g.r.IntN(len(appWords))]
		id = fmt.Sprintf("%s-%d", w, i)
		name = fmt.Sprintf("%s%s Service %d", strings.ToUpper(w[:1]), w[1:], i)
	}
	created := g.at(i)
	a := &App{
		ID: id, Name: name,
		CreatedAt: Timestamp(created), CreatedBy: g.user(),
		Status: "active", StatusChangedAt: Timestamp(created),
	}
	if i == 2 {
		changed := created.Add(200 * 24 * time.Hour)
		a.Status = "deleting"
		a.StatusChangedAt = Timestamp(changed)
		a.StatusMessage = "Deletion requested by a.user@example.com"
	}

	envIDs := make([]string, size.EnvsPerApp)
	for j := range envIDs {
		envIDs[j] = envSpecAt(j).id
	}
	workloads := make([]string, size.WorkloadsPerEnv)
	for k := range workloads {
		workloads[k] = workloadAt(k)
	}

	a.Values = g.appValues(a, size.ValuesPerApp, created, stores)
	a.ValueSetVersions = g.valueSetVersions(a, created)
	a.Sets = g.sets(workloads, size.SetsPerApp)
	a.Deltas = g.deltas(i, envIDs, workloads, size.DeltasPerApp, created)
	for j := range size.EnvsPerApp {
		a.Envs = append(a.Envs, g.env(i, j, size.EnvsPerApp, a, workloads, created, stores))
	}
	return a
}

var valueKeys = []struct {
	key    string
	secret bool
	value  string
}{
	{"DB_HOST", false, "postgres.internal"},
	{"API_TOKEN", true, ""},
	{"LOG_LEVEL", false, "info"},
	{"feature.flags-v2", false, `{"beta":true}`},
	{"SMTP_PASSWORD", true, ""},
	{"TIMEOUT_SECONDS", false, "30"},
	{"greeting", false, "Grüß Gott — 你好"},
}

func (g *gen) secretRef(app, env string, stores []SecretStore) (keyRef, version, store *string) {
	s := stores[g.r.IntN(len(stores))].ID
	path := fmt.Sprintf("orgs/%s/apps/%s/secret_values/%s", g.org, app, g.uuid())
	if env != "" {
		path = fmt.Sprintf("orgs/%s/apps/%s/envs/%s/secret_values/%s", g.org, app, env, g.uuid())
	}
	return strPtr(path), strPtr(fmt.Sprint(1 + g.r.IntN(4))), strPtr(s)
}

func (g *gen) appValues(a *App, n int, created time.Time, stores []SecretStore) []Value {
	var out []Value
	for k := range n {
		key, secret, val := "", false, ""
		if k < len(valueKeys) {
			key, secret, val = valueKeys[k].key, valueKeys[k].secret, valueKeys[k].value
		} else {
			key, secret, val = fmt.Sprintf("VAR_%d", k), k%4 == 0, fmt.Sprintf("value-%d", g.r.IntN(1000))
		}
		c := created.Add(time.Duration(k+1) * time.Hour)
		v := Value{
			Key: key, Value: val, IsSecret: secret,
			CreatedAt: Timestamp(c), UpdatedAt: Timestamp(c.Add(time.Duration(g.r.IntN(72)) * time.Hour)),
			Source: "app",
		}
		if k%3 == 0 {
			v.Description = "Shared value « " + key + " » für alle Umgebungen"
		}
		if secret {
			v.Value = ""
			v.SecretKey, v.SecretVersion, v.SecretStoreID = g.secretRef(a.ID, "", stores)
		}
		out = append(out, v)
	}
	return out
}

func (g *gen) valueSetVersions(a *App, created time.Time) []ValueSetVersion {
	var hist []ValueSetVersion
	cur := map[string]Value{}
	t := created
	add := func(result *string, comment string, change []JSONPatch, source *string) {
		t = t.Add(time.Duration(1+g.r.IntN(48)) * time.Hour)
		snap := make(map[string]Value, len(cur))
		for k, v := range cur {
			snap[k] = v
		}
		hist = append(hist, ValueSetVersion{
			ID: g.uuid(), Values: snap, Change: change,
			CreatedAt: Timestamp(t), CreatedBy: g.user(), UpdatedAt: Timestamp(t),
			ResultOf: result, Comment: comment, SourceValueSetVersionID: source,
		})
	}
	// A legacy version from before result_of was recorded.
	add(nil, "", []JSONPatch{}, nil)
	for _, v := range a.Values {
		cur[v.Key] = v
		add(strPtr("app_value_create"), "", []JSONPatch{{Op: "add", Path: "/" + v.Key, Value: v}}, nil)
	}
	if lv, ok := cur["LOG_LEVEL"]; ok {
		old := lv
		lv.Value = "warn"
		cur["LOG_LEVEL"] = lv
		add(strPtr("app_value_update"), "quieter logs", []JSONPatch{{Op: "replace", Path: "/LOG_LEVEL", Value: lv}}, nil)
		restoreFrom := hist[len(hist)-2].ID
		cur["LOG_LEVEL"] = old
		add(strPtr("app_value_set_version_restore"), "Restore: back to info",
			[]JSONPatch{{Op: "replace", Path: "/LOG_LEVEL", Value: old}}, strPtr(restoreFrom))
	}
	tmp := Value{Key: "TEMP_FLAG", Value: "on", CreatedAt: Timestamp(t), UpdatedAt: Timestamp(t), Source: "app"}
	cur[tmp.Key] = tmp
	add(strPtr("app_value_create"), "temporary", []JSONPatch{{Op: "add", Path: "/TEMP_FLAG", Value: tmp}}, nil)
	delete(cur, tmp.Key)
	add(strPtr("app_value_delete"), "", []JSONPatch{{Op: "remove", Path: "/TEMP_FLAG"}}, nil)

	// Newest first.
	for l, r := 0, len(hist)-1; l < r; l, r = l+1, r-1 {
		hist[l], hist[r] = hist[r], hist[l]
	}
	return hist
}

func (g *gen) module(w string, k int, tag string) Module {
	m := Module{
		Profile: "humanitec/default-module",
		Spec: map[string]any{
			"containers": map[string]any{
				w: map[string]any{
					"id":    w,
					"image": fmt.Sprintf("registry.example.com/%s/%s:%s", g.org, w, tag),
					"variables": map[string]any{
						"LOG_LEVEL": "${values.LOG_LEVEL}",
					},
				},
			},
			"replicas": 1 + k%3,
		},
		Externals: map[string]any{},
	}
	switch k % 3 {
	case 0:
		m.Externals["db"] = map[string]any{"type": "postgres"}
	case 1:
		m.Externals["cache"] = map[string]any{"type": "redis"}
	}
	if k == 0 {
		m.Deploy = &DeployCondition{When: "before", Success: "complete", Timeout: 300}
	}
	return m
}

func (g *gen) sets(workloads []string, n int) []Set {
	// Every app starts from the empty set.
	out := []Set{hashSet(Set{Modules: map[string]Module{}, Shared: map[string]any{}})}
	for s := 1; s < n; s++ {
		set := Set{Modules: map[string]Module{}, Shared: map[string]any{}}
		tag := fmt.Sprintf("1.%d.%d", s, g.r.IntN(10))
		for k, w := range workloads {
			set.Modules[w] = g.module(w, k, tag)
		}
		if s%2 == 1 {
			set.Shared["db"] = map[string]any{"type": "postgres"}
			set.Shared["dns"] = map[string]any{"type": "dns"}
		}
		if s == n-1 {
			// Generic mode: the newest set also carries workloads.
			set.Workloads = map[string]Workload{
				workloads[0]: {Spec: map[string]any{"replicas": 2}, Class: "default"},
			}
		}
		out = append(out, hashSet(set))
	}
	return out
}

// hashSet sets the id to the hash of the content, as the API does.
func hashSet(s Set) Set {
	s.ID = ""
	b, _ := json.Marshal(s) // maps of plain values cannot fail to marshal
	s.ID = sha1Hex(string(b))
	return s
}

func (g *gen) deltas(appIdx int, envIDs, workloads []string, n int, created time.Time) []Delta {
	var out []Delta
	names := []string{"Bump api to 1.4.0", "", "x--y"}
	if appIdx == 0 {
		names = append(names, "Füße — Ünïcode hotfix")
	}
	for d := range n {
		c := created.Add(time.Duration(24*(d+1)+g.r.IntN(20)) * time.Hour).Add(time.Duration(g.r.IntN(1000)) * time.Millisecond)
		md := DeltaMetadata{
			CreatedBy: g.user(), CreatedAt: Timestamp(c),
			LastModifiedAt: Timestamp(c.Add(time.Duration(g.r.IntN(600)) * time.Minute)),
		}
		if d < len(names) {
			md.Name = names[d]
		} else if g.r.IntN(3) > 0 {
			md.Name = fmt.Sprintf("Change #%d", d)
		}
		switch d {
		case 0:
			md.EnvID = envIDs[0]
			md.Contributers = []string{md.CreatedBy, g.user()}
			md.Shared = boolPtr(false)
		case 1:
			// Neither name nor env: both are optional.
		case 2:
			md.EnvID = envIDs[1]
			md.Archived = true
			md.Shared = boolPtr(true)
		default:
			if g.r.IntN(2) == 0 {
				md.EnvID = envIDs[g.r.IntN(len(envIDs))]
			}
			md.Archived = g.r.IntN(4) == 0
		}
		dl := Delta{
			ID:       g.hex(40),
			Metadata: md,
			Modules: ModuleDeltas{
				Add:    map[string]Module{},
				Remove: []string{},
				Update: map[string][]JSONPatch{
					workloads[0]: {{Op: "replace", Path: fmt.Sprintf("/spec/containers/%s/image", workloads[0]),
						Value: fmt.Sprintf("registry.example.com/%s/%s:1.4.%d", g.org, workloads[0], d)}},
				},
			},
			Shared: []JSONPatch{},
		}
		if d%2 == 0 {
			dl.Modules.Add["redis-cache"] = Module{Profile: "humanitec/redis", Spec: map[string]any{}, Externals: map[string]any{}}
			dl.Shared = append(dl.Shared, JSONPatch{Op: "add", Path: "/dns", Value: map[string]any{"type": "dns"}})
		} else {
			dl.Modules.Remove = append(dl.Modules.Remove, "legacy-svc")
		}
		if d == 1 {
			dl.Workloads = &WorkloadDeltas{
				Add:    map[string]Workload{},
				Remove: []string{},
				Update: map[string][]JSONPatch{workloads[0]: {{Op: "replace", Path: "/spec/replicas", Value: 3}}},
			}
		}
		out = append(out, dl)
	}
	return out
}

var deployComments = []string{"Deploy 1.4.0", "", "Déploiement — hotfix #42", "Promote from staging", "Rollback after incident"}

func (g *gen) env(appIdx, j, nEnvs int, a *App, workloads []string, appCreated time.Time, stores []SecretStore) *Env {
	spec := envSpecAt(j)
	created := appCreated.Add(time.Duration(j+1) * 2 * time.Hour)
	e := &Env{
		ID: spec.id, Name: spec.name, Type: spec.typ,
		CreatedAt: Timestamp(created), CreatedBy: g.user(),
		Status: "active", StatusChangedAt: Timestamp(created),
	}
	e.Values = g.envValues(a, e, j, created, stores)

	// The first app's last env was never deployed; elsewhere it is rare.
	if appIdx == 0 && j == nEnvs-1 || appIdx > 2 && j > 0 && g.r.IntN(12) == 0 {
		return e
	}

	deployed := created.Add(time.Duration(1+g.r.IntN(30*24)) * time.Hour).Add(time.Duration(g.r.IntN(1000)) * time.Millisecond)
	d := &Deployment{
		ID: g.hex(16), EnvID: e.ID,
		SetID:     a.Sets[1+g.r.IntN(len(a.Sets)-1)].ID,
		FromID:    g.hex(16),
		Comment:   g.pick(deployComments),
		CreatedAt: Timestamp(deployed), CreatedBy: g.user(),
		Status:          "succeeded",
		StatusChangedAt: Timestamp(deployed.Add(time.Duration(30+g.r.IntN(600)) * time.Second)),
	}
	switch g.r.IntN(4) {
	case 0:
		d.FromID = "" // first deployment of the environment
	case 1:
		d.Mode = "full"
		d.OperatorVersion = "v0.22.1"
	case 2:
		d.Mode = "incremental"
		d.LegacyMode = boolPtr(false)
	}
	if g.r.IntN(2) == 0 {
		d.DeltaID = a.Deltas[g.r.IntN(len(a.Deltas))].ID
	}
	if g.r.IntN(3) > 0 {
		d.ValueSetVersionID = strPtr(a.ValueSetVersions[0].ID)
	}
	if g.r.IntN(3) == 0 {
		d.Pipeline = &DeploymentPipelineReference{ID: "default", RunID: g.uuid(), JobID: "deploy", StepIndex: g.r.IntN(3)}
	}
	switch {
	case appIdx == 1 && j == 1:
		d.Status = "failed"
	case appIdx == 1 && j == 2:
		d.Status = "in progress"
		d.StatusChangedAt = d.CreatedAt
	case appIdx > 1 && g.r.IntN(10) == 0:
		d.Status = "failed"
	}
	e.LastDeploy = d
	if j > 0 && g.r.IntN(3) == 0 {
		// Cloned from another environment's deployment.
		from := *d
		if d.Pipeline != nil {
			p := *d.Pipeline
			from.Pipeline = &p
		}
		from.ID = g.hex(16)
		from.EnvID = envSpecAt(j - 1).id
		from.DependencyGraphID = ""
		e.FromDeploy = &from
	}

	e.Resources = g.resources(appIdx, j, a, e, workloads, deployed)
	// The legacy-mode deployment of the first app's second env has no graph.
	if appIdx == 0 && j == 1 {
		d.LegacyMode = boolPtr(true)
		d.Mode = ""
		return e
	}
	graph := g.graph(e, deployed)
	if g.r.IntN(2) == 0 {
		// An older, unreferenced graph from a previous deployment.
		older := g.graph(e, deployed.Add(-72*time.Hour))
		older.Nodes = older.Nodes[:len(older.Nodes)/2]
		older.Hash = nodesHash(older.Nodes)
		e.Graphs = append(e.Graphs, older)
	}
	e.Graphs = append(e.Graphs, graph)
	d.DependencyGraphID = graph.ID
	return e
}

func (g *gen) envValues(a *App, e *Env, j int, created time.Time, stores []SecretStore) []Value {
	var out []Value
	c := created.Add(time.Hour)
	mk := func(key, val string, secret bool) Value {
		v := Value{Key: key, Value: val, IsSecret: secret, CreatedAt: Timestamp(c),
			UpdatedAt: Timestamp(c.Add(time.Duration(g.r.IntN(100)) * time.Minute)), Source: "env"}
		if secret {
			v.Value = ""
			v.SecretKey, v.SecretVersion, v.SecretStoreID = g.secretRef(a.ID, e.ID, stores)
		}
		return v
	}
	// Every env overrides LOG_LEVEL; the first also overrides a secret and
	// adds a key the app does not have.
	out = append(out, mk("LOG_LEVEL", []string{"debug", "info", "warn"}[j%3], false))
	if j == 0 {
		out = append(out, mk("API_TOKEN", "", true))
		v := mk("ENV_ONLY_FLAG", "true", false)
		v.Description = "Only set in " + e.ID
		out = append(out, v)
	}
	return out
}

type resKind struct {
	typ, def, driver, account string
}

func (g *gen) resources(appIdx, j int, a *App, e *Env, workloads []string, deployed time.Time) []ActiveResource {
	var out []ActiveResource
	add := func(resID string, k resKind, resource, secrets map[string]any) {
		r := ActiveResource{
			ResID: resID, DefID: k.def, DefVersionID: g.uuid(),
			Type: k.typ, Class: "default", DriverType: k.driver, DriverAccount: k.account,
			Status: "active", Resource: resource, SecretRefs: secrets,
			UpdatedAt: timestampSeconds(deployed.Add(time.Duration(g.r.IntN(300)) * time.Second)),
			DeployID:  e.LastDeploy.ID,
			GuResID:   sha1Hex(g.org, a.ID, e.ID, resID),
		}
		if g.r.IntN(3) == 0 {
			r.CriteriaID = g.hex(12)
		}
		if g.r.IntN(5) == 0 {
			r.TargetDefVersionID = r.DefVersionID
		}
		out = append(out, r)
	}
	credentials := func(resID string) map[string]any {
		return map[string]any{"credentials": fmt.Sprintf("orgs/%s/resources/%s/secrets/.credentials", g.org, sha1Hex(g.org, a.ID, e.ID, resID))}
	}
	postgres := resKind{"postgres", "aws-rds-postgres", "humanitec/postgres", "aws-prod"}
	pg := func(resID, name string) map[string]any {
		return map[string]any{"host": name + ".cluster-c9xyz.eu-central-1.rds.amazonaws.com", "name": strings.ReplaceAll(resID, ".", "_"), "port": 5432}
	}

	add("k8s-cluster", resKind{"k8s-cluster", "k8s-cluster", "humanitec/k8s-cluster-eks", "aws-prod"},
		map[string]any{"name": e.Type + "-cluster", "region": "eu-central-1", "loadbalancer": "10.0.0.1"}, map[string]any{})
	add("k8s-namespace", resKind{"k8s-namespace", "default-namespace", "humanitec/echo", ""},
		map[string]any{"namespace": a.ID + "-" + e.ID}, map[string]any{})
	add("shared.db", postgres, pg("shared.db", a.ID), credentials("shared.db"))
	add("dns", resKind{"dns", "dns-route53", "humanitec/dns-aws-route53", "aws-prod"},
		map[string]any{"host": e.ID + "." + a.ID + ".example.com"}, map[string]any{})

	for k, w := range workloads {
		add("modules."+w, resKind{"workload", "default-workload", "humanitec/template", ""},
			map[string]any{"id": w, "replicas": 1 + k%3}, map[string]any{})
		switch k % 3 {
		case 0:
			id := "modules." + w + ".externals.db"
			add(id, postgres, pg(id, w), credentials(id))
		case 1:
			add("modules."+w+".externals.cache", resKind{"redis", "redis-default", "humanitec/redis", ""},
				map[string]any{"host": "redis." + a.ID, "port": 6379}, map[string]any{})
		case 2:
			add("modules."+w+".externals.dns", resKind{"dns", "dns-route53", "humanitec/dns-aws-route53", "aws-prod"},
				map[string]any{"host": w + "." + e.ID + "." + a.ID + ".example.com"}, map[string]any{})
		}
	}
	// A resource of a workload that has no workload-typed resource of its own.
	if appIdx == 0 || g.r.IntN(5) == 0 {
		id := "modules.ghost.externals.db"
		add(id, postgres, pg(id, "ghost"), credentials(id))
	}
	// One resource being torn down.
	if appIdx == 0 && j == 0 || g.r.IntN(6) == 0 {
		id := "modules." + workloads[0] + ".externals.legacy-queue"
		add(id, resKind{"amqp", "rabbitmq-legacy", "humanitec/template", ""}, map[string]any{"host": "mq.internal", "vhost": "/"}, map[string]any{})
		out[len(out)-1].Status = "deleting"
		out[len(out)-1].ScheduledDeletion = true
	}
	if appIdx == 0 && j == 0 {
		out[3].Status = "pending" // dns
	}
	return out
}

// graph builds the dependency graph of the env's current resources, in
// provisioning order (dependencies first). Cluster and namespace resources
// are not part of graphs.
func (g *gen) graph(e *Env, deployed time.Time) DependencyGraph {
	byID := map[string]string{}
	for _, r := range e.Resources {
		byID[r.ResID] = r.GuResID
	}
	var infra, externals, wls []Node
	for _, r := range e.Resources {
		if r.Type == "k8s-cluster" || r.Type == "k8s-namespace" || r.ScheduledDeletion {
			continue
		}
		n := Node{
			ID: r.ResID, GuResID: r.GuResID, Type: r.Type, Class: r.Class,
			DefID: r.DefID, DefVersionID: r.DefVersionID, CriteriaID: r.CriteriaID,
			DriverType: r.DriverType, DriverAccount: r.DriverAccount,
			Driver:         map[string]any{"values": map[string]any{"region": "eu-central-1"}, "secrets": map[string]any{}},
			Resource:       maps.Clone(r.Resource), // tests may edit one without the other
			ResourceSchema: resourceSchema(r.Resource),
			DependsOn:      []string{},
		}
		if n.CriteriaID == "" {
			n.CriteriaID = "default"
		}
		switch {
		case r.Type == "workload":
			w := strings.TrimPrefix(r.ResID, "modules.")
			for _, o := range e.Resources {
				if strings.HasPrefix(o.ResID, r.ResID+".externals.") && !o.ScheduledDeletion {
					n.DependsOn = append(n.DependsOn, o.GuResID)
				}
			}
			n.DependsOn = append(n.DependsOn, byID["dns"])
			if w == workloadAt(0) {
				n.DependsOn = append(n.DependsOn, byID["shared.db"])
				n.InPlaceDriverChange = true
			}
			wls = append(wls, n)
		case strings.HasPrefix(r.ResID, "modules."):
			switch r.Type {
			case "postgres":
				n.DependsOn = append(n.DependsOn, byID["shared.db"])
			case "dns":
				n.DependsOn = append(n.DependsOn, byID["dns"])
			}
			externals = append(externals, n)
		default:
			infra = append(infra, n)
		}
	}
	nodes := append(append(infra, externals...), wls...)
	c := deployed.Add(-time.Duration(g.r.IntN(120)) * time.Second)
	return DependencyGraph{
		ID:        g.uuid(),
		Hash:      nodesHash(nodes),
		Nodes:     nodes,
		CreatedAt: Timestamp(c),
		UsedAt:    Timestamp(c.Add(time.Duration(g.r.IntN(48)) * time.Hour)),
	}
}

// nodesHash is a sha256 over the identity of the sorted node list; the spec
// says only that the hash is a sha256 of the nodes, so any stable digest of
// them serves (and JSON-encoding every graph was the generator's hot spot).
func nodesHash(nodes []Node) string {
	h := sha256.New()
	for _, n := range nodes {
		h.Write([]byte(n.GuResID))
		h.Write([]byte{0})
		h.Write([]byte(n.DefVersionID))
		for _, d := range n.DependsOn {
			h.Write([]byte{1})
			h.Write([]byte(d))
		}
		h.Write([]byte{2})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func resourceSchema(res map[string]any) map[string]any {
	props := map[string]any{}
	for k, v := range res {
		t := "string"
		if _, ok := v.(int); ok {
			t = "integer"
		}
		props[k] = map[string]any{"type": t}
	}
	return map[string]any{"type": "object", "properties": props}
}

var pipelineNames = []struct{ id, name string }{
	{"deploy-to-staging", "Deploy to Staging"},
	{"promote-production", "Promote → Production"},
	{"ci-build", "CI build"},
	{"nightly-reset", "Nightly reset (Réinitialisation)"},
	{"preview-envs", "Preview environments"},
}

var triggerSets = [][]string{{"pipeline_call"}, {"deployment_request"}, {"pipeline_call", "deployment_request"}, {}}

// pipelines spreads n pipelines over the apps: each app first gets a
// "default" pipeline (so the same id exists in many apps), the rest go to
// random apps.
func (g *gen) pipelines(org *Org, n int) {
	counts := make([]int, len(org.Apps))
	for i := range n {
		if i < len(org.Apps) {
			counts[i]++
			continue
		}
		counts[g.r.IntN(len(org.Apps))]++
	}
	seq := 0
	for ai, a := range org.Apps {
		for k := range counts[ai] {
			id, name := "default", "Default"
			switch {
			case k == 0:
			case k-1 < len(pipelineNames):
				id, name = pipelineNames[k-1].id, pipelineNames[k-1].name
			default:
				id, name = fmt.Sprintf("release-%d", k), fmt.Sprintf("Release train %d", k)
			}
			c := g.at(ai + k)
			p := Pipeline{
				ID: id, Etag: g.hex(16), Name: name,
				Status:       "active",
				Version:      g.uuid(),
				CreatedAt:    timestampSeconds(c),
				TriggerTypes: append([]string(nil), triggerSets[seq%len(triggerSets)]...),
			}
			if seq%2 == 0 {
				p.Metadata = map[string]string{"team": "platform", "repo": "github.com/acme/" + a.ID}
			}
			if seq%19 == 7 {
				p.Status = "disabled"
			}
			a.Pipelines = append(a.Pipelines, p)
			seq++
		}
	}
}
