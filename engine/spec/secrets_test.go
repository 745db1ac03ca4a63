package spec

import (
	"slices"
	"testing"
)

// SecretParts tells which ${ } parts of a template read a secret input,
// by the program's syntax: a secret's name in a string, or a longer name
// it starts, is no read of it, and config read whole, or under another
// name, is one.
func TestSecretParts(t *testing.T) {
	f := mustParse(t, `version: 1
name: demo
config:
  key: {secret: true}
  key_id: {}
  user: {}
streams:
  apps:
    request:
      url: https://api.example.com/apps
      headers:
        a: "${ config.key }"
        b: "${ config['key'] }"
        c: "${ config?.key }"
        d: "${ toBase64(config.user + ':' + config.key) }"
        e: "${ toJSON(config) }"
        f: "${ let c = config; c.key }"
        g: "${ config.key_id }"
        h: "${ 'config.key' }"
        i: "${ config.user }"
        j: "${ config.user }/${ toBase64(config.key) }/x"
        k: "plain"
`)
	want := map[string][]bool{
		"a": {true}, "b": {true}, "c": {true}, "d": {true}, "e": {true}, "f": {true},
		"g": {false}, "h": {false}, "i": {false}, "j": {false, true}, "k": {},
	}
	for _, it := range f.Streams.Items[0].Value.Request.Headers.Items {
		if got := f.SecretParts(it.Value.Template()); !slices.Equal(got, want[it.Key]) {
			t.Errorf("%s %q: parts = %v, want %v", it.Key, it.Value.V, got, want[it.Key])
		}
	}
}
