package harness

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Size selects a preset for [Generate].
type Size int

// Presets. Small keeps unit tests fast; Demo has more than 100 projects so a
// pageSize of 100 takes three pages; Large is for benchmarks.
const (
	Small Size = iota
	Demo
	Large
)

// Shape is the exact amount of data [GenerateShape] produces.
type Shape struct {
	Projects       int // total, including the fixed edge-case projects
	Budgets        int // total, including the fixed edge-case budgets
	OUs            int
	IncidentsPerOU int
}

// Shape returns the preset's amounts. Unknown sizes fall back to Small.
func (s Size) Shape() Shape {
	switch s {
	case Demo:
		return Shape{Projects: 237, Budgets: 10, OUs: 3, IncidentsPerOU: 400}
	case Large:
		return Shape{Projects: 5000, Budgets: 200, OUs: 10, IncidentsPerOU: 5000}
	default:
		return Shape{Projects: 14, Budgets: 5, OUs: 2, IncidentsPerOU: 40}
	}
}

// String names the preset.
func (s Size) String() string {
	switch s {
	case Small:
		return "small"
	case Demo:
		return "demo"
	case Large:
		return "large"
	}
	return fmt.Sprintf("Size(%d)", int(s))
}

// Generate builds a deterministic account: the same seed and size always
// give the same data, whatever the wall clock says.
func Generate(seed int64, size Size) *Account {
	return GenerateShape(seed, size.Shape())
}

// Time anchors for generated data. Incidents spread over 2024–2027 so any
// plausible recent query window finds some.
var (
	projectEpoch  = time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
	incidentStart = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	incidentEnd   = time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
)

// Orgs used by the generator; default and platform share project identifiers.
var genOrgs = []string{"default", "platform", "data_eng", "_legacy"}

var moduleTypes = []string{"CD", "CI", "CV", "CF", "CE", "STO", "CHAOS", "SRM", "IACM", "CET", "IDP", "CODE", "SEI", "SSCA", "CORE", "PMS", "TEMPLATESERVICE", "GOVERNANCE"}

var colors = []string{"#0063f7", "#1bb954", "#e63535", "#ffbc00", "#9b51e0", "#3dc7f6", "#fe5d0a", "#5f6af5"}

var words = []string{"payments", "checkout", "search", "billing", "ledger", "identity", "gateway", "catalog", "inventory", "shipping", "analytics", "mobile", "web", "infra", "observability", "security", "platform", "frontend", "backend", "ml", "data", "reporting", "notifications", "auth"}

// Display-name decorations that a loader must carry through untouched.
var nameFlavours = []string{"", "", "", " (EU)", " — Ünïcode", " & Co.", " «beta»", " 日本", " 🚀", ": v2", " / legacy", ` "quoted"`, " O'Neil"}

// GenerateShape builds a deterministic account with exactly the amounts in sh
// (the fixed edge cases count towards Projects and Budgets).
func GenerateShape(seed int64, sh Shape) *Account {
	r := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	// Odd seeds get the 2021 budgets envelope, even seeds today's: both
	// eras are served without drawing from r, so the data stays the same.
	a := &Account{ID: genID(r, 22), BudgetsEnvelope2021: seed%2 != 0}
	a.Projects = genProjects(r, a.ID, sh.Projects)
	a.Catalogue = genCatalogue()
	a.Budgets = genBudgets(r, a.ID, sh.Budgets)
	a.OUs = genOUs(r, sh.OUs, sh.IncidentsPerOU)
	return a
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// genID makes a Harness-style base64url identifier (account ids, budget uuids).
func genID(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = idAlphabet[r.IntN(len(idAlphabet))]
	}
	return string(b)
}

func strp(s string) *string { return &s }

func ms(t time.Time) int64 { return t.UnixMilli() }

