package port

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

type entity struct {
	id        string
	title     *string
	icon      *string
	team      any
	props     map[string]any
	rels      map[string]any
	createdAt time.Time
	updatedAt time.Time
}

// entityBody is a parsed entity request body; has* say which keys were sent.
type entityBody struct {
	id       string
	title    *string
	icon     *string
	team     any
	hasTeam  bool
	props    map[string]any
	hasProps bool
	rels     map[string]any
	hasRels  bool
}

type writeFlags struct {
	upsert, merge, createMissing, validationOnly bool
	// seed stores the entity as given, no default filled in: a seed
	// stands for state made long ago, before a default was declared.
	seed bool
}

func parseFlags(q url.Values, names ...string) (writeFlags, *apiError) {
	var f writeFlags
	for _, n := range names {
		v, err := boolParam(q, n)
		if err != nil {
			return f, err
		}
		switch n {
		case "upsert":
			f.upsert = v
		case "merge":
			f.merge = v
		case "create_missing_related_entities":
			f.createMissing = v
		case "validation_only":
			f.validationOnly = v
		}
	}
	return f, nil
}

var postFlags = []string{"upsert", "merge", "create_missing_related_entities", "validation_only"}

func parseEntityBody(raw any) (entityBody, *apiError) {
	var b entityBody
	m, ok := raw.(map[string]any)
	if !ok {
		return b, invalid("entity must be an object")
	}
	if v, ok := m["identifier"]; ok {
		switch id := v.(type) {
		case string:
			if err := checkEntityID(id); err != nil {
				return b, invalid("identifier: %v", err)
			}
			b.id = id
		case map[string]any:
			return b, invalid("identifier: search-query identifiers are not supported by the Port simulator")
		default:
			return b, invalid("identifier must be string")
		}
	}
	for _, k := range []string{"title", "icon"} {
		if v, ok := m[k]; ok {
			str, ok := v.(string)
			if !ok {
				return b, invalid("%s must be string", k)
			}
			if k == "title" {
				b.title = &str
			} else {
				b.icon = &str
			}
		}
	}
	if v, ok := m["team"]; ok {
		switch t := v.(type) {
		case string:
		case []any:
			for _, x := range t {
				if _, ok := x.(string); !ok {
					return b, invalid("team must be a string or an array of strings")
				}
			}
		default:
			return b, invalid("team must be a string or an array of strings")
		}
		b.team, b.hasTeam = v, true
	}
	b.props, b.rels = map[string]any{}, map[string]any{}
	if v, ok := m["properties"]; ok {
		p, ok := v.(map[string]any)
		if !ok {
			return b, invalid("properties must be object")
		}
		b.props, b.hasProps = asDoubles(p).(map[string]any), true
	}
	if v, ok := m["relations"]; ok {
		r, ok := v.(map[string]any)
		if !ok {
			return b, invalid("relations must be object")
		}
		b.rels, b.hasRels = r, true
	}
	return b, nil
}

type writeMode int

const (
	modePost writeMode = iota
	modePut
	modePatch
)

