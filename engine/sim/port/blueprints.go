package port

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"time"
)

// blueprint is a stored blueprint: its normalised body plus the parsed view
// used to validate entities.
type blueprint struct {
	id        string
	body      map[string]any // normalised, without meta fields
	props     map[string]propDef
	required  []string
	relations map[string]relDef
	createdAt time.Time
	updatedAt time.Time
}

type propDef struct {
	typ, format string
	enum        []any
	items       *propDef
	minLength   *int
	maxLength   *int
	pattern     string
	minimum     *float64
	maximum     *float64
	// def is the property's default (nil: none), given to an entity
	// created without the property (Port's docs: "in case an entity is
	// created without explicitly providing a value").
	def any
}

type relDef struct {
	target   string
	many     bool
	required bool
}

var blueprintKeys = []string{"identifier", "title", "description", "icon", "ownership", "schema",
	"calculationProperties", "mirrorProperties", "aggregationProperties", "relations",
	"changelogDestination", "teamInheritance"}

// parseBlueprint validates a blueprint body against Port's blueprint schema
// and the catalog (relation targets must exist or be the blueprint itself).
// pathID is the identifier from the URL ("" on create).
func (s *Server) parseBlueprint(body map[string]any, pathID string) (*blueprint, *apiError) {
	id := pathID
	if v, ok := body["identifier"]; ok {
		str, ok := v.(string)
		if !ok {
			return nil, invalid("body/identifier must be string")
		}
		if pathID != "" && str != pathID {
			return nil, invalid("body/identifier %q does not match the path identifier %q", str, pathID)
		}
		id = str
	}
	if id == "" {
		return nil, invalid("body must have required property 'identifier'")
	}
	if err := checkBlueprintID(id); err != nil {
		return nil, invalid("body/identifier: %v", err)
	}
	title, ok := body["title"].(string)
	if !ok {
		return nil, invalid("body must have required string property 'title'")
	}
	if n := runeLen(title); n < 1 || n > maxTitle {
		return nil, invalid("body/title must be 1..%d characters", maxTitle)
	}
	if v, ok := body["description"]; ok {
		str, ok := v.(string)
		if !ok || runeLen(str) > maxBlueprintDescription {
			return nil, invalid("body/description must be a string of at most %d characters", maxBlueprintDescription)
		}
	}
	if v, ok := body["icon"]; ok {
		if _, ok := v.(string); !ok {
			return nil, invalid("body/icon must be string")
		}
	}
	if v, ok := body["ownership"]; ok {
		if err := checkOwnership(v); err != nil {
			return nil, err
		}
	}

	bp := &blueprint{id: id, props: map[string]propDef{}, relations: map[string]relDef{}}
	out := map[string]any{}
	for _, k := range blueprintKeys {
		if v, ok := body[k]; ok {
			out[k] = v
		}
	}
	out["identifier"] = id

	schema, ok := body["schema"].(map[string]any)
	if !ok {
		return nil, invalid("body must have required object property 'schema'")
	}
	for k := range schema {
		if k != "properties" && k != "required" {
			return nil, invalid("body/schema must NOT have additional properties: %q", k)
		}
	}
	props, ok := schema["properties"].(map[string]any)
	if !ok {
		return nil, invalid("body/schema must have required object property 'properties'")
	}
	for _, k := range slices.Sorted(maps.Keys(props)) {
		if err := checkKey(k); err != nil {
			return nil, invalid("body/schema/properties: property identifier %q: %v", k, err)
		}
		def, err := parsePropDef(props[k], "body/schema/properties/"+k, propertyFormats)
		if err != nil {
			return nil, err
		}
		bp.props[k] = def
	}
	required := []any{}
	if v, ok := schema["required"]; ok {
		list, ok := v.([]any)
		if !ok {
			return nil, invalid("body/schema/required must be array")
		}
		for _, x := range list {
			name, ok := x.(string)
			if !ok {
				return nil, invalid("body/schema/required must contain strings")
			}
			if _, ok := bp.props[name]; !ok {
				return nil, invalid("body/schema/required: %q is not a property of the blueprint", name)
			}
			bp.required = append(bp.required, name)
		}
		required = list
	}
	out["schema"] = map[string]any{"properties": props, "required": required}

	rels := map[string]any{}
	if v, ok := body["relations"]; ok {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, invalid("body/relations must be object")
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			def, norm, err := s.parseRelDef(id, k, m[k])
			if err != nil {
				return nil, err
			}
			if _, dup := bp.props[k]; dup {
				return nil, invalid("body/relations/%s: identifier already used by a property", k)
			}
			bp.relations[k] = def
			rels[k] = norm
		}
	}
	out["relations"] = rels

	for _, group := range []string{"mirrorProperties", "calculationProperties", "aggregationProperties"} {
		m := map[string]any{}
		if v, ok := body[group]; ok {
			m, ok = v.(map[string]any)
			if !ok {
				return nil, invalid("body/%s must be object", group)
			}
		}
		for k, v := range m {
			if err := checkKey(k); err != nil {
				return nil, invalid("body/%s: identifier %q: %v", group, k, err)
			}
			def, ok := v.(map[string]any)
			if !ok {
				return nil, invalid("body/%s/%s must be object", group, k)
			}
			switch group {
			case "mirrorProperties":
				p, ok := def["path"].(string)
				if !ok || !mirrorPathRe.MatchString(p) {
					return nil, invalid("body/mirrorProperties/%s/path must be a dot-separated relation path", k)
				}
			case "calculationProperties":
				if _, ok := def["calculation"].(string); !ok {
					return nil, invalid("body/calculationProperties/%s must have required string property 'calculation'", k)
				}
				if t, _ := def["type"].(string); !slices.Contains(propertyTypes, t) {
					return nil, invalid("body/calculationProperties/%s/type must be one of %v", k, propertyTypes)
				}
			}
		}
		out[group] = m
	}
	bp.body = out
	return bp, nil
}

