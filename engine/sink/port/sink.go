package port

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/ferry-etl/ferry/engine/internal/jsonv"
	"github.com/ferry-etl/ferry/engine/internal/stack"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-etl/ferry/engine/sink"
)

type entityKey struct{ blueprint, identifier string }

// spoolBatch is how many entities Write keeps in memory before it moves
// them to the spool in one transaction; pageSize how many Finish reads
// back at a time.
const (
	spoolBatch = 256
	pageSize   = 500
)

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

// RelationTargets lists the blueprints bp's relations point to, as Port
// holds bp (nil when this sink never read it).
func (s *Sink) RelationTargets(bp string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	def := s.bps[bp]
	if def == nil {
		return nil
	}
	var out []string
	for _, r := range def.Relations {
		out = append(out, r.Target)
	}
	return out
}

// Write validates e and queues it until Finish: on disk, in the sink's
// spool (see spool.go), so memory does not grow with the load. An invalid
// entity is recorded as failed (and still counts as produced, so
// reconciliation never deletes it) unless a later version of it, not
// merged (e.Merge), replaces it: the last one wins, so only the last one's
// failure is the entity's. Write returns an error only when it
// cannot proceed (ctx done, Port unreachable while fetching the
// blueprint, the spool unusable).
func (s *Sink) Write(ctx context.Context, e sink.Entity) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	bp, err := s.blueprint(ctx, e.Blueprint)
	if err != nil {
		return err
	}
	id, _ := e.Data["identifier"].(string)
	merged := false // e joins an earlier part: the entity is of several records
	if e.Merge && id != "" {
		s.merging.Lock()
		defer s.merging.Unlock()
		prev, err := s.queued(ctx, entityKey{e.Blueprint, id})
		if err != nil {
			return err
		}
		if prev != nil {
			e.Data = mergeEntity(prev, e.Data)
			merged = true
		}
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
	var data []byte
	if len(errs) == 0 {
		if data, err = s.encode(e.Data); err != nil {
			errs = append(errs, fmt.Errorf("entity cannot be encoded as JSON: %w", err))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := entityKey{e.Blueprint, id}
	if id != "" && !e.Merge && s.invalidAt[k] {
		// This version replaces the earlier ones (the last one wins), so
		// an earlier one's failure is no longer the entity's: it fails
		// only if this one does. (A merged part stays failed: what it
		// held is not in the merge.)
		s.invalid = slices.DeleteFunc(s.invalid, func(x EntityError) bool {
			return x.Blueprint == k.blueprint && x.Identifier == k.identifier
		})
		delete(s.invalidAt, k)
	}
	if len(errs) > 0 {
		// A field's error quotes its value ("got %q"), which a spec may
		// have built from a secret: the message is reported and logged.
		s.invalid = append(s.invalid, EntityError{Blueprint: e.Blueprint, Identifier: id, Message: s.api.redact(joinErrors(errs)), Stream: e.Stream, Parents: e.Parents, Merged: merged})
		data = nil
		if id != "" {
			if s.invalidAt == nil {
				s.invalidAt = map[entityKey]bool{}
			}
			s.invalidAt[k] = true
		}
	}
	if id == "" {
		return nil // not produced: nothing can be known of it in Port
	}
	from, err := s.origins.ref(e.Stream, e.Parents, merged)
	if err != nil {
		return err
	}
	if i, ok := s.bufAt[k]; ok {
		s.buf[i].data, s.buf[i].from = data, from
	} else {
		s.bufAt[k] = len(s.buf)
		s.buf = append(s.buf, spooled{bp: e.Blueprint, id: id, data: data, from: from})
	}
	if len(s.buf) >= spoolBatch {
		return s.flushLocked(ctx)
	}
	return nil
}

// encode is jsonv.Marshal(m) in a scratch buffer, copied at its size.
func (s *Sink) encode(m map[string]any) ([]byte, error) {
	scratch, _ := s.encoding.Get().(*[]byte)
	if scratch == nil {
		scratch = new([]byte)
	}
	b, err := jsonv.Append((*scratch)[:0], m, true)
	if err != nil {
		s.encoding.Put(scratch)
		return nil, err
	}
	out := append([]byte(nil), b...)
	if cap(b) <= 64<<10 {
		*scratch = b[:0] // kept; an unusually large one is let go
	}
	s.encoding.Put(scratch)
	return out, nil
}

// queued returns the valid entity queued for k, nil if none.
func (s *Sink) queued(ctx context.Context, k entityKey) (map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var raw []byte
	if i, ok := s.bufAt[k]; ok {
		raw = s.buf[i].data
	} else if s.spool != nil {
		var err error
		if raw, err = s.spool.data(ctx, k.blueprint, k.identifier); err != nil {
			return nil, err
		}
	}
	if raw == nil {
		return nil, nil
	}
	return decodeObject(raw)
}

// flushLocked moves the buffered entities into the spool, opening it on
// first use. s.mu is held.
func (s *Sink) flushLocked(ctx context.Context) error {
	if s.spool == nil {
		sp, err := openSpool(ctx, s.cfg.SpoolDir)
		if err != nil {
			return err
		}
		s.spool = sp
	}
	if err := s.spool.put(ctx, s.buf); err != nil {
		return err
	}
	s.buf = s.buf[:0]
	clear(s.bufAt)
	return nil
}

// Close releases the spool of a run that will not reach Finish (Finish
// releases it itself). It is safe to call more than once.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf, s.invalid, s.invalidAt = s.buf[:0], nil, nil
	err := s.origins.close()
	clear(s.bufAt)
	if s.spool == nil {
		return err
	}
	err = errors.Join(err, s.spool.close())
	s.spool = nil
	return err
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
// (each a list of identifiers, one identifier, or null). Anything else (a
// search query, a number) is kept after the identifiers, so validation
// fails the entity naming the relation rather than the merge dropping it.
func unionIDs(a, b any) []any {
	set := map[string]bool{}
	var other []any
	for _, v := range []any{a, b} {
		switch x := v.(type) {
		case nil:
		case string:
			set[x] = true
		case []any:
			for _, e := range x {
				if s, ok := e.(string); ok {
					set[s] = true
				} else {
					other = append(other, e)
				}
			}
		default:
			other = append(other, x)
		}
	}
	out := make([]any, 0, len(set)+len(other))
	for _, id := range slices.Sorted(maps.Keys(set)) {
		out = append(out, id)
	}
	return append(out, other...)
}

func joinErrors(errs []error) string {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// runState collects the outcome of one Finish; batches update it
// concurrently. Everything that grows with the load lives in the spool;
// what is kept here grows with failures, adoptions and relation targets
// missing from the run.
type runState struct {
	sp *spool

	mu         sync.Mutex
	failed     map[entityKey]string
	exists     map[entityKey]bool   // Port lookups of relation targets
	unknown    map[entityKey]string // relation targets whose lookup failed
	dropped    map[string]int       // "blueprint.relation" -> targets dropped
	dropSample map[string]dropSample
	conflicts  map[entityKey]string // entities of another owner (or none), not written
	adopted    map[entityKey]string // entities taken over from their owner
	ownFound   map[entityKey]bool   // the run's own entities the ownership lookup found (not in the listing)
	claimed    map[string]bool      // blueprints whose ownership claim checks
	stubs      map[string]bool      // claimed blueprints Port may hold empty stubs of ([Sink.stubbed])
	owned      map[string]int       // blueprint -> owned entities listed before writing
	listErr    map[string]error     // blueprint -> why its listing failed
	empty      map[string]bool      // blueprints Port held no entity of after their listing
}

// dropSample is one relation target dropped, for the log: the target,
// and the entity that named it with its origin (origins.ref).
type dropSample struct {
	target, entity string
	from           uint64
}

// setEmpty records that Port held no entity of bp after its listing.
func (st *runState) setEmpty(bp string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.empty[bp] = true
}

// isEmpty tells whether setEmpty recorded bp.
func (st *runState) isEmpty(bp string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.empty[bp]
}

// listed records how many owned entities a blueprint's listing found, or
// why it failed.
func (st *runState) listed(bp string, n int, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if err != nil {
		st.listErr[bp] = err
		return
	}
	st.owned[bp] = n
}

// ownedOf returns what listed recorded for bp; listed is false when bp
// was not listed.
func (st *runState) ownedOf(bp string) (n int, listed bool, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	n, listed = st.owned[bp]
	err = st.listErr[bp]
	return n, listed || err != nil, err
}

func newRunState(sp *spool) *runState {
	return &runState{sp: sp, failed: map[entityKey]string{}, exists: map[entityKey]bool{},
		unknown: map[entityKey]string{}, dropped: map[string]int{}, dropSample: map[string]dropSample{},
		conflicts: map[entityKey]string{}, adopted: map[entityKey]string{}, ownFound: map[entityKey]bool{}, claimed: map[string]bool{}, stubs: map[string]bool{}, owned: map[string]int{}, listErr: map[string]error{}, empty: map[string]bool{}}
}

// conflict records that k belongs to owner ("" for nobody) and fails it;
// stubbed: see [conflictMessage].
func (st *runState) conflict(k entityKey, owner string, stubbed bool) {
	st.fail(k, conflictMessage(owner, stubbed))
	st.mu.Lock()
	defer st.mu.Unlock()
	st.conflicts[k] = owner
}

func (st *runState) adopt(k entityKey, from string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.adopted[k] = from
}

// foundOwn records that the ownership lookup found k as the run's own.
func (st *runState) foundOwn(k entityKey) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.ownFound[k] = true
}

// unseen says whether k is of a blueprint whose ownership is checked and
// no listing or lookup found it in Port (w.stored covers the listing).
func (st *runState) unseen(w *work) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	_, adopted := st.adopted[w.key]
	return w.stored == nil && st.claimed[w.key.blueprint] && !adopted && !st.ownFound[w.key]
}

func (st *runState) fail(k entityKey, msg string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.failed[k]; !ok {
		st.failed[k] = msg
	}
}

func (st *runState) failedKey(k entityKey) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	_, bad := st.failed[k]
	return bad
}

