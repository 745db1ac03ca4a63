package harness

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// Account is the state the simulator serves. All fields are exported so
// tests can shape edge cases; while a [Server] is serving, change it only
// inside [Server.Update].
type Account struct {
	ID        string            // accountIdentifier; also Budget.AccountID
	Projects  []ProjectResponse // in insertion order; the server sorts on read
	Catalogue []CatalogueItem
	Budgets   []Budget
	// BudgetsEnvelope2021 answers GET /ccm/api/budgets in the envelope
	// recorded in 2021, {metaData, data, responseMessages}, without status
	// or correlationId.
	BudgetsEnvelope2021 bool
	OUs                 []OU // SEI collections (organisation units) with their data
}

// ProjectResponse is one element of data.content in GET /ng/api/projects.
// The server keeps CreatedAt, LastModifiedAt and IsFavorite for every
// project (sorting and onlyFavorites use them) but writes them in the
// recorded shape that Shape selects.
type ProjectResponse struct {
	Project        Project
	CreatedAt      int64 // epoch ms
	LastModifiedAt int64 // epoch ms; default sort key (descending)
	IsFavorite     bool
	Shape          ProjectShape
}

// ProjectShape is one of the recorded shapes of a projects list item.
// Harness builds of several eras answer differently; clients meet them all.
type ProjectShape int

// Recorded shapes. AccountIdentifier of [Project] is sent with every shape
// when non-empty; Project2020 items carry it.
const (
	// ProjectCurrent: {project, createdAt, lastModifiedAt, isFavorite}.
	ProjectCurrent ProjectShape = iota
	// ProjectNoFavorite: {project, createdAt, lastModifiedAt}, as recorded
	// in 2021–2022.
	ProjectNoFavorite
	// ProjectNullCreatedAt: "createdAt": null, as in a real single-project
	// answer.
	ProjectNullCreatedAt
	// ProjectFavoriteOnly: {project, isFavorite} without timestamps, as in
	// Harness's 2023 mock.
	ProjectFavoriteOnly
	// Project2020: {project} alone, lastModifiedAt (and accountIdentifier)
	// inside project, no wrapper fields.
	Project2020
)

// MarshalJSON writes the item in its recorded shape.
func (p ProjectResponse) MarshalJSON() ([]byte, error) {
	var v any
	switch p.Shape {
	case ProjectNoFavorite:
		v = struct {
			Project        Project `json:"project"`
			CreatedAt      int64   `json:"createdAt"`
			LastModifiedAt int64   `json:"lastModifiedAt"`
		}{p.Project, p.CreatedAt, p.LastModifiedAt}
	case ProjectNullCreatedAt:
		v = struct {
			Project        Project `json:"project"`
			CreatedAt      *int64  `json:"createdAt"`
			LastModifiedAt int64   `json:"lastModifiedAt"`
			IsFavorite     bool    `json:"isFavorite"`
		}{p.Project, nil, p.LastModifiedAt, p.IsFavorite}
	case ProjectFavoriteOnly:
		v = struct {
			Project    Project `json:"project"`
			IsFavorite bool    `json:"isFavorite"`
		}{p.Project, p.IsFavorite}
	case Project2020:
		type inner struct {
			Project
			LastModifiedAt int64 `json:"lastModifiedAt"`
		}
		v = struct {
			Project inner `json:"project"`
		}{inner{p.Project, p.LastModifiedAt}}
	default:
		v = struct {
			Project        Project `json:"project"`
			CreatedAt      int64   `json:"createdAt"`
			LastModifiedAt int64   `json:"lastModifiedAt"`
			IsFavorite     bool    `json:"isFavorite"`
		}{p.Project, p.CreatedAt, p.LastModifiedAt, p.IsFavorite}
	}
	return encodeJSON(v)
}

// Project is Harness's NG project model.
type Project struct {
	// AccountIdentifier is sent only when non-empty: 2020 builds put it in
	// the project, later ones leave it out.
	AccountIdentifier string   `json:"accountIdentifier,omitempty"`
	OrgIdentifier     string   `json:"orgIdentifier"`
	Identifier        string   `json:"identifier"`
	Name              string   `json:"name"`
	Color             string   `json:"color"`
	Modules           []string `json:"modules"`
	// Description nil is sent as JSON null; "" as "".
	Description *string `json:"description"`
	// Tags nil leaves the key out of the JSON; an empty map is sent as {}.
	Tags map[string]string `json:"tags,omitzero"`
}

