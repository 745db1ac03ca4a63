package humanitec

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// getJSON fetches target and decodes a 200 answer into v.
func getJSON(t *testing.T, h http.Handler, target string, v any) {
	t.Helper()
	rec := do(h, DefaultToken, target)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
}

func TestUsersList(t *testing.T) {
	org := Generate(1, Demo())
	h := NewServer(org, Options{})
	o := "/orgs/" + org.ID

	var all, users, groups []userRoleResponse
	getJSON(t, h, o+"/users", &all)
	getJSON(t, h, o+"/users?type=user", &users)
	getJSON(t, h, o+"/users?type=group", &groups)

	if len(all) != len(org.Users)+len(org.Groups) {
		t.Errorf("listed %d, want %d users and %d groups", len(all), len(org.Users), len(org.Groups))
	}
	byID := map[string]userRoleResponse{}
	for _, r := range all {
		byID[r.ID] = r
	}
	for _, u := range org.Users {
		want := userRoleResponse{ID: u.ID, Name: u.Name, Email: u.Email, Role: u.Role, Type: u.Type, Invite: u.Invite, CreatedAt: u.CreatedAt}
		if diff := cmp.Diff(want, byID[u.ID]); diff != "" {
			t.Errorf("user %s (-want +got):\n%s", u.ID, diff)
		}
	}
	for _, g := range org.Groups {
		want := userRoleResponse{ID: g.ID, Name: g.Name, Role: g.Role, Type: "group", IdpID: g.IdpID, CreatedAt: g.CreatedAt}
		if diff := cmp.Diff(want, byID[g.ID]); diff != "" {
			t.Errorf("group %s (-want +got):\n%s", g.ID, diff)
		}
	}

	// Oldest first, users and groups mixed: some group is listed between
	// two accounts.
	var prev time.Time
	mixed, accountSeen, groupAfterAccount := false, false, false
	for i, r := range all {
		at, err := time.Parse(time.RFC3339Nano, r.CreatedAt)
		if err != nil {
			t.Fatal(err)
		}
		if at.Before(prev) {
			t.Errorf("entry %d (%s) is older than the one before it", i, r.ID)
		}
		prev = at
		switch {
		case r.Type != "group" && groupAfterAccount:
			mixed = true
		case r.Type != "group":
			accountSeen = true
		case accountSeen:
			groupAfterAccount = true
		}
	}
	if !mixed {
		t.Error("users and groups are not interleaved")
	}

	// type=user keeps every account that is not a group, service included.
	var wantUsers, wantGroups []string
	for _, r := range all {
		if r.Type == "group" {
			wantGroups = append(wantGroups, r.ID)
		} else {
			wantUsers = append(wantUsers, r.ID)
		}
	}
	ids := func(rs []userRoleResponse) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	if diff := cmp.Diff(wantUsers, ids(users)); diff != "" {
		t.Errorf("type=user (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantGroups, ids(groups)); diff != "" {
		t.Errorf("type=group (-want +got):\n%s", diff)
	}
	if !slices.ContainsFunc(users, func(r userRoleResponse) bool { return r.Type == "service" }) {
		t.Error("type=user lists no service account")
	}

	for _, bad := range []string{"?type=service", "?type=", "?type=USER"} {
		rec := do(h, DefaultToken, o+"/users"+bad)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("GET /users%s: %d, want 400", bad, rec.Code)
			continue
		}
		decodeError(t, rec.Body.Bytes())
	}
}

// TestUsersWireOmitsOptionalFields checks optional fields are absent, not
// empty strings: a service account has no email and no invite, a group no
// email, a user no idp_id.
func TestUsersWireOmitsOptionalFields(t *testing.T) {
	org := Generate(1, Small())
	h := NewServer(org, Options{})
	var all []map[string]any
	getJSON(t, h, "/orgs/"+org.ID+"/users", &all)
	absent := map[string][]string{
		"service": {"email", "invite", "idp_id"},
		"group":   {"email", "invite"},
		"user":    {"idp_id"},
	}
	seen := map[string]bool{}
	for _, r := range all {
		typ, _ := r["type"].(string)
		seen[typ] = true
		for _, k := range absent[typ] {
			if _, ok := r[k]; ok {
				t.Errorf("%s %v carries %s", typ, r["id"], k)
			}
		}
		if typ == "group" && r["idp_id"] == nil {
			t.Errorf("group %v has no idp_id", r["id"])
		}
	}
	if !seen["service"] || !seen["group"] || !seen["user"] {
		t.Errorf("types listed: %v", seen)
	}
}

