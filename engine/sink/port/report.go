package port

import (
	"errors"
	"fmt"
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
	// Stream and Partition (its parent chain) name where the entity was
	// mapped from, when the sink still knows it: for an entity refused
	// before it was spooled (offline validation), not for Port's refusals.
	Stream    string
	Partition string
}

func (e EntityError) Error() string {
	from := ""
	switch {
	case e.Stream != "" && e.Partition != "":
		from = fmt.Sprintf(" (stream %s, parents %s)", e.Stream, e.Partition)
	case e.Stream != "":
		from = fmt.Sprintf(" (stream %s)", e.Stream)
	}
	return fmt.Sprintf("blueprint %s entity %q%s: %s", e.Blueprint, e.Identifier, from, e.Message)
}

// SkippedDelete is a blueprint whose stale entities were left in place.
type SkippedDelete struct {
	Blueprint string
	Stale     int // owned entities this run did not produce
	Owned     int // entities owned by Config.Owner before deletion
	Reason    string
}
