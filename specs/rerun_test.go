package specs_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/sim/humanitec"
	portsim "github.com/ferry-etl/ferry/engine/sim/port"
)

// portWrites counts the requests that change Port: entity upserts and
// deletes, blueprint creates and updates.
func portWrites(pt *portsim.Server) (upserts, others int) {
	for _, r := range pt.Requests() {
		switch {
		case strings.HasSuffix(r.Path, "/entities/bulk"), strings.HasSuffix(r.Path, "/entities") && r.Method == http.MethodPost:
			upserts++
		case r.Method == http.MethodPut, r.Method == http.MethodPatch, r.Method == http.MethodDelete,
			r.Method == http.MethodPost && (r.Path == "/v1/blueprints" || strings.HasSuffix(r.Path, "/bulk/entities/delete")):
			others++
		}
	}
	return upserts, others
}

// A second run of the Humanitec demo organisation over an unchanged
// source writes nothing to Port: every entity is found unchanged, no
// blueprint is updated; and ferry plan, before it, says so.
func TestHumanitecRerunSendsNothing(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	hum, err := humanitec.Start(ctx, humanitec.Generate(1, humanitec.Demo()), humanitec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer hum.Close()
	pt := portsim.New(portsim.Options{RateLimit: -1})
	defer pt.Close()
	first, err := runOrg(t, hum, humanitec.DemoOrgID, pt, engine.PortOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if up, _ := portWrites(pt); up == 0 || first.Dest.Port.Upserted < 1000 {
		t.Fatalf("first run: %d upserts, %d entities", up, first.Dest.Port.Upserted)
	}
	before := pt.Catalog().JSON()

	sp, err := engine.Load("humanitec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{Getenv: func(string) (string, bool) { return "", false }, Sets: map[string]string{
		"api_url": hum.URL(), "org_id": humanitec.DemoOrgID, "api_token": humanitec.DefaultToken, "pipelines_per_page": "10",
	}})
	if err != nil {
		t.Fatal(err)
	}
	pt.ResetRequests()
	plan, err := engine.PlanRun(t.Context(), sp, cfg, engine.PlanOptions{Dest: "sqlite:" + t.TempDir() + "/t.db",
		Port: engine.PortOptions{BaseURL: pt.URL(), ClientID: pt.ClientID(), ClientSecret: pt.ClientSecret()}})
	if err != nil || plan.Changes {
		t.Errorf("plan before the rerun: changes %v, err %v", plan != nil && plan.Changes, err)
	}

	pt.ResetRequests()
	second, err := runOrg(t, hum, humanitec.DemoOrgID, pt, engine.PortOptions{})
	if err != nil {
		t.Fatal(err)
	}
	up, others := portWrites(pt)
	rep := second.Dest.Port
	if up != 0 || others != 0 || rep.Upserted != 0 || rep.Unchanged != first.Dest.Port.Upserted || rep.Deleted != 0 {
		t.Errorf("rerun: %d upsert requests, %d other writes; upserted %d, unchanged %d of %d, deleted %d",
			up, others, rep.Upserted, rep.Unchanged, first.Dest.Port.Upserted, rep.Deleted)
	}
	if string(pt.Catalog().JSON()) != string(before) {
		t.Error("the catalog changed on a rerun that sent nothing")
	}
}

// BenchmarkHumanitecRerun runs the Humanitec demo organisation into Port
// (30 ms a request) twice and reports the Port requests of each run and
// their ratio (run 2 over run 1), the upserts of run 2 (0: nothing
// changed) and the wall time ratio, measured in the same iteration.
func BenchmarkHumanitecRerun(b *testing.B) {
	benchRerun(b, "humanitec.yaml")
}

func benchRerun(b *testing.B, specPath string) {
	var reqs [2]float64
	var secs [2]float64
	var upserts2 int
	for b.Loop() {
		b.StopTimer()
		hum, err := humanitec.Start(b.Context(), humanitec.Generate(1, humanitec.Demo()), humanitec.Options{})
		if err != nil {
			b.Fatal(err)
		}
		pt := portsim.New(portsim.Options{Latency: 30 * time.Millisecond})
		b.StartTimer()
		for i := range 2 {
			pt.ResetRequests()
			start := time.Now()
			if _, err := benchOrg(b, specPath, hum, pt); err != nil {
				b.Fatal(err)
			}
			secs[i] += time.Since(start).Seconds()
			n := 0
			for _, r := range pt.Requests() {
				if r.Path != "/v1/auth/access_token" {
					n++
				}
			}
			reqs[i] += float64(n)
			if i == 1 {
				upserts2, _ = portWrites(pt)
			}
		}
		b.StopTimer()
		pt.Close()
		hum.Close()
		b.StartTimer()
	}
	b.ReportMetric(reqs[0]/float64(b.N), "port-requests-run1")
	b.ReportMetric(reqs[1]/float64(b.N), "port-requests-run2")
	b.ReportMetric(reqs[1]/reqs[0], "requests-ratio")
	b.ReportMetric(float64(upserts2), "upserts-run2")
	b.ReportMetric(secs[1]/secs[0], "time-ratio")
}

func benchOrg(b *testing.B, specPath string, hum *humanitec.Running, pt *portsim.Server) (*engine.Result, error) {
	sp, err := engine.Load(specPath)
	if err != nil {
		return nil, err
	}
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{Getenv: func(string) (string, bool) { return "", false }, Sets: map[string]string{
		"api_url": hum.URL(), "org_id": humanitec.DemoOrgID, "api_token": humanitec.DefaultToken,
	}})
	if err != nil {
		return nil, err
	}
	return engine.Run(b.Context(), sp, cfg, engine.RunOptions{Port: engine.PortOptions{BaseURL: pt.URL(), ClientID: pt.ClientID(), ClientSecret: pt.ClientSecret()}})
}