// writeEntityLocked validates and applies one entity write. s.mu is held.
func (s *Server) writeEntityLocked(bp *blueprint, b entityBody, mode writeMode, f writeFlags) (*entity, bool, *apiError) {
	if b.id == "" {
		s.genSeq++
		b.id = fmt.Sprintf("portsim-generated-%d", s.genSeq)
	}
	existing := s.entities[bp.id][b.id]
	merge := false
	switch mode {
	case modePost:
		if existing != nil && !f.upsert {
			return nil, false, conflict("entity %q of blueprint %q already exists", b.id, bp.id)
		}
		merge = existing != nil && f.merge
	case modePut:
		if existing == nil {
			return nil, false, notFound("entity %q of blueprint %q not found", b.id, bp.id)
		}
	case modePatch:
		if existing == nil {
			return nil, false, notFound("entity %q of blueprint %q not found", b.id, bp.id)
		}
		merge = true
	}

	var c *entity
	if merge {
		c = &entity{id: existing.id, title: existing.title, icon: existing.icon, team: existing.team,
			props: maps.Clone(existing.props), rels: maps.Clone(existing.rels)}
		if b.title != nil {
			c.title = b.title
		}
		if b.icon != nil {
			c.icon = b.icon
		}
		if b.hasTeam {
			c.team = b.team
		}
		maps.Copy(c.props, b.props)
		maps.Copy(c.rels, b.rels)
	} else {
		c = &entity{id: b.id, title: b.title, icon: b.icon, team: b.team, props: maps.Clone(b.props), rels: maps.Clone(b.rels)}
	}
	if existing == nil && !f.seed {
		// Defaults are given on creation only: an update that sets a
		// property null leaves it null.
		for k, d := range bp.props {
			if d.def != nil && c.props[k] == nil {
				if c.props == nil {
					c.props = map[string]any{}
				}
				c.props[k] = asDoubles(d.def)
			}
		}
	}

	missing, err := s.checkEntityLocked(bp, c)
	if err != nil {
		return nil, false, err
	}
	if len(missing) > 0 && !f.createMissing {
		k := missing[0]
		return nil, false, notFound("related entity %q of blueprint %q not found", k.identifier, k.blueprint)
	}
	if rej, ok := s.rejects[entityKey{bp.id, c.id}]; ok {
		return nil, false, rej
	}
	created := existing == nil
	if f.validationOnly {
		return c, created, nil
	}
	now := s.opts.Now()
	for _, k := range missing {
		if _, ok := s.entities[k.blueprint][k.identifier]; !ok {
			stub := &entity{id: k.identifier, props: map[string]any{}, rels: map[string]any{}, createdAt: now, updatedAt: now}
			s.entities[k.blueprint][k.identifier] = stub
			s.reindexLocked(k, stub, now)
		}
	}
	c.createdAt = now
	if existing != nil {
		c.createdAt = existing.createdAt
	}
	c.updatedAt = now
	s.entities[bp.id][c.id] = c
	s.reindexLocked(entityKey{bp.id, c.id}, c, now)
	return c, created, nil
}

