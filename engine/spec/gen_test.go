package spec

import (
	"fmt"
	"strings"
)

// genSpec returns a valid spec of about size bytes that uses every part of
// the format: configs, host settings, three-level fan-out with when,
// templates in paths, queries and bodies, pagination, tables and Port
// entities. Its blueprints file is genBlueprints.
func genSpec(size int) []byte { return generate(size, false) }

// genSpecUnique is genSpec with every program different from every other
// (each names its stream's number), so that none is shared: the worst case
// of validate's memory.
func genSpecUnique(size int) []byte { return generate(size, true) }

func generate(size int, unique bool) []byte {
	u := func(i int) string { return "" }
	if unique {
		u = func(i int) string { return fmt.Sprint("_", i) }
	}
	var b strings.Builder
	b.WriteString(`version: 1
name: generated
config:
  org: {required: true, env: GEN_ORG}
  token: {required: true, secret: true, env: GEN_TOKEN}
  page_size: {default: 100}
http:
  base_url: https://api.example.com/v1
  auth: {type: bearer, token: "${ config.token }"}
  retry: {attempts: 3}
  concurrency: 4
streams:
`)
	var tables, entities strings.Builder
	for i := 0; b.Len()+tables.Len()+entities.Len() < size; i++ {
		fmt.Fprintf(&b, `  apps_%[1]d:
    request:
      path: /orgs/${ config.org }/apps%[2]s
      query: {per_page: "${ config.page_size%[3]s }", kind: [a, b]}
    records: .items%[2]s[]
    paginate: {type: cursor, token: .next%[2]s, param: cursor}
  envs_%[1]d:
    for_each: apps_%[1]d
    when: parent.enabled && parent.kind != "archived%[2]s"
    request:
      path: /orgs/${ config.org }/apps/${ parent.id%[2]s }/envs
    records: '.[] | .app_id%[2]s = $parent.id'
  deploys_%[1]d:
    for_each: envs_%[1]d
    request:
      method: POST
      path: /orgs/${ config.org }/apps/${ parents.apps_%[1]d.id }/envs/${ parent.id }/deploys
      body: {filter: {env: "${ parent.id%[2]s }", since: "${ config.page_size * 2%[3]s }"}}
    records: '.deploys[] | {id, env: $envs_%[1]d.id, app: $apps_%[1]d.id, status}'
    paginate: {type: page, param: page, total_pages: .pages%[2]s, stop_when: "page > 50%[3]s"}
`, i, u(i), strings.ReplaceAll(u(i), "_", " + "))
		fmt.Fprintf(&tables, `  deploys_%[1]d:
    from: deploys_%[1]d
    primary_key: [app, env, id]
    row: '{app, env, id, status%[2]s: .status}'
    columns: {status: STRING}
`, i, u(i))
		fmt.Fprintf(&entities, `    - blueprint: environment
      from: envs_%[1]d
      identifier: $parent.id + "/" + .id%[2]s
      title: .name%[2]s | clean_title
      properties: {type: .type}
      relations: {application: $parent.id}
`, i, u(i))
	}
	b.WriteString("tables:\n")
	b.WriteString(tables.String())
	b.WriteString("port:\n  blueprints: blueprints.json\n  entities:\n")
	b.WriteString(entities.String())
	return []byte(b.String())
}

const genBlueprints = `[
  {"identifier": "application", "title": "Application", "schema": {"properties": {}}, "relations": {}},
  {"identifier": "environment", "title": "Environment", "schema": {"properties": {"type": {"type": "string"}}},
   "relations": {"application": {"target": "application"}}}
]`

// genChain returns a valid spec whose streams form one for_each chain of
// the given depth, each using its parent and the root in templates and jq.
func genChain(depth int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\nname: chain\nstreams:\n  s0:\n    url: https://api.example.com/items\n")
	b.Reset()
	b.WriteString("version: 1\nname: chain\nstreams:\n  s0:\n    request: {url: https://api.example.com/items}\n")
	for i := 1; i < depth; i++ {
		fmt.Fprintf(&b, `  s%d:
    for_each: s%d
    when: parent.id != nil
    request: {url: "https://api.example.com/items/${ parents.s0.id }/${ parent.id }"}
    records: '.[] | .up = $parent.id | .root = $s0.id'
`, i, i-1)
	}
	b.WriteString("tables:\n  last:\n    from: s" + fmt.Sprint(depth-1) + "\n")
	return []byte(b.String())
}
