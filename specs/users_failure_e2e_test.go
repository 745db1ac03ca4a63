package specs_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/sim/humanitec"
	portsim "github.com/ferry-etl/ferry/engine/sim/port"
)

// A group's member list that fails on a later run leaves the member_of
// lookup incomplete: every user's mapping (it reads the lookup) fails
// instead of guessing "no groups", the run fails, and Port keeps every user
// as the last complete run wrote it: nothing is deleted, no relation is
// emptied.
func TestFailingMemberListDeletesNoUser(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var failing atomic.Bool
	org := humanitec.Generate(1, humanitec.Demo())
	var victim string // a group with members
	for _, g := range org.Groups {
		if len(g.Members) > 0 {
			victim = g.ID
			break
		}
	}
	if victim == "" {
		t.Fatal("the demo organisation has no group with members")
	}
	hum, err := humanitec.Start(ctx, org, humanitec.Options{FailGroupMembers: func(id string) int {
		if failing.Load() && id == victim {
			return http.StatusForbidden
		}
		return 0
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer hum.Close()
	pt := portsim.New(portsim.Options{RateLimit: -1})
	defer pt.Close()
	if _, err := runOrg(t, hum, humanitec.DemoOrgID, pt, engine.PortOptions{}); err != nil {
		t.Fatal(err)
	}
	before := byKey(pt.Catalog())
	users := 0
	for k := range before {
		if strings.HasPrefix(k, "humanitecUser ") {
			users++
		}
	}
	if users == 0 {
		t.Fatal("the first run wrote no users")
	}

	failing.Store(true)
	res, err := runOrg(t, hum, humanitec.DemoOrgID, pt, engine.PortOptions{})
	if err == nil {
		t.Fatal("a run whose member list failed succeeded")
	}
	if engine.ExitCode(err, false) != engine.ExitFailed {
		t.Errorf("exit code %d, want %d: %v", engine.ExitCode(err, false), engine.ExitFailed, err)
	}
	var chainFailed bool
	userFailures := 0
	for _, f := range res.Summary.Failures {
		switch {
		case f.Stream == "group_members" && !f.Record():
			chainFailed = true
		case f.Blueprint == "humanitecUser":
			userFailures++
		}
	}
	if !chainFailed || userFailures != users {
		t.Errorf("failures: member chain failed %v, %d user mappings failed, want every one of %d:\n%v", chainFailed, userFailures, users, res.Summary.Failures)
	}
	if res.Summary.Blueprints["humanitecUser"] {
		t.Error("humanitecUser counted complete: its stale entities could be deleted")
	}
	after := byKey(pt.Catalog())
	for k, e := range before {
		a, ok := after[k]
		if !ok {
			t.Errorf("%s deleted", k)
			continue
		}
		if strings.HasPrefix(k, "humanitecUser ") && !sameEntity(a, e) {
			t.Errorf("%s changed: %+v, was %+v", k, a, e)
		}
	}
}
