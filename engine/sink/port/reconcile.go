package port

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"

	"github.com/ferry-etl/ferry/engine/sink"
)

// reconcile deletes stale owned entities of every complete blueprint. See
// doc.go for the ownership rules.
func (s *Sink) reconcile(ctx context.Context, st *runState, complete map[string]bool, rep *Report) error {
	var bps []string
	for bp, ok := range complete {
		if ok {
			bps = append(bps, bp)
		}
	}
	if len(bps) == 0 {
		return nil
	}
	if s.cfg.Owner == "" {
		s.log.Info("port deletion disabled: no owner set, so no entity is known to be ours")
		return nil
	}
	defs := map[string]*Blueprint{}
	for _, id := range bps {
		bp, err := s.blueprint(ctx, id)
		if err != nil {
			return err
		}
		if bp == nil {
			rep.SkippedDeletes = append(rep.SkippedDeletes, SkippedDelete{Blueprint: id, Reason: "blueprint does not exist in Port"})
			continue
		}
		if _, ok := bp.Properties[OwnerProperty]; !ok {
			s.log.Warn("port blueprint has no ownership property; nothing deleted", "blueprint", id, "property", OwnerProperty)
			rep.SkippedDeletes = append(rep.SkippedDeletes, SkippedDelete{Blueprint: id, Reason: "blueprint has no " + OwnerProperty + " property (run EnsureBlueprints with an owner)"})
			continue
		}
		defs[id] = bp
	}
	// Delete sources before their targets, so a stale entity is gone before
	// the stale entity it points at.
	edges := map[string][]string{}
	for id, bp := range defs {
		for _, r := range bp.Relations {
			if _, ok := defs[r.Target]; ok {
				edges[id] = append(edges[id], r.Target)
			}
		}
	}
	levels, _ := layers(slices.Collect(maps.Keys(defs)), edges)
	var order []string
	for i := len(levels) - 1; i >= 0; i-- {
		order = append(order, levels[i]...)
	}

	s.mu.Lock()
	keep := s.keep
	s.mu.Unlock()
	if s.cfg.NoDelete {
		keep = noDeleteReason
	}
	if keep != "" {
		s.log.Info("port deletion disabled", "reason", keep)
		return s.keepStale(ctx, st, defs, order, keep, rep)
	}
	stale := map[string][]string{}
	failed := map[entityKey]string{}
	for _, bp := range order {
		// Listed before the writes when the run wrote to bp (see claim):
		// what the run created then is produced, so never stale.
		owned, listed, err := st.ownedOf(bp)
		if !listed {
			owned, err = s.listOwned(ctx, st.sp, defs[bp])
		}
		var cand []string
		var kept []string
		if err == nil {
			// Keep what this run produced (even if its write failed) and
			// anything a written entity relates to.
			cand, err = st.sp.stale(ctx, bp)
		}
		if err == nil {
			kept, err = st.sp.kept(ctx, bp)
		}
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			// What this owner has in bp is unknown: nothing of bp is
			// deleted, and the run fails; other blueprints go on.
			msg := fmt.Sprintf("listing the entities owned by %q failed, nothing deleted: %v", s.cfg.Owner, err)
			s.log.Error("port reconciliation failed", "blueprint", bp, "error", err)
			rep.ReconcileErrors = append(rep.ReconcileErrors, BlueprintError{Blueprint: bp, Message: msg})
			continue
		}
		// Stale but kept for a relation: it stays, so the blueprint is not
		// reconciled, and the run says which and why.
		for _, id := range kept {
			failed[entityKey{bp, id}] = "not deleted: stale (this run did not produce it), but an entity this run wrote relates to it"
		}
		if len(cand) == 0 {
			continue
		}
		if reason := thresholdReason(len(cand), owned, s.cfg.DeleteThreshold); reason != "" {
			s.log.Warn("port deletion skipped", "blueprint", bp, "stale", len(cand), "owned", owned, "threshold", s.cfg.DeleteThreshold)
			rep.SkippedDeletes = append(rep.SkippedDeletes, SkippedDelete{Blueprint: bp, Stale: len(cand), Owned: owned, Reason: reason})
			continue
		}
		stale[bp] = cand
	}

	// Rounds: an entity whose dependents are deleted later in this pass can
	// go in the next round.
	for {
		progress := false
		for _, bp := range order {
			if len(stale[bp]) == 0 {
				continue
			}
			deleted, left, err := s.deleteIDs(ctx, bp, stale[bp])
			if err != nil {
				return err
			}
			rep.Deleted += len(deleted)
			c := rep.Blueprints[bp]
			c.Deleted += len(deleted)
			rep.Blueprints[bp] = c
			progress = progress || len(deleted) > 0
			stale[bp] = slices.Sorted(maps.Keys(left))
			for id, msg := range left {
				failed[entityKey{bp, id}] = msg
			}
			for _, id := range deleted {
				delete(failed, entityKey{bp, id})
			}
			if len(deleted) > 0 {
				s.log.Info("port stale entities deleted", "blueprint", bp, "entities", len(deleted))
			}
		}
		if !progress {
			break
		}
	}
	for k, msg := range failed {
		rep.DeleteErrors = append(rep.DeleteErrors, EntityError{Blueprint: k.blueprint, Identifier: k.identifier, Message: msg})
	}
	slices.SortFunc(rep.DeleteErrors, compareEntityErrors)
	for _, e := range rep.DeleteErrors {
		s.log.Warn("port stale entity not deleted", "blueprint", e.Blueprint, "identifier", e.Identifier, "reason", e.Message)
	}
	return nil
}

