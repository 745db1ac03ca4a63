package humanitec

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// route is one GET endpoint. Segments in braces are path parameters.
type route struct {
	segs []string
	// bareNotFound marks the endpoints whose 404 body the spec declares as a
	// bare JSON string instead of HumanitecErrorResponse.
	bareNotFound bool
	handle       func(c *call)
	// fault, when set, scripts a failure for this route from Options; it
	// returns a status (0 for none) and the error message.
	fault func(opts *Options, params map[string]string) (int, string)
}

// routes builds the route table; each Server keeps its own copy, so there
// is no package-level table.
func routes() []route {
	r := func(path string, bare bool, h func(c *call)) route {
		return route{segs: strings.Split(strings.TrimPrefix(path, "/"), "/"), bareNotFound: bare, handle: h}
	}
	return []route{
		r("/orgs/{orgId}/apps", false, listApps),
		r("/orgs/{orgId}/apps/{appId}", false, getApp),
		r("/orgs/{orgId}/apps/{appId}/envs", false, listEnvs),
		r("/orgs/{orgId}/apps/{appId}/envs/{envId}", false, getEnv),
		r("/orgs/{orgId}/apps/{appId}/envs/{envId}/resources", false, listResources),
		r("/orgs/{orgId}/apps/{appId}/envs/{envId}/resources/graphs/{graphId}", false, getGraph),
		r("/orgs/{orgId}/apps/{appId}/envs/{envId}/values", false, listEnvValues),
		r("/orgs/{orgId}/secretstores", false, listSecretStores),
		r("/orgs/{orgId}/env-types", false, listEnvTypes),
		r("/orgs/{orgId}/apps/{appId}/values", false, listAppValues),
		r("/orgs/{orgId}/apps/{appId}/value-set-versions", false, listValueSetVersions),
		r("/orgs/{orgId}/apps/{appId}/sets", true, listSets),
		r("/orgs/{orgId}/apps/{appId}/sets/{setId}", true, getSet),
		r("/orgs/{orgId}/pipelines", false, listOrgPipelines),
		r("/orgs/{orgId}/apps/{appId}/pipelines", false, listAppPipelines),
		r("/orgs/{orgId}/apps/{appId}/deltas", false, listDeltas),
		r("/orgs/{orgId}/apps/{appId}/deltas/{deltaId}", true, getDelta),
		r("/orgs/{orgId}/users", false, listUsers),
		withFault(r("/orgs/{orgId}/groups/{groupId}/users", false, listGroupUsers), groupMembersFault),
		r("/orgs/{orgId}/users/{userId}/groups", false, listUserGroups),
	}
}

func withFault(rt route, fault func(opts *Options, params map[string]string) (int, string)) route {
	rt.fault = fault
	return rt
}

// match finds the route for an escaped path. Each segment is unescaped on
// its own, so an id containing %2F stays one segment.
func match(rs []route, escaped string) (*route, map[string]string, bool) {
	if !strings.HasPrefix(escaped, "/") {
		return nil, nil, false
	}
	raw := strings.Split(escaped[1:], "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		u, err := url.PathUnescape(s)
		if err != nil || u == "" {
			return nil, nil, false
		}
		segs[i] = u
	}
	for i := range rs {
		rt := &rs[i]
		if len(rt.segs) != len(segs) {
			continue
		}
		params := map[string]string{}
		ok := true
		for j, p := range rt.segs {
			if strings.HasPrefix(p, "{") {
				params[p[1:len(p)-1]] = segs[j]
				continue
			}
			if p != segs[j] {
				ok = false
				break
			}
		}
		if ok {
			return rt, params, true
		}
	}
	return nil, nil, false
}

// applicationResponse is ApplicationResponse.
type applicationResponse struct {
	ID              string                    `json:"id"`
	Name            string                    `json:"name"`
	OrgID           string                    `json:"org_id"`
	CreatedAt       string                    `json:"created_at"`
	CreatedBy       string                    `json:"created_by"`
	Envs            []environmentBaseResponse `json:"envs"`
	Status          string                    `json:"status"`
	StatusChangedAt string                    `json:"status_changed_at"`
	StatusMessage   string                    `json:"status_message,omitempty"`
}

