package runner_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/spec"
)

// A mapping error names the field whose program failed, with its section,
// so a user can find the line in the spec.
func TestMapEntityErrorNamesField(t *testing.T) {
	f, err := spec.Parse("spec.yaml", []byte(`version: 1
name: t
http: {base_url: "https://x"}
streams:
  apps:
    request: {path: /apps}
port:
  entities:
    - blueprint: app
      from: apps
      identifier: .id
      properties: {size: .size, count: '.n | tonumber'}
      relations: {owner: '.owner | ascii_downcase'}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &f.Port.Entities[0]
	ctx := context.Background()
	for _, tc := range []struct {
		rec  map[string]any
		want string
	}{
		{map[string]any{"id": "a", "n": "x", "owner": "o"}, "properties.count: "},
		{map[string]any{"id": "a", "n": "1", "owner": 7.0}, "relations.owner: "},
	} {
		_, _, err := runner.MapEntity(ctx, e, tc.rec, nil)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("MapEntity(%v) error = %v, want it to start with %q", tc.rec, err, tc.want)
		}
	}
	ent, ok, err := runner.MapEntity(ctx, e, map[string]any{"id": "a", "n": "2", "owner": "O"}, nil)
	if err != nil || !ok {
		t.Fatalf("MapEntity = %v, %v", ok, err)
	}
	if got := ent["properties"].(map[string]any)["count"]; got != 2.0 && got != 2 {
		t.Errorf("properties.count = %#v, want 2", got)
	}
}
