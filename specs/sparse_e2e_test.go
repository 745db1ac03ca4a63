package specs_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine/sim/humanitec"
	portsim "github.com/ferry-etl/ferry/engine/sim/port"
)

// TestHumanitecSparseRecords runs humanitec.yaml against records as sparse
// as the vendor's own examples (humanitec.Options.Sparse): an environment
// listed as {}, a set without id, values without source, resources
// without status, a graph node with resource null. What cannot be read or
// keyed is reported and fails the run; no entity is keyed by a null part
// (an identifier "app/" for an environment without id), and an
// environment's value without source is kept as the environment's.
func TestHumanitecSparseRecords(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	org := humanitec.Generate(1, humanitec.Small())
	hum, err := humanitec.Start(ctx, org, humanitec.Options{Sparse: true})
	if err != nil {
		t.Fatal(err)
	}
	defer hum.Close()
	pt := portsim.New(portsim.Options{RateLimit: -1})
	defer pt.Close()
	_, err = loadPort(t, hum, pt)
	if err == nil {
		t.Fatal("run succeeded, though an environment and sets had no id")
	}
	msg := err.Error()
	for _, want := range []string{
		"blueprint humanitecEnvironment: identifier",   // the {} environment
		"blueprint humanitecDeploymentSet: identifier", // the set without id
		"${ parent.id } is null",                       // its resources and values not asked for
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("run error does not say %q:\n%s", want, msg)
		}
	}
	ids := entityIDs(pt)
	for id := range ids {
		key := id[strings.Index(id, " ")+1:]
		if strings.HasSuffix(key, "/") || strings.HasPrefix(key, "/") || strings.Contains(key, "//") {
			t.Errorf("entity keyed with a null part: %s", id)
		}
	}
	// The first value of every environment's list comes without source; an
	// environment with id keeps it as its own (written, not dropped).
	for _, a := range org.Apps {
		for _, e := range a.Envs[:len(a.Envs)-1] { // the last is served as {}
			// The list is the app's values (overridden or not), then the
			// environment's own keys.
			first := ""
			switch {
			case len(a.Values) > 0:
				first = a.Values[0].Key
			case len(e.Values) > 0:
				first = e.Values[0].Key
			default:
				continue
			}
			if id := "humanitecSharedValue " + a.ID + "/" + e.ID + "/" + first; !ids[id] {
				t.Errorf("%s: value without source not written", id)
			}
		}
	}
}