func checkOwnership(v any) *apiError {
	m, ok := v.(map[string]any)
	if !ok {
		return invalid("body/ownership must be object")
	}
	typ, _ := m["type"].(string)
	allowed := map[string]bool{"type": true, "title": true}
	switch typ {
	case "Direct":
	case "Inherited":
		if _, ok := m["path"].(string); !ok {
			return invalid("body/ownership: Inherited ownership requires a string path")
		}
		allowed["path"] = true
	default:
		return invalid("body/ownership/type must be Direct or Inherited")
	}
	for k := range m {
		if !allowed[k] {
			return invalid("body/ownership must NOT have additional properties: %q", k)
		}
	}
	if t, ok := m["title"]; ok {
		str, ok := t.(string)
		if !ok || runeLen(str) > maxTitle {
			return invalid("body/ownership/title must be a string of at most %d characters", maxTitle)
		}
	}
	return nil
}

func parsePropDef(v any, where string, formats []string) (propDef, *apiError) {
	m, ok := v.(map[string]any)
	if !ok {
		return propDef{}, invalid("%s must be object", where)
	}
	var d propDef
	d.typ, _ = m["type"].(string)
	if !slices.Contains(propertyTypes, d.typ) {
		return d, invalid("%s/type must be one of %v", where, propertyTypes)
	}
	if f, ok := m["format"]; ok {
		d.format, _ = f.(string)
		if !slices.Contains(formats, d.format) {
			return d, invalid("%s/format must be one of %v", where, formats)
		}
	}
	if sp, ok := m["spec"]; ok {
		str, _ := sp.(string)
		if !slices.Contains(propertySpecs, str) {
			return d, invalid("%s/spec must be one of %v", where, propertySpecs)
		}
	}
	if t, ok := m["title"]; ok {
		str, ok := t.(string)
		if !ok || runeLen(str) > maxTitle {
			return d, invalid("%s/title must be a string of at most %d characters", where, maxTitle)
		}
	}
	if e, ok := m["enum"]; ok {
		list, ok := e.([]any)
		if !ok {
			return d, invalid("%s/enum must be array", where)
		}
		d.enum = list
	}
	if it, ok := m["items"]; ok {
		item, err := parsePropDef(it, where+"/items", itemFormats)
		if err != nil {
			return d, err
		}
		if d.typ != "array" {
			return d, invalid("%s/items is only allowed on array properties", where)
		}
		d.items = &item
	}
	d.minLength = intField(m, "minLength")
	d.maxLength = intField(m, "maxLength")
	d.minimum = floatField(m, "minimum")
	d.maximum = floatField(m, "maximum")
	if p, ok := m["pattern"].(string); ok {
		d.pattern = p
	}
	d.def = m["default"]
	return d, nil
}

func intField(m map[string]any, k string) *int {
	f := floatField(m, k)
	if f == nil {
		return nil
	}
	n := int(*f)
	return &n
}

func floatField(m map[string]any, k string) *float64 {
	n, ok := m[k].(json.Number)
	if !ok {
		return nil
	}
	f, err := n.Float64()
	if err != nil {
		return nil
	}
	return &f
}

var relationKeys = []string{"title", "target", "required", "many", "description", "type"}

