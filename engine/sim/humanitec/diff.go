package humanitec

import (
	"encoding/json"
	"maps"
	"slices"
)

// plainDelta is PlainDeltaResponse: what GET sets/{setId}?diff=... answers.
type plainDelta struct {
	Modules   ModuleDeltas    `json:"modules"`
	Shared    []JSONPatch     `json:"shared"`
	Workloads *WorkloadDeltas `json:"workloads,omitempty"`
}

// MarshalJSON keeps the required shared array non-null.
func (d plainDelta) MarshalJSON() ([]byte, error) {
	type plain plainDelta
	p := plain(d)
	if p.Shared == nil {
		p.Shared = []JSONPatch{}
	}
	return json.Marshal(p)
}

// diffSets returns the delta that turns set from into set to: modules only
// in to are added, modules only in from are removed, and modules in both
// get one JSON patch per differing top-level field. The exact patch
// granularity of the real API is not documented; this is an approximation.
func diffSets(from, to *Set) plainDelta {
	d := plainDelta{Modules: ModuleDeltas{
		Add: map[string]Module{}, Remove: []string{}, Update: map[string][]JSONPatch{},
	}}
	for _, name := range slices.Sorted(maps.Keys(to.Modules)) {
		m := to.Modules[name]
		old, ok := from.Modules[name]
		if !ok {
			d.Modules.Add[name] = m
			continue
		}
		if ops := diffObjects(moduleFields(old), moduleFields(m)); len(ops) > 0 {
			d.Modules.Update[name] = ops
		}
	}
	for _, name := range slices.Sorted(maps.Keys(from.Modules)) {
		if _, ok := to.Modules[name]; !ok {
			d.Modules.Remove = append(d.Modules.Remove, name)
		}
	}
	d.Shared = diffObjects(from.Shared, to.Shared)
	if len(from.Workloads) > 0 || len(to.Workloads) > 0 {
		w := &WorkloadDeltas{Add: map[string]Workload{}, Remove: []string{}, Update: map[string][]JSONPatch{}}
		for _, name := range slices.Sorted(maps.Keys(to.Workloads)) {
			old, ok := from.Workloads[name]
			if !ok {
				w.Add[name] = to.Workloads[name]
				continue
			}
			if ops := diffObjects(asObject(old), asObject(to.Workloads[name])); len(ops) > 0 {
				w.Update[name] = ops
			}
		}
		for _, name := range slices.Sorted(maps.Keys(from.Workloads)) {
			if _, ok := to.Workloads[name]; !ok {
				w.Remove = append(w.Remove, name)
			}
		}
		d.Workloads = w
	}
	return d
}

func moduleFields(m Module) map[string]any { return asObject(m) }

// asObject round-trips v through JSON so fields compare as the wire shows them.
func asObject(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		return map[string]any{}
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return map[string]any{}
	}
	return m
}

// diffObjects emits add/remove/replace patches for the top-level keys that
// differ, in key order.
func diffObjects(from, to map[string]any) []JSONPatch {
	ops := []JSONPatch{}
	keys := slices.Sorted(maps.Keys(to))
	for _, k := range slices.Sorted(maps.Keys(from)) {
		if _, ok := to[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		nv, inTo := to[k]
		ov, inFrom := from[k]
		path := "/" + escapePointer(k)
		switch {
		case !inFrom:
			ops = append(ops, JSONPatch{Op: "add", Path: path, Value: nv})
		case !inTo:
			ops = append(ops, JSONPatch{Op: "remove", Path: path})
		case !sameJSON(ov, nv):
			ops = append(ops, JSONPatch{Op: "replace", Path: path, Value: nv})
		}
	}
	return ops
}

func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// escapePointer escapes a key for use in a JSON pointer (RFC 6901).
func escapePointer(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '~':
			out = append(out, '~', '0')
		case '/':
			out = append(out, '~', '1')
		default:
			out = append(out, s[i])
		}
	}
	return string(out)
}