// genProjects returns the fixed edge cases first, then random projects.
// Four fixed projects are served in older recorded shapes (see
// [ProjectShape]).
func genProjects(r *rand.Rand, acct string, n int) []ProjectResponse {
	t0 := projectEpoch
	long := strings.Repeat("x", 1024)
	tie := ms(t0.Add(400 * 24 * time.Hour)) // two projects share this lastModifiedAt
	fixed := []ProjectResponse{
		{Project: Project{OrgIdentifier: "default", Identifier: "default_project", Name: "Default Project", Color: "#0063f7",
			Modules: []string{"CD", "CI", "CE", "CF", "CORE"}, Description: strp("Default project"), Tags: map[string]string{}},
			CreatedAt: ms(t0), LastModifiedAt: ms(t0.Add(24 * time.Hour))},
		// Same identifier in another org: a primary key of identifier alone collides.
		{Project: Project{OrgIdentifier: "platform", Identifier: "default_project", Name: "Default Project", Color: "#1bb954",
			Modules: []string{"CD"}, Description: strp("")}, // tags missing
			CreatedAt: ms(t0.Add(time.Hour)), LastModifiedAt: ms(t0.Add(48 * time.Hour)), IsFavorite: true},
		// Differs only in case from default_project; "createdAt": null.
		{Project: Project{OrgIdentifier: "data_eng", Identifier: "Default_Project", Name: "default project", Color: "#e63535",
			Modules: []string{}, Description: nil, Tags: map[string]string{"Team": "upper", "team": "lower"}},
			CreatedAt: ms(t0.Add(2 * time.Hour)), LastModifiedAt: ms(t0.Add(2 * time.Hour)), Shape: ProjectNullCreatedAt},
		{Project: Project{OrgIdentifier: "default", Identifier: "cafe_ops", Name: "Café Ops — Ünïcode ☕ 日本語",
			Color: "#ffbc00", Modules: []string{"CD", "CI"}, Description: strp("Line one\nLine two\t🚀 \"quoted\" \\ back"),
			Tags: map[string]string{"team": "café", "critical": "", "app.kubernetes.io/name": "ops"}},
			CreatedAt: ms(t0.Add(3 * time.Hour)), LastModifiedAt: tie},
		{Project: Project{OrgIdentifier: "platform", Identifier: "quotes", Name: `O'Brien's "Quoted" <Project> & Co.`,
			Color: "#9b51e0", Modules: []string{}, Description: nil, Tags: map[string]string{"<k>": "&v"}},
			CreatedAt: ms(t0.Add(4 * time.Hour)), LastModifiedAt: tie},
		// No isFavorite (2021–2022 recordings).
		{Project: Project{OrgIdentifier: "default", Identifier: "p$dollar_1", Name: "Dollar $ign 100%",
			Color: "#3dc7f6", Modules: []string{"SEI"}, Description: strp(""), Tags: nil},
			CreatedAt: ms(t0.Add(5 * time.Hour)), LastModifiedAt: ms(t0.Add(500 * 24 * time.Hour)), Shape: ProjectNoFavorite},
		// isFavorite and no timestamps (Harness's 2023 mock).
		{Project: Project{OrgIdentifier: "_legacy", Identifier: "_" + strings.Repeat("a", 127), Name: strings.Repeat("N", 128),
			Color: "#fe5d0a", Modules: slices.Clone(moduleTypes), Description: strp(long), Tags: map[string]string{"owner": "  spaced  "}},
			CreatedAt: ms(t0.Add(6 * time.Hour)), LastModifiedAt: ms(t0.Add(6 * time.Hour)), IsFavorite: true, Shape: ProjectFavoriteOnly},
		// 2020: accountIdentifier and lastModifiedAt inside project, no wrapper fields.
		{Project: Project{AccountIdentifier: acct, OrgIdentifier: "platform", Identifier: "emoji_only", Name: "🔥🔥🔥",
			Color: "#5f6af5", Modules: []string{"CHAOS", "SRM"}, Description: strp("   "), Tags: map[string]string{"ключ": "значение"}},
			CreatedAt: ms(t0.Add(7 * time.Hour)), LastModifiedAt: ms(t0.Add(700 * 24 * time.Hour)), Shape: Project2020},
	}
	if n <= len(fixed) {
		return fixed[:max(n, 0)]
	}
	out := slices.Clone(fixed)
	seen := map[[2]string]bool{}
	for _, p := range out {
		seen[[2]string{p.Project.OrgIdentifier, p.Project.Identifier}] = true
	}
	for i := 0; len(out) < n; i++ {
		org := genOrgs[r.IntN(len(genOrgs))]
		w := words[r.IntN(len(words))]
		ident := fmt.Sprintf("%s_%d", w, i)
		// Reuse an identifier from another org now and then, as real
		// accounts do ("payments" in default and platform).
		if r.IntN(5) == 0 {
			ident = w
		}
		key := [2]string{org, ident}
		if seen[key] {
			continue
		}
		seen[key] = true
		created := t0.Add(time.Duration(r.Int64N(int64(6*365*24*time.Hour/time.Second))) * time.Second)
		modified := created.Add(time.Duration(r.Int64N(int64(365*24*time.Hour/time.Second))) * time.Second)
		p := Project{
			OrgIdentifier: org,
			Identifier:    ident,
			Name:          titleWord(w) + fmt.Sprintf(" %d", i) + nameFlavours[r.IntN(len(nameFlavours))],
			Color:         colors[r.IntN(len(colors))],
			Modules:       pickModules(r),
		}
		switch d := r.IntN(10); {
		case d < 3:
			p.Description = strp("")
		case d < 4:
			p.Description = nil
		default:
			p.Description = strp(fmt.Sprintf("Owned by the %s team. Ticket prefix %s-%d.", w, strings.ToUpper(w[:2]), r.IntN(1000)))
		}
		switch t := r.IntN(20); {
		case t < 5: // missing
		case t < 8:
			p.Tags = map[string]string{}
		default:
			p.Tags = map[string]string{"team": words[r.IntN(len(words))]}
			if r.IntN(2) == 0 {
				p.Tags["env"] = []string{"prod", "staging", "dev"}[r.IntN(3)]
			}
			if r.IntN(4) == 0 {
				p.Tags["pci"] = "" // key-only tag
			}
		}
		out = append(out, ProjectResponse{
			Project: p, CreatedAt: ms(created), LastModifiedAt: ms(modified), IsFavorite: r.IntN(10) == 0,
		})
	}
	return out
}