// noDeleteReason is the SkippedDelete reason of a blueprint whose stale
// entities NoDelete keeps.
const noDeleteReason = "deletion is off (--no-delete)"

// KeepStale makes Finish delete no stale entity, reporting each complete
// blueprint that keeps some (SkippedDeletes, with reason) instead: for a
// run that must not delete (ferry's engine: one that resumed an
// unfinished sync) but must not say its blueprints are reconciled either.
func (s *Sink) KeepStale(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keep = reason
}

// UnreadTargets names the blueprints whose source streams did not all
// complete in this run, with why. A relation to one of their entities that
// is neither written by the run nor in Port may name an entity the source
// has and the run did not read: under missing_relations stub it is dropped
// (with a warning), not stubbed, since a stub is no one's and would be a
// conflict once the run reads that entity. The next run sets the relation.
func (s *Sink) UnreadTargets(unread map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unread = unread
}

// keepStale reports, when deletion is off (NoDelete, KeepStale), each
// complete blueprint that keeps stale owned entities (or whose owned
// entities could not be listed, so whether it has any is unknown): it is
// not reconciled, and the run says so rather than leaving them silently.
// As `ferry plan` does, a blueprint the run wrote nothing to is listed for
// it.
func (s *Sink) keepStale(ctx context.Context, st *runState, defs map[string]*Blueprint, order []string, reason string, rep *Report) error {
	for _, bp := range order {
		owned, listed, err := st.ownedOf(bp)
		if !listed {
			owned, err = s.listOwned(ctx, st.sp, defs[bp])
		}
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			rep.SkippedDeletes = append(rep.SkippedDeletes, SkippedDelete{Blueprint: bp, Reason: reason + "; whether it has stale entities is unknown: " + err.Error()})
			continue
		}
		cand, err := st.sp.stale(ctx, bp)
		if err != nil {
			return err
		}
		kept, err := st.sp.kept(ctx, bp)
		if err != nil {
			return err
		}
		if n := len(cand) + len(kept); n > 0 {
			s.log.Warn("port deletion skipped", "blueprint", bp, "stale", n, "owned", owned, "reason", reason)
			rep.SkippedDeletes = append(rep.SkippedDeletes, SkippedDelete{Blueprint: bp, Stale: n, Owned: owned, Reason: reason})
		}
	}
	return nil
}

// thresholdReason says why deleting stale of owned entities is refused;
// "" when it is not.
func thresholdReason(stale, owned int, threshold float64) string {
	return sink.DeleteRefusal(stale, owned, threshold, "owned entities", "port.delete_threshold")
}

// listOwned lists bp's entities owned by the run's owner or by an owner it
// adopts (whose stale entities go too, which completes a move of
// ownership) into the spool, whole and canonical (for the change check),
// and returns how many there are. An answer holding an entity of anyone
// else makes no sense: deleting from it would delete another's entity.
// When the listing fails, nothing of it is kept.
func (s *Sink) listOwned(ctx context.Context, sp *spool, def *Blueprint) (int, error) {
	owners := append([]string{s.cfg.Owner}, s.cfg.AdoptOwners...)
	rule := map[string]any{"property": OwnerProperty, "operator": "=", "value": s.cfg.Owner}
	if len(owners) > 1 {
		rule = map[string]any{"property": OwnerProperty, "operator": "in", "value": owners}
	}
	n := 0
	err := s.searchPages(ctx, def.Identifier, map[string]any{"combinator": "and", "rules": []any{rule}}, nil, func(page []hit) error {
		rows := make([]ownedRow, 0, len(page))
		for _, h := range page {
			if !slices.Contains(owners, h.owner) {
				return fmt.Errorf("%w: asked for the entities owned by %q, Port's answer holds %q owned by %q", ErrMalformedAnswer, owners, h.id, h.owner)
			}
			body := encodeCanon(canonEntity(def, h.entity))
			if body == nil {
				return fmt.Errorf("%w: entity %q cannot be encoded", ErrMalformedAnswer, h.id)
			}
			rows = append(rows, ownedRow{id: h.id, owner: h.owner, body: body})
		}
		n += len(rows)
		return sp.putOwned(ctx, def.Identifier, rows)
	})
	if err != nil {
		if derr := sp.dropOwned(context.WithoutCancel(ctx), def.Identifier); derr != nil {
			err = errors.Join(err, derr)
		}
		return 0, err
	}
	return n, nil
}

