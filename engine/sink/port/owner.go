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
	"strconv"

	"golang.org/x/sync/errgroup"
)

// hit is one entity of a search answer.
type hit struct {
	id     string
	owner  string         // its OwnerProperty; "" when it has none
	entity map[string]any // the whole entity, when the search asked for it
}

// search returns bp's entities matching query, following `next` until the
// last page; withOwner asks for OwnerProperty too.
func (s *Sink) search(ctx context.Context, bp string, query map[string]any, withOwner bool) ([]hit, error) {
	include := []string{"$identifier"}
	if withOwner {
		include = append(include, OwnerProperty)
	}
	var hits []hit
	err := s.searchPages(ctx, bp, query, include, func(page []hit) error {
		hits = append(hits, page...)
		return nil
	})
	return hits, err
}

// searchPages calls fn with each page of bp's entities matching query,
// following `next` until the last page; include nil asks for whole
// entities. An answer that is not the documented shape, {entities:
// [{identifier, …}], next}, fails with ErrMalformedAnswer: read as "no
// entities" it would keep stale entities or hide another owner's.
func (s *Sink) searchPages(ctx context.Context, bp string, query map[string]any, include []string, fn func([]hit) error) error {
	path := "/blueprints/" + url.PathEscape(bp) + "/entities/search"
	body := map[string]any{"query": query, "limit": searchPageSize}
	if include != nil {
		body["include"] = include
	}
	seen := map[string]bool{}
	for {
		var raw json.RawMessage
		if _, err := s.api.do(ctx, http.MethodPost, path, nil, body, &raw); err != nil {
			return err
		}
		page, next, err := parseSearchPage(raw, include == nil)
		if err == nil && seen[next] {
			err = fmt.Errorf("%w: search answer repeats the cursor of an earlier page", ErrMalformedAnswer)
		}
		if err != nil {
			return fmt.Errorf("POST /v1%s: %w", path, err)
		}
		if err := fn(page); err != nil {
			return err
		}
		if next == "" {
			return nil
		}
		seen[next] = true
		body["from"] = next
	}
}