// TestMemberships checks both membership routes against the model and
// against each other.
func TestMemberships(t *testing.T) {
	org := Generate(2, Demo())
	h := NewServer(org, Options{})
	o := "/orgs/" + org.ID

	fromGroups := map[string][]string{} // user id -> group ids, from member lists
	for _, g := range org.Groups {
		var members []userProfileResponse
		getJSON(t, h, o+"/groups/"+g.ID+"/users", &members)
		var got []string
		for _, m := range members {
			u := org.User(m.ID)
			want := userProfileResponse{ID: u.ID, Name: u.Name, Email: u.Email, Type: u.Type, CreatedAt: u.CreatedAt}
			if diff := cmp.Diff(want, m); diff != "" {
				t.Errorf("member %s of %s (-want +got):\n%s", m.ID, g.ID, diff)
			}
			got = append(got, m.ID)
			fromGroups[m.ID] = append(fromGroups[m.ID], g.ID)
		}
		if diff := cmp.Diff(g.Members, got); diff != "" {
			t.Errorf("members of %s (-want +got):\n%s", g.ID, diff)
		}
	}
	inThree := false
	for _, u := range org.Users {
		var groups []groupResponse
		getJSON(t, h, o+"/users/"+u.ID+"/groups", &groups)
		var got []string
		for _, g := range groups {
			mg := org.Group(g.ID)
			want := groupResponse{ID: mg.ID, GroupID: mg.Name, IdpID: mg.IdpID, CreatedAt: mg.CreatedAt}
			if diff := cmp.Diff(want, g); diff != "" {
				t.Errorf("group %s of %s (-want +got):\n%s", g.ID, u.ID, diff)
			}
			got = append(got, g.ID)
		}
		if diff := cmp.Diff(fromGroups[u.ID], got); diff != "" {
			t.Errorf("groups of %s disagree with the member lists (-members +user's groups):\n%s", u.ID, diff)
		}
		inThree = inThree || len(got) >= 3
	}
	if !inThree {
		t.Error("no user answered with 3 groups")
	}

	// A member id without a user is skipped, not answered half empty.
	g := org.Groups[0]
	g.Members = append([]string{"00000000-0000-4000-8000-000000000000"}, g.Members...)
	org.Groups[0] = g
	var members []userProfileResponse
	getJSON(t, h, o+"/groups/"+g.ID+"/users", &members)
	if len(members) != len(g.Members)-1 || members[0].ID != g.Members[1] {
		t.Errorf("with a dangling member: %d members, first %v", len(members), members)
	}
}

func TestUsersNotFoundAndBadIDs(t *testing.T) {
	org := Generate(1, Small())
	h := NewServer(org, Options{})
	o := "/orgs/" + org.ID
	tests := []struct {
		target string
		want   int
	}{
		{o + "/groups/g-00000000-0000-4000-8000-000000000000/users", 404},
		{o + "/groups/" + org.Users[0].ID + "/users", 400}, // a user id lacks the g- prefix
		{o + "/groups/g-Upper/users", 400},
		{o + "/users/00000000-0000-4000-8000-000000000000/groups", 404},
		{o + "/users/" + org.Groups[0].ID + "/groups", 404}, // a group is not a user
		{o + "/users/Not_An_Id/groups", 400},
		{"/orgs/no-such-org/users", 404},
		{o + "/users/" + org.Users[0].ID, 404}, // not served
	}
	for _, tc := range tests {
		rec := do(h, DefaultToken, tc.target)
		if rec.Code != tc.want {
			t.Errorf("GET %s: %d, want %d; body %s", tc.target, rec.Code, tc.want, rec.Body)
			continue
		}
		decodeError(t, rec.Body.Bytes())
	}
}

