package runner_test

import "testing"

// A batch stream is not sent for a parent whose batch is empty: with no
// item to ask about, a request built from the list (ids: []) would lose
// its filter, and an API that reads an empty filter as none answers for
// every item, written under this parent. TestRegressEmptyBatch's spec
// says so with `when: len(batch) > 0`; no spec needs to.
func TestEmptyBatchNotSent(t *testing.T) {
	s := emptyBatchAPI()
	defer s.Close()
	f := mustSpec(t, emptyBatchSpec(s.URL(), ""))
	out := newCollector()
	sum, err := runSpec(t, f, nil, out)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if n := s.Count("POST", "/envs/empty/graph"); n != 0 {
		t.Errorf("%d requests for the empty batch, want none", n)
	}
	if n := s.Count("POST", "/envs/dev/graph"); n != 1 {
		t.Errorf("%d requests for dev's batch, want 1", n)
	}
	if len(out.rows["graph"]) != 1 || !sum.Complete["graph"] {
		t.Errorf("graph rows %v, complete %v; want dev's one row, the stream complete", out.rows["graph"], sum.Complete["graph"])
	}
}