// environmentBaseResponse is EnvironmentBaseResponse.
type environmentBaseResponse struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// environmentResponse is EnvironmentResponse.
type environmentResponse struct {
	ID              string      `json:"id"`
	Name            string      `json:"name"`
	Type            string      `json:"type"`
	CreatedAt       string      `json:"created_at"`
	CreatedBy       string      `json:"created_by"`
	Status          string      `json:"status"`
	StatusChangedAt string      `json:"status_changed_at"`
	StatusMessage   string      `json:"status_message,omitempty"`
	LastDeploy      *Deployment `json:"last_deploy,omitempty"`
	FromDeploy      *Deployment `json:"from_deploy,omitempty"`
}

func (c *call) application(a *App) applicationResponse {
	envs := make([]environmentBaseResponse, 0, len(a.Envs))
	for _, e := range a.Envs {
		envs = append(envs, environmentBaseResponse{ID: e.ID, Name: e.Name, Type: e.Type})
	}
	return applicationResponse{
		ID: a.ID, Name: a.Name, OrgID: c.s.orgID(), CreatedAt: a.CreatedAt, CreatedBy: a.CreatedBy,
		Envs: envs, Status: a.Status, StatusChangedAt: a.StatusChangedAt, StatusMessage: a.StatusMessage,
	}
}

func environment(e *Env) environmentResponse {
	return environmentResponse{
		ID: e.ID, Name: e.Name, Type: e.Type, CreatedAt: e.CreatedAt, CreatedBy: e.CreatedBy,
		Status: e.Status, StatusChangedAt: e.StatusChangedAt, StatusMessage: e.StatusMessage,
		LastDeploy: e.LastDeploy, FromDeploy: e.FromDeploy,
	}
}

func listApps(c *call) {
	out := make([]applicationResponse, 0, len(c.s.org.Apps))
	for _, a := range c.s.org.Apps {
		out = append(out, c.application(a))
	}
	c.ok(out)
}

func getApp(c *call) {
	if a, ok := c.app(); ok {
		c.ok(c.application(a))
	}
}

func listEnvs(c *call) {
	a, ok := c.app()
	if !ok {
		return
	}
	out := make([]environmentResponse, 0, len(a.Envs))
	for _, e := range a.Envs {
		out = append(out, environment(e))
	}
	c.ok(out)
}

func getEnv(c *call) {
	if _, e, ok := c.env(); ok {
		c.ok(environment(e))
	}
}

// boolParam parses an optional boolean query parameter; ok is false after a
// 400 has been written.
func (c *call) boolParam(name string) (val, set, ok bool) {
	q := c.r.URL.Query()
	if !q.Has(name) {
		return false, false, true
	}
	b, err := strconv.ParseBool(q.Get(name))
	if err != nil {
		c.badRequest("Query parameter " + name + " must be a boolean.")
		return false, false, false
	}
	return b, true, true
}

func listResources(c *call) {
	a, e, ok := c.env()
	if !ok {
		return
	}
	sched, filter, ok := c.boolParam("scheduled_deletion")
	if !ok {
		return
	}
	out := make([]ActiveResource, 0, len(e.Resources))
	for _, r := range e.Resources {
		if filter && r.ScheduledDeletion != sched {
			continue
		}
		r.OrgID, r.AppID, r.EnvID, r.EnvType = c.s.orgID(), a.ID, e.ID, e.Type
		out = append(out, r)
	}
	c.ok(out)
}

func getGraph(c *call) {
	_, e, ok := c.env()
	if !ok {
		return
	}
	g := e.Graph(c.params["graphId"])
	if g == nil {
		c.notFound("Dependency Graph not found.")
		return
	}
	c.ok(g)
}

func listSecretStores(c *call) {
	out := append([]SecretStore{}, c.s.org.SecretStores...)
	c.ok(out)
}