func titleWord(w string) string { return strings.ToUpper(w[:1]) + w[1:] }

func pickModules(r *rand.Rand) []string {
	if r.IntN(10) == 0 {
		return []string{}
	}
	var m []string
	for _, mt := range moduleTypes {
		if r.IntN(3) == 0 {
			m = append(m, mt)
		}
	}
	if m == nil {
		m = []string{"CD"}
	}
	return m
}

func genCatalogue() []CatalogueItem {
	return []CatalogueItem{
		{Category: "CLOUD_PROVIDER", Connectors: []string{"K8sCluster", "Aws", "Gcp", "Azure", "Pdc", "Rancher", "Spot", "Tas"}},
		{Category: "SECRET_MANAGER", Connectors: []string{"Vault", "AwsKms", "AwsSecretManager", "GcpKms", "GcpSecretManager", "AzureKeyVault", "CustomSecretManager"}},
		{Category: "CLOUD_COST", Connectors: []string{"CEAws", "CEAzure", "GcpCloudCost", "CEK8sCluster"}},
		{Category: "ARTIFACTORY", Connectors: []string{"DockerRegistry", "Artifactory", "Nexus", "HttpHelmRepo", "OciHelmRepo", "Jenkins"}},
		{Category: "CODE_REPO", Connectors: []string{"Git", "Github", "Gitlab", "Bitbucket", "AzureRepo", "Harness"}},
		{Category: "MONITORING", Connectors: []string{"AppDynamics", "Prometheus", "Datadog", "NewRelic", "Splunk", "Dynatrace", "ElasticSearch"}},
		{Category: "TICKETING", Connectors: []string{"Jira", "ServiceNow"}},
		{Category: "COMMUNICATION", Connectors: []string{"PagerDuty"}},
	}
}

var (
	budgetTypes   = []string{"SPECIFIED_AMOUNT", "PREVIOUS_MONTH_SPEND", "PREVIOUS_PERIOD_SPEND"}
	budgetPeriods = []string{"DAILY", "WEEKLY", "MONTHLY", "QUARTERLY", "YEARLY"}
	scopeTypes    = []string{"PERSPECTIVE", "CLUSTER", "APPLICATION", "COST_BUCKET"}
)

