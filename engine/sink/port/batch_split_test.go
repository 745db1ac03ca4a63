package port

import (
	"errors"
	"net/http"
	"slices"
	"testing"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
)

// TestBulkRejectedWholeIsSplit: Port fails a whole bulk request (400, 422)
// for one entity it will not take. The others of that request are written:
// the sink halves the batch until the refused entity stands alone, which
// alone fails; one entity must not fail its whole batch. An answer that is
// about the request, not its entities (403), fails the batch as it is.
func TestBulkRejectedWholeIsSplit(t *testing.T) {
	for _, tc := range []struct {
		status   int
		upserted int
		failed   []string
	}{
		{http.StatusUnprocessableEntity, 19, []string{bpApp + ":app-0007"}},
		{http.StatusBadRequest, 19, []string{bpApp + ":app-0007"}},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			e := newEnv(t, portsim.Options{})
			e.srv.RejectBatchWith(bpApp, "app-0007", tc.status, "invalid_request", "the route's schema refused an entity")
			rep, err := e.run(e.sink(), humanitecBlueprints(t, bpApp), apps(20), map[string]bool{bpApp: true})
			if !errors.Is(err, ErrEntitiesFailed) || rep.Upserted != tc.upserted || !slices.Equal(failedIDs(rep), tc.failed) {
				t.Fatalf("err %v, upserted %d, failed %v; want %d upserted and %v failed", err, rep.Upserted, failedIDs(rep), tc.upserted, tc.failed)
			}
			if e.srv.Entity(bpApp, "app-0019") == nil || e.srv.Entity(bpApp, "app-0007") != nil {
				t.Errorf("in Port: app-0019 %v, app-0007 %v", e.srv.Entity(bpApp, "app-0019"), e.srv.Entity(bpApp, "app-0007"))
			}
		})
	}
	e := newEnv(t, portsim.Options{})
	e.srv.RejectBatchWith(bpApp, "app-0007", http.StatusForbidden, "forbidden", "no write access")
	rep, err := e.run(e.sink(), humanitecBlueprints(t, bpApp), apps(20), map[string]bool{bpApp: true})
	if !errors.Is(err, ErrEntitiesFailed) || rep.Upserted != 0 || len(failedIDs(rep)) != 20 {
		t.Fatalf("403: err %v, upserted %d, failed %d; want the batch failed as it is", err, rep.Upserted, len(failedIDs(rep)))
	}
	if n := e.srv.CountRequests("POST", "/v1/blueprints/"+bpApp+"/entities/bulk"); n != 1 {
		t.Errorf("403: %d bulk requests, want 1 (not split)", n)
	}
}