// CatalogueItem is one entry of data.catalogue in GET /ng/api/connectors/catalogue.
type CatalogueItem struct {
	Category   string   `json:"category"`
	Connectors []string `json:"connectors"`
}

// Budget is one element of data in GET /ccm/api/budgets.
type Budget struct {
	UUID            string           `json:"uuid"`
	AccountID       string           `json:"accountId"`
	Name            string           `json:"name"`
	Scope           BudgetScope      `json:"scope"`
	Type            string           `json:"type"` // SPECIFIED_AMOUNT | PREVIOUS_MONTH_SPEND | PREVIOUS_PERIOD_SPEND
	BudgetAmount    Double           `json:"budgetAmount"`
	Period          string           `json:"period"` // DAILY | WEEKLY | MONTHLY | QUARTERLY | YEARLY
	GrowthRate      Double           `json:"growthRate"`
	ActualCost      Double           `json:"actualCost"`
	ForecastCost    Double           `json:"forecastCost"`
	LastMonthCost   Double           `json:"lastMonthCost"`
	AlertThresholds []AlertThreshold `json:"alertThresholds"`
	EmailAddresses  []string         `json:"emailAddresses"`
	UserGroupIDs    []string         `json:"userGroupIds"`
	NotifyOnSlack   bool             `json:"notifyOnSlack"`
	// IsNgBudget and NgBudget are both sent: Jackson emits the field and
	// the derived "is" getter, so real responses carry the same value twice.
	IsNgBudget    bool  `json:"isNgBudget"`
	NgBudget      bool  `json:"ngBudget"`
	StartTime     int64 `json:"startTime"` // epoch ms
	EndTime       int64 `json:"endTime"`
	CreatedAt     int64 `json:"createdAt"`
	LastUpdatedAt int64 `json:"lastUpdatedAt"`
	// Shape2021 writes the budget as recorded in 2021: no period,
	// growthRate, startTime, endTime, isNgBudget or ngBudget, and alert
	// thresholds without slackWebhooks but with their own notifyOnSlack.
	Shape2021 bool `json:"-"`
}

// MarshalJSON writes the budget in its recorded shape.
func (b Budget) MarshalJSON() ([]byte, error) {
	if !b.Shape2021 {
		type current Budget // no MarshalJSON: plain struct encoding
		return encodeJSON(current(b))
	}
	thresholds := make([]alertThreshold2021, len(b.AlertThresholds))
	for i, t := range b.AlertThresholds {
		thresholds[i] = alertThreshold2021{
			Percentage: t.Percentage, BasedOn: t.BasedOn, AlertsSent: t.AlertsSent, CrossedAt: t.CrossedAt,
			EmailAddresses: t.EmailAddresses, UserGroupIDs: t.UserGroupIDs, NotifyOnSlack: t.NotifyOnSlack,
		}
	}
	return encodeJSON(budget2021{
		UUID: b.UUID, AccountID: b.AccountID, Name: b.Name, Scope: b.Scope, Type: b.Type,
		BudgetAmount: b.BudgetAmount, ActualCost: b.ActualCost, ForecastCost: b.ForecastCost,
		LastMonthCost: b.LastMonthCost, AlertThresholds: thresholds, EmailAddresses: b.EmailAddresses,
		UserGroupIDs: b.UserGroupIDs, NotifyOnSlack: b.NotifyOnSlack, CreatedAt: b.CreatedAt,
		LastUpdatedAt: b.LastUpdatedAt,
	})
}

type budget2021 struct {
	UUID            string               `json:"uuid"`
	AccountID       string               `json:"accountId"`
	Name            string               `json:"name"`
	Scope           BudgetScope          `json:"scope"`
	Type            string               `json:"type"`
	BudgetAmount    Double               `json:"budgetAmount"`
	ActualCost      Double               `json:"actualCost"`
	ForecastCost    Double               `json:"forecastCost"`
	LastMonthCost   Double               `json:"lastMonthCost"`
	AlertThresholds []alertThreshold2021 `json:"alertThresholds"`
	EmailAddresses  []string             `json:"emailAddresses"`
	UserGroupIDs    []string             `json:"userGroupIds"`
	NotifyOnSlack   bool                 `json:"notifyOnSlack"`
	CreatedAt       int64                `json:"createdAt"`
	LastUpdatedAt   int64                `json:"lastUpdatedAt"`
}

