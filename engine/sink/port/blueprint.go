package port

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"

	"github.com/ferry-etl/ferry/engine/internal/jsonv"
)

// Blueprint is the part of a Port blueprint that entity validation and
// write ordering need.
type Blueprint struct {
	Identifier string
	Properties map[string]Property
	Required   []string
	Relations  map[string]Relation
}

// Property is one declared property.
type Property struct {
	Type   string // string, number, boolean, object, array
	Format string
	Enum   []any
	Items  *Property // array item type, if declared
	// Default is the value Port gives an entity that does not set the
	// property (nil: none).
	Default any
}

// Relation is one declared relation.
type Relation struct {
	Target   string
	Many     bool
	Required bool
}

// ParseBlueprint reads a blueprint body as sent to (or returned by) Port.
func ParseBlueprint(raw json.RawMessage) (*Blueprint, error) {
	m, err := decodeObject(raw)
	if err != nil {
		return nil, fmt.Errorf("blueprint: %w", err)
	}
	return blueprintFromMap(m)
}

func blueprintFromMap(m map[string]any) (*Blueprint, error) {
	id, _ := m["identifier"].(string)
	if id == "" {
		return nil, errors.New("blueprint: identifier is required")
	}
	if err := checkBlueprintID(id); err != nil {
		return nil, fmt.Errorf("blueprint %q: identifier %w", id, err)
	}
	bp := &Blueprint{Identifier: id, Properties: map[string]Property{}, Relations: map[string]Relation{}}
	schema, _ := m["schema"].(map[string]any)
	props, _ := schema["properties"].(map[string]any)
	for k, v := range props {
		p, err := propertyFromMap(v)
		if err != nil {
			return nil, fmt.Errorf("blueprint %q: property %q: %w", id, k, err)
		}
		bp.Properties[k] = p
	}
	if req, ok := schema["required"].([]any); ok {
		for _, r := range req {
			if s, ok := r.(string); ok {
				bp.Required = append(bp.Required, s)
			}
		}
	}
	rels, _ := m["relations"].(map[string]any)
	for k, v := range rels {
		d, _ := v.(map[string]any)
		target, _ := d["target"].(string)
		if target == "" {
			return nil, fmt.Errorf("blueprint %q: relation %q: target is required", id, k)
		}
		many, _ := d["many"].(bool)
		required, _ := d["required"].(bool)
		bp.Relations[k] = Relation{Target: target, Many: many, Required: required}
	}
	return bp, nil
}

func propertyFromMap(v any) (Property, error) {
	d, ok := v.(map[string]any)
	if !ok {
		return Property{}, errors.New("definition must be an object")
	}
	var p Property
	p.Type, _ = d["type"].(string)
	if !slices.Contains(propertyTypes, p.Type) {
		return p, fmt.Errorf("type %q is not one of %v", p.Type, propertyTypes)
	}
	p.Format, _ = d["format"].(string)
	p.Enum, _ = d["enum"].([]any)
	p.Default = d["default"]
	if it, ok := d["items"]; ok {
		item, err := propertyFromMap(it)
		if err != nil {
			return p, fmt.Errorf("items: %w", err)
		}
		p.Items = &item
	}
	return p, nil
}

