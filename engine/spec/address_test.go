package spec

import (
	"slices"
	"testing"
)

// AddressInputs are the inputs read by http.base_url (the top level's or
// a stream's) and by no other program: a request path, a stream's when,
// a query value, a jq program, port.owner each count as another read, and
// config read whole reads them all.
func TestAddressInputs(t *testing.T) {
	// urlOnly is a spec whose url input base_url reads, up to its apps
	// stream's body: each case adds one more read of it.
	const urlOnly = "\nconfig:\n  url: {required: true}\nhttp:\n  base_url: ${ config.url }\nstreams:\n  apps:\n"
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"base url only", `
config:
  url: {required: true}
  region: {}
  org: {required: true}
http:
  base_url: https://${ config.region }.${ config.url }
streams:
  apps:
    request: {path: '/orgs/${ config.org }/apps'}
  more:
    http: {base_url: '${ config["org"] }'}
    request: {path: /more}
`, []string{"region", "url"}},
		{"also in a path", urlOnly + `    request: {path: '/x/${ config?.url }'}
`, nil},
		{"also in a query value", urlOnly + `    request:
      path: /x
      query: {u: {a: ['${ config.url }']}}
`, nil},
		{"also in jq", urlOnly + `    request: {path: /x}
    records: '.items[] | .u = $config.url'
`, nil},
		{"also in when", urlOnly + `    when: config.url != ""
    request: {path: /x}
`, nil},
		{"config whole", urlOnly + `    request: {path: '/x/${ toJSON(config) }'}
`, nil},
		{"jq config whole", urlOnly + `    request: {path: /x}
    records: '.[] | .c = $config'
`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustParse(t, "version: 1\nname: demo\n"+tc.src)
			if got := f.AddressInputs(); !slices.Equal(got, tc.want) {
				t.Errorf("AddressInputs() = %v, want %v", got, tc.want)
			}
		})
	}
}