type alertThreshold2021 struct {
	Percentage     Double   `json:"percentage"`
	BasedOn        string   `json:"basedOn"`
	AlertsSent     int      `json:"alertsSent"`
	CrossedAt      int64    `json:"crossedAt"`
	EmailAddresses []string `json:"emailAddresses"`
	UserGroupIDs   []string `json:"userGroupIds"`
	NotifyOnSlack  bool     `json:"notifyOnSlack"`
}

// BudgetScope says what a budget covers. ViewID and ViewName are present
// only for PERSPECTIVE scopes.
type BudgetScope struct {
	Type            string   `json:"type"` // PERSPECTIVE | CLUSTER | APPLICATION | COST_BUCKET
	ViewID          string   `json:"viewId,omitempty"`
	ViewName        string   `json:"viewName,omitempty"`
	BudgetScopeType string   `json:"budgetScopeType"`
	EntityIDs       []string `json:"entityIds"`
	EntityNames     []string `json:"entityNames"`
}

// AlertThreshold is one budget alert rule.
type AlertThreshold struct {
	Percentage     Double   `json:"percentage"`
	BasedOn        string   `json:"basedOn"` // ACTUAL_COST | FORECASTED_COST
	EmailAddresses []string `json:"emailAddresses"`
	UserGroupIDs   []string `json:"userGroupIds"`
	SlackWebhooks  []string `json:"slackWebhooks"`
	AlertsSent     int      `json:"alertsSent"`
	CrossedAt      int64    `json:"crossedAt"` // epoch ms, 0 when never crossed
	// NotifyOnSlack is sent only by budgets in the 2021 shape, which have
	// no slackWebhooks.
	NotifyOnSlack bool `json:"-"`
}

// OU is an SEI collection (organisation unit). The DORA mean-time endpoint
// aggregates its Incidents through the stages of its workflow profile.
type OU struct {
	RefID          int    // the value clients put in ou_ids
	Name           string // informational only
	IntegrationIDs []string
	// Profile nil makes the server answer like SEI does for an OU without
	// a workflow profile.
	Profile   *WorkflowProfile
	Incidents []Incident
}

// WorkflowProfile is the velocity configuration of an OU.
type WorkflowProfile struct {
	ID     string
	Name   string
	Stages []Stage
}

// Stage is one velocity stage. Limits use Java TimeUnit names (SECONDS,
// MINUTES, HOURS, DAYS) as SEI serialises them.
type Stage struct {
	Name            string
	AdditionalKey   string // sent as additional_key when non-empty
	LowerLimitValue int64
	LowerLimitUnit  string
	UpperLimitValue int64
	UpperLimitUnit  string
}

// Incident is one resolved issue feeding the mean-time aggregation.
type Incident struct {
	Key           string
	IntegrationID string
	ResolvedAt    int64 // epoch seconds; the time filter applies to it
	// StageSeconds holds the time spent in each profile stage, aligned with
	// Profile.Stages; a negative value means the issue skipped that stage.
	StageSeconds []int64
}

// Double is a float64 that marshals the way Jackson writes a Java double:
// always with a fraction or an exponent ("1000.0", "2.5E7", "5.0E-4").
// Consumers therefore meet the same spellings as from Harness, where a
// whole-number double is still "1000.0", not "1000".
type Double float64

// MarshalJSON implements json.Marshaler.
func (d Double) MarshalJSON() ([]byte, error) {
	s, err := javaDouble(float64(d))
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}

var errNonFinite = errors.New("double is not finite")

// javaDouble formats f like Java's Double.toString (JDK 19+, shortest
// digits): plain decimal in [1e-3, 1e7), computerised scientific notation
// outside it.
func javaDouble(f float64) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", errNonFinite
	}
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0", nil
		}
		return "0.0", nil
	}
	abs := math.Abs(f)
	if abs >= 1e-3 && abs < 1e7 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s, nil
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // e.g. 2.5e+07, 5e-04
	mant, exp, _ := strings.Cut(s, "e")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	n, err := strconv.Atoi(exp)
	if err != nil {
		return "", err
	}
	return mant + "E" + strconv.Itoa(n), nil
}
