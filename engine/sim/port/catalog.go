package port

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Catalog is a deterministic snapshot of the server's state, for golden
// comparison: blueprints by identifier, entities by blueprint then
// identifier, no timestamps.
type Catalog struct {
	Blueprints []map[string]any `json:"blueprints"`
	Entities   []CatalogEntity  `json:"entities"`
}

// CatalogEntity is one entity in a Catalog.
type CatalogEntity struct {
	Blueprint  string         `json:"blueprint"`
	Identifier string         `json:"identifier"`
	Title      *string        `json:"title,omitempty"`
	Icon       *string        `json:"icon,omitempty"`
	Team       any            `json:"team,omitempty"`
	Properties map[string]any `json:"properties"`
	Relations  map[string]any `json:"relations"`
}

// Catalog returns a snapshot of blueprints and entities.
func (s *Server) Catalog() Catalog {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := Catalog{Blueprints: []map[string]any{}, Entities: []CatalogEntity{}}
	for _, id := range slices.Sorted(maps.Keys(s.blueprints)) {
		c.Blueprints = append(c.Blueprints, deepCopy(s.blueprints[id].body).(map[string]any))
		for _, eid := range slices.Sorted(maps.Keys(s.entities[id])) {
			e := s.entities[id][eid]
			c.Entities = append(c.Entities, CatalogEntity{
				Blueprint: id, Identifier: e.id, Title: e.title, Icon: e.icon, Team: deepCopy(e.team),
				Properties: deepCopy(e.props).(map[string]any), Relations: deepCopy(e.rels).(map[string]any),
			})
		}
	}
	return c
}

// JSON renders the catalog as indented JSON with sorted keys.
func (c Catalog) JSON() []byte {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return []byte(fmt.Sprintf("catalog: %v", err))
	}
	return append(b, '\n')
}

// Entity returns one entity as the API would (nil if absent).
func (s *Server) Entity(blueprint, identifier string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entities[blueprint][identifier]
	if !ok {
		return nil
	}
	return deepCopy(e.view(blueprint)).(map[string]any)
}

// SeedBlueprint creates a blueprint with the same validation as
// POST /v1/blueprints, without going through HTTP.
func (s *Server) SeedBlueprint(raw []byte) error {
	m, err := decodeObject(raw)
	if err != nil {
		return fmt.Errorf("seed blueprint: %w", err)
	}
	if _, err := s.putBlueprint(m, "", false); err != nil {
		return fmt.Errorf("seed blueprint: %w", err)
	}
	return nil
}

// SeedEntity upserts an entity with the same validation as
// POST /v1/blueprints/{bp}/entities?upsert=true, without going through HTTP,
// and stores it as given (no default filled in).
func (s *Server) SeedEntity(blueprint string, raw []byte) error {
	m, derr := decodeObject(raw)
	if derr != nil {
		return fmt.Errorf("seed entity: %w", derr)
	}
	b, err := parseEntityBody(m)
	if err != nil {
		return fmt.Errorf("seed entity: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	bp, err := s.lookupBlueprintLocked(blueprint)
	if err != nil {
		return fmt.Errorf("seed entity: %w", err)
	}
	if _, _, err := s.writeEntityLocked(bp, b, modePost, writeFlags{upsert: true, seed: true}); err != nil {
		return fmt.Errorf("seed entity %q: %w", b.id, err)
	}
	// Seeds stand for state made long ago: search sees them (and every
	// write before them) at once, whatever Options.SearchLag.
	s.catchUpLocked(time.Unix(1<<62, 0))
	return nil
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = deepCopy(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = deepCopy(x)
		}
		return out
	}
	return v
}
