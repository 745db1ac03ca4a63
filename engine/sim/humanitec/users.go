package humanitec

import (
	"cmp"
	"net/http"
	"regexp"
	"slices"
	"time"
)

// Path parameter patterns from the spec (groupIdPathParam, userIdPathParam);
// ids that do not match are answered 400, which both operations declare.
var (
	groupIDPattern = regexp.MustCompile(`^g-[a-z0-9](?:-?[a-z0-9]+)+$`)
	userIDPattern  = regexp.MustCompile(`^[a-z0-9](?:-?[a-z0-9]+)+$`)
)

// userRoleResponse is UserRoleResponse: a user or a group with its role.
type userRoleResponse struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Email     string `json:"email,omitempty"`
	Role      string `json:"role"`
	Type      string `json:"type"`
	Invite    string `json:"invite,omitempty"`
	IdpID     string `json:"idp_id,omitempty"`
	CreatedAt string `json:"created_at"`
}

// userProfileResponse is UserProfileResponse, one member of a group.
type userProfileResponse struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Email     string `json:"email,omitempty"`
	Type      string `json:"type"`
	CreatedAt string `json:"created_at"`
}

// groupResponse is the Group schema; group_id is the group's IdP name.
type groupResponse struct {
	ID        string `json:"id"`
	GroupID   string `json:"group_id"`
	IdpID     string `json:"idp_id"`
	CreatedAt string `json:"created_at,omitempty"`
}

// listUsers answers users and groups together, oldest first. ?type=user
// keeps every account that is not a group (service and system accounts
// included: the filter names a kind of subject, not an account type);
// ?type=group keeps the groups; any other value is a 400 (SubjectTypeEnum).
func listUsers(c *call) {
	q := c.r.URL.Query()
	kind := q.Get("type")
	if q.Has("type") && kind != "user" && kind != "group" {
		c.badRequest("Query parameter type must be one of user, group.")
		return
	}
	type entry struct {
		resp userRoleResponse
		at   time.Time
		ok   bool // at parsed
	}
	var all []entry
	add := func(r userRoleResponse) {
		at, err := time.Parse(time.RFC3339Nano, r.CreatedAt)
		all = append(all, entry{resp: r, at: at, ok: err == nil})
	}
	if kind != "group" {
		for _, u := range c.s.org.Users {
			add(userRoleResponse{ID: u.ID, Name: u.Name, Email: u.Email, Role: u.Role, Type: u.Type,
				Invite: u.Invite, CreatedAt: u.CreatedAt})
		}
	}
	if kind != "user" {
		for _, g := range c.s.org.Groups {
			add(userRoleResponse{ID: g.ID, Name: g.Name, Role: g.Role, Type: "group", IdpID: g.IdpID, CreatedAt: g.CreatedAt})
		}
	}
	// Oldest first mixes users and groups; a timestamp planted unparseable
	// sorts last rather than failing the list.
	slices.SortStableFunc(all, func(a, b entry) int {
		if a.ok != b.ok {
			if a.ok {
				return -1
			}
			return 1
		}
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.resp.ID, b.resp.ID))
	})
	out := make([]userRoleResponse, 0, len(all))
	for _, e := range all {
		out = append(out, e.resp)
	}
	c.ok(out)
}

// listGroupUsers answers a group's members in Group.Members order.
func listGroupUsers(c *call) {
	id := c.params["groupId"]
	if !groupIDPattern.MatchString(id) {
		c.badRequest("Invalid group id.")
		return
	}
	g := c.s.org.Group(id)
	if g == nil {
		c.notFound("Group not found.")
		return
	}
	out := make([]userProfileResponse, 0, len(g.Members))
	for _, m := range g.Members {
		u := c.s.org.User(m)
		if u == nil {
			continue
		}
		out = append(out, userProfileResponse{ID: u.ID, Name: u.Name, Email: u.Email, Type: u.Type, CreatedAt: u.CreatedAt})
	}
	c.ok(out)
}

// groupMembersFault asks Options.FailGroupMembers about a well-formed group
// id; a malformed one gets its 400 from the handler.
func groupMembersFault(opts *Options, params map[string]string) (int, string) {
	id := params["groupId"]
	if opts.FailGroupMembers == nil || !groupIDPattern.MatchString(id) {
		return 0, ""
	}
	code := opts.FailGroupMembers(id)
	if code == http.StatusNotFound {
		return code, "Group not found."
	}
	return code, "Scripted failure."
}

// listUserGroups answers the groups a user belongs to. A group id is not a
// user: 404, like an unknown id.
func listUserGroups(c *call) {
	id := c.params["userId"]
	if !userIDPattern.MatchString(id) {
		c.badRequest("Invalid user id.")
		return
	}
	if c.s.org.User(id) == nil {
		c.notFound("User not found.")
		return
	}
	groups := c.s.org.GroupsOf(id)
	out := make([]groupResponse, 0, len(groups))
	for _, g := range groups {
		out = append(out, groupResponse{ID: g.ID, GroupID: g.Name, IdpID: g.IdpID, CreatedAt: g.CreatedAt})
	}
	c.ok(out)
}