// take hands over what Write queued: the spool (opened if nothing was
// queued, for the listings of reconciliation), with the origins its
// entries refer to, and the invalid entities.
func (s *Sink) take(ctx context.Context) (*spool, []EntityError, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.flushLocked(ctx); err != nil {
		return nil, nil, err
	}
	sp, invalid := s.spool, s.invalid
	sp.origins = s.origins
	s.spool, s.invalid, s.invalidAt, s.origins = nil, nil, nil, origins{dir: s.cfg.SpoolDir}
	return sp, invalid, nil
}

// Finish writes everything queued, then reconciles. Blueprints are written
// in relation order (targets first). Relations inside a relation cycle —
// self-relations such as resource-graph node → node — are left out of the
// first pass, unless their targets are all in Port already (early), and
// written in a second pass with merge=true, once every entity of the cycle
// exists. Relation targets neither written by this run
// nor present in Port follow the relation policy. An entity that Port
// already holds exactly as the run would write it is not sent (it counts
// as unchanged). Per-entity failures do not stop the run; if any occurred
// the returned error wraps ErrEntitiesFailed. The spool is removed
// whatever the outcome.
//
// complete[bp] must be true only when every stream feeding bp finished
// without error; only those blueprints are reconciled (see doc.go).
func (s *Sink) Finish(ctx context.Context, complete map[string]bool) (rep Report, err error) {
	sp, invalid, err := s.take(ctx)
	if err != nil {
		return Report{Owner: s.cfg.Owner}, err
	}
	defer func() {
		if cerr := sp.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	st := newRunState(sp)
	from := map[entityKey]EntityError{} // where the invalid entities came from
	for _, e := range invalid {
		k := entityKey{e.Blueprint, e.Identifier}
		st.fail(k, e.Message)
		if _, ok := from[k]; !ok {
			from[k] = e
		}
	}
	rep = Report{Owner: s.cfg.Owner, Blueprints: map[string]BlueprintCounts{}}
	err = s.write(ctx, st)
	if err == nil {
		err = s.reconcile(ctx, st, complete, &rep)
	}

	for k, n := range st.dropped {
		d := st.dropSample[k]
		o, merged, oerr := sp.origins.of(d.from)
		if oerr != nil {
			o.parents = oerr.Error()
		}
		s.log.Warn("port relation targets missing; relation dropped", "relation", k, "count", n, "example", d.target,
			"entity", d.entity, "stream", o.stream, "parents", o.parents, "merged", merged)
		rep.DroppedRelations += n
	}
	// Every failure names the record it came from: Write named the
	// invalid ones, the spool's entries name the rest.
	var unnamed []entityKey
	for k := range st.failed {
		if _, ok := from[k]; !ok {
			unnamed = append(unnamed, k)
		}
	}
	srcs, serr := sp.sourcesOf(ctx, unnamed)
	if serr != nil && err == nil {
		err = fmt.Errorf("port: where the failed entities came from: %w", serr)
	}
	for k, src := range srcs {
		from[k] = EntityError{Stream: src.stream, Parents: src.parents, Merged: src.merged}
	}
	for k, msg := range st.failed {
		f := from[k]
		rep.Errors = append(rep.Errors, EntityError{Blueprint: k.blueprint, Identifier: k.identifier, Message: msg,
			Stream: f.Stream, Parents: f.Parents, Merged: f.Merged})
	}
	slices.SortFunc(rep.Errors, compareEntityErrors)
	for k, owner := range st.conflicts {
		f := from[k]
		rep.Conflicts = append(rep.Conflicts, Conflict{Blueprint: k.blueprint, Identifier: k.identifier, Owner: owner,
			Stream: f.Stream, Parents: f.Parents, Merged: f.Merged})
		s.log.Warn("port entity of another owner not overwritten", "blueprint", k.blueprint, "identifier", k.identifier, "owner", owner,
			"stream", f.Stream, "parents", f.Parents, "merged", f.Merged)
	}
	slices.SortFunc(rep.Conflicts, func(a, b Conflict) int {
		return cmp.Or(cmp.Compare(a.Blueprint, b.Blueprint), cmp.Compare(a.Identifier, b.Identifier))
	})
	rep.Failed = len(st.failed)
	if cerr := s.count(ctx, st, &rep); cerr != nil && err == nil {
		err = cerr
	}
	s.log.Info("port load finished", "owner", rep.Owner, "upserted", rep.Upserted, "unchanged", rep.Unchanged, "failed", rep.Failed,
		"conflicts", len(rep.Conflicts), "adopted", rep.Adopted, "deleted", rep.Deleted, "dropped_relations", rep.DroppedRelations)
	if err != nil {
		return rep, err
	}
	var errs []error
	if rep.Failed > 0 {
		errs = append(errs, fmt.Errorf("%w: %d of %d (first: %v)", ErrEntitiesFailed, rep.Failed, rep.Failed+rep.Upserted+rep.Unchanged, rep.Errors[0]))
	}
	if len(rep.ReconcileErrors) > 0 {
		errs = append(errs, fmt.Errorf("%w: %d blueprints (first: %v)", ErrReconcileFailed, len(rep.ReconcileErrors), rep.ReconcileErrors[0]))
	}
	return rep, errors.Join(errs...)
}

// count fills the report's per-blueprint counts from the spool: entities
// written, and unchanged ones; a failed entity counts as neither.
func (s *Sink) count(ctx context.Context, st *runState, rep *Report) error {
	counts, err := st.sp.counts(ctx)
	if err != nil {
		return err
	}
	for bp, c := range counts {
		bc := rep.Blueprints[bp] // Deleted is already counted
		bc.Upserted, bc.Unchanged = c[stateWritten], c[stateUnchanged]
		rep.Blueprints[bp] = bc
	}
	for k := range st.failed {
		state, err := st.sp.stateOf(ctx, k)
		if err != nil {
			return err
		}
		c := rep.Blueprints[k.blueprint]
		switch state {
		case stateWritten:
			c.Upserted--
		case stateUnchanged:
			c.Unchanged--
		}
		c.Failed++
		rep.Blueprints[k.blueprint] = c
	}
	for _, c := range rep.Blueprints {
		rep.Upserted += c.Upserted
		rep.Unchanged += c.Unchanged
	}
	for k, from := range st.adopted {
		if st.failedKey(k) {
			continue
		}
		if state, err := st.sp.stateOf(ctx, k); err == nil && state == stateWritten {
			rep.Adopted++
			s.log.Info("port entity adopted", "blueprint", k.blueprint, "identifier", k.identifier, "from", from)
		}
	}
	return nil
}

func compareEntityErrors(a, b EntityError) int {
	return cmp.Or(cmp.Compare(a.Blueprint, b.Blueprint), cmp.Compare(a.Identifier, b.Identifier))
}

// work is one entity on its way to Port.
type work struct {
	key      entityKey
	n        int64  // its spoolRow.n
	from     uint64 // its spoolRow.from
	raw      []byte // the entity's JSON as spooled
	relAt    [2]int // where in raw its relations are, when relFound
	relFound bool
	propAt   [2]int         // where in raw its properties are ({0, 0}: none), when relFound
	data     map[string]any // raw decoded, when needed (see decodeWork)
	rels     map[string]any // relations of this pass, resolved in place
	deferred map[string]any // cycle relations kept for the second pass
	stub     bool           // needs create_missing_related_entities
	body     []byte
	stored   []byte // the canonical entity Port holds (owned listing), nil if none
}

// plan is the order of one load: the blueprints with entities, their
// definitions in Port, and which relations lie inside a relation cycle.
type loadOrder struct {
	defs   map[string]*Blueprint
	levels [][]string
	comp   map[string]int
}

func (o *loadOrder) inCycle(bp string, r Relation) bool {
	_, ok := o.defs[r.Target]
	return ok && o.comp[bp] == o.comp[r.Target]
}

// hasCycle reports whether any relation of bp lies in a cycle.
func (o *loadOrder) hasCycle(bp string) bool {
	for _, r := range o.defs[bp].Relations {
		if o.inCycle(bp, r) {
			return true
		}
	}
	return false
}

// order reads the blueprints that have entities to send, fails the
// entities of blueprints Port does not have, and orders the rest.
func (s *Sink) order(ctx context.Context, st *runState) (*loadOrder, error) {
	ids, err := st.sp.blueprints(ctx)
	if err != nil {
		return nil, err
	}
	o := &loadOrder{defs: map[string]*Blueprint{}}
	for _, id := range ids {
		bp, err := s.blueprint(ctx, id)
		if err != nil {
			return nil, err
		}
		if bp == nil {
			if err := s.eachID(ctx, st.sp, id, selValid, func(eid string) {
				st.fail(entityKey{id, eid}, fmt.Sprintf("blueprint %q does not exist in Port", id))
			}); err != nil {
				return nil, err
			}
			continue
		}
		o.defs[id] = bp
	}
	edges := map[string][]string{}
	for id, bp := range o.defs {
		for _, r := range bp.Relations {
			if _, ok := o.defs[r.Target]; ok {
				edges[id] = append(edges[id], r.Target)
			}
		}
	}
	o.levels, o.comp = layers(slices.Collect(maps.Keys(o.defs)), edges)
	return o, nil
}

// eachID calls fn for every identifier of bp that matches sel, in order.
func (s *Sink) eachID(ctx context.Context, sp *spool, bp string, sel selector, fn func(id string)) error {
	after := ""
	for {
		ids, err := sp.idsAfter(ctx, bp, sel, after, 1000)
		if err != nil || len(ids) == 0 {
			return err
		}
		for _, id := range ids {
			fn(id)
		}
		after = ids[len(ids)-1]
	}
}

func (s *Sink) write(ctx context.Context, st *runState) error {
	o, err := s.order(ctx, st)
	if err != nil {
		return err
	}
	// Nothing is written before ownership is known: no takeovers.
	if err := s.claim(ctx, st, o.defs); err != nil {
		return err
	}
	for _, level := range o.levels {
		if err := s.sendLevel(ctx, st, o, level); err != nil {
			return err
		}
	}
	return s.secondPass(ctx, st, o)
}

// sendLevel sends the entities of one level of blueprints (their relation
// targets all written before), page by page from the spool, Concurrency
// bulk requests in flight. Entities Port already holds as they would be
// written are marked unchanged instead.
func (s *Sink) sendLevel(ctx context.Context, st *runState, o *loadOrder, level []string) error {
	return s.sendPages(ctx, st, o, level, selValid, &packer{}, s.prepare)
}

// bodyMembers are the members of a spooled entity that its body is made
// from without decoding it whole (splicedBody): found in one scan.
var bodyMembers = [...]string{"properties", "relations"}

// decodeWork reads spooled entities into work items, their relations
// split into this pass's and the cycle ones kept for the second. Only an
// entity Port holds (its stored form to compare with) is decoded whole;
// for the others only the relations are, and the body is their JSON with
// the resolved relations put in (entityBody).
func decodeWork(o *loadOrder, def *Blueprint, rows []spoolRow) ([]*work, error) {
	ws := make([]*work, 0, len(rows))
	var spans [len(bodyMembers)][2]int
	var dec jsonv.Decoder // the page's entities share their keys
	cyclic := false
	for _, r := range def.Relations {
		cyclic = cyclic || o.inCycle(def.Identifier, r)
	}
	items := make([]work, len(rows)) // one allocation for the page
	for i, r := range rows {
		w := &items[i]
		*w = work{key: entityKey{def.Identifier, r.id}, n: r.n, from: r.from, raw: r.data, stored: r.body}
		var rels map[string]any
		if r.body != nil {
			data, err := decodeObjectWith(&dec, r.data)
			if err != nil {
				return nil, fmt.Errorf("port: spool: entity %q: %w", r.id, err)
			}
			w.data = data
			rels, _ = data["relations"].(map[string]any)
		} else if err := jsonv.Members(r.data, bodyMembers[:], spans[:]); err != nil {
			return nil, fmt.Errorf("port: spool: entity %q: %w", r.id, err)
		} else if spans[1][1] > 0 {
			v, err := dec.Decode(r.data[spans[1][0]:spans[1][1]])
			if err != nil {
				return nil, fmt.Errorf("port: spool: entity %q: %w", r.id, err)
			}
			rels, _ = v.(map[string]any)
			w.propAt, w.relAt, w.relFound = spans[0], spans[1], true
		}
		if !cyclic && rels != nil {
			// Nothing to keep for the second pass: the decoded map is
			// this pass's, resolved in place.
			w.rels = rels
			ws = append(ws, w)
			continue
		}
		// The cycle relations move to deferred (made for the first). The
		// others stay in the decoded map when it is the work's own (not
		// the whole entity's), else in a map of their own.
		own := rels != nil && w.data == nil
		if own {
			w.rels = rels
		} else {
			w.rels = make(map[string]any, len(rels))
		}
		for rk, v := range rels {
			switch {
			case o.inCycle(def.Identifier, def.Relations[rk]):
				if w.deferred == nil {
					w.deferred = map[string]any{}
				}
				w.deferred[rk] = v
				if own {
					delete(rels, rk)
				}
			case !own:
				w.rels[rk] = v
			}
		}
		ws = append(ws, w)
	}
	return ws, nil
}

// prepare resolves the first-pass relations of one page of entities and
// returns those to send, with their bodies. An entity Port holds (owned,
// listed before writing) that would end exactly as stored — cycle
// relations included, resolved as they will be once the entities of the
// cycle that this run produces exist — is marked unchanged and not sent.
func (s *Sink) prepare(ctx context.Context, st *runState, o *loadOrder, def *Blueprint, rows []spoolRow) ([]*work, error) {
	ws, err := decodeWork(o, def, rows)
	if err != nil {
		return nil, err
	}
	if err := s.early(ctx, st, def, ws); err != nil {
		return nil, err
	}
	effs, err := s.resolve(ctx, st, def, ws, relsOf, false)
	if err != nil {
		return nil, err
	}
	if err := s.apply(ctx, st, ws, effs); err != nil {
		return nil, err
	}
	var cand []*work
	for _, w := range ws {
		if w.stored != nil && !st.failedKey(w.key) {
			cand = append(cand, w)
		}
	}
	unchanged := map[*work]bool{}
	if len(cand) > 0 {
		finals := make([]map[string]any, len(cand))
		at := make(map[*work]int, len(cand))
		for i, w := range cand {
			finals[i] = maps.Clone(w.deferred)
			at[w] = i
		}
		pick := func(w *work) map[string]any { return finals[at[w]] }
		later, err := s.resolve(ctx, st, def, cand, pick, true)
		if err != nil {
			return nil, err
		}
		var same []*work
		var sameEffs [][]effect
		for i, w := range cand {
			if failing(later[i]) {
				continue // the second pass decides
			}
			if sameAsStored(def, canonEntity(def, s.fullEntity(def, w, finals[i])), w.stored) {
				unchanged[w] = true
				same = append(same, w)
				sameEffs = append(sameEffs, later[i])
			}
		}
		if err := s.apply(ctx, st, same, sameEffs); err != nil {
			return nil, err
		}
		ids, ns := make([]string, len(same)), make([]int64, len(same))
		for i, w := range same {
			ids[i], ns[i] = w.key.identifier, w.n
		}
		if err := st.sp.setState(ctx, def.Identifier, ids, ns, stateUnchanged, nil); err != nil {
			return nil, err
		}
	}
	out := ws[:0]
	for _, w := range ws {
		if !unchanged[w] {
			w.body = s.entityBody(def, w)
			out = append(out, w)
		}
	}
	return out, nil
}

func relsOf(w *work) map[string]any { return w.rels }

// early moves into the first pass each cycle relation of ws (a key, whole)
// whose targets Port already holds: written or found unchanged by this run
// (a target whose bulk request is still in flight is not), or found in
// Port by an earlier lookup. Only keys with a target not there yet stay
// for the second pass; an entity left with none gets no second-pass work.
// Null, empty and search-query values stay where they were.
func (s *Sink) early(ctx context.Context, st *runState, def *Blueprint, ws []*work) error {
	asked := map[string][]string{}
	for _, w := range ws {
		for rk, v := range w.deferred {
			ids, _ := relationIDs(v)
			t := def.Relations[rk].Target
			asked[t] = append(asked[t], ids...)
		}
	}
	there := map[entityKey]bool{}
	for target, ids := range asked {
		if len(ids) == 0 {
			continue
		}
		slices.Sort(ids)
		got, err := st.sp.among(ctx, target, true, slices.Compact(ids))
		if err != nil {
			return err
		}
		for id := range got {
			if k := (entityKey{target, id}); !st.failedKey(k) {
				there[k] = true
			}
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, w := range ws {
		for rk, v := range w.deferred {
			ids, _ := relationIDs(v)
			if len(ids) == 0 {
				continue
			}
			t := def.Relations[rk].Target
			all := true
			for _, id := range ids {
				if k := (entityKey{t, id}); !there[k] && !st.exists[k] {
					all = false
					break
				}
			}
			if all {
				w.rels[rk] = v
				delete(w.deferred, rk)
			}
		}
	}
	return nil
}

// secondPass sends the cycle relations of the entities written in the
// first pass, now that every entity of the cycle exists: those that named
// a target in them (their first pass recorded it), not every entity of the
// blueprints in a cycle.
func (s *Sink) secondPass(ctx context.Context, st *runState, o *loadOrder) error {
	var cycles []string
	for _, bpID := range slices.Sorted(maps.Keys(o.defs)) {
		if o.hasCycle(bpID) {
			cycles = append(cycles, bpID)
		}
	}
	return s.sendPages(ctx, st, o, cycles, selCycleWritten, &packer{merge: true}, s.second)
}

// sendPages sends the spooled entities of the blueprints bps, in order,
// that sel selects: page by page from the spool, each page made into work
// by build, packed into bulk requests by pk, Concurrency of them in flight.
func (s *Sink) sendPages(ctx context.Context, st *runState, o *loadOrder, bps []string, sel selector, pk *packer,
	build func(context.Context, *runState, *loadOrder, *Blueprint, []spoolRow) ([]*work, error)) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.Concurrency)
	send := func(bs []batch) {
		for _, b := range bs {
			g.Go(s.guard(func() error {
				stack.Ahead() // see there: a bulk request's frames
				return s.sendBatch(gctx, st, b)
			}))
		}
	}
	for _, bpID := range bps {
		def := o.defs[bpID]
		after := ""
		for gctx.Err() == nil {
			rows, err := st.sp.rowsAfter(gctx, bpID, sel, after, pageSize)
			if err == nil && len(rows) == 0 {
				break
			}
			var ws []*work
			if err == nil {
				after = rows[len(rows)-1].id
				ws, err = build(gctx, st, o, def, rows)
			}
			if err != nil {
				if werr := g.Wait(); werr != nil {
					return werr
				}
				return err
			}
			for _, w := range ws {
				send(pk.add(st, w))
			}
		}
	}
	send(pk.rest())
	return g.Wait()
}

// second prepares the second-pass bodies of one page of written entities.
func (s *Sink) second(ctx context.Context, st *runState, o *loadOrder, def *Blueprint, rows []spoolRow) ([]*work, error) {
	all, err := decodeWork(o, def, rows)
	if err != nil {
		return nil, err
	}
	var ws []*work
	for _, w := range all {
		if len(w.deferred) > 0 && !st.failedKey(w.key) {
			w.rels, w.deferred = w.deferred, nil
			ws = append(ws, w)
		}
	}
	effs, err := s.resolve(ctx, st, def, ws, relsOf, false)
	if err != nil {
		return nil, err
	}
	if err := s.apply(ctx, st, ws, effs); err != nil {
		return nil, err
	}
	out := ws[:0]
	for _, w := range ws {
		if !st.failedKey(w.key) && hasTargets(w.rels) {
			w.body = relationsBody(w)
			out = append(out, w)
		}
	}
	return out, nil
}

// fullEntity is the entity as Port will hold it after both passes: the
// first-pass body with the cycle relations (finals) added.
func (s *Sink) fullEntity(def *Blueprint, w *work, finals map[string]any) map[string]any {
	m := s.entityMap(def, w)
	rels := maps.Clone(w.rels)
	maps.Copy(rels, finals)
	m["relations"] = rels
	return m
}

// entityMap is the entity sent in the first pass: as mapped, with the
// resolved relations and the ownership marker.
func (s *Sink) entityMap(def *Blueprint, w *work) map[string]any {
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
	return out
}

// entityBody is the JSON sent for the first pass: the entity as mapped,
// with the resolved relations and the ownership marker.
func (s *Sink) entityBody(def *Blueprint, w *work) []byte {
	if w.data == nil {
		if b, ok := s.splicedBody(def, w); ok {
			return b
		}
		data, err := decodeObject(w.raw)
		if err != nil {
			return nil
		}
		w.data = data
	}
	b, err := jsonv.Marshal(s.entityMap(def, w))
	if err != nil {
		// Data is JSON-shaped by contract; an unencodable value fails the entity.
		return nil
	}
	return b
}

// splicedBody is entityBody without decoding the entity: its spooled JSON
// with the relations replaced by the resolved ones and the ownership
// marker added as the last property (the same object; Port does not read
// key order). ok is false when the JSON is not as jsonv wrote a mapped
// entity (properties an object before relations).
func (s *Sink) splicedBody(def *Blueprint, w *work) ([]byte, bool) {
	b := w.raw
	if !w.relFound {
		return nil, false
	}
	rs, re := w.relAt[0], w.relAt[1]
	ps, pe := w.propAt[0], w.propAt[1]
	if pe == 0 || b[ps] != '{' || pe > rs {
		return nil, false
	}
	_, owned := def.Properties[OwnerProperty]
	owned = owned && s.cfg.Owner != ""
	// The resolved relations are written in place: room for them as
	// spooled, and then some (a resolved relation is rarely longer).
	out := make([]byte, 0, len(b)+len(s.cfg.Owner)+len(OwnerProperty)+64)
	if owned {
		out = append(out, b[:pe-1]...)
		if pe-ps > 2 {
			out = append(out, ',')
		}
		out, _ = jsonv.Append(out, OwnerProperty, true)
		out = append(out, ':')
		out, _ = jsonv.Append(out, s.cfg.Owner, true)
		out = append(out, b[pe-1:rs]...)
	} else {
		out = append(out, b[:rs]...)
	}
	out, err := jsonv.Append(out, w.rels, true)
	if err != nil {
		return nil, false
	}
	return append(out, b[re:]...), true
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

// relationsBody is the JSON sent for the second pass: what jsonv.Marshal
// writes for {identifier, relations}, without making that map.
func relationsBody(w *work) []byte {
	b := append(make([]byte, 0, 64+len(w.key.identifier)), `{"identifier":`...)
	b, _ = jsonv.Append(b, w.key.identifier, true)
	b = append(b, `,"relations":`...)
	b, err := jsonv.Append(b, w.rels, true)
	if err != nil {
		return nil
	}
	return append(b, '}')
}

// effect is what resolving one relation target does to the run: keep
// the target (never stale), drop it from the relation, fail the entity,
// or ask Port for a stub.
type effect struct {
	kind   effectKind
	target entityKey
	name   string // blueprint.relation (drop)
	msg    string // fail
}

type effectKind uint8

const (
	effKeep effectKind = iota
	effDrop
	effFail
	effStub
)

func failing(effs []effect) bool {
	return slices.ContainsFunc(effs, func(e effect) bool { return e.kind == effFail })
}

// apply records the effects of resolving ws (effs[i] for ws[i]).
func (s *Sink) apply(ctx context.Context, st *runState, ws []*work, effs [][]effect) error {
	var refs []entityKey
	for i, w := range ws {
		for _, e := range effs[i] {
			switch e.kind {
			case effKeep:
				refs = append(refs, e.target)
			case effDrop:
				st.mu.Lock()
				st.dropped[e.name]++
				st.dropSample[e.name] = dropSample{target: e.target.identifier, entity: w.key.identifier, from: w.from}
				st.mu.Unlock()
			case effFail:
				st.fail(w.key, e.msg)
			case effStub:
				w.stub = true
			}
		}
	}
	return st.sp.addRefs(ctx, refs)
}

// resolve applies the relation policy to the relation targets of ws (the
// maps pick returns, rewritten in place) and returns what that does to
// each entity, for apply. A target is there when this run wrote it (or
// found it unchanged) — or, with predict, when the run produced it valid
// and it has not failed so far (cycle relations before their targets are
// written; plans) — or when Port holds it (looked up once per run).
func (s *Sink) resolve(ctx context.Context, st *runState, def *Blueprint, ws []*work, pick func(*work) map[string]any, predict bool) ([][]effect, error) {
	s.mu.Lock()
	unread := s.unread
	s.mu.Unlock()
	// The run's own targets, by blueprint.
	asked := map[string][]string{}
	for _, w := range ws {
		for rk, v := range pick(w) {
			ids, _ := relationIDs(v)
			asked[def.Relations[rk].Target] = append(asked[def.Relations[rk].Target], ids...)
		}
	}
	ours := map[entityKey]bool{}
	for target, ids := range asked {
		slices.Sort(ids)
		got, err := st.sp.among(ctx, target, !predict, slices.Compact(ids))
		if err != nil {
			return nil, err
		}
		for id := range got {
			if k := (entityKey{target, id}); !st.failedKey(k) {
				ours[k] = true
			}
		}
	}
	// Targets that need a look in Port, by blueprint.
	need := map[string]map[string]bool{}
	for _, w := range ws {
		for rk, v := range pick(w) {
			r := def.Relations[rk]
			ids, _ := relationIDs(v)
			policy := s.cfg.policy(def.Identifier, rk)
			for _, id := range ids {
				k := entityKey{r.Target, id}
				st.mu.Lock()
				_, looked := st.exists[k]
				_, failedLook := st.unknown[k]
				st.mu.Unlock()
				// A stub needs no look (Port relates an entity it holds),
				// unless the target's stream did not complete or the
				// target itself failed in this run: the relation is
				// dropped then only if Port lacks the target, or a
				// relation Port holds would be taken away.
				stubbed := policy == RelationStub && unread[r.Target] == "" && !st.failedKey(k)
				if ours[k] || looked || failedLook || stubbed {
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
			return nil, err
		}
		st.mu.Lock()
		for id := range need[target] {
			st.exists[entityKey{target, id}] = found[id]
		}
		st.mu.Unlock()
	}
	out := make([][]effect, len(ws))
	// Scratch reused across the page: the relation names of one entity
	// and the targets kept of one relation.
	var names, kept []string
	for i, w := range ws {
		rels := pick(w)
		names = names[:0]
		for rk := range rels {
			names = append(names, rk)
		}
		slices.Sort(names)
		for _, rk := range names {
			v := rels[rk]
			r := def.Relations[rk]
			ids, isList := relationIDs(v)
			if ids == nil {
				continue // null or a search query: passed through
			}
			policy := s.cfg.policy(def.Identifier, rk)
			kept = kept[:0]
			// A many-relation is a set: a target named again is sent,
			// dropped or failed once (Port's handling of a repeat is
			// undocumented; the change check sees sets already).
			// (A short list is searched; a long one gets a set.)
			var seen map[string]bool
			if len(ids) > 16 {
				seen = make(map[string]bool, len(ids))
			}
			for j, id := range ids {
				if seen != nil && seen[id] || seen == nil && slices.Contains(ids[:j], id) {
					continue
				}
				if seen != nil {
					seen[id] = true
				}
				k := entityKey{r.Target, id}
				st.mu.Lock()
				there := st.exists[k]
				unknown, lookupFailed := st.unknown[k]
				st.mu.Unlock()
				switch {
				case ours[k] || there:
					kept = append(kept, id)
				case lookupFailed:
					out[i] = append(out[i], effect{kind: effFail, msg: fmt.Sprintf("relations.%s: whether target %q of blueprint %q exists could not be checked: %s", rk, id, r.Target, unknown)})
					kept = append(kept, id)
				case policy == RelationStub && st.failedKey(k):
					// In the source, but failed: a stub (no one's) would
					// refuse it in the run that writes it once fixed.
					out[i] = append(out[i], effect{kind: effDrop, name: def.Identifier + "." + rk + " (not stubbed: the target failed in this run)", target: k})
				case policy == RelationStub && unread[r.Target] != "":
					out[i] = append(out[i], effect{kind: effDrop, name: def.Identifier + "." + rk + " (not stubbed: " + unread[r.Target] + ")", target: k})
				case policy == RelationStub:
					kept = append(kept, id)
					out[i] = append(out[i], effect{kind: effStub})
				case policy == RelationFail:
					out[i] = append(out[i], effect{kind: effFail, msg: fmt.Sprintf("relations.%s: target %q of blueprint %q is neither written by this run nor in Port", rk, id, r.Target)})
					kept = append(kept, id)
				default:
					out[i] = append(out[i], effect{kind: effDrop, name: def.Identifier + "." + rk, target: k})
				}
			}
			for _, id := range kept {
				// The run's own targets are in the spool and so never stale:
				// only the others need recording.
				if k := (entityKey{r.Target, id}); !ours[k] {
					out[i] = append(out[i], effect{kind: effKeep, target: k})
				}
			}
			switch {
			case unchanged(v, kept):
				// Every target kept, once each, in order: v is its own
				// rewrite (not boxed again).
			case isList:
				list := make([]any, len(kept))
				for j, id := range kept {
					list[j] = id
				}
				rels[rk] = list
			case len(kept) == 1:
				rels[rk] = kept[0]
			default:
				rels[rk] = nil
			}
		}
	}
	return out, nil
}

// unchanged reports whether a relation value v (a string or a list) is
// what resolve would write for the targets kept: a string kept, or a
// []any of exactly the kept strings in order.
func unchanged(v any, kept []string) bool {
	switch x := v.(type) {
	case string:
		return len(kept) == 1 && kept[0] == x
	case []any:
		if len(x) != len(kept) {
			return false
		}
		for j, e := range x {
			if s, ok := e.(string); !ok || s != kept[j] {
				return false
			}
		}
		return true
	}
	return false
}

// lookup reports which of ids exist in blueprint target. Port's search is
// eventually consistent — an entity written moments ago may not show yet —
// so an identifier search does not find is asked for by itself (GET, which
// reads the entity, not the search index) before it counts as missing:
// otherwise a relation to an entity Port holds would be dropped or failed.
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
	for _, id := range ids {
		if found[id] {
			continue
		}
		var out struct {
			Entity *struct {
				Identifier string `json:"identifier"`
			} `json:"entity"`
		}
		_, err := s.api.do(ctx, http.MethodGet, "/blueprints/"+url.PathEscape(target)+"/entities/"+url.PathEscape(id), nil, nil, &out)
		var se *StatusError
		switch {
		case errors.As(err, &se) && se.Status == http.StatusNotFound:
			continue // not there
		case err != nil:
			return nil, fmt.Errorf("port: look up %s entity %q: %w", target, id, err)
		case out.Entity == nil || out.Entity.Identifier != id:
			return nil, fmt.Errorf("port: look up %s entity %q: %w: the answer does not hold it", target, id, ErrMalformedAnswer)
		}
		found[id] = true
	}
	return found, nil
}

type batch struct {
	blueprint string
	items     []*work
	merge     bool
	stub      bool
	// create: no search showed its entities in Port, so they are sent
	// with upsert=false. Search lags writes, so another owner's entity
	// written moments ago is refused by Port then, not overwritten (see
	// recheck).
	create bool
}

// packer packs entities (one blueprint each) into bulk requests of at most
// 20 entities and maxBodyBytes, one open batch per blueprint and stub
// flag.
type packer struct {
	merge bool
	open  map[packKey]*batch
	size  map[packKey]int
}

// packKey is what entities share a bulk request by.
type packKey struct {
	blueprint string
	stub      bool
	create    bool
}

const envelope = len(`{"entities":[]}`)

// add adds w and returns the batches it filled.
func (p *packer) add(st *runState, w *work) []batch {
	if st.failedKey(w.key) {
		return nil // failed offline (relation policy): never sent
	}
	if w.body == nil {
		st.fail(w.key, "entity cannot be encoded as JSON")
		return nil
	}
	if envelope+len(w.body) > maxBodyBytes {
		st.fail(w.key, fmt.Sprintf("entity is %d bytes; Port's request limit is %d", len(w.body), maxBodyBytes))
		return nil
	}
	if p.open == nil {
		p.open, p.size = map[packKey]*batch{}, map[packKey]int{}
	}
	var out []batch
	create := !p.merge && st.unseen(w)
	k := packKey{w.key.blueprint, w.stub, create}
	b := p.open[k]
	if b != nil && (len(b.items) == maxBulkEntities || p.size[k]+1+len(w.body) > maxBodyBytes) {
		out = append(out, *b)
		b = nil
	}
	if b == nil {
		b = &batch{blueprint: w.key.blueprint, merge: p.merge, stub: w.stub, create: create}
		p.open[k] = b
		p.size[k] = envelope - 1
	}
	b.items = append(b.items, w)
	p.size[k] += 1 + len(w.body)
	return out
}

// rest returns the batches still open, in order, and empties the packer.
func (p *packer) rest() []batch {
	rest := slices.SortedFunc(maps.Values(p.open), func(a, b *batch) int {
		return cmp.Or(cmp.Compare(a.blueprint, b.blueprint), cmp.Compare(fmt.Sprint(a.stub), fmt.Sprint(b.stub)), cmp.Compare(fmt.Sprint(a.create), fmt.Sprint(b.create)))
	})
	out := make([]batch, len(rest))
	for i, b := range rest {
		out[i] = *b
	}
	p.open, p.size = nil, nil
	return out
}

// bulkResult is what the sink reads of a bulk answer (see readAnswer).
type bulkResult struct {
	Entities []bulkEntity `json:"entities"`
	Errors   []bulkError  `json:"errors"`
}

type bulkEntity struct {
	Identifier string    `json:"identifier"`
	Index      bulkIndex `json:"index"`
	// Created false answering a create (upsert=false) may mean the entity
	// existed and was not written (undocumented): see recheck.
	Created *bool `json:"created"`
}

type bulkError struct {
	Identifier string    `json:"identifier"`
	Index      bulkIndex `json:"index"`
	StatusCode int       `json:"statusCode"`
	Error      string    `json:"error"`
	Message    string    `json:"message"`
}

// splits reports whether a bulk request Port refused whole with status is
// sent again in halves: too large, or refused for what one of its
// entities holds. Other answers (401, 403, 404) are about the request.
func splits(status int) bool {
	switch status {
	case http.StatusRequestEntityTooLarge, http.StatusBadRequest, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// sendBatch sends one bulk request. Per-entity failures (207) and whole-batch
// 4xx answers are recorded; a 413 splits the batch, and so does a 400 or 422
// (Port fails a whole bulk request for one entity its schema refuses: the
// halves isolate it, so it fails alone); anything else that the client
// could not retry away ends the run.
func (s *Sink) sendBatch(ctx context.Context, st *runState, b batch) error {
	var buf bytes.Buffer
	size := len(`{"entities":[]}`)
	for _, w := range b.items {
		size += len(w.body) + 1
	}
	buf.Grow(size) // one allocation, not a doubling for each
	buf.WriteString(`{"entities":[`)
	for i, w := range b.items {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(w.body)
	}
	buf.WriteString(`]}`)
	q := url.Values{"upsert": {fmt.Sprint(!b.create)}, "merge": {fmt.Sprint(b.merge)}, "create_missing_related_entities": {fmt.Sprint(b.stub)}}
	var out bulkResult
	_, err := s.api.doRaw(ctx, http.MethodPost, "/blueprints/"+url.PathEscape(b.blueprint)+"/entities/bulk", q, buf.Bytes(), &out)
	var se *StatusError
	switch {
	case errors.As(err, &se) && splits(se.Status) && len(b.items) > 1:
		half := len(b.items) / 2
		s.log.Debug("port refused a bulk request whole, splitting it", "blueprint", b.blueprint, "entities", len(b.items), "status", se.Status)
		left, right := b, b
		left.items, right.items = b.items[:half], b.items[half:]
		if err := s.sendBatch(ctx, st, left); err != nil {
			return err
		}
		return s.sendBatch(ctx, st, right)
	case errors.As(err, &se) && b.create && (se.Status == http.StatusConflict || splits(se.Status)):
		// How Port refuses to create an entity that exists, per entity
		// (207) or for the whole request, is not documented: either way
		// whose each entity is decides. A refusal about the request
		// (401, 403, 404, 429) says nothing of an entity: reading each
		// back would cost a request per entity and change nothing.
		msgs := make([]string, len(b.items))
		for i := range msgs {
			msgs[i] = se.Error()
		}
		return s.recheck(ctx, st, b, b.items, msgs, true)
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
	var recheck []*work
	var recheckMsg []string
	var done []string
	var ns []int64
	var cycle []bool
	for _, r := range out.Entities {
		if r.Index.N < 0 || r.Index.N >= len(b.items) {
			continue
		}
		seen[r.Index.N] = true
		if want := b.items[r.Index.N].key.identifier; r.Identifier != "" && r.Identifier != want {
			st.fail(b.items[r.Index.N].key, fmt.Sprintf("Port's bulk answer names %q at this entity's index", r.Identifier))
			continue
		}
		if b.create && r.Created != nil && !*r.Created {
			recheck = append(recheck, b.items[r.Index.N])
			recheckMsg = append(recheckMsg, "Port answered its create with created: false")
			continue
		}
		done = append(done, b.items[r.Index.N].key.identifier)
		ns = append(ns, b.items[r.Index.N].n)
		cycle = append(cycle, hasTargets(b.items[r.Index.N].deferred))
	}
	for _, e := range out.Errors {
		if e.Index.N >= 0 && e.Index.N < len(b.items) {
			seen[e.Index.N] = true
			// Port's message may quote the entity's values, as every
			// other answer of Port's it is redacted.
			msg := s.api.redact(fmt.Sprintf("%d %s: %s", e.StatusCode, e.Error, e.Message))
			if b.create {
				// Perhaps it exists after all: whose it is decides.
				recheck = append(recheck, b.items[e.Index.N])
				recheckMsg = append(recheckMsg, msg)
				continue
			}
			st.fail(b.items[e.Index.N].key, msg)
		}
	}
	for i, ok := range seen {
		if !ok {
			st.fail(b.items[i].key, "Port's bulk answer did not mention this entity")
		}
	}
	if !b.merge {
		if err := st.sp.setState(ctx, b.blueprint, done, ns, stateWritten, cycle); err != nil {
			return err
		}
	}
	s.log.Debug("port bulk written", "blueprint", b.blueprint, "entities", len(b.items), "errors", len(out.Errors))
	if len(recheck) > 0 {
		return s.recheck(ctx, st, b, recheck, recheckMsg, false)
	}
	return nil
}

// recheck reads each entity a create batch could not create (msgs: Port's
// errors) by itself: one Port does not hold failed for its own reason; one
// the run owns or adopts (its search had not shown it yet) is sent again
// as an upsert; anyone else's is a conflict, left as it is. whole says
// Port refused the request whole: then those it does not hold were not
// written for another's refusal, and are sent again as a create without
// the others (when there were others: a request refused whole for none of
// its entities fails them all, with no loop).
func (s *Sink) recheck(ctx context.Context, st *runState, b batch, items []*work, msgs []string, whole bool) error {
	var again, missing []*work
	var missingMsgs []string
	for i, w := range items {
		var out struct {
			Entity *struct {
				Identifier string         `json:"identifier"`
				Properties map[string]any `json:"properties"`
			} `json:"entity"`
		}
		_, err := s.api.do(ctx, http.MethodGet, "/blueprints/"+url.PathEscape(w.key.blueprint)+"/entities/"+url.PathEscape(w.key.identifier), nil, nil, &out)
		var se *StatusError
		switch {
		case errors.As(err, &se) && se.Status == http.StatusNotFound:
			missing = append(missing, w)
			missingMsgs = append(missingMsgs, msgs[i])
			continue
		case err != nil:
			st.fail(w.key, msgs[i]+"; whose the entity is, if Port holds it, could not be checked: "+err.Error())
			continue
		case out.Entity == nil || out.Entity.Identifier != w.key.identifier:
			st.fail(w.key, fmt.Sprintf("%s; whose the entity is, if Port holds it, could not be checked: %v: the answer does not hold it", msgs[i], ErrMalformedAnswer))
			continue
		}
		owner, _ := out.Entity.Properties[OwnerProperty].(string)
		switch adopt, ok := s.mayWrite(owner); {
		case !ok:
			st.mu.Lock()
			stubbed := st.stubs[w.key.blueprint]
			st.mu.Unlock()
			st.conflict(w.key, owner, stubbed)
		case adopt:
			st.adopt(w.key, owner)
			again = append(again, w)
		default:
			again = append(again, w)
		}
	}
	if whole && len(missing) > 0 && len(missing) < len(items) {
		nb := b
		nb.items = missing
		if err := s.sendBatch(ctx, st, nb); err != nil {
			return err
		}
	} else {
		for i, w := range missing {
			st.fail(w.key, missingMsgs[i])
		}
	}
	if len(again) == 0 {
		return nil
	}
	nb := b
	nb.items, nb.create = again, false
	return s.sendBatch(ctx, st, nb)
}
