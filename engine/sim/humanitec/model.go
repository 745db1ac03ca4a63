package humanitec

import (
	"encoding/json"
	"slices"
)

// Org is the whole state the simulator serves. Every field is exported so
// tests can mutate it (delete an app, break a graph id) between runs; use
// [Server.Update] while a server is running.
//
// Timestamps are stored as the exact strings the API sends, so tests can also
// plant malformed ones. Fields the API derives from the parent (org_id,
// app_id, env_id, env_type of resources and pipelines, the envs list of an
// application) are filled in by the server from where the object sits.
type Org struct {
	ID           string
	Apps         []*App
	SecretStores []SecretStore
	// Users are the accounts with a role in the organisation (type user,
	// service or system); Groups are its IdP groups. Memberships live on the
	// groups ([Group].Members); [Org.GroupsOf] gives a user's side.
	Users  []User
	Groups []Group
}

// App is one application and everything stored under it.
type App struct {
	ID              string
	Name            string
	CreatedAt       string
	CreatedBy       string
	Status          string // active | deleting
	StatusChangedAt string
	StatusMessage   string // optional; omitted when empty

	Envs             []*Env
	Values           []Value // app-level shared values (source "app")
	ValueSetVersions []ValueSetVersion
	Sets             []Set
	Deltas           []Delta
	Pipelines        []Pipeline
}

// Env is one environment of an application.
type Env struct {
	ID              string
	Name            string
	Type            string
	CreatedAt       string
	CreatedBy       string
	Status          string // active | deleting
	StatusChangedAt string
	StatusMessage   string      // optional; omitted when empty
	LastDeploy      *Deployment // nil: never deployed, the field is absent
	FromDeploy      *Deployment // optional

	Resources []ActiveResource
	Graphs    []DependencyGraph
	Values    []Value // env overrides (source "env"), merged over the app's values
}

// Deployment is DeploymentResponse.
type Deployment struct {
	ID                string                       `json:"id"`
	EnvID             string                       `json:"env_id"`
	SetID             string                       `json:"set_id"`
	FromID            string                       `json:"from_id"`
	Comment           string                       `json:"comment"`
	CreatedAt         string                       `json:"created_at"`
	CreatedBy         string                       `json:"created_by"`
	Status            string                       `json:"status"`
	StatusChangedAt   string                       `json:"status_changed_at"`
	ExportStatus      string                       `json:"export_status"`
	ExportFile        string                       `json:"export_file"`
	DeltaID           string                       `json:"delta_id,omitempty"`
	DependencyGraphID string                       `json:"dependency_graph_id,omitempty"`
	ValueSetVersionID *string                      `json:"value_set_version_id,omitempty"`
	LegacyMode        *bool                        `json:"legacy_mode,omitempty"`
	OperatorVersion   string                       `json:"operator_version,omitempty"`
	Mode              string                       `json:"mode,omitempty"`
	Pipeline          *DeploymentPipelineReference `json:"pipeline,omitempty"`
}

// User is one account of the organisation. GET /users answers it as
// UserRoleResponse, a group's member list as UserProfileResponse.
type User struct {
	ID        string
	Name      string
	Email     string // optional; omitted when empty (service accounts have none)
	Type      string // user | service | system
	Role      string
	Invite    string // optional; omitted when empty (accounts never invited)
	CreatedAt string
}

// Group is one IdP group of the organisation. GET /users answers it as
// UserRoleResponse with type "group", GET /users/{userId}/groups as Group
// (Name is its group_id there).
type Group struct {
	ID        string // "g-" followed by a UUID, as the groupId pattern requires
	Name      string // the group's name in the IdP
	IdpID     string
	Role      string
	CreatedAt string
	// Members are the ids of the member users, in the order the member list
	// answers them. An id without a user in Org.Users is skipped there.
	Members []string
}

// DeploymentPipelineReference is DeploymentPipelineReferenceResponse.
type DeploymentPipelineReference struct {
	ID        string `json:"id"`
	RunID     string `json:"run_id"`
	JobID     string `json:"job_id"`
	StepIndex int    `json:"step_index"`
}