// parseSearchPage reads one page of a search answer strictly; whole keeps
// each entity.
func parseSearchPage(raw []byte, whole bool) ([]hit, string, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, "", fmt.Errorf("%w: empty search answer", ErrMalformedAnswer)
	}
	var page struct {
		Entities []json.RawMessage `json:"entities"`
		Next     json.RawMessage   `json:"next"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		return nil, "", fmt.Errorf("%w: search answer: %w", ErrMalformedAnswer, err)
	}
	if page.Entities == nil {
		return nil, "", fmt.Errorf("%w: search answer has no entities list", ErrMalformedAnswer)
	}
	var next string
	if len(page.Next) > 0 && string(page.Next) != "null" {
		if err := json.Unmarshal(page.Next, &next); err != nil {
			return nil, "", fmt.Errorf("%w: search answer's next is not a string", ErrMalformedAnswer)
		}
	}
	hits := make([]hit, 0, len(page.Entities))
	for i, e := range page.Entities {
		var ent map[string]any
		if err := json.Unmarshal(e, &ent); err != nil {
			return nil, "", fmt.Errorf("%w: search answer entity %d: %w", ErrMalformedAnswer, i, err)
		}
		id, _ := ent["identifier"].(string)
		if id == "" {
			return nil, "", fmt.Errorf("%w: search answer entity %d has no identifier", ErrMalformedAnswer, i)
		}
		h := hit{id: id}
		props, _ := ent["properties"].(map[string]any)
		switch o := props[OwnerProperty].(type) {
		case nil:
		case string:
			h.owner = o
		default:
			b, _ := json.Marshal(o)
			h.owner = string(b)
		}
		if whole {
			h.entity = ent
		}
		hits = append(hits, h)
	}
	return hits, next, nil
}

// claim asks Port, before anything is written, who owns the entities the
// run is about to write (the spool's, of the blueprints in defs). One
// owned by another owner, or by none (made by hand or by another tool),
// is a conflict: it is not written, and it is reported with its current
// owner — unless the run adopts it (Config.AdoptOwners,
// Config.AdoptUnowned). Entities Port does not hold are free. Without an
// Owner nothing is checked.
//
// Each blueprint's owned entities are listed first, whole, into the spool:
// reconciliation reuses the list, and so does the change check (an owned
// entity that would be written exactly as stored is not sent). A rerun
// therefore looks up only identifiers that are not already its own: a
// steady catalog costs no lookups, and no count. A blueprint Port counts
// no entity of (see [Sink.holdsNone]) is not looked up either. Listings,
// counts and lookups run Concurrency at a time.
func (s *Sink) claim(ctx context.Context, st *runState, defs map[string]*Blueprint) error {
	if s.cfg.Owner == "" {
		return nil
	}
	var marked []string
	for _, bp := range slices.Sorted(maps.Keys(defs)) {
		if _, ok := defs[bp].Properties[OwnerProperty]; ok {
			marked = append(marked, bp)
			continue
		}
		if s.cfg.AdoptUnowned {
			continue
		}
		if err := s.eachID(ctx, st.sp, bp, selValid, func(id string) {
			st.fail(entityKey{bp, id}, fmt.Sprintf("not written: blueprint %s has no %s property, so ferry cannot tell its own entities from others' (put the blueprint in the spec's blueprints file, or adopt unowned entities)", bp, OwnerProperty))
		}); err != nil {
			return err
		}
	}

	st.mu.Lock()
	for _, bp := range marked {
		st.claimed[bp] = true
		st.stubs[bp] = s.stubbed(defs, bp)
	}
	st.mu.Unlock()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.Concurrency)
	for _, bp := range marked {
		if s.absent[bp] {
			st.listed(bp, 0, nil) // a plan's new blueprint: Port holds none of it
			continue
		}
		g.Go(s.guard(func() error {
			n, err := s.listOwned(gctx, st.sp, defs[bp])
			if err != nil && gctx.Err() != nil {
				return err
			}
			// A listing that failed is the reconciliation's failure; the
			// count and the lookups below still decide about each identifier.
			st.listed(bp, n, err)
			return nil
		}))
	}
	if err := g.Wait(); err != nil {
		return err
	}

	// Port's count of each blueprint with identifiers to look up, asked
	// after every listing, just before the lookups it may spare: asked
	// after its own listing alone, an entity another tool made while the
	// next blueprints were listed would not be counted, and would be
	// written over. A blueprint the listing holds all of asks nothing.
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.Concurrency)
	for _, bp := range marked {
		if s.absent[bp] {
			continue
		}
		unknown, err := st.sp.idsAfter(ctx, bp, selValidUnowned, "", 1)
		if err != nil {
			_ = g.Wait()
			return err
		}
		if len(unknown) == 0 {
			continue
		}
		g.Go(s.guard(func() error {
			if s.holdsNone(gctx, bp) {
				st.setEmpty(bp)
			}
			return nil
		}))
	}
	if err := g.Wait(); err != nil {
		return err
	}

	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.Concurrency)
	for _, bp := range marked {
		if s.absent[bp] {
			continue
		}
		adopted, err := st.sp.ownedBy(ctx, bp, s.cfg.Owner)
		if err != nil {
			_ = g.Wait()
			return err
		}
		for id, from := range adopted {
			st.adopt(entityKey{bp, id}, from)
		}
		if st.isEmpty(bp) {
			s.log.Debug("no ownership lookups: Port holds no entity of the blueprint", "blueprint", bp)
			continue
		}
		after := ""
		for gctx.Err() == nil {
			unknown, err := st.sp.idsAfter(ctx, bp, selValidUnowned, after, 1000)
			if err != nil {
				_ = g.Wait()
				return err
			}
			if len(unknown) == 0 {
				break
			}
			after = unknown[len(unknown)-1]
			for chunk := range slices.Chunk(unknown, lookupChunk) {
				g.Go(s.guard(func() error { return s.claimChunk(gctx, st, bp, chunk, s.stubbed(defs, bp)) }))
			}
		}
	}
	return g.Wait()
}

// holdsNone reports whether Port says it holds no entity of bp at all
// (GET …/entities-count, 0): then none of the run's can be another's, and
// the lookups of each identifier the owned listing lacks — on a first
// load every one, a search of 100 at a time — are not made. Any other
// answer, or none, leaves them to decide. A count of 0 is as fresh as a
// lookup's empty answer (both read Port after every listing), and unlike a
// count equal to the listing's it cannot hide another's entity behind one
// of the run's deleted since.
func (s *Sink) holdsNone(ctx context.Context, bp string) bool {
	var raw json.RawMessage
	if _, err := s.api.do(ctx, http.MethodGet, "/blueprints/"+url.PathEscape(bp)+"/entities-count", nil, nil, &raw); err != nil {
		s.log.Debug("port entity count not read: each identifier is looked up", "blueprint", bp, "error", err)
		return false
	}
	return countsNone(raw)
}

// countsNone reads a count answer strictly, with the bulk answers'
// scanner: {"ok": true, "count": 0}, each key once and spelled so, nothing
// after it. encoding/json alone would take a repeated key's last value and
// a key in any case, reading an answer that is not Port's as "holds none",
// which spares the lookups.
func countsNone(raw []byte) bool {
	s := scanner{b: raw}
	var sawOK, sawCount, ok, zero bool
	read := s.object(func(key []byte) bool {
		start := s.pos
		switch string(key) {
		case "ok":
			if sawOK || !s.skip(0) {
				return false
			}
			sawOK, ok = true, string(s.b[start:s.pos]) == "true"
			return true
		case "count":
			if sawCount || !s.number() {
				return false
			}
			f, err := strconv.ParseFloat(string(s.b[start:s.pos]), 64)
			sawCount, zero = true, err == nil && f == 0
			return true
		}
		return s.other(key, "ok", "count")
	})
	s.space()
	return read && s.pos == len(raw) && ok && zero
}

// stubbed reports whether the spec lets Port make empty stubs of bp: a
// relation to it under missing_relations: stub. Port makes them without
// an owner, so the run that first produces one finds it unowned.
func (s *Sink) stubbed(defs map[string]*Blueprint, bp string) bool {
	for from, def := range defs {
		for name, rel := range def.Relations {
			if rel.Target == bp && s.cfg.policy(from, name) == RelationStub {
				return true
			}
		}
	}
	return false
}

// claimChunk looks up who owns ids of bp, none of them known as the run's;
// stubbed is [Sink.stubbed] of bp.
func (s *Sink) claimChunk(ctx context.Context, st *runState, bp string, ids []string, stubbed bool) error {
	q := map[string]any{"combinator": "and", "rules": []any{
		map[string]any{"property": "$identifier", "operator": "in", "value": ids},
	}}
	hits, err := s.search(ctx, bp, q, true)
	var se *StatusError
	if errors.Is(err, ErrMalformedAnswer) || errors.As(err, &se) && se.Status >= 400 && se.Status < 500 {
		for _, id := range ids {
			st.fail(entityKey{bp, id}, "not written: who owns it in Port could not be checked: "+err.Error())
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("port: check who owns %d %s entities: %w", len(ids), bp, err)
	}
	asked := map[string]bool{}
	for _, id := range ids {
		asked[id] = true
	}
	for _, h := range hits {
		if !asked[h.id] {
			continue // not one of ours to write: nothing to decide
		}
		k := entityKey{bp, h.id}
		switch adopt, ok := s.mayWrite(h.owner); {
		case !ok:
			st.conflict(k, h.owner, stubbed)
		case adopt:
			st.adopt(k, h.owner)
		default:
			st.foundOwn(k)
		}
	}
	return nil
}

// mayWrite says whether the run may write an entity Port holds under
// owner ("" for none): its own, or one it adopts (adopt).
func (s *Sink) mayWrite(owner string) (adopt, ok bool) {
	switch {
	case owner == s.cfg.Owner:
		return false, true
	case owner == "" && s.cfg.AdoptUnowned, owner != "" && slices.Contains(s.cfg.AdoptOwners, owner):
		return true, true
	}
	return false, false
}

// conflictMessage says why an entity was not written; stubbed says Port
// may have made it as an empty stub (see [Sink.stubbed]).
func conflictMessage(owner string, stubbed bool) string {
	if owner == "" && stubbed {
		return fmt.Sprintf("not overwritten: the entity exists in Port without a %s: an empty stub Port made for a relation (missing_relations: stub), or one made by hand or by another tool (adopt unowned entities to take it over)", OwnerProperty)
	}
	if owner == "" {
		return fmt.Sprintf("not overwritten: the entity exists in Port without a %s, made by hand or by another tool (adopt unowned entities to take it over)", OwnerProperty)
	}
	return fmt.Sprintf("not overwritten: the entity is owned by %q (adopt owner %q to take it over)", owner, owner)
}