func genBudgets(r *rand.Rand, acct string, n int) []Budget {
	created := time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC)
	fixed := []Budget{
		{Name: "Monthly AWS", Scope: perspectiveScope("p1AwsView0000000000001", "AWS — all accounts"),
			Type: "SPECIFIED_AMOUNT", BudgetAmount: 1000, Period: "MONTHLY", GrowthRate: 0,
			ActualCost: 812.4567, ForecastCost: 1093.1, LastMonthCost: 950,
			AlertThresholds: []AlertThreshold{
				threshold(50, "ACTUAL_COST", 1, ms(created.Add(240*time.Hour))),
				threshold(80, "ACTUAL_COST", 1, ms(created.Add(480*time.Hour))),
				threshold(100, "FORECASTED_COST", 0, 0),
			}},
		// Large amount: Jackson writes 2.5E7.
		{Name: "Cluster prod-eu", Scope: BudgetScope{Type: "CLUSTER", BudgetScopeType: "CLUSTER",
			EntityIDs: []string{"cluster-prod-eu-1", "cluster-prod-eu-2"}, EntityNames: []string{"prod-eu-1", "prod-eu-2"}},
			Type: "PREVIOUS_MONTH_SPEND", BudgetAmount: 25_000_000, Period: "QUARTERLY", GrowthRate: 5,
			ActualCost: 12_345_678.9, ForecastCost: 2.4e7, LastMonthCost: 8_100_000,
			AlertThresholds: []AlertThreshold{}},
		{Name: "Équipe données — 予算", Scope: BudgetScope{Type: "APPLICATION", BudgetScopeType: "APPLICATION",
			EntityIDs: []string{"app-ledger"}, EntityNames: []string{"ledger"}},
			Type: "PREVIOUS_PERIOD_SPEND", BudgetAmount: 120000.5, Period: "YEARLY", GrowthRate: 12.5,
			ActualCost: 0, ForecastCost: 0, LastMonthCost: 0,
			AlertThresholds: []AlertThreshold{threshold(90, "FORECASTED_COST", 0, 0)}},
		// Tiny amounts: Jackson writes 5.0E-4. Recorded 2021 shape: no
		// period and friends; thresholds carry notifyOnSlack.
		{Name: "Sandbox pennies", Scope: BudgetScope{Type: "COST_BUCKET", BudgetScopeType: "COST_BUCKET",
			EntityIDs: []string{}, EntityNames: []string{}},
			Type: "SPECIFIED_AMOUNT", BudgetAmount: 0.0005,
			ActualCost: 0.0001, ForecastCost: 0.0004, LastMonthCost: 0,
			AlertThresholds: []AlertThreshold{slackThreshold(threshold(100, "ACTUAL_COST", 3, ms(created.Add(time.Hour))))},
			Shape2021:       true},
	}
	if n < len(fixed) {
		fixed = fixed[:max(n, 0)]
	}
	out := fixed
	for len(out) < n {
		i := len(out)
		st := scopeTypes[r.IntN(len(scopeTypes))]
		var sc BudgetScope
		if st == "PERSPECTIVE" {
			sc = perspectiveScope(genID(r, 22), fmt.Sprintf("%s perspective", titleWord(words[r.IntN(len(words))])))
		} else {
			id := fmt.Sprintf("%s-%d", strings.ToLower(st), r.IntN(1000))
			sc = BudgetScope{Type: st, BudgetScopeType: st, EntityIDs: []string{id}, EntityNames: []string{id}}
		}
		amount := math.Round(r.Float64()*500000*100) / 100
		b := Budget{
			Name:          fmt.Sprintf("%s budget %d", titleWord(words[r.IntN(len(words))]), i),
			Scope:         sc,
			Type:          budgetTypes[r.IntN(len(budgetTypes))],
			BudgetAmount:  Double(amount),
			Period:        budgetPeriods[r.IntN(len(budgetPeriods))],
			GrowthRate:    Double(r.IntN(4) * 5),
			ActualCost:    Double(math.Round(amount*r.Float64()*100) / 100),
			ForecastCost:  Double(math.Round(amount*(0.5+r.Float64())*100) / 100),
			LastMonthCost: Double(math.Round(amount*r.Float64()*100) / 100),
		}
		for k := range r.IntN(4) {
			b.AlertThresholds = append(b.AlertThresholds, threshold(float64(50+25*k), []string{"ACTUAL_COST", "FORECASTED_COST"}[r.IntN(2)], r.IntN(3), 0))
		}
		if b.AlertThresholds == nil {
			b.AlertThresholds = []AlertThreshold{}
		}
		out = append(out, b)
	}
	for i := range out {
		b := &out[i]
		b.UUID = genID(r, 22)
		b.AccountID = acct
		b.EmailAddresses = []string{}
		b.UserGroupIDs = []string{}
		if i%3 == 0 {
			b.EmailAddresses = []string{"finops@example.com"}
			b.UserGroupIDs = []string{"_account_all_users"}
		}
		b.NotifyOnSlack = i%4 == 1
		b.IsNgBudget, b.NgBudget = true, true
		start := created.AddDate(0, i%12, 0)
		b.StartTime = ms(start)
		b.EndTime = ms(start.AddDate(1, 0, 0).Add(-time.Millisecond))
		b.CreatedAt = ms(start)
		b.LastUpdatedAt = ms(start.Add(time.Duration(i+1) * 37 * time.Minute))
	}
	return out
}

