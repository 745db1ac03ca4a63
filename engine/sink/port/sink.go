package port

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-etl/ferry/engine/sink"
)

type entityKey struct{ blueprint, identifier string }

// blueprint returns Port's definition of id, fetching and caching it on
// first use; nil (no error) when Port has no such blueprint.
func (s *Sink) blueprint(ctx context.Context, id string) (*Blueprint, error) {
	s.mu.Lock()
	bp, ok := s.bps[id]
	s.mu.Unlock()
	if ok {
		return bp, nil
	}
	var out struct {
		Blueprint map[string]any `json:"blueprint"`
	}
	_, err := s.api.do(ctx, http.MethodGet, "/blueprints/"+url.PathEscape(id), nil, nil, &out)
	var se *StatusError
	switch {
	case errors.As(err, &se) && se.Status == http.StatusNotFound:
		bp = nil
	case err != nil:
		return nil, fmt.Errorf("port: blueprint %q: %w", id, err)
	default:
		if bp, err = blueprintFromMap(out.Blueprint); err != nil {
			return nil, fmt.Errorf("port: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bps[id] = bp
	return bp, nil
}

// Write validates e and buffers it until Finish. An invalid entity is
// recorded as failed (and still counts as produced, so reconciliation never
// deletes it); Write returns an error only when it cannot proceed (ctx done,
// Port unreachable while fetching the blueprint).
func (s *Sink) Write(ctx context.Context, e sink.Entity) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	bp, err := s.blueprint(ctx, e.Blueprint)
	if err != nil {
		return err
	}
	id, _ := e.Data["identifier"].(string)
	if e.Merge {
		s.mu.Lock()
		if prev, ok := s.pending[e.Blueprint][id]; ok {
			e.Data = mergeEntity(prev, e.Data)
		}
		s.mu.Unlock()
	}
	var errs []error
	if bp == nil {
		errs = []error{fmt.Errorf("blueprint %q does not exist in Port", e.Blueprint)}
	} else {
		errs = ValidateEntity(bp, e)
		if props, ok := e.Data["properties"].(map[string]any); ok && s.cfg.Owner != "" {
			if _, set := props[OwnerProperty]; set {
				errs = append(errs, &FieldError{Field: "properties." + OwnerProperty, Message: "is reserved for ferry's ownership marker"})
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id != "" {
		if s.produced[e.Blueprint] == nil {
			s.produced[e.Blueprint] = map[string]bool{}
		}
		s.produced[e.Blueprint][id] = true
	}
	if len(errs) > 0 {
		if s.pending[e.Blueprint] != nil {
			delete(s.pending[e.Blueprint], id)
		}
		s.invalid = append(s.invalid, EntityError{Blueprint: e.Blueprint, Identifier: id, Message: joinErrors(errs)})
		return nil
	}
	if s.pending[e.Blueprint] == nil {
		s.pending[e.Blueprint] = map[string]map[string]any{}
	}
	s.pending[e.Blueprint][id] = e.Data
	return nil
}

// mergeEntity combines two entities of one identifier (on_duplicate:
// merge): later non-null title, icon, team, properties and single
// relations win; a relation that is a list on either side becomes the
// sorted union of both.
func mergeEntity(prev, next map[string]any) map[string]any {
	out := maps.Clone(prev)
	for k, v := range next {
		switch k {
		case "properties", "relations":
			continue
		}
		if v != nil {
			out[k] = v
		}
	}
	props := map[string]any{}
	if p, ok := prev["properties"].(map[string]any); ok {
		maps.Copy(props, p)
	}
	if p, ok := next["properties"].(map[string]any); ok {
		for k, v := range p {
			if v != nil {
				props[k] = v
			}
		}
	}
	out["properties"] = props
	rels := map[string]any{}
	if r, ok := prev["relations"].(map[string]any); ok {
		maps.Copy(rels, r)
	}
	if r, ok := next["relations"].(map[string]any); ok {
		for k, v := range r {
			old, had := rels[k]
			_, oldList := old.([]any)
			_, newList := v.([]any)
			switch {
			case had && (oldList || newList):
				rels[k] = unionIDs(old, v)
			case v != nil:
				rels[k] = v
			}
		}
	}
	out["relations"] = rels
	return out
}

// unionIDs is the sorted, de-duplicated union of two relation values
// (each a list of identifiers, one identifier, or null).
func unionIDs(a, b any) []any {
	set := map[string]bool{}
	for _, v := range []any{a, b} {
		switch x := v.(type) {
		case string:
			set[x] = true
		case []any:
			for _, e := range x {
				if s, ok := e.(string); ok {
					set[s] = true
				}
			}
		}
	}
	out := make([]any, 0, len(set))
	for _, id := range slices.Sorted(maps.Keys(set)) {
		out = append(out, id)
	}
	return out
}

func joinErrors(errs []error) string {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// runState collects the outcome of one Finish; batches update it
// concurrently.
type runState struct {
	mu         sync.Mutex
	ok         map[entityKey]bool
	failed     map[entityKey]string
	exists     map[entityKey]bool   // Port lookups of relation targets
	unknown    map[entityKey]string // relation targets whose lookup failed
	refs       map[entityKey]bool   // relation targets of entities written this run
	dropped    map[string]int       // "blueprint.relation" -> targets dropped
	dropSample map[string]string
	conflicts  map[entityKey]string         // entities of another owner (or none), not written
	adopted    map[entityKey]string         // entities taken over from their owner
	owned      map[string]map[string]string // blueprint -> identifier -> owner, listed before writing
	listErr    map[string]error             // blueprint -> why its listing failed
}

// listed records a blueprint's owned entities, or why they are unknown.
func (st *runState) listed(bp string, owned map[string]string, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if err != nil {
		st.listErr[bp] = err
		return
	}
	st.owned[bp] = owned
}

// ownedOf returns what listed recorded for bp: both nil when bp was not
// listed.
func (st *runState) ownedOf(bp string) (map[string]string, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.owned[bp], st.listErr[bp]
}

func newRunState() *runState {
	return &runState{ok: map[entityKey]bool{}, failed: map[entityKey]string{}, exists: map[entityKey]bool{},
		unknown: map[entityKey]string{}, refs: map[entityKey]bool{}, dropped: map[string]int{}, dropSample: map[string]string{},
		conflicts: map[entityKey]string{}, adopted: map[entityKey]string{}, owned: map[string]map[string]string{}, listErr: map[string]error{}}
}

// conflict records that k belongs to owner ("" for nobody) and fails it.
func (st *runState) conflict(k entityKey, owner string) {
	st.fail(k, conflictMessage(owner))
	st.mu.Lock()
	defer st.mu.Unlock()
	st.conflicts[k] = owner
}

func (st *runState) adopt(k entityKey, from string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.adopted[k] = from
}

func (st *runState) succeed(k entityKey) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.ok[k] = true
}

func (st *runState) fail(k entityKey, msg string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.failed[k]; !ok {
		st.failed[k] = msg
	}
}

func (st *runState) isOK(k entityKey) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	_, bad := st.failed[k]
	return st.ok[k] && !bad
}

// Finish writes everything buffered, then reconciles. Blueprints are written
// in relation order (targets first). Relations inside a relation cycle —
// self-relations such as resource-graph node → node — are left out of the
// first pass and written in a second pass with merge=true, once every
// entity of the cycle exists. Relation targets neither written by this run
// nor present in Port follow the relation policy. Per-entity failures do not
// stop the run; if any occurred the returned error wraps ErrEntitiesFailed.
//
// complete[bp] must be true only when every stream feeding bp finished
// without error; only those blueprints are reconciled (see doc.go).
func (s *Sink) Finish(ctx context.Context, complete map[string]bool) (Report, error) {
	s.mu.Lock()
	pending, produced, invalid := s.pending, s.produced, s.invalid
	s.pending, s.produced, s.invalid = map[string]map[string]map[string]any{}, map[string]map[string]bool{}, nil
	s.mu.Unlock()

	st := newRunState()
	for _, e := range invalid {
		st.fail(entityKey{e.Blueprint, e.Identifier}, e.Message)
	}
	rep := Report{Owner: s.cfg.Owner}
	err := s.write(ctx, st, pending)
	if err == nil {
		err = s.reconcile(ctx, st, complete, produced, &rep)
	}

	for k, n := range st.dropped {
		s.log.Warn("port relation targets missing; relation dropped", "relation", k, "count", n, "example", st.dropSample[k])
		rep.DroppedRelations += n
	}
	for k, msg := range st.failed {
		rep.Errors = append(rep.Errors, EntityError{Blueprint: k.blueprint, Identifier: k.identifier, Message: msg})
	}
	slices.SortFunc(rep.Errors, compareEntityErrors)
	for k, owner := range st.conflicts {
		rep.Conflicts = append(rep.Conflicts, Conflict{Blueprint: k.blueprint, Identifier: k.identifier, Owner: owner})
		s.log.Warn("port entity of another owner not overwritten", "blueprint", k.blueprint, "identifier", k.identifier, "owner", owner)
	}
	slices.SortFunc(rep.Conflicts, func(a, b Conflict) int {
		return cmp.Or(cmp.Compare(a.Blueprint, b.Blueprint), cmp.Compare(a.Identifier, b.Identifier))
	})
	rep.Failed = len(st.failed)
	for k := range st.ok {
		if _, bad := st.failed[k]; !bad {
			rep.Upserted++
			if from, ok := st.adopted[k]; ok {
				rep.Adopted++
				s.log.Info("port entity adopted", "blueprint", k.blueprint, "identifier", k.identifier, "from", from)
			}
		}
	}
	s.log.Info("port load finished", "owner", rep.Owner, "upserted", rep.Upserted, "failed", rep.Failed, "conflicts", len(rep.Conflicts),
		"adopted", rep.Adopted, "deleted", rep.Deleted, "dropped_relations", rep.DroppedRelations)
	if err != nil {
		return rep, err
	}
	var errs []error
	if rep.Failed > 0 {
		errs = append(errs, fmt.Errorf("%w: %d of %d (first: %v)", ErrEntitiesFailed, rep.Failed, rep.Failed+rep.Upserted, rep.Errors[0]))
	}
	if len(rep.ReconcileErrors) > 0 {
		errs = append(errs, fmt.Errorf("%w: %d blueprints (first: %v)", ErrReconcileFailed, len(rep.ReconcileErrors), rep.ReconcileErrors[0]))
	}
	return rep, errors.Join(errs...)
}

func compareEntityErrors(a, b EntityError) int {
	return cmp.Or(cmp.Compare(a.Blueprint, b.Blueprint), cmp.Compare(a.Identifier, b.Identifier))
}

// work is one entity on its way to Port.
type work struct {
	key      entityKey
	data     map[string]any
	rels     map[string]any // relations of this pass, resolved in place
	deferred map[string]any // cycle relations kept for the second pass
	stub     bool           // needs create_missing_related_entities
	body     []byte
}

func (s *Sink) write(ctx context.Context, st *runState, pending map[string]map[string]map[string]any) error {
	defs := map[string]*Blueprint{}
	for _, id := range slices.Sorted(maps.Keys(pending)) {
		bp, err := s.blueprint(ctx, id)
		if err != nil {
			return err
		}
		if bp == nil {
			for eid := range pending[id] {
				st.fail(entityKey{id, eid}, fmt.Sprintf("blueprint %q does not exist in Port", id))
			}
			delete(pending, id)
			continue
		}
		defs[id] = bp
	}
	// Nothing is written before ownership is known: no takeovers.
	ids := map[string][]string{}
	for id := range defs {
		ids[id] = slices.Sorted(maps.Keys(pending[id]))
	}
	if err := s.claim(ctx, st, defs, ids); err != nil {
		return err
	}
	edges := map[string][]string{}
	for id, bp := range defs {
		for _, r := range bp.Relations {
			if _, ok := pending[r.Target]; ok {
				edges[id] = append(edges[id], r.Target)
			}
		}
	}
	levels, comp := layers(slices.Collect(maps.Keys(pending)), edges)
	inCycle := func(bp string, r Relation) bool {
		_, ok := pending[r.Target]
		return ok && comp[bp] == comp[r.Target]
	}

	var second []*work
	for _, level := range levels {
		var all []*work
		for _, bpID := range level {
			def := defs[bpID]
			var ws []*work
			for _, id := range slices.Sorted(maps.Keys(pending[bpID])) {
				data := pending[bpID][id]
				w := &work{key: entityKey{bpID, id}, data: data, rels: map[string]any{}, deferred: map[string]any{}}
				rels, _ := data["relations"].(map[string]any)
				for rk, v := range rels {
					if inCycle(bpID, def.Relations[rk]) {
						w.deferred[rk] = v
					} else {
						w.rels[rk] = v
					}
				}
				ws = append(ws, w)
			}
			if err := s.resolve(ctx, st, def, ws); err != nil {
				return err
			}
			for _, w := range ws {
				w.body = s.entityBody(def, w)
				all = append(all, w)
			}
		}
		if err := s.sendAll(ctx, st, all, false); err != nil {
			return err
		}
		for _, w := range all {
			if len(w.deferred) > 0 && st.isOK(w.key) {
				second = append(second, w)
			}
		}
	}

	// Second pass: the cycle relations, now that every entity exists.
	var all []*work
	for _, w := range second {
		w.rels, w.deferred, w.stub = w.deferred, nil, false
		all = append(all, w)
	}
	byBP := map[string][]*work{}
	for _, w := range all {
		byBP[w.key.blueprint] = append(byBP[w.key.blueprint], w)
	}
	for _, bpID := range slices.Sorted(maps.Keys(byBP)) {
		if err := s.resolve(ctx, st, defs[bpID], byBP[bpID]); err != nil {
			return err
		}
	}
	var send []*work
	for _, w := range all {
		if st.isOK(w.key) && hasTargets(w.rels) {
			w.body = relationsBody(w)
			send = append(send, w)
		}
	}
	return s.sendAll(ctx, st, send, true)
}

func hasTargets(rels map[string]any) bool {
	for _, v := range rels {
		if v == nil {
			continue
		}
		if ids, isList := relationIDs(v); isList && len(ids) == 0 {
			continue
		}
		return true
	}
	return false
}

// entityBody is the JSON sent for the first pass: the entity as mapped,
// with the resolved relations and the ownership marker.
func (s *Sink) entityBody(def *Blueprint, w *work) []byte {
	out := map[string]any{}
	for k, v := range w.data {
		out[k] = v
	}
	props := map[string]any{}
	if p, ok := w.data["properties"].(map[string]any); ok {
		maps.Copy(props, p)
	}
	if _, ok := def.Properties[OwnerProperty]; ok && s.cfg.Owner != "" {
		props[OwnerProperty] = s.cfg.Owner
	}
	out["properties"] = props
	out["relations"] = w.rels
	b, err := json.Marshal(out)
	if err != nil {
		// Data is JSON-shaped by contract; an unencodable value fails the entity.
		return nil
	}
	return b
}

func relationsBody(w *work) []byte {
	b, err := json.Marshal(map[string]any{"identifier": w.key.identifier, "relations": w.rels})
	if err != nil {
		return nil
	}
	return b
}

// resolve applies the relation policy to every relation target of ws that
// was not written successfully in this run and is not already in Port.
func (s *Sink) resolve(ctx context.Context, st *runState, def *Blueprint, ws []*work) error {
	// Targets that need a look in Port, by blueprint.
	need := map[string]map[string]bool{}
	for _, w := range ws {
		for rk, v := range w.rels {
			r := def.Relations[rk]
			ids, _ := relationIDs(v)
			for _, id := range ids {
				k := entityKey{r.Target, id}
				st.mu.Lock()
				_, looked := st.exists[k]
				_, failedLook := st.unknown[k]
				st.mu.Unlock()
				looked = looked || failedLook
				if st.isOK(k) || looked || s.cfg.policy(def.Identifier, rk) == RelationStub {
					continue
				}
				if need[r.Target] == nil {
					need[r.Target] = map[string]bool{}
				}
				need[r.Target][id] = true
			}
		}
	}
	for _, target := range slices.Sorted(maps.Keys(need)) {
		found, err := s.lookup(ctx, target, slices.Sorted(maps.Keys(need[target])))
		if errors.Is(err, ErrMalformedAnswer) {
			// Whether the targets exist is unknown: the entities naming
			// them fail, the rest of the load goes on.
			st.mu.Lock()
			for id := range need[target] {
				st.unknown[entityKey{target, id}] = err.Error()
			}
			st.mu.Unlock()
			continue
		}
		if err != nil {
			return err
		}
		st.mu.Lock()
		for id := range need[target] {
			st.exists[entityKey{target, id}] = found[id]
		}
		st.mu.Unlock()
	}
	for _, w := range ws {
		for _, rk := range slices.Sorted(maps.Keys(w.rels)) {
			v := w.rels[rk]
			r := def.Relations[rk]
			ids, isList := relationIDs(v)
			if ids == nil {
				continue // null or a search query: passed through
			}
			policy := s.cfg.policy(def.Identifier, rk)
			var kept []string
			for _, id := range ids {
				k := entityKey{r.Target, id}
				st.mu.Lock()
				there := st.exists[k]
				unknown, lookupFailed := st.unknown[k]
				st.mu.Unlock()
				switch {
				case st.isOK(k) || there:
					kept = append(kept, id)
				case lookupFailed:
					st.fail(w.key, fmt.Sprintf("relations.%s: whether target %q of blueprint %q exists could not be checked: %s", rk, id, r.Target, unknown))
					kept = append(kept, id)
				case policy == RelationStub:
					kept = append(kept, id)
					w.stub = true
				case policy == RelationFail:
					st.fail(w.key, fmt.Sprintf("relations.%s: target %q of blueprint %q is neither written by this run nor in Port", rk, id, r.Target))
					kept = append(kept, id)
				default:
					st.mu.Lock()
					name := def.Identifier + "." + rk
					st.dropped[name]++
					st.dropSample[name] = id
					st.mu.Unlock()
				}
			}
			st.mu.Lock()
			for _, id := range kept {
				st.refs[entityKey{r.Target, id}] = true
			}
			st.mu.Unlock()
			switch {
			case isList:
				list := make([]any, len(kept))
				for i, id := range kept {
					list[i] = id
				}
				w.rels[rk] = list
			case len(kept) == 1:
				w.rels[rk] = kept[0]
			default:
				w.rels[rk] = nil
			}
		}
	}
	return nil
}

// lookup reports which of ids exist in blueprint target.
func (s *Sink) lookup(ctx context.Context, target string, ids []string) (map[string]bool, error) {
	found := map[string]bool{}
	for chunk := range slices.Chunk(ids, lookupChunk) {
		q := map[string]any{"combinator": "and", "rules": []any{
			map[string]any{"property": "$identifier", "operator": "in", "value": chunk},
		}}
		got, err := s.search(ctx, target, q, false)
		var se *StatusError
		if errors.As(err, &se) && se.Status == http.StatusNotFound {
			return found, nil // no such blueprint: nothing exists
		}
		if err != nil {
			return nil, fmt.Errorf("port: look up %d %s entities: %w", len(chunk), target, err)
		}
		for _, h := range got {
			found[h.id] = true
		}
	}
	return found, nil
}

type batch struct {
	blueprint string
	items     []*work
	merge     bool
	stub      bool
}

// batches packs ws (one blueprint each) into bulk requests of at most 20
// entities and maxBodyBytes.
func (s *Sink) batches(st *runState, ws []*work, merge bool) []batch {
	var out []batch
	open := map[[2]any]*batch{}
	size := map[[2]any]int{}
	const envelope = len(`{"entities":[]}`)
	for _, w := range ws {
		if st.failedKey(w.key) {
			continue // failed offline (relation policy): never sent
		}
		if w.body == nil {
			st.fail(w.key, "entity cannot be encoded as JSON")
			continue
		}
		if envelope+len(w.body) > maxBodyBytes {
			st.fail(w.key, fmt.Sprintf("entity is %d bytes; Port's request limit is %d", len(w.body), maxBodyBytes))
			continue
		}
		k := [2]any{w.key.blueprint, w.stub}
		b := open[k]
		if b != nil && (len(b.items) == maxBulkEntities || size[k]+1+len(w.body) > maxBodyBytes) {
			out = append(out, *b)
			b = nil
		}
		if b == nil {
			b = &batch{blueprint: w.key.blueprint, merge: merge, stub: w.stub}
			open[k] = b
			size[k] = envelope - 1
		}
		b.items = append(b.items, w)
		size[k] += 1 + len(w.body)
	}
	rest := slices.SortedFunc(maps.Values(open), func(a, b *batch) int {
		return cmp.Or(cmp.Compare(a.blueprint, b.blueprint), cmp.Compare(fmt.Sprint(a.stub), fmt.Sprint(b.stub)))
	})
	for _, b := range rest {
		out = append(out, *b)
	}
	return out
}

func (st *runState) failedKey(k entityKey) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	_, bad := st.failed[k]
	return bad
}

// sendAll sends ws in bulk requests, Concurrency at a time.
func (s *Sink) sendAll(ctx context.Context, st *runState, ws []*work, merge bool) error {
	bs := s.batches(st, ws, merge)
	if len(bs) == 0 {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.Concurrency)
	for _, b := range bs {
		g.Go(func() error { return s.sendBatch(gctx, st, b) })
	}
	return g.Wait()
}

type bulkResult struct {
	Entities []struct {
		Identifier string `json:"identifier"`
		Index      int    `json:"index"`
	} `json:"entities"`
	Errors []struct {
		Identifier string `json:"identifier"`
		Index      int    `json:"index"`
		StatusCode int    `json:"statusCode"`
		Error      string `json:"error"`
		Message    string `json:"message"`
	} `json:"errors"`
}

// sendBatch sends one bulk request. Per-entity failures (207) and whole-batch
// 4xx answers are recorded; a 413 splits the batch; anything else that the
// client could not retry away ends the run.
func (s *Sink) sendBatch(ctx context.Context, st *runState, b batch) error {
	var buf bytes.Buffer
	buf.WriteString(`{"entities":[`)
	for i, w := range b.items {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(w.body)
	}
	buf.WriteString(`]}`)
	q := url.Values{"upsert": {"true"}, "merge": {fmt.Sprint(b.merge)}, "create_missing_related_entities": {fmt.Sprint(b.stub)}}
	var out bulkResult
	_, err := s.api.doRaw(ctx, http.MethodPost, "/blueprints/"+url.PathEscape(b.blueprint)+"/entities/bulk", q, buf.Bytes(), &out)
	var se *StatusError
	switch {
	case errors.As(err, &se) && se.Status == http.StatusRequestEntityTooLarge && len(b.items) > 1:
		half := len(b.items) / 2
		s.log.Debug("port bulk request too large, splitting", "blueprint", b.blueprint, "entities", len(b.items))
		left, right := b, b
		left.items, right.items = b.items[:half], b.items[half:]
		if err := s.sendBatch(ctx, st, left); err != nil {
			return err
		}
		return s.sendBatch(ctx, st, right)
	case errors.As(err, &se) && se.Status >= 400 && se.Status < 500:
		for _, w := range b.items {
			st.fail(w.key, se.Error())
		}
		return nil
	case errors.Is(err, ErrMalformedAnswer):
		// Port may or may not have written them: they fail (and still
		// count as produced), the rest of the load goes on.
		for _, w := range b.items {
			st.fail(w.key, "Port's bulk answer could not be read; the entity may or may not be written: "+err.Error())
		}
		return nil
	case err != nil:
		return fmt.Errorf("port: write %d %s entities: %w", len(b.items), b.blueprint, err)
	}
	seen := make([]bool, len(b.items))
	for _, r := range out.Entities {
		if r.Index < 0 || r.Index >= len(b.items) {
			continue
		}
		seen[r.Index] = true
		if want := b.items[r.Index].key.identifier; r.Identifier != "" && r.Identifier != want {
			st.fail(b.items[r.Index].key, fmt.Sprintf("Port's bulk answer names %q at this entity's index", r.Identifier))
			continue
		}
		st.succeed(b.items[r.Index].key)
	}
	for _, e := range out.Errors {
		if e.Index >= 0 && e.Index < len(b.items) {
			seen[e.Index] = true
			st.fail(b.items[e.Index].key, fmt.Sprintf("%d %s: %s", e.StatusCode, e.Error, e.Message))
		}
	}
	for i, ok := range seen {
		if !ok {
			st.fail(b.items[i].key, "Port's bulk answer did not mention this entity")
		}
	}
	s.log.Debug("port bulk written", "blueprint", b.blueprint, "entities", len(b.items), "errors", len(out.Errors))
	return nil
}