// ActiveResource is ActiveResourceResponse. OrgID, AppID, EnvID and EnvType
// are overwritten by the server with the values of the enclosing org, app and
// env.
type ActiveResource struct {
	OrgID              string         `json:"org_id"`
	AppID              string         `json:"app_id"`
	EnvID              string         `json:"env_id"`
	EnvType            string         `json:"env_type"`
	ResID              string         `json:"res_id"`
	DefID              string         `json:"def_id"`
	DefVersionID       string         `json:"def_version_id"`
	TargetDefVersionID string         `json:"target_def_version_id,omitempty"`
	CriteriaID         string         `json:"criteria_id,omitempty"`
	Type               string         `json:"type"`
	Class              string         `json:"class"`
	DriverType         string         `json:"driver_type"`
	DriverAccount      string         `json:"driver_account,omitempty"`
	Status             string         `json:"status"`
	Resource           map[string]any `json:"resource"`
	SecretRefs         map[string]any `json:"secret_refs"`
	UpdatedAt          string         `json:"updated_at"`
	DeployID           string         `json:"deploy_id"`
	GuResID            string         `json:"gu_res_id"`
	ScheduledDeletion  bool           `json:"scheduled_deletion"`
}

// MarshalJSON keeps required objects as {} rather than null.
func (r ActiveResource) MarshalJSON() ([]byte, error) {
	type plain ActiveResource
	p := plain(r)
	p.Resource = orEmpty(p.Resource)
	p.SecretRefs = orEmpty(p.SecretRefs)
	return json.Marshal(p)
}

// DependencyGraph is DependencyGraphResponse.
type DependencyGraph struct {
	ID        string `json:"id"`
	Hash      string `json:"hash"`
	Nodes     []Node `json:"nodes"`
	CreatedAt string `json:"created_at"`
	UsedAt    string `json:"used_at"`
}

// MarshalJSON keeps required arrays as [] rather than null.
func (g DependencyGraph) MarshalJSON() ([]byte, error) {
	type plain DependencyGraph
	p := plain(g)
	if p.Nodes == nil {
		p.Nodes = []Node{}
	}
	return json.Marshal(p)
}

// Node is NodeBodyResponse, one resource of a dependency graph.
type Node struct {
	ID                  string         `json:"id"`
	GuResID             string         `json:"guresid"`
	Type                string         `json:"type"`
	Class               string         `json:"class"`
	DefID               string         `json:"def_id"`
	DefVersionID        string         `json:"def_version_id"`
	CriteriaID          string         `json:"criteria_id"`
	DriverType          string         `json:"driver_type"`
	Driver              map[string]any `json:"driver"`
	DriverAccount       string         `json:"driver_account,omitempty"`
	Resource            map[string]any `json:"resource"`
	ResourceSchema      map[string]any `json:"resource_schema"`
	DependsOn           []string       `json:"depends_on"`
	InPlaceDriverChange bool           `json:"in_place_driver_change"`
	Target              string         `json:"target,omitempty"`
}

// MarshalJSON keeps required objects and arrays non-null.
func (n Node) MarshalJSON() ([]byte, error) {
	type plain Node
	p := plain(n)
	p.Driver = orEmpty(p.Driver)
	p.Resource = orEmpty(p.Resource)
	p.ResourceSchema = orEmpty(p.ResourceSchema)
	if p.DependsOn == nil {
		p.DependsOn = []string{}
	}
	return json.Marshal(p)
}

// SecretStore is SecretStoreResponse; at most one of the kind fields is set.
type SecretStore struct {
	ID        string    `json:"id"`
	Primary   bool      `json:"primary"`
	CreatedAt string    `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	UpdatedAt string    `json:"updated_at"`
	UpdatedBy string    `json:"updated_by"`
	AWSSM     *AWSSM    `json:"awssm,omitempty"`
	AzureKV   *AzureKV  `json:"azurekv,omitempty"`
	GCPSM     *GCPSM    `json:"gcpsm,omitempty"`
	Vault     *Vault    `json:"vault,omitempty"`
	Humanitec *struct{} `json:"humanitec,omitempty"`
}

// AWSSM is AWSSMResponse.
type AWSSM struct {
	Region   string `json:"region,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
}

// AzureKV is AzureKVResponse.
type AzureKV struct {
	TenantID string `json:"tenant_id,omitempty"`
	URL      string `json:"url,omitempty"`
}

// GCPSM is GCPSMResponse.
type GCPSM struct {
	ProjectID string `json:"project_id,omitempty"`
}

// Vault is VaultResponse.
type Vault struct {
	URL     string `json:"url,omitempty"`
	Path    string `json:"path,omitempty"`
	AgentID string `json:"agent_id,omitempty"`
}

