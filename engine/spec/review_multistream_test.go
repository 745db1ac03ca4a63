package spec

import "testing"

// TestLookupReadsOfEveryProgram: a stream that reads a lookup in any of
// its programs runs after the stream filling it (stage 1), not in stage 0
// where the lookup is still unfilled: an async stream's requests and poll
// predicates, a page's param_value and a window's end read it too (before,
// they were not counted: the async create asked with a nil value and the
// chain failed, exit 1).
func TestLookupReadsOfEveryProgram(t *testing.T) {
	const head = `version: 1
name: demo
http: {base_url: "https://api.example.com"}
lookups:
  l: {from: src, key: .id, value: .v}
streams:
  src:
    request: {path: /src}
`
	cases := map[string]string{
		"async create path": `  s:
    async:
      create: {path: '/x/${ lookups.l["a"] }', id: .id}
      poll: {path: '/j/${ job.id }', done: .done}
      download: {path: '/d/${ job.id }'}
`,
		"async poll done": `  s:
    async:
      create: {path: /x, id: .id}
      poll: {path: '/j/${ job.id }', done: '$lookups.l[.id] != null'}
      download: {path: '/d/${ job.id }'}
`,
		"async download header": `  s:
    async:
      create: {path: /x, id: .id}
      poll: {path: '/j/${ job.id }', done: .done}
      download:
        path: '/d/${ job.id }'
        headers:
          X-K: '${ lookups.l["a"] }'
`,
		"paginate param_value": `  s:
    request: {path: /s}
    paginate: {type: page, param: p, param_value: '$lookups.l["a"] + (. | tostring)'}
`,
		"window end": `  s:
    request: {path: /s}
    incremental:
      initial: "2024-01-01T00:00:00Z"
      window:
        step: 24h
        end: '${ lookups.l["end"] }'
`,
	}
	for name, streams := range cases {
		t.Run(name, func(t *testing.T) {
			f := mustParse(t, head+streams)
			if got := f.Stream("s").Stage(); got != 1 {
				t.Errorf("stage of s = %d, want 1 (after src, which fills lookup l)", got)
			}
		})
	}
}