// checkEntityLocked validates an entity against its blueprint and returns
// the relation targets that do not exist.
func (s *Server) checkEntityLocked(bp *blueprint, c *entity) ([]entityKey, *apiError) {
	for _, k := range slices.Sorted(maps.Keys(c.props)) {
		def, ok := bp.props[k]
		if !ok {
			return nil, invalid("properties/%s: property is not defined in blueprint %q", k, bp.id)
		}
		if err := checkValue(def, c.props[k]); err != nil {
			return nil, invalid("properties/%s %v", k, err)
		}
	}
	for _, k := range bp.required {
		if c.props[k] == nil {
			return nil, invalid("properties: missing required property %q", k)
		}
	}
	var missing []entityKey
	seen := map[entityKey]bool{}
	for _, k := range slices.Sorted(maps.Keys(c.rels)) {
		def, ok := bp.relations[k]
		if !ok {
			return nil, invalid("relations/%s: relation is not defined in blueprint %q", k, bp.id)
		}
		var ids []string
		switch v := c.rels[k].(type) {
		case nil:
		case string:
			if def.many {
				return nil, invalid("relations/%s must be array (relation is many)", k)
			}
			ids = []string{v}
		case []any:
			if !def.many {
				return nil, invalid("relations/%s must be string (relation is not many)", k)
			}
			for _, x := range v {
				str, ok := x.(string)
				if !ok {
					return nil, invalid("relations/%s must contain strings", k)
				}
				ids = append(ids, str)
			}
		case map[string]any:
			return nil, invalid("relations/%s: search-query relations are not supported by the Port simulator", k)
		default:
			return nil, invalid("relations/%s must be string, array of strings or null", k)
		}
		for _, id := range ids {
			if err := checkEntityID(id); err != nil {
				return nil, invalid("relations/%s: %v", k, err)
			}
			if def.target == bp.id && id == c.id {
				continue
			}
			key := entityKey{def.target, id}
			if _, ok := s.entities[def.target][id]; !ok && !seen[key] {
				seen[key] = true
				missing = append(missing, key)
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(bp.relations)) {
		if !bp.relations[k].required {
			continue
		}
		switch v := c.rels[k].(type) {
		case nil:
			return nil, invalid("relations: missing required relation %q", k)
		case []any:
			if len(v) == 0 {
				return nil, invalid("relations: missing required relation %q", k)
			}
		}
	}
	return missing, nil
}

// idsLocked returns bp's entity identifiers in search order: computed once
// and kept until an entity of bp is added or deleted (searches page through
// them). Port does not sort search results, so neither does the simulator:
// the order is a hash of the identifier, stable between calls (the cursor
// depends on it) but unrelated to the identifiers' own order. s.mu is held.
func (s *Server) idsLocked(bp string) []string {
	if ids, ok := s.searchOrder[bp]; ok {
		return ids
	}
	keyed := make([][2]string, 0, len(s.index[bp]))
	for id := range s.index[bp] {
		keyed = append(keyed, [2]string{searchKey(id), id})
	}
	slices.SortFunc(keyed, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	ids := make([]string, len(keyed))
	for i, k := range keyed {
		ids[i] = k[1]
	}
	s.searchOrder[bp] = ids
	return ids
}

// indexUpdate is a write on its way to the search index: e is the entity
// as written, nil when deleted.
type indexUpdate struct {
	key entityKey
	e   *entity
	at  time.Time
}

// reindexLocked queues a write for the search index, which it reaches
// Options.SearchLag after now. s.mu is held.
func (s *Server) reindexLocked(k entityKey, e *entity, now time.Time) {
	s.pending = append(s.pending, indexUpdate{key: k, e: e, at: now.Add(s.opts.SearchLag)})
	if s.opts.SearchLag <= 0 {
		s.catchUpLocked(now)
	}
}

// catchUpLocked applies the writes due by now to the search index, in the
// order they were made. s.mu is held.
func (s *Server) catchUpLocked(now time.Time) {
	n := 0
	for _, u := range s.pending {
		if u.at.After(now) {
			break
		}
		n++
		idx := s.index[u.key.blueprint]
		if idx == nil {
			continue // blueprint deleted since
		}
		_, had := idx[u.key.identifier]
		if u.e == nil {
			delete(idx, u.key.identifier)
		} else {
			idx[u.key.identifier] = u.e
		}
		if had != (u.e != nil) {
			delete(s.searchOrder, u.key.blueprint)
		}
	}
	s.pending = s.pending[n:]
}

// searchKey is an identifier's position in search order.
func searchKey(id string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], h.Sum64()) // big-endian: bytes sort as the number
	return string(b[:]) + id
}

func compareSearchOrder(a, b string) int { return strings.Compare(searchKey(a), searchKey(b)) }

func (e *entity) view(bp string) map[string]any {
	out := map[string]any{
		"identifier": e.id,
		"blueprint":  bp,
		"properties": e.props,
		"relations":  e.rels,
		"createdAt":  e.createdAt.UTC().Format(time.RFC3339Nano),
		"updatedAt":  e.updatedAt.UTC().Format(time.RFC3339Nano),
		"createdBy":  "portsim",
		"updatedBy":  "portsim",
	}
	if e.title != nil {
		out["title"] = *e.title
	}
	if e.icon != nil {
		out["icon"] = *e.icon
	}
	if e.team != nil {
		out["team"] = e.team
	}
	return out
}

func (s *Server) lookupBlueprintLocked(id string) (*blueprint, *apiError) {
	bp, ok := s.blueprints[id]
	if !ok {
		return nil, notFound("blueprint %q not found", id)
	}
	return bp, nil
}

func (s *Server) createEntity(bpID string, q url.Values, body []byte) (int, any, *apiError) {
	f, err := parseFlags(q, postFlags...)
	if err != nil {
		return 0, nil, err
	}
	raw, derr := decodeObject(body)
	if derr != nil {
		return 0, nil, derr
	}
	b, err := parseEntityBody(raw)
	if err != nil {
		return 0, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	bp, err := s.lookupBlueprintLocked(bpID)
	if err != nil {
		return 0, nil, err
	}
	e, _, err := s.writeEntityLocked(bp, b, modePost, f)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, map[string]any{"ok": true, "entity": e.view(bpID)}, nil
}

// bulkUpsert serves a bulk upsert; skipFirst (FaultOmit with Unapplied)
// leaves the first entity unwritten and out of the answer.
func (s *Server) bulkUpsert(bpID string, q url.Values, body []byte, skipFirst bool) (int, any, *apiError) {
	f, err := parseFlags(q, postFlags...)
	if err != nil {
		return 0, nil, err
	}
	list, err := bulkEntities(body, maxBulkEntities)
	if err != nil {
		return 0, nil, err
	}
	if err := checkBulkSchema(list); err != nil {
		return 0, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	bp, err := s.lookupBlueprintLocked(bpID)
	if err != nil {
		return 0, nil, err
	}
	for _, raw := range list {
		if m, ok := raw.(map[string]any); ok {
			id, _ := m["identifier"].(string)
			if e := s.batchFails[entityKey{bp.id, id}]; e != nil {
				return 0, nil, e
			}
		}
	}
	if s.opts.CreateExistingRefusesRequest && !f.upsert {
		for _, raw := range list {
			if b, err := parseEntityBody(raw); err == nil && b.id != "" && s.entities[bp.id][b.id] != nil {
				return 0, nil, conflict("entity %q of blueprint %q already exists", b.id, bp.id)
			}
		}
	}
	oks, fails := []any{}, []any{}
	for i, raw := range list {
		if skipFirst && i == 0 {
			continue
		}
		b, err := parseEntityBody(raw)
		var e *entity
		var created bool
		if err == nil && !f.upsert && s.opts.CreateExistingUnwritten && s.entities[bp.id][b.id] != nil && b.id != "" {
			oks = append(oks, map[string]any{"identifier": b.id, "index": i, "created": false})
			continue
		}
		if err == nil {
			e, created, err = s.writeEntityLocked(bp, b, modePost, f)
		}
		if err != nil {
			// Port reports the identifier it was sent, or "unknown".
			id := "unknown"
			if m, ok := raw.(map[string]any); ok {
				if str, ok := m["identifier"].(string); ok {
					id = str
				}
			}
			fails = append(fails, map[string]any{"identifier": id, "index": i, "statusCode": err.status, "error": err.code, "message": err.msg})
			continue
		}
		oks = append(oks, map[string]any{"identifier": e.id, "index": i, "created": created})
	}
	status := http.StatusOK
	if len(fails) > 0 {
		status = http.StatusMultiStatus
	}
	return status, map[string]any{"ok": len(fails) == 0, "entities": oks, "errors": fails}, nil
}

func (s *Server) listEntities(bpID string) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.lookupBlueprintLocked(bpID); err != nil {
		return 0, nil, err
	}
	out := []any{}
	for _, id := range slices.Sorted(maps.Keys(s.entities[bpID])) {
		out = append(out, s.entities[bpID][id].view(bpID))
	}
	return http.StatusOK, map[string]any{"ok": true, "entities": out}, nil
}

// countEntities answers GET /v1/blueprints/{bp}/entities-count: every
// entity of the blueprint, whoever made it.
func (s *Server) countEntities(bpID string) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.lookupBlueprintLocked(bpID); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"ok": true, "count": len(s.entities[bpID])}, nil
}