// EnsureBlueprints makes Port hold every given blueprint: missing ones are
// created (relation targets first), changed ones are updated with PUT, and
// nothing is ever deleted. An update is a merge: properties, relations,
// mirror, calculation and aggregation properties that exist only in Port
// are kept; for keys present in both, the spec wins; other top-level fields
// come from the spec when it sets them. With Config.Owner set, the
// OwnerProperty is added to every blueprint. A relation cycle among the
// given blueprints is created without the cycle's relations first and
// completed with a second PUT.
func (s *Sink) EnsureBlueprints(ctx context.Context, blueprints []json.RawMessage) error {
	desired, ids, err := s.desiredBlueprints(blueprints)
	if err != nil {
		return err
	}
	existing, err := s.listBlueprints(ctx)
	if err != nil {
		return err
	}
	if err := checkTargets(desired, existing); err != nil {
		return err
	}
	edges := map[string][]string{}
	for id, m := range desired {
		for _, t := range relationTargets(m) {
			if _, ok := desired[t]; ok {
				edges[id] = append(edges[id], t)
			}
		}
	}
	levels, _ := layers(ids, edges)

	// Relations whose target does not exist yet are held back and added by
	// a final PUT once every blueprint exists.
	deferred := map[string]bool{}
	for _, level := range levels {
		for _, id := range level {
			want := desired[id]
			if cur, ok := existing[id]; ok {
				want = mergeBlueprint(cur, want)
			}
			body, held := withoutRelations(want, func(target string) bool {
				_, ok := existing[target]
				return ok || target == id
			})
			if held {
				deferred[id] = true
			}
			got, err := s.putBlueprint(ctx, id, body, existing[id])
			if err != nil {
				return err
			}
			existing[id] = got
		}
	}
	for _, id := range slices.Sorted(maps.Keys(deferred)) {
		got, err := s.putBlueprint(ctx, id, mergeBlueprint(existing[id], desired[id]), existing[id])
		if err != nil {
			return err
		}
		existing[id] = got
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		bp, err := blueprintFromMap(existing[id])
		if err != nil {
			return fmt.Errorf("port: blueprint %q as returned by Port: %w", id, err)
		}
		s.bps[id] = bp
	}
	return nil
}

// putBlueprint creates want (cur == nil) or updates cur to want when they
// differ; it returns Port's blueprint.
func (s *Sink) putBlueprint(ctx context.Context, id string, want, cur map[string]any) (map[string]any, error) {
	var out struct {
		Blueprint map[string]any `json:"blueprint"`
	}
	if cur == nil {
		_, err := s.api.do(ctx, http.MethodPost, "/blueprints", nil, want, &out)
		var se *StatusError
		if errors.As(err, &se) && se.Status == http.StatusConflict {
			// Created meanwhile by someone else: update it instead.
			if _, err := s.api.do(ctx, http.MethodGet, "/blueprints/"+url.PathEscape(id), nil, nil, &out); err != nil {
				return nil, fmt.Errorf("port: blueprint %q: %w", id, err)
			}
			return s.putBlueprint(ctx, id, mergeBlueprint(out.Blueprint, want), out.Blueprint)
		}
		if err != nil {
			return nil, fmt.Errorf("port: create blueprint %q: %w", id, err)
		}
		s.log.Info("port blueprint created", "blueprint", id)
		return out.Blueprint, nil
	}
	if sameBlueprint(cur, want) {
		return cur, nil
	}
	if _, err := s.api.do(ctx, http.MethodPut, "/blueprints/"+url.PathEscape(id), nil, want, &out); err != nil {
		return nil, fmt.Errorf("port: update blueprint %q: %w", id, err)
	}
	s.log.Info("port blueprint updated", "blueprint", id)
	return out.Blueprint, nil
}

func addOwnerProperty(m map[string]any) {
	schema, _ := m["schema"].(map[string]any)
	if schema == nil {
		schema = map[string]any{}
		m["schema"] = schema
	}
	props, _ := schema["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
		schema["properties"] = props
	}
	if _, ok := props[OwnerProperty]; !ok {
		props[OwnerProperty] = map[string]any{
			"type":        "string",
			"title":       "Ferry owner",
			"description": "Spec that loads this entity; ferry deletes stale entities only where this matches",
		}
	}
}

var metaKeys = []string{"createdAt", "createdBy", "updatedAt", "updatedBy"}

// mergeBlueprint overlays want on cur without losing anything cur has.
func mergeBlueprint(cur, want map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range cur {
		if !slices.Contains(metaKeys, k) {
			out[k] = v
		}
	}
	for k, v := range want {
		switch k {
		case "relations", "mirrorProperties", "calculationProperties", "aggregationProperties":
			out[k] = mergeMaps(out[k], v)
		case "schema":
			cs, _ := out[k].(map[string]any)
			ws, _ := v.(map[string]any)
			merged := map[string]any{}
			maps.Copy(merged, cs)
			maps.Copy(merged, ws)
			merged["properties"] = mergeMaps(cs["properties"], ws["properties"])
			out[k] = merged
		default:
			out[k] = v
		}
	}
	return out
}

func mergeMaps(a, b any) map[string]any {
	out := map[string]any{}
	if m, ok := a.(map[string]any); ok {
		maps.Copy(out, m)
	}
	if m, ok := b.(map[string]any); ok {
		maps.Copy(out, m)
	}
	return out
}