// EnvType is EnvironmentTypeResponse.
type EnvType struct {
	ID          string `json:"id"`
	Description string `json:"description"`
}

// listEnvTypes answers the types the organisation's environments use,
// sorted by id: every environment has exactly one.
func listEnvTypes(c *call) {
	seen := map[string]bool{}
	out := []EnvType{}
	for _, a := range c.s.org.Apps {
		for _, e := range a.Envs {
			if !seen[e.Type] {
				seen[e.Type] = true
				out = append(out, EnvType{ID: e.Type, Description: "Environments of type " + e.Type + "."})
			}
		}
	}
	slices.SortFunc(out, func(x, y EnvType) int { return strings.Compare(x.ID, y.ID) })
	c.ok(out)
}

func listAppValues(c *call) {
	a, ok := c.app()
	if !ok {
		return
	}
	out := make([]Value, 0, len(a.Values))
	for _, v := range a.Values {
		v.Source = "app"
		out = append(out, v)
	}
	c.ok(out)
}

// listEnvValues merges the app's values with the env's overrides: an
// override replaces the app value in place, keys only the env has follow.
func listEnvValues(c *call) {
	a, e, ok := c.env()
	if !ok {
		return
	}
	over := make(map[string]Value, len(e.Values))
	for _, v := range e.Values {
		v.Source = "env"
		over[v.Key] = v
	}
	out := make([]Value, 0, len(a.Values)+len(e.Values))
	seen := map[string]bool{}
	for _, v := range a.Values {
		seen[v.Key] = true
		if o, ok := over[v.Key]; ok {
			out = append(out, o)
			continue
		}
		v.Source = "app"
		out = append(out, v)
	}
	for _, v := range e.Values {
		if !seen[v.Key] {
			seen[v.Key] = true
			out = append(out, over[v.Key])
		}
	}
	c.ok(out)
}

func listValueSetVersions(c *call) {
	a, ok := c.app()
	if !ok {
		return
	}
	key := c.r.URL.Query().Get("key_changed")
	out := make([]ValueSetVersion, 0, len(a.ValueSetVersions))
	for _, v := range a.ValueSetVersions {
		if key != "" && !changesKey(v.Change, key) {
			continue
		}
		out = append(out, v)
	}
	c.ok(out)
}

func changesKey(change []JSONPatch, key string) bool {
	for _, p := range change {
		if p.Path == "/"+key || strings.HasPrefix(p.Path, "/"+key+"/") {
			return true
		}
	}
	return false
}

func listSets(c *call) {
	a, ok := c.app()
	if !ok {
		return
	}
	c.ok(append([]Set{}, a.Sets...))
}

func getSet(c *call) {
	a, ok := c.app()
	if !ok {
		return
	}
	s := a.Set(c.params["setId"])
	if s == nil {
		c.notFound("Deployment Set not found.")
		return
	}
	q := c.r.URL.Query()
	if !q.Has("diff") {
		c.ok(s)
		return
	}
	from := a.Set(q.Get("diff"))
	if from == nil {
		c.notFound("Deployment Set to compare against not found.")
		return
	}
	c.ok(diffSets(from, s))
}

func listDeltas(c *call) {
	a, ok := c.app()
	if !ok {
		return
	}
	// Without the parameter only live deltas are listed; archived=true lists
	// the archived ones.
	archived, _, ok := c.boolParam("archived")
	if !ok {
		return
	}
	env := c.r.URL.Query().Get("env")
	out := make([]Delta, 0, len(a.Deltas))
	for _, d := range a.Deltas {
		if d.Metadata.Archived != archived {
			continue
		}
		if env != "" && d.Metadata.EnvID != env {
			continue
		}
		out = append(out, d)
	}
	c.ok(out)
}

func getDelta(c *call) {
	a, ok := c.app()
	if !ok {
		return
	}
	d := a.Delta(c.params["deltaId"])
	if d == nil {
		c.notFound("Delta not found.")
		return
	}
	c.ok(d)
}
