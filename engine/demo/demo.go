// Package demo starts the built-in simulator of a shipped spec's API with a
// generated demo organisation, and says which config values point the spec
// at it. `ferry run SPEC --demo` uses it: no credentials, no network.
package demo

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferry-etl/ferry/engine/sim/harness"
	"github.com/ferry-etl/ferry/engine/sim/humanitec"
	portsim "github.com/ferry-etl/ferry/engine/sim/port"
)

// Seed makes every demo organisation the same, run after run.
const Seed = 1

// Demo is a running simulator and the config that targets it.
type Demo struct {
	Config map[string]string // config input -> value, applied like --set
	About  string            // one line for the user
	close  func()

	// Port is the built-in Port simulator, for specs with Port entities.
	Port *portsim.Server
}

// Close stops the simulators.
func (d *Demo) Close() {
	d.close()
	if d.Port != nil {
		d.Port.Close()
	}
}

// StartPort adds the built-in Port simulator (no rate limit beyond Port's
// published one) and returns it.
func (d *Demo) StartPort(ctx context.Context) (*portsim.Server, error) {
	srv, err := portsim.Start(ctx, portsim.Options{})
	if err != nil {
		return nil, fmt.Errorf("demo: start the Port simulator: %w", err)
	}
	d.Port = srv
	return srv, nil
}

// CatalogSummary counts the Port simulator's entities per blueprint.
func (d *Demo) CatalogSummary() string {
	if d.Port == nil {
		return ""
	}
	counts := map[string]int{}
	var names []string
	for _, e := range d.Port.Catalog().Entities {
		if counts[e.Blueprint] == 0 {
			names = append(names, e.Blueprint)
		}
		counts[e.Blueprint]++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "demo Port catalog at %s:\n", d.Port.URL())
	for _, n := range names {
		fmt.Fprintf(&b, "  %-28s %6d entities\n", n, counts[n])
	}
	return b.String()
}

// Specs lists the spec names that have a demo.
func Specs() []string { return []string{"harness", "humanitec"} }

// Start starts the simulator for the spec called name (the spec's `name`).
func Start(ctx context.Context, name string) (*Demo, error) {
	switch name {
	case "humanitec":
		org := humanitec.Generate(Seed, humanitec.Demo())
		srv, err := humanitec.Start(ctx, org, humanitec.Options{})
		if err != nil {
			return nil, fmt.Errorf("demo: start the Humanitec simulator: %w", err)
		}
		return &Demo{
			Config: map[string]string{"api_url": srv.URL(), "org_id": humanitec.DemoOrgID, "api_token": humanitec.DefaultToken},
			About:  fmt.Sprintf("demo: built-in Humanitec simulator at %s, organisation %q", srv.URL(), humanitec.DemoOrgID),
			close:  func() { _ = srv.Close() },
		}, nil
	case "harness":
		acct := harness.Generate(Seed, harness.Demo)
		opts := harness.Options{PageTokens: true}
		srv, err := harness.Start(ctx, acct, opts)
		if err != nil {
			return nil, fmt.Errorf("demo: start the Harness simulator: %w", err)
		}
		cfg := map[string]string{
			"base_url": srv.URL(), "account_id": acct.ID, "api_token": srv.Options().Token,
			"sei_base_url": srv.SEIBaseURL(), "sei_api_key": srv.Options().SEIKey,
		}
		if len(acct.OUs) > 0 {
			ou := acct.OUs[0]
			cfg["sei_ou_ids"] = fmt.Sprint(ou.RefID)
			cfg["sei_integration_ids"] = strings.Join(ou.IntegrationIDs, ",")
		}
		return &Demo{
			Config: cfg,
			About:  fmt.Sprintf("demo: built-in Harness simulator at %s, account %q", srv.URL(), acct.ID),
			close:  func() { _ = srv.Close() },
		}, nil
	}
	return nil, fmt.Errorf("demo: no built-in simulator for spec %q (demos exist for: %s)", name, strings.Join(Specs(), ", "))
}