// sameBlueprint compares two bodies after filling Port's defaults.
func sameBlueprint(a, b map[string]any) bool {
	x, err1 := json.Marshal(normalizeBlueprint(a))
	y, err2 := json.Marshal(normalizeBlueprint(b))
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

func normalizeBlueprint(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if !slices.Contains(metaKeys, k) {
			out[k] = v
		}
	}
	for _, k := range []string{"relations", "mirrorProperties", "calculationProperties", "aggregationProperties"} {
		if _, ok := out[k]; !ok {
			out[k] = map[string]any{}
		}
	}
	rels := map[string]any{}
	for k, v := range out["relations"].(map[string]any) {
		d := maps.Clone(v.(map[string]any))
		for _, f := range []string{"many", "required"} {
			if _, ok := d[f]; !ok {
				d[f] = false
			}
		}
		rels[k] = d
	}
	out["relations"] = rels
	if s, ok := out["schema"].(map[string]any); ok {
		s = maps.Clone(s)
		if _, ok := s["required"]; !ok {
			s["required"] = []any{}
		}
		out["schema"] = s
	}
	return out
}

func relationTargets(m map[string]any) []string {
	var out []string
	rels, _ := m["relations"].(map[string]any)
	for _, k := range slices.Sorted(maps.Keys(rels)) {
		d, _ := rels[k].(map[string]any)
		if t, ok := d["target"].(string); ok {
			out = append(out, t)
		}
	}
	return out
}

// withoutRelations returns m without the relations whose target fails ok,
// and whether any was removed.
func withoutRelations(m map[string]any, ok func(target string) bool) (map[string]any, bool) {
	rels, _ := m["relations"].(map[string]any)
	kept := map[string]any{}
	held := false
	for k, v := range rels {
		d, _ := v.(map[string]any)
		if t, _ := d["target"].(string); ok(t) {
			kept[k] = v
		} else {
			held = true
		}
	}
	if !held {
		return m, false
	}
	out := maps.Clone(m)
	out["relations"] = kept
	return out, true
}

// layers orders nodes so that every edge source -> target has the target in
// an earlier layer. Nodes of one strongly connected component (relation
// cycles, including self-relations) share a layer; comp maps each node to
// its component id, so callers can tell which edges lie inside a cycle.
func layers(nodes []string, edges map[string][]string) ([][]string, map[string]int) {
	nodes = slices.Clone(nodes)
	slices.Sort(nodes)
	// Tarjan's algorithm.
	index, low := map[string]int{}, map[string]int{}
	onStack := map[string]bool{}
	var stack []string
	comp := map[string]int{}
	var comps [][]string
	next := 0
	var visit func(v string)
	visit = func(v string) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range edges[v] {
			if _, seen := index[w]; !seen {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			var c []string
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp[w] = len(comps)
				c = append(c, w)
				if w == v {
					break
				}
			}
			comps = append(comps, c)
		}
	}
	for _, v := range nodes {
		if _, seen := index[v]; !seen {
			visit(v)
		}
	}
	// Tarjan emits components in reverse topological order of the
	// condensation: targets first. Assign each the longest-path depth.
	depth := make([]int, len(comps))
	for ci, c := range comps {
		for _, v := range c {
			for _, w := range edges[v] {
				if wc := comp[w]; wc != ci {
					depth[ci] = max(depth[ci], depth[wc]+1)
				}
			}
		}
	}
	var out [][]string
	for ci, c := range comps {
		for len(out) <= depth[ci] {
			out = append(out, nil)
		}
		out[depth[ci]] = append(out[depth[ci]], c...)
	}
	for _, l := range out {
		slices.Sort(l)
	}
	return out, comp
}

// decodeObject decodes one JSON object, numbers as json.Number.
func decodeObject(raw []byte) (map[string]any, error) {
	var dec jsonv.Decoder
	return decodeObjectWith(&dec, raw)
}

// decodeObjectWith is decodeObject with a Decoder reused across a page of
// entities (their keys shared, its scratch kept).
func decodeObjectWith(dec *jsonv.Decoder, raw []byte) (map[string]any, error) {
	v, err := dec.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON object: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want a JSON object, got %s", jsonv.Kind(v))
	}
	return m, nil
}
