package port

import (
	"errors"
	"fmt"
)

// ErrEntitiesFailed is wrapped by Finish's error when at least one entity
// could not be written; the Report lists them.
var ErrEntitiesFailed = errors.New("port: entities failed")

// Report is the outcome of one Finish.
type Report struct {
	Upserted int // entities Port accepted (every pass)
	Failed   int // entities rejected: offline validation, relation policy "fail", or Port
	Deleted  int // stale owned entities deleted

	// DroppedRelations counts relation targets removed under RelationDrop.
	DroppedRelations int

	Errors         []EntityError   // one per failed entity, sorted
	SkippedDeletes []SkippedDelete // blueprints whose reconciliation was skipped
	DeleteErrors   []EntityError   // stale entities Port refused to delete (e.g. dependents)
}

// EntityError is one entity that failed, with Port's message when Port
// rejected it.
type EntityError struct {
	Blueprint  string
	Identifier string
	Message    string
}

func (e EntityError) Error() string {
	return fmt.Sprintf("blueprint %s entity %q: %s", e.Blueprint, e.Identifier, e.Message)
}

// SkippedDelete is a blueprint whose stale entities were left in place.
type SkippedDelete struct {
	Blueprint string
	Stale     int // owned entities this run did not produce
	Owned     int // entities owned by Config.Owner before deletion
	Reason    string
}