func (s *Server) getEntity(bpID, id string) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.lookupBlueprintLocked(bpID); err != nil {
		return 0, nil, err
	}
	e, ok := s.entities[bpID][id]
	if !ok {
		return 0, nil, notFound("entity %q of blueprint %q not found", id, bpID)
	}
	return http.StatusOK, map[string]any{"ok": true, "entity": e.view(bpID)}, nil
}

// changeEntity serves PUT (replace) and PATCH (update given fields).
func (s *Server) changeEntity(bpID, id string, q url.Values, body []byte, patch bool) (int, any, *apiError) {
	f, err := parseFlags(q, "create_missing_related_entities")
	if err != nil {
		return 0, nil, err
	}
	raw, err := decodeObject(body)
	if err != nil {
		return 0, nil, err
	}
	b, err := parseEntityBody(raw)
	if err != nil {
		return 0, nil, err
	}
	if b.id != "" && b.id != id {
		return 0, nil, invalid("identifier %q does not match the path identifier %q", b.id, id)
	}
	b.id = id
	s.mu.Lock()
	defer s.mu.Unlock()
	bp, err := s.lookupBlueprintLocked(bpID)
	if err != nil {
		return 0, nil, err
	}
	mode := modePut
	if patch {
		mode = modePatch
	}
	e, _, err := s.writeEntityLocked(bp, b, mode, f)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"ok": true, "entity": e.view(bpID)}, nil
}

