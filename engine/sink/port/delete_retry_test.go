package port

import (
	"testing"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
)

// TestRetriedDeleteCounted: a bulk delete Port applied but whose answer
// was lost (the connection dropped, or a gateway's 502 after Port acted)
// is sent again, and the retry's answer names none of the entities the
// first attempt deleted. They are gone all the same: the report counts
// them as deleted, so its count matches what Port lost, rather than
// saying 0 while two stale entities vanished.
func TestRetriedDeleteCounted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault portsim.Fault
	}{
		{"dropped", portsim.Fault{Kind: portsim.FaultDrop}},
		{"502 after applying", portsim.Fault{Kind: portsim.FaultStatus, Status: 502, Applied: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, portsim.Options{})
			complete := map[string]bool{bpApp: true}
			if _, err := e.run(e.sink(), humanitecBlueprints(t, bpApp), apps(10), complete); err != nil {
				t.Fatal(err)
			}
			f := tc.fault
			f.Method, f.Path, f.Times = "POST", "*/bulk/entities/delete", 1
			e.srv.InjectFault(f)
			rep, err := e.run(e.sink(), nil, apps(8), complete)
			if err != nil {
				t.Fatal(err)
			}
			if n := e.srv.CountRequests("POST", "/v1/blueprints/"+bpApp+"/bulk/entities/delete"); n != 2 {
				t.Fatalf("%d bulk delete requests, want 2 (the first retried)", n)
			}
			if n := len(keys(e.srv.Catalog())); n != 8 {
				t.Fatalf("Port holds %d entities, want 8", n)
			}
			if rep.Deleted != 2 || rep.Blueprints[bpApp].Deleted != 2 || len(rep.DeleteErrors) != 0 {
				t.Errorf("report: deleted %d (%s: %d), delete errors %v; want the 2 Port no longer holds counted", rep.Deleted, bpApp, rep.Blueprints[bpApp].Deleted, rep.DeleteErrors)
			}
		})
	}
}
