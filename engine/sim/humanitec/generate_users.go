package humanitec

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// userStream seeds the random stream of users and groups. It is separate
// from the main stream so that adding users left the rest of a generated
// organisation, and the golden files built from it, unchanged.
const userStream = 0x5bd1e9955bd1e995

// TimestampMicros formats t the way recorded Humanitec timestamps look:
// UTC with microseconds, e.g. 2023-05-06T11:24:19.132413Z.
func TimestampMicros(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

// Fixed accounts and groups carrying the edge cases; the rest is random.
var (
	fixedUsers = []struct{ name, email, role, invite string }{
		{"Alex Morgan", "alex.morgan@example.com", "administrator", ""},
		{"Priya Natarajan", "priya.natarajan@example.com", "manager", "accepted"},
		{"Sam O'Neill", "sam.oneill@example.com", "member", "pending"},
		{"Zoë Ünïcode-Müller", "zoe.mueller@example.com", "member", ""},
	}
	fixedGroups = []struct{ name, idp, role string }{
		{"platform-team", "okta-sso", "manager"},
		{"Backend Engineers", "okta-sso", "member"},
		{"Plattform – Entwickler (EU)", "azure-ad", "member"},
		{"auditors", "okta-sso", "orgViewer"},
	}
	// fixedMembers lists the fixed groups of each fixed user: one user in
	// three groups, one in two, one in none, one in one; the last fixed
	// group has no members.
	fixedMembers = [][]int{{0, 1, 2}, {0, 1}, nil, {2}}

	// First names with the ASCII spelling used in e-mail addresses.
	firstNames = [][2]string{{"Mara", "mara"}, {"Jonas", "jonas"}, {"Aiko", "aiko"}, {"Luca", "luca"}, {"Noor", "noor"},
		{"Emil", "emil"}, {"Inês", "ines"}, {"Tomás", "tomas"}, {"Chen", "chen"}, {"Freya", "freya"}, {"Omar", "omar"}, {"Lena", "lena"}}
	lastNames = []string{"Weber", "Okafor", "Tanaka", "Rossi", "Haddad", "Larsen", "Silva", "Kowalski", "Nguyen", "Brennan"}
	userRoles = []string{"member", "member", "member", "manager", "orgViewer"}
	teamWords = []string{"payments", "data", "sre", "mobile", "security", "frontend", "ml", "identity"}
)

// usersAndGroups builds the accounts and groups from their own random
// stream. The
// first len(creators) users carry the ids that appear as created_by across
// the organisation, so every creator is a listed user.
func usersAndGroups(seed int64, size Size, creators []string) ([]User, []Group) {
	g := &gen{
		r:    rand.New(rand.NewPCG(uint64(seed), userStream)),
		org:  DemoOrgID,
		base: time.Date(2023, 3, 1, 8, 0, 0, 0, time.UTC),
	}
	micros := func(day int) string {
		return TimestampMicros(g.at(day).Add(time.Duration(g.r.IntN(1000)) * time.Microsecond))
	}

	groups := make([]Group, size.Groups)
	for i := range groups {
		// Groups are created among the users, so the list mixes both.
		gr := Group{ID: "g-" + g.uuid(), CreatedAt: micros(31 + 3*i)}
		if i < len(fixedGroups) {
			gr.Name, gr.IdpID, gr.Role = fixedGroups[i].name, fixedGroups[i].idp, fixedGroups[i].role
		} else {
			gr.Name = fmt.Sprintf("team-%s-%d", g.pick(teamWords), i)
			gr.IdpID = "okta-sso"
			gr.Role = g.pick(userRoles)
		}
		groups[i] = gr
	}

	users := make([]User, size.Users)
	for i := range users {
		id := ""
		if i < len(creators) {
			id = creators[i]
		} else {
			id = g.uuid()
		}
		u := User{ID: id, Type: "user", CreatedAt: micros(30 + i)}
		if i < len(fixedUsers) {
			f := fixedUsers[i]
			u.Name, u.Email, u.Role, u.Invite = f.name, f.email, f.role, f.invite
			for _, gi := range fixedMembers[i] {
				groups[gi].Members = append(groups[gi].Members, id)
			}
		} else {
			first, last := firstNames[g.r.IntN(len(firstNames))], g.pick(lastNames)
			u.Name = first[0] + " " + last
			u.Email = fmt.Sprintf("%s.%s.%d@example.com", first[1], strings.ToLower(last), i)
			u.Role = g.pick(userRoles)
			if g.r.IntN(3) == 0 {
				u.Invite = "accepted"
			}
			// Zero to three groups, never the fixed empty one.
			for range g.r.IntN(4) {
				gi := g.r.IntN(len(groups))
				if gi == len(fixedGroups)-1 || slices.Contains(groups[gi].Members, id) {
					continue
				}
				groups[gi].Members = append(groups[gi].Members, id)
			}
		}
		users[i] = u
	}
	// The vendor's example carries whole seconds; one account does too.
	users[1].CreatedAt = timestampSeconds(g.at(31))

	// A service account: no email, never invited, in no group.
	users = append(users, User{
		ID: g.uuid(), Name: "CI Robot", Type: "service", Role: "artefactContributor",
		CreatedAt: micros(200),
	})
	return users, groups
}