func TestUsersUnparseableTimestampSortsLast(t *testing.T) {
	org := Generate(1, Small())
	org.Users[0].CreatedAt = "yesterday"
	h := NewServer(org, Options{})
	var all []userRoleResponse
	getJSON(t, h, "/orgs/"+org.ID+"/users", &all)
	if last := all[len(all)-1]; last.ID != org.Users[0].ID {
		t.Errorf("last entry is %s (%s), want the user with the planted timestamp", last.ID, last.CreatedAt)
	}
}

// TestFailGroupMembers fails one group's member list with 500 and another's
// with 404; everything else answers as usual.
func TestFailGroupMembers(t *testing.T) {
	org := Generate(1, Small())
	broken, gone := org.Groups[0].ID, org.Groups[1].ID
	var asked []string
	h := NewServer(org, Options{FailGroupMembers: func(groupID string) int {
		asked = append(asked, groupID)
		switch groupID {
		case broken:
			return 500
		case gone:
			return 404
		}
		return 0
	}})
	c := loadContract(t)
	o := "/orgs/" + org.ID
	const members = "/orgs/{orgId}/groups/{groupId}/users"
	tests := []struct {
		target, op string
		want       int
		message    string
	}{
		{o + "/groups/" + broken + "/users", members, 500, "Scripted failure."},
		{o + "/groups/" + gone + "/users", members, 404, "Group not found."},
		{o + "/groups/" + org.Groups[2].ID + "/users", members, 200, ""},
		{o + "/users", "/orgs/{orgId}/users", 200, ""},
		{o + "/users/" + org.Users[0].ID + "/groups", "/orgs/{orgId}/users/{userId}/groups", 200, ""},
	}
	for _, tc := range tests {
		rec := do(h, DefaultToken, tc.target)
		if rec.Code != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.target, rec.Code, tc.want)
			continue
		}
		if err := c.validate(t, tc.op, rec.Code, rec.Body.Bytes()); err != nil {
			t.Errorf("GET %s: %v", tc.target, err)
		}
		if tc.message != "" {
			if e := decodeError(t, rec.Body.Bytes()); e.Message != tc.message {
				t.Errorf("GET %s: message %q, want %q", tc.target, e.Message, tc.message)
			}
		}
	}
	if diff := cmp.Diff([]string{broken, gone, org.Groups[2].ID}, asked); diff != "" {
		t.Errorf("hook asked for (-want +got):\n%s", diff)
	}
	// Faults come after auth.
	if rec := do(h, "", o+"/groups/"+broken+"/users"); rec.Code != 401 {
		t.Errorf("fault without token: %d, want 401", rec.Code)
	}
}

// TestGroupDeletedWhileListing deletes a group from inside the fault hook,
// between the user list and the group's member list: the member list then
// answers 404 from the data itself. The hook runs outside the data lock, so
// calling Update there does not deadlock.
func TestGroupDeletedWhileListing(t *testing.T) {
	org := Generate(1, Small())
	victim := org.Groups[1].ID
	var srv *Server
	srv = NewServer(org, Options{FailGroupMembers: func(groupID string) int {
		if groupID == victim {
			srv.Update(func(o *Org) {
				o.Groups = slices.DeleteFunc(o.Groups, func(g Group) bool { return g.ID == victim })
			})
		}
		return 0
	}})
	o := "/orgs/" + org.ID
	var before []userRoleResponse
	getJSON(t, srv, o+"/users?type=group", &before)
	if !slices.ContainsFunc(before, func(r userRoleResponse) bool { return r.ID == victim }) {
		t.Fatalf("group %s not listed before", victim)
	}
	rec := do(srv, DefaultToken, o+"/groups/"+victim+"/users")
	if rec.Code != http.StatusNotFound {
		t.Fatalf("member list of the deleted group: %d, want 404", rec.Code)
	}
	if e := decodeError(t, rec.Body.Bytes()); e.Message != "Group not found." {
		t.Errorf("message %q", e.Message)
	}
}
