package port

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// SchemaChange is what EnsureBlueprints would do to one blueprint.
type SchemaChange struct {
	Blueprint string
	Action    string   // create, update or unchanged
	Changes   []string // an update's changed keys, e.g. "schema.properties.ferryOwner (added)"
}

// Plan actions.
const (
	ActionCreate    = "create"
	ActionUpdate    = "update"
	ActionUnchanged = "unchanged"
)

// PlanBlueprints reads Port's blueprints and says what EnsureBlueprints
// would do with these, writing nothing. The sink then validates and
// compares entities against the blueprints as EnsureBlueprints would make
// them; a blueprint Port does not hold yet has no entities in Port.
func (s *Sink) PlanBlueprints(ctx context.Context, blueprints []json.RawMessage) ([]SchemaChange, error) {
	desired, ids, err := s.desiredBlueprints(blueprints)
	if err != nil {
		return nil, err
	}
	existing, err := s.listBlueprints(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkTargets(desired, existing); err != nil {
		return nil, err
	}
	var out []SchemaChange
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		want := desired[id]
		ch := SchemaChange{Blueprint: id, Action: ActionCreate}
		if cur, ok := existing[id]; ok {
			want = mergeBlueprint(cur, want)
			ch.Action = ActionUnchanged
			if !sameBlueprint(cur, want) {
				ch.Action, ch.Changes = ActionUpdate, diffBlueprint(cur, want)
			}
		}
		bp, err := blueprintFromMap(want)
		if err != nil {
			return nil, fmt.Errorf("port: %w", err)
		}
		s.bps[id] = bp
		s.absent[id] = ch.Action == ActionCreate
		out = append(out, ch)
	}
	return out, nil
}