// Value is ValueResponse. Source is set by the server ("app" for app-level
// values, "env" for env overrides). Secret values always carry Value "".
type Value struct {
	Key           string  `json:"key"`
	Value         string  `json:"value"`
	IsSecret      bool    `json:"is_secret"`
	Description   string  `json:"description"`
	CreatedAt     string  `json:"created_at"`
	UpdatedAt     string  `json:"updated_at"`
	Source        string  `json:"source"`
	SecretKey     *string `json:"secret_key"`
	SecretVersion *string `json:"secret_version"`
	SecretStoreID *string `json:"secret_store_id"`
}

// ValueSetVersion is ValueSetVersionResponse.
type ValueSetVersion struct {
	ID                      string           `json:"id"`
	Values                  map[string]Value `json:"values"`
	Change                  []JSONPatch      `json:"change"`
	CreatedAt               string           `json:"created_at"`
	CreatedBy               string           `json:"created_by"`
	UpdatedAt               string           `json:"updated_at"`
	ResultOf                *string          `json:"result_of"`
	Comment                 string           `json:"comment"`
	SourceValueSetVersionID *string          `json:"source_value_set_version_id"`
}

// MarshalJSON keeps required objects and arrays non-null.
func (v ValueSetVersion) MarshalJSON() ([]byte, error) {
	type plain ValueSetVersion
	p := plain(v)
	if p.Values == nil {
		p.Values = map[string]Value{}
	}
	if p.Change == nil {
		p.Change = []JSONPatch{}
	}
	return json.Marshal(p)
}

// JSONPatch is JSONPatchResponse (and, with From, UpdateActionResponse).
type JSONPatch struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
	From  string `json:"from,omitempty"`
}

// Set is SetResponse, a deployment set. ID is the hash of the content.
type Set struct {
	ID        string              `json:"id"`
	Modules   map[string]Module   `json:"modules"`
	Shared    map[string]any      `json:"shared"`
	Version   int                 `json:"version"`
	Workloads map[string]Workload `json:"workloads,omitempty"`
}

// MarshalJSON keeps required objects non-null.
func (s Set) MarshalJSON() ([]byte, error) {
	type plain Set
	p := plain(s)
	if p.Modules == nil {
		p.Modules = map[string]Module{}
	}
	p.Shared = orEmpty(p.Shared)
	return json.Marshal(p)
}

// Module is ModuleResponse.
type Module struct {
	Profile   string           `json:"profile"`
	Spec      map[string]any   `json:"spec"`
	Externals map[string]any   `json:"externals"`
	Deploy    *DeployCondition `json:"deploy,omitempty"`
}

// MarshalJSON keeps required objects non-null.
func (m Module) MarshalJSON() ([]byte, error) {
	type plain Module
	p := plain(m)
	p.Spec = orEmpty(p.Spec)
	p.Externals = orEmpty(p.Externals)
	return json.Marshal(p)
}

// DeployCondition is DeployConditionResponse.
type DeployCondition struct {
	When    string `json:"when"`
	Success string `json:"success"`
	Timeout int    `json:"timeout"`
}

// Workload is WorkloadResponse.
type Workload struct {
	Spec  map[string]any `json:"spec"`
	Class string         `json:"class,omitempty"`
}

// MarshalJSON keeps the required spec non-null.
func (w Workload) MarshalJSON() ([]byte, error) {
	type plain Workload
	p := plain(w)
	p.Spec = orEmpty(p.Spec)
	return json.Marshal(p)
}

// Pipeline is the Pipeline schema. OrgID and AppID are overwritten by the
// server with the enclosing org and app. Metadata is omitted when nil.
type Pipeline struct {
	ID           string            `json:"id"`
	Etag         string            `json:"etag"`
	OrgID        string            `json:"org_id"`
	AppID        string            `json:"app_id"`
	Name         string            `json:"name"`
	Status       string            `json:"status"`
	Version      string            `json:"version"`
	CreatedAt    string            `json:"created_at"`
	TriggerTypes []string          `json:"trigger_types"`
	Metadata     map[string]string `json:"metadata,omitempty"`
}

// MarshalJSON keeps the required trigger_types non-null.
func (p Pipeline) MarshalJSON() ([]byte, error) {
	type plain Pipeline
	q := plain(p)
	if q.TriggerTypes == nil {
		q.TriggerTypes = []string{}
	}
	return json.Marshal(q)
}