// deleteIDs bulk-deletes ids (100 a call, never with delete_dependents). A
// refused call is split to find the entities Port will not delete; those
// come back in left with Port's message.
func (s *Sink) deleteIDs(ctx context.Context, bp string, ids []string) (deleted []string, left map[string]string, err error) {
	left = map[string]string{}
	var try func(chunk []string) error
	try = func(chunk []string) error {
		var out struct {
			DeletedEntities *[]string `json:"deletedEntities"`
		}
		q := url.Values{"delete_dependents": {"false"}}
		_, err := s.api.do(ctx, http.MethodPost, "/blueprints/"+url.PathEscape(bp)+"/bulk/entities/delete", q, map[string]any{"entities": chunk}, &out)
		var se *StatusError
		switch {
		case errors.As(err, &se) && se.Status >= 400 && se.Status < 500 && len(chunk) > 1:
			half := len(chunk) / 2
			if err := try(chunk[:half]); err != nil {
				return err
			}
			return try(chunk[half:])
		case errors.As(err, &se) && se.Status >= 400 && se.Status < 500:
			left[chunk[0]] = se.Error()
			return nil
		case err == nil && out.DeletedEntities == nil:
			err = fmt.Errorf("%w: the delete answer has no deletedEntities", ErrMalformedAnswer)
			fallthrough
		case errors.Is(err, ErrMalformedAnswer):
			for _, id := range chunk {
				left[id] = "Port's answer could not be read; the entity may or may not be deleted: " + err.Error()
			}
			return nil
		case err != nil:
			return fmt.Errorf("port: delete %d %s entities: %w", len(chunk), bp, err)
		}
		// Only what was asked counts as deleted. Port's bulk delete may
		// succeed in part and says so only by leaving ids out: each one
		// left out is read back, and reported while Port still holds it.
		// One that is gone counts as deleted: most often this request
		// deleted it, on an attempt whose answer was lost (the retry's
		// answer names none of what the first attempt deleted), so not
		// counting it would report fewer deletions than Port made (it
		// may also have been deleted meanwhile, or listed by a search
		// that lagged behind: gone all the same).
		for _, id := range chunk {
			if slices.Contains(*out.DeletedEntities, id) {
				deleted = append(deleted, id)
				continue
			}
			if msg := s.stillThere(ctx, bp, id); msg != "" {
				left[id] = msg
			} else {
				deleted = append(deleted, id)
			}
		}
		return ctx.Err()
	}
	for chunk := range slices.Chunk(ids, maxBulkDelete) {
		if err := try(chunk); err != nil {
			return deleted, left, err
		}
	}
	return deleted, left, nil
}

// stillThere says why id, which a bulk delete answer left out of
// deletedEntities, is not deleted; "" when Port no longer holds it.
func (s *Sink) stillThere(ctx context.Context, bp, id string) string {
	var out struct {
		Entity *struct {
			Identifier string `json:"identifier"`
		} `json:"entity"`
	}
	_, err := s.api.do(ctx, http.MethodGet, "/blueprints/"+url.PathEscape(bp)+"/entities/"+url.PathEscape(id), nil, nil, &out)
	var se *StatusError
	switch {
	case errors.As(err, &se) && se.Status == http.StatusNotFound:
		return ""
	case err != nil:
		return "Port's bulk delete answer left it out of deletedEntities, and whether it is still there could not be checked: " + err.Error()
	case out.Entity == nil || out.Entity.Identifier != id:
		return fmt.Sprintf("Port's bulk delete answer left it out of deletedEntities, and whether it is still there could not be checked: %v: the answer does not hold it", ErrMalformedAnswer)
	}
	return "not deleted: Port's bulk delete answer left it out of deletedEntities, and Port still holds it"
}