// dependentsLocked returns the entities outside del whose relations point
// at an entity in del.
func (s *Server) dependentsLocked(del map[entityKey]bool) []entityKey {
	targets := map[string]bool{}
	for k := range del {
		targets[k.blueprint] = true
	}
	var out []entityKey
	for _, bpID := range slices.Sorted(maps.Keys(s.blueprints)) {
		bp := s.blueprints[bpID]
		for _, eid := range slices.Sorted(maps.Keys(s.entities[bpID])) {
			src := entityKey{bpID, eid}
			if del[src] {
				continue
			}
			e := s.entities[bpID][eid]
			if s.pointsInto(bp, e, del, targets) {
				out = append(out, src)
			}
		}
	}
	return out
}

func (s *Server) pointsInto(bp *blueprint, e *entity, del map[entityKey]bool, targets map[string]bool) bool {
	for rk, v := range e.rels {
		def, ok := bp.relations[rk]
		if !ok || !targets[def.target] {
			continue
		}
		switch x := v.(type) {
		case string:
			if del[entityKey{def.target, x}] {
				return true
			}
		case []any:
			for _, y := range x {
				if id, ok := y.(string); ok && del[entityKey{def.target, id}] {
					return true
				}
			}
		}
	}
	return false
}

// deleteLocked deletes del; with cascade it also deletes every entity that
// (transitively) relates to one being deleted, otherwise dependents make the
// whole operation fail.
func (s *Server) deleteLocked(del map[entityKey]bool, cascade bool) *apiError {
	for {
		deps := s.dependentsLocked(del)
		if len(deps) == 0 {
			break
		}
		if !cascade {
			return &apiError{status: http.StatusUnprocessableEntity, code: "has_dependents",
				msg: fmt.Sprintf("entity has dependents (e.g. %q of blueprint %q); use delete_dependents=true", deps[0].identifier, deps[0].blueprint)}
		}
		for _, d := range deps {
			del[d] = true
		}
	}
	now := s.opts.Now()
	for k := range del {
		delete(s.entities[k.blueprint], k.identifier)
		s.reindexLocked(k, nil, now)
	}
	return nil
}

func (s *Server) deleteEntity(bpID, id string, q url.Values) (int, any, *apiError) {
	cascade, err := boolParam(q, "delete_dependents")
	if err != nil {
		return 0, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.lookupBlueprintLocked(bpID); err != nil {
		return 0, nil, err
	}
	if _, ok := s.entities[bpID][id]; !ok {
		return 0, nil, notFound("entity %q of blueprint %q not found", id, bpID)
	}
	if s.keeps[entityKey{bpID, id}] {
		return 0, nil, invalid("entity %q of blueprint %q cannot be deleted", id, bpID)
	}
	if err := s.deleteLocked(map[entityKey]bool{{bpID, id}: true}, cascade); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"ok": true}, nil
}