// diffBlueprint names the keys in which two blueprint bodies differ, after
// Port's defaults: properties and relations one by one, other keys whole.
func diffBlueprint(cur, want map[string]any) []string {
	a, b := normalizeBlueprint(cur), normalizeBlueprint(want)
	var out []string
	sub := func(prefix string, x, y any) {
		xm, _ := x.(map[string]any)
		ym, _ := y.(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(ym)) {
			old, had := xm[k]
			switch {
			case !had:
				out = append(out, prefix+k+" (added)")
			case !sameJSON(old, ym[k]):
				out = append(out, prefix+k+" (changed)")
			}
		}
	}
	keys := slices.Collect(maps.Keys(b))
	for k := range a {
		if _, ok := b[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch k {
		case "schema":
			as, _ := a[k].(map[string]any)
			bs, _ := b[k].(map[string]any)
			sub("schema.properties.", as["properties"], bs["properties"])
			if !sameJSON(as["required"], bs["required"]) {
				out = append(out, "schema.required (changed)")
			}
		case "relations", "mirrorProperties", "calculationProperties", "aggregationProperties":
			sub(k+".", a[k], b[k])
		default:
			if !sameJSON(a[k], b[k]) {
				out = append(out, k+" (changed)")
			}
		}
	}
	return out
}

// Plan is what Finish would do with the queued entities, found without
// writing anything to Port.
type Plan struct {
	Owner      string
	Blueprints []BlueprintPlan // sorted by blueprint
}

// BlueprintPlan is a plan's entities of one blueprint.
type BlueprintPlan struct {
	Blueprint string
	Create    []string       // identifiers Port does not hold
	Update    []EntityUpdate // owned entities that would change, and adopted ones
	Unchanged int            // owned entities Port holds as they would be written
	// Delete are the stale owned entities the deletion rules allow
	// deleting; Refused those they do not, and why.
	Delete  []string
	Refused *RefusedDeletes
	// Conflicts are entities of another owner (or none): not written.
	// Invalid would fail before reaching Port (validation, relation
	// policy).
	Conflicts []Conflict
	Invalid   []EntityError
}

// EntityUpdate is one entity a run would overwrite.
type EntityUpdate struct {
	Identifier string
	// AdoptedFrom is the owner it is taken over from ("" when it is the
	// run's own); Unowned marks one taken over from no owner.
	AdoptedFrom string
	Unowned     bool
	// Changes lists what changes; nil for an adopted entity Port was only
	// asked the owner of.
	Changes []FieldChange
}

// RefusedDeletes are stale entities the deletion rules keep.
type RefusedDeletes struct {
	Identifiers []string
	Owned       int // the blueprint's owned entities
	Reason      string
}

// Changes reports whether applying the plan would change anything in Port.
func (p *Plan) Changes() bool {
	for _, b := range p.Blueprints {
		if len(b.Create)+len(b.Update)+len(b.Delete) > 0 {
			return true
		}
	}
	return false
}

// Plan works out what Finish would do — which entities it would create,
// update (and how), leave unchanged, delete, or refuse — reading Port
// (the owned listings, ownership and relation-target lookups) and writing
// nothing. Call PlanBlueprints first. complete says, as for Finish, which
// blueprints' streams all completed; refuse, when not empty, is why no
// deletion would happen at all (e.g. the run would resume an unfinished
// sync). The spool is removed whatever the outcome.
func (s *Sink) Plan(ctx context.Context, complete map[string]bool, refuse string) (plan Plan, err error) {
	sp, invalid, err := s.take(ctx)
	if err != nil {
		return Plan{}, err
	}
	defer func() {
		if cerr := sp.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	st := newRunState(sp)
	for _, e := range invalid {
		st.fail(entityKey{e.Blueprint, e.Identifier}, e.Message)
	}
	plan = Plan{Owner: s.cfg.Owner}
	byBP := map[string]*BlueprintPlan{}
	get := func(bp string) *BlueprintPlan {
		if byBP[bp] == nil {
			byBP[bp] = &BlueprintPlan{Blueprint: bp}
		}
		return byBP[bp]
	}
	o, err := s.order(ctx, st)
	if err != nil {
		return plan, err
	}
	if err := s.claim(ctx, st, o.defs); err != nil {
		return plan, err
	}
	for _, level := range o.levels {
		for _, bpID := range level {
			def := o.defs[bpID]
			after := ""
			for {
				rows, err := sp.rowsAfter(ctx, bpID, selValid, after, pageSize)
				if err != nil {
					return plan, err
				}
				if len(rows) == 0 {
					break
				}
				after = rows[len(rows)-1].id
				if err := s.planPage(ctx, st, o, def, rows, get(bpID)); err != nil {
					return plan, err
				}
			}
		}
	}
	if err := s.planDeletes(ctx, st, complete, refuse, get); err != nil {
		return plan, err
	}
	for k, msg := range st.failed {
		if owner, ok := st.conflicts[k]; ok {
			bp := get(k.blueprint)
			bp.Conflicts = append(bp.Conflicts, Conflict{Blueprint: k.blueprint, Identifier: k.identifier, Owner: owner})
			continue
		}
		bp := get(k.blueprint)
		bp.Invalid = append(bp.Invalid, EntityError{Blueprint: k.blueprint, Identifier: k.identifier, Message: msg})
	}
	for _, id := range slices.Sorted(maps.Keys(byBP)) {
		b := byBP[id]
		slices.SortFunc(b.Conflicts, func(x, y Conflict) int { return cmp.Compare(x.Identifier, y.Identifier) })
		slices.SortFunc(b.Invalid, compareEntityErrors)
		plan.Blueprints = append(plan.Blueprints, *b)
	}
	return plan, nil
}

// planPage classifies one page of entities. Every relation is resolved as
// it would be once the run's own targets exist (those it produces valid
// and that have not failed), the rest looked up in Port.
func (s *Sink) planPage(ctx context.Context, st *runState, o *loadOrder, def *Blueprint, rows []spoolRow, bp *BlueprintPlan) error {
	ws, err := decodeWork(o, def, rows)
	if err != nil {
		return err
	}
	for _, w := range ws {
		maps.Copy(w.rels, w.deferred)
	}
	effs, err := s.resolve(ctx, st, def, ws, relsOf, true)
	if err != nil {
		return err
	}
	if err := s.apply(ctx, st, ws, effs); err != nil {
		return err
	}
	for _, w := range ws {
		if st.failedKey(w.key) {
			continue // a conflict or invalid: listed apart
		}
		st.mu.Lock()
		from, adopted := st.adopted[w.key]
		st.mu.Unlock()
		if w.stored == nil && !adopted {
			bp.Create = append(bp.Create, w.key.identifier)
			continue
		}
		up := EntityUpdate{Identifier: w.key.identifier, AdoptedFrom: from, Unowned: adopted && from == ""}
		if w.stored != nil {
			var old map[string]any
			if err := json.Unmarshal(w.stored, &old); err != nil {
				return fmt.Errorf("port: spool: entity %q: %w", w.key.identifier, err)
			}
			// Round-trip the new side too, so both compare as JSON.
			var next map[string]any
			if err := json.Unmarshal(encodeCanon(canonEntity(def, s.entityMap(def, w))), &next); err != nil {
				return fmt.Errorf("port: entity %q: %w", w.key.identifier, err)
			}
			if filled := withStoredDefaults(def, next, old); filled != nil {
				next = filled // a null against the default Port gave: no change (sameAsStored)
			}
			up.Changes = diffCanon(old, next)
			if len(up.Changes) == 0 && !adopted {
				bp.Unchanged++
				continue
			}
		}
		bp.Update = append(bp.Update, up)
	}
	return nil
}

// planDeletes lists, for every blueprint of complete, the stale owned
// entities, allowed or refused by the rules Finish applies.
func (s *Sink) planDeletes(ctx context.Context, st *runState, complete map[string]bool, refuse string, get func(string) *BlueprintPlan) error {
	if s.cfg.Owner == "" {
		return nil // nothing is known to be the run's: nothing is ever deleted
	}
	for _, id := range slices.Sorted(maps.Keys(complete)) {
		def, err := s.blueprint(ctx, id)
		if err != nil {
			return err
		}
		if def == nil || s.absent[id] {
			continue // Port holds none of it
		}
		if _, ok := def.Properties[OwnerProperty]; !ok {
			continue // Finish deletes nothing of it either
		}
		owned, listed, err := st.ownedOf(id)
		if !listed {
			owned, err = s.listOwned(ctx, st.sp, def)
		}
		if err != nil {
			return fmt.Errorf("port: list the entities of %s owned by %q: %w", id, s.cfg.Owner, err)
		}
		stale, err := st.sp.stale(ctx, id)
		if err != nil {
			return err
		}
		if len(stale) == 0 {
			continue
		}
		var reason string
		switch {
		case refuse != "":
			reason = refuse
		case s.cfg.NoDelete:
			reason = "deletion is off (--no-delete)"
		case !complete[id]:
			reason = "not every stream feeding it completed, or a record of it failed: nothing of it is deleted"
		default:
			reason = thresholdReason(len(stale), owned, s.cfg.DeleteThreshold)
		}
		bp := get(id)
		if reason == "" {
			bp.Delete = stale
			continue
		}
		bp.Refused = &RefusedDeletes{Identifiers: stale, Owned: owned, Reason: reason}
	}
	return nil
}

// listBlueprints reads every blueprint Port holds, by identifier.
func (s *Sink) listBlueprints(ctx context.Context) (map[string]map[string]any, error) {
	var list struct {
		Blueprints []map[string]any `json:"blueprints"`
	}
	if _, err := s.api.do(ctx, http.MethodGet, "/blueprints", nil, nil, &list); err != nil {
		return nil, fmt.Errorf("port: list blueprints: %w", err)
	}
	existing := map[string]map[string]any{}
	for _, b := range list.Blueprints {
		if id, ok := b["identifier"].(string); ok {
			existing[id] = b
		}
	}
	return existing, nil
}

// desiredBlueprints reads the blueprints to ensure, with the ownership
// property when the sink has an owner, and their identifiers in order.
func (s *Sink) desiredBlueprints(blueprints []json.RawMessage) (map[string]map[string]any, []string, error) {
	desired := map[string]map[string]any{}
	var ids []string
	for i, raw := range blueprints {
		m, err := decodeObject(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("port: blueprint %d: %w", i, err)
		}
		bp, err := blueprintFromMap(m)
		if err != nil {
			return nil, nil, fmt.Errorf("port: %w", err)
		}
		if _, dup := desired[bp.Identifier]; dup {
			return nil, nil, fmt.Errorf("port: blueprint %q given twice", bp.Identifier)
		}
		if s.cfg.Owner != "" {
			addOwnerProperty(m)
		}
		desired[bp.Identifier] = m
		ids = append(ids, bp.Identifier)
	}
	return desired, ids, nil
}

// checkTargets refuses relations to blueprints neither desired nor in Port.
func checkTargets(desired, existing map[string]map[string]any) error {
	for _, id := range slices.Sorted(maps.Keys(desired)) {
		for _, t := range relationTargets(desired[id]) {
			_, inSpec := desired[t]
			_, inPort := existing[t]
			if !inSpec && !inPort {
				return fmt.Errorf("port: blueprint %q: relation target %q is neither in the spec nor in Port", id, t)
			}
		}
	}
	return nil
}

// String is a one-line account of a field change, for logs.
func (c FieldChange) String() string {
	show := func(v any) string {
		if v == nil {
			return "(none)"
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return strings.TrimSpace(string(b))
	}
	return c.Field + ": " + show(c.Old) + " → " + show(c.New)
}