func (s *Server) parseRelDef(self, k string, v any) (relDef, map[string]any, *apiError) {
	if err := checkKey(k); err != nil {
		return relDef{}, nil, invalid("body/relations: relation identifier %q: %v", k, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return relDef{}, nil, invalid("body/relations/%s must be object", k)
	}
	for key := range m {
		if !slices.Contains(relationKeys, key) {
			return relDef{}, nil, invalid("body/relations/%s must NOT have additional properties: %q", k, key)
		}
	}
	var d relDef
	d.target, ok = m["target"].(string)
	if !ok {
		return d, nil, invalid("body/relations/%s must have required string property 'target'", k)
	}
	if d.target != self {
		if _, ok := s.blueprints[d.target]; !ok {
			return d, nil, notFound("body/relations/%s: target blueprint %q not found", k, d.target)
		}
	}
	for _, flag := range []string{"required", "many"} {
		if x, ok := m[flag]; ok {
			b, ok := x.(bool)
			if !ok {
				return d, nil, invalid("body/relations/%s/%s must be boolean", k, flag)
			}
			if flag == "many" {
				d.many = b
			} else {
				d.required = b
			}
		}
	}
	if t, ok := m["title"]; ok {
		str, ok := t.(string)
		if !ok || runeLen(str) > maxTitle {
			return d, nil, invalid("body/relations/%s/title must be a string of at most %d characters", k, maxTitle)
		}
	}
	norm := maps.Clone(m)
	norm["many"] = d.many
	norm["required"] = d.required
	return d, norm, nil
}

// checkImmutable rejects changes Port forbids: a property's type and a
// relation's single-vs-list shape are fixed once created.
func checkImmutable(old, next *blueprint) *apiError {
	for k, p := range next.props {
		if o, ok := old.props[k]; ok && o.typ != p.typ {
			return invalid("property %q: type cannot change from %s to %s", k, o.typ, p.typ)
		}
	}
	for k, r := range next.relations {
		if o, ok := old.relations[k]; ok && o.many != r.many {
			return invalid("relation %q: many cannot change after creation", k)
		}
	}
	return nil
}

func (bp *blueprint) view() map[string]any {
	out := maps.Clone(bp.body)
	out["createdAt"] = bp.createdAt.UTC().Format(time.RFC3339Nano)
	out["updatedAt"] = bp.updatedAt.UTC().Format(time.RFC3339Nano)
	out["createdBy"] = "portsim"
	out["updatedBy"] = "portsim"
	return out
}

func (s *Server) listBlueprints() (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []any{}
	for _, id := range slices.Sorted(maps.Keys(s.blueprints)) {
		out = append(out, s.blueprints[id].view())
	}
	return http.StatusOK, map[string]any{"ok": true, "blueprints": out}, nil
}

func (s *Server) getBlueprint(id string) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	bp, ok := s.blueprints[id]
	if !ok {
		return 0, nil, notFound("blueprint %q not found", id)
	}
	return http.StatusOK, map[string]any{"ok": true, "blueprint": bp.view()}, nil
}

func (s *Server) createBlueprint(body []byte) (int, any, *apiError) {
	m, err := decodeObject(body)
	if err != nil {
		return 0, nil, err
	}
	bp, err := s.putBlueprint(m, "", false)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, map[string]any{"ok": true, "blueprint": bp}, nil
}

func (s *Server) updateBlueprint(id string, body []byte, patch bool) (int, any, *apiError) {
	m, err := decodeObject(body)
	if err != nil {
		return 0, nil, err
	}
	bp, err := s.putBlueprint(m, id, patch)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"ok": true, "blueprint": bp}, nil
}

// putBlueprint creates (pathID == "") or replaces/patches a blueprint. PATCH
// replaces each top-level key it supplies and keeps the others.
func (s *Server) putBlueprint(m map[string]any, pathID string, patch bool) (map[string]any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var old *blueprint
	if pathID != "" {
		var ok bool
		old, ok = s.blueprints[pathID]
		if !ok {
			return nil, notFound("blueprint %q not found", pathID)
		}
		if patch {
			merged := maps.Clone(old.body)
			maps.Copy(merged, m)
			m = merged
		}
	}
	bp, err := s.parseBlueprint(m, pathID)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	if old == nil {
		if _, exists := s.blueprints[bp.id]; exists {
			return nil, conflict("blueprint %q already exists", bp.id)
		}
		bp.createdAt = now
		s.entities[bp.id] = map[string]*entity{}
		s.index[bp.id] = map[string]*entity{}
	} else {
		if err := checkImmutable(old, bp); err != nil {
			return nil, err
		}
		bp.createdAt = old.createdAt
	}
	bp.updatedAt = now
	s.blueprints[bp.id] = bp
	return bp.view(), nil
}

func (s *Server) deleteBlueprint(id string) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.blueprints[id]; !ok {
		return 0, nil, notFound("blueprint %q not found", id)
	}
	if n := len(s.entities[id]); n > 0 {
		return 0, nil, invalid("blueprint %q still has %d entities; delete them first", id, n)
	}
	for _, other := range slices.Sorted(maps.Keys(s.blueprints)) {
		if other == id {
			continue
		}
		for rk, r := range s.blueprints[other].relations {
			if r.target == id {
				return 0, nil, invalid("blueprint %q is the target of relation %s.%s", id, other, rk)
			}
		}
	}
	delete(s.blueprints, id)
	delete(s.entities, id)
	delete(s.index, id)
	s.pending = slices.DeleteFunc(s.pending, func(u indexUpdate) bool { return u.key.blueprint == id })
	return http.StatusOK, map[string]any{"ok": true}, nil
}