// bulkDelete serves a bulk delete; skipFirst (FaultOmit with Unapplied)
// keeps the first entity and leaves it out of the answer.
func (s *Server) bulkDelete(bpID string, q url.Values, body []byte, skipFirst bool) (int, any, *apiError) {
	cascade, err := boolParam(q, "delete_dependents")
	if err != nil {
		return 0, nil, err
	}
	list, err := bulkEntities(body, maxBulkDelete)
	if err != nil {
		return 0, nil, err
	}
	ids := make([]string, 0, len(list))
	for _, x := range list {
		id, ok := x.(string)
		if !ok {
			return 0, nil, invalid("body/entities must contain strings")
		}
		ids = append(ids, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.lookupBlueprintLocked(bpID); err != nil {
		return 0, nil, err
	}
	del := map[entityKey]bool{}
	deleted := []string{}
	for i, id := range ids {
		if skipFirst && i == 0 {
			continue
		}
		if _, ok := s.entities[bpID][id]; ok && !del[entityKey{bpID, id}] && !s.keeps[entityKey{bpID, id}] {
			del[entityKey{bpID, id}] = true
			deleted = append(deleted, id)
		}
	}
	if err := s.deleteLocked(del, cascade); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"ok": true, "deletedEntities": deleted}, nil
}

// checkBulkSchema checks the entities of a bulk upsert against the route's
// JSON schema, which Port applies to the whole body before any entity is
// written: one entity that does not match (an identifier or relation
// target outside the pattern, a title that is not a string, properties
// that are not an object, …) fails the whole request with a 422, not a
// 207 naming it. Blueprint rules (declared properties, types, relation
// targets) are per entity and come later.
func checkBulkSchema(list []any) *apiError {
	for i, raw := range list {
		m, ok := raw.(map[string]any)
		if !ok {
			return invalid("body/entities/%d must be object", i)
		}
		if v, ok := m["identifier"]; ok {
			switch id := v.(type) {
			case string:
				if err := checkEntityID(id); err != nil {
					return invalid("body/entities/%d/identifier %v", i, err)
				}
			case map[string]any:
			default:
				return invalid("body/entities/%d/identifier must be string or a search query", i)
			}
		}
		for _, k := range []string{"title", "icon"} {
			if v, ok := m[k]; ok {
				if _, ok := v.(string); !ok {
					return invalid("body/entities/%d/%s must be string", i, k)
				}
			}
		}
		if v, ok := m["team"]; ok {
			switch t := v.(type) {
			case string, map[string]any:
			case []any:
				for _, x := range t {
					if _, ok := x.(string); !ok {
						return invalid("body/entities/%d/team must be a string, an array of strings or a query", i)
					}
				}
			default:
				return invalid("body/entities/%d/team must be a string, an array of strings or a query", i)
			}
		}
		if v, ok := m["properties"]; ok {
			if _, ok := v.(map[string]any); !ok {
				return invalid("body/entities/%d/properties must be object", i)
			}
		}
		if v, ok := m["relations"]; ok {
			rels, ok := v.(map[string]any)
			if !ok {
				return invalid("body/entities/%d/relations must be object", i)
			}
			for _, k := range slices.Sorted(maps.Keys(rels)) {
				if err := checkRelationSchema(rels[k]); err != nil {
					return invalid("body/entities/%d/relations/%s %v", i, k, err)
				}
			}
		}
	}
	return nil
}

// checkRelationSchema checks a relation value against the route schema: an
// identifier, a list of identifiers (the pattern only: the schema sets no
// length on list items), null or a search query.
func checkRelationSchema(v any) error {
	switch x := v.(type) {
	case nil, map[string]any:
		return nil
	case string:
		return checkEntityID(x)
	case []any:
		for _, y := range x {
			id, ok := y.(string)
			if !ok {
				return fmt.Errorf("must contain strings")
			}
			if !entityIDRe.MatchString(id) || id == "." || id == ".." {
				return fmt.Errorf("item %q must match pattern %s", id, entityIDRe)
			}
		}
		return nil
	}
	return fmt.Errorf("must be string, array of strings, null or a search query")
}

// bulkEntities reads a bulk body, {"entities": [...]} and nothing else,
// holding 1 to max items, as Port checks it.
func bulkEntities(body []byte, max int) ([]any, *apiError) {
	m, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	for k := range m {
		if k != "entities" {
			return nil, invalid("body must NOT have additional properties: %q", k)
		}
	}
	list, ok := m["entities"].([]any)
	if !ok {
		return nil, invalid("body must have required array property 'entities'")
	}
	if len(list) < 1 || len(list) > max {
		return nil, invalid("body/entities must have 1..%d items, got %d", max, len(list))
	}
	return list, nil
}