// Delta is DeltaResponse, a deployment delta.
type Delta struct {
	ID        string          `json:"id"`
	Metadata  DeltaMetadata   `json:"metadata"`
	Modules   ModuleDeltas    `json:"modules"`
	Shared    []JSONPatch     `json:"shared"`
	Workloads *WorkloadDeltas `json:"workloads,omitempty"`
}

// MarshalJSON keeps the required shared array non-null.
func (d Delta) MarshalJSON() ([]byte, error) {
	type plain Delta
	p := plain(d)
	if p.Shared == nil {
		p.Shared = []JSONPatch{}
	}
	return json.Marshal(p)
}

// DeltaMetadata is DeltaMetadataResponse. "contributers" is the API's
// spelling.
type DeltaMetadata struct {
	Name           string   `json:"name,omitempty"`
	EnvID          string   `json:"env_id,omitempty"`
	CreatedBy      string   `json:"created_by"`
	CreatedAt      string   `json:"created_at"`
	LastModifiedAt string   `json:"last_modified_at"`
	Archived       bool     `json:"archived"`
	Contributers   []string `json:"contributers,omitempty"`
	Shared         *bool    `json:"shared,omitempty"`
}

// ModuleDeltas is ModuleDeltasResponse.
type ModuleDeltas struct {
	Add    map[string]Module      `json:"add"`
	Remove []string               `json:"remove"`
	Update map[string][]JSONPatch `json:"update"`
}

// MarshalJSON keeps the required members non-null.
func (m ModuleDeltas) MarshalJSON() ([]byte, error) {
	type plain ModuleDeltas
	p := plain(m)
	if p.Add == nil {
		p.Add = map[string]Module{}
	}
	if p.Remove == nil {
		p.Remove = []string{}
	}
	if p.Update == nil {
		p.Update = map[string][]JSONPatch{}
	}
	return json.Marshal(p)
}

// WorkloadDeltas is WorkloadDeltasResponse.
type WorkloadDeltas struct {
	Add    map[string]Workload    `json:"add"`
	Remove []string               `json:"remove"`
	Update map[string][]JSONPatch `json:"update"`
}

// MarshalJSON keeps the required members non-null.
func (w WorkloadDeltas) MarshalJSON() ([]byte, error) {
	type plain WorkloadDeltas
	p := plain(w)
	if p.Add == nil {
		p.Add = map[string]Workload{}
	}
	if p.Remove == nil {
		p.Remove = []string{}
	}
	if p.Update == nil {
		p.Update = map[string][]JSONPatch{}
	}
	return json.Marshal(p)
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// App returns the application with the given id, or nil.
func (o *Org) App(id string) *App {
	for _, a := range o.Apps {
		if a.ID == id {
			return a
		}
	}
	return nil
}

// Env returns the environment with the given id, or nil.
func (a *App) Env(id string) *Env {
	for _, e := range a.Envs {
		if e.ID == id {
			return e
		}
	}
	return nil
}

// Graph returns the dependency graph with the given id, or nil.
func (e *Env) Graph(id string) *DependencyGraph {
	for i := range e.Graphs {
		if e.Graphs[i].ID == id {
			return &e.Graphs[i]
		}
	}
	return nil
}

// Set returns the deployment set with the given id, or nil.
func (a *App) Set(id string) *Set {
	for i := range a.Sets {
		if a.Sets[i].ID == id {
			return &a.Sets[i]
		}
	}
	return nil
}

// Delta returns the delta with the given id, or nil.
func (a *App) Delta(id string) *Delta {
	for i := range a.Deltas {
		if a.Deltas[i].ID == id {
			return &a.Deltas[i]
		}
	}
	return nil
}

// User returns the user with the given id, or nil.
func (o *Org) User(id string) *User {
	for i := range o.Users {
		if o.Users[i].ID == id {
			return &o.Users[i]
		}
	}
	return nil
}

// Group returns the group with the given id, or nil.
func (o *Org) Group(id string) *Group {
	for i := range o.Groups {
		if o.Groups[i].ID == id {
			return &o.Groups[i]
		}
	}
	return nil
}

// GroupsOf returns the groups listing userID among their members, in the
// order of Org.Groups: what GET /users/{userId}/groups answers.
func (o *Org) GroupsOf(userID string) []*Group {
	var out []*Group
	for i := range o.Groups {
		if slices.Contains(o.Groups[i].Members, userID) {
			out = append(out, &o.Groups[i])
		}
	}
	return out
}
