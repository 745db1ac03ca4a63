package port

import (
	"errors"
	"fmt"
	"strings"
)

// ErrEntitiesFailed is wrapped by Finish's error when at least one entity
// could not be written; the Report lists them.
var ErrEntitiesFailed = errors.New("port: entities failed")

// ErrReconcileFailed is wrapped by Finish's error when the stale entities
// of at least one blueprint could not be listed; nothing of those
// blueprints was deleted, and the Report lists them.
var ErrReconcileFailed = errors.New("port: reconciliation failed")

// Report is the outcome of one Finish.
type Report struct {
	Owner     string // Config.Owner: the value of OwnerProperty this run writes
	Upserted  int    // entities sent that Port accepted (every pass)
	Unchanged int    // entities Port already held exactly as the run would write them: not sent
	Failed    int    // entities not written: offline validation, relation policy "fail", conflicts, or Port
	Deleted   int    // stale owned entities deleted
	Adopted   int    // entities written that belonged to an adopted owner (or to none)

	// DroppedRelations counts relation targets removed under RelationDrop.
	DroppedRelations int

	Blueprints map[string]BlueprintCounts // per blueprint with entities

	Errors         []EntityError   // one per failed entity, sorted
	Conflicts      []Conflict      // entities of another owner, not written (also in Errors)
	SkippedDeletes []SkippedDelete // blueprints whose reconciliation was skipped (threshold, NoDelete)
	// ReconcileErrors are blueprints whose owned entities could not be
	// listed: nothing of them was deleted, and Finish fails.
	ReconcileErrors []BlueprintError
	DeleteErrors    []EntityError // stale entities not deleted: Port refused (e.g. dependents), or an entity the run wrote relates to them
}

// BlueprintCounts are one blueprint's entities by outcome.
type BlueprintCounts struct {
	Upserted  int // sent, and accepted by Port
	Unchanged int // held by Port as the run would write them: not sent
	Failed    int // not written (see Report.Errors)
	Deleted   int // stale owned entities deleted
}

// Conflict is an entity the run produced that Port holds under another
// owner: it was not overwritten.
type Conflict struct {
	Blueprint  string
	Identifier string
	Owner      string // its OwnerProperty in Port; "" when it has none (made by hand or another tool)
	// Stream, Parents and Merged name the record it was mapped from, as
	// EntityError's do.
	Stream  string
	Parents string
	Merged  bool
}

// From is EntityError.From.
func (c Conflict) From() string {
	return EntityError{Stream: c.Stream, Parents: c.Parents, Merged: c.Merged}.From()
}

// BlueprintError is a failure that concerns a whole blueprint.
type BlueprintError struct {
	Blueprint string
	Message   string
}

func (e BlueprintError) Error() string {
	return fmt.Sprintf("blueprint %s: %s", e.Blueprint, e.Message)
}

// EntityError is one entity that failed, with Port's message when Port
// rejected it.
type EntityError struct {
	Blueprint  string
	Identifier string
	Message    string
	// Stream and Parents (sink.Entity.Parents: its parent chain, "" for
	// a root stream) name the record the entity was mapped from, whether
	// offline validation or Port refused it; both "" for an entity the
	// run did not produce (DeleteErrors). Merged: the entity merges
	// several records (on_duplicate: merge), and they name the last one.
	Stream  string
	Parents string
	Merged  bool
}

func (e EntityError) Error() string {
	return fmt.Sprintf("blueprint %s entity %q%s: %s", e.Blueprint, e.Identifier, e.From(), e.Message)
}

// From names the record the entity was mapped from, for messages: ""
// when unknown, else " (stream …, parents …)".
func (e EntityError) From() string {
	var b strings.Builder
	switch {
	case e.Stream != "" && e.Parents != "":
		fmt.Fprintf(&b, " (stream %s, parents %s", e.Stream, e.Parents)
	case e.Stream != "":
		fmt.Fprintf(&b, " (stream %s", e.Stream)
	default:
		return ""
	}
	if e.Merged {
		b.WriteString("; the last of the records merged into it")
	}
	b.WriteString(")")
	return b.String()
}

// SkippedDelete is a blueprint whose stale entities were left in place.
type SkippedDelete struct {
	Blueprint string
	Stale     int // owned entities this run did not produce
	Owned     int // entities owned by Config.Owner before deletion
	Reason    string
}