func perspectiveScope(id, name string) BudgetScope {
	return BudgetScope{Type: "PERSPECTIVE", ViewID: id, ViewName: name, BudgetScopeType: "PERSPECTIVE",
		EntityIDs: []string{id}, EntityNames: []string{name}}
}

func slackThreshold(t AlertThreshold) AlertThreshold {
	t.NotifyOnSlack = true
	return t
}

func threshold(pct float64, basedOn string, sent int, crossed int64) AlertThreshold {
	return AlertThreshold{Percentage: Double(pct), BasedOn: basedOn,
		EmailAddresses: []string{"alerts@example.com"}, UserGroupIDs: []string{}, SlackWebhooks: []string{},
		AlertsSent: sent, CrossedAt: crossed}
}

// Stage templates for the mean-time-to-restore profile; typical seconds per
// stage drive the generated durations. Limits mix units the way admins type
// them (SECONDS, MINUTES, HOURS, DAYS in one profile, two units in one
// stage), and review usually overruns its limits, so the first OU's answer
// has GOOD, NEEDS_ATTENTION and SLOW stages side by side.
var stageTemplates = []struct {
	stage   Stage
	typical int64
}{
	{Stage{Name: "Open", AdditionalKey: "Ticket Status Changed from OPEN", LowerLimitValue: 1, LowerLimitUnit: "HOURS", UpperLimitValue: 4, UpperLimitUnit: "HOURS"}, 3600},
	{Stage{Name: "In Progress", AdditionalKey: "Ticket Status Changed from IN PROGRESS", LowerLimitValue: 1, LowerLimitUnit: "DAYS", UpperLimitValue: 3, UpperLimitUnit: "DAYS"}, 86400},
	{Stage{Name: "In Review", AdditionalKey: "Ticket Status Changed from IN REVIEW", LowerLimitValue: 30, LowerLimitUnit: "MINUTES", UpperLimitValue: 2, UpperLimitUnit: "HOURS"}, 14400},
	{Stage{Name: "Deploy", AdditionalKey: "Ticket Status Changed from DEPLOY", LowerLimitValue: 1800, LowerLimitUnit: "SECONDS", UpperLimitValue: 2, UpperLimitUnit: "HOURS"}, 2400},
}

func genOUs(r *rand.Rand, n, incidents int) []OU {
	out := make([]OU, 0, n)
	for i := range n {
		ref := 31000 + i*7
		ou := OU{
			RefID:          ref,
			Name:           fmt.Sprintf("%s collection", titleWord(words[i%len(words)])),
			IntegrationIDs: []string{fmt.Sprintf("%d", 4000+i*2), fmt.Sprintf("%d", 4001+i*2)},
			Profile:        &WorkflowProfile{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", ref), Name: "MTTR profile"},
		}
		for _, t := range stageTemplates {
			ou.Profile.Stages = append(ou.Profile.Stages, t.stage)
		}
		// Later OUs are slower, so their ratings differ.
		scale := 1 + float64(i)*1.5
		for k := range incidents {
			inc := Incident{
				Key:           fmt.Sprintf("INC-%d-%d", ref, k+1),
				IntegrationID: ou.IntegrationIDs[r.IntN(len(ou.IntegrationIDs))],
				ResolvedAt:    incidentStart + r.Int64N(incidentEnd-incidentStart),
			}
			for si, t := range stageTemplates {
				if si == 2 && r.IntN(5) == 0 {
					inc.StageSeconds = append(inc.StageSeconds, -1) // skipped review
					continue
				}
				// Exponential durations give a long tail (p95 far above median).
				d := int64(r.ExpFloat64()*float64(t.typical)*scale) + 1
				inc.StageSeconds = append(inc.StageSeconds, d)
			}
			ou.Incidents = append(ou.Incidents, inc)
		}
		out = append(out, ou)
	}
	return out
}
