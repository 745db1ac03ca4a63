package runner

import (
	"context"
	"errors"

	"github.com/ferry-etl/ferry/engine/spec"
)

// MapRows is what a table mapping makes of one record, as a run makes it:
// its rows, each checked for an object with its primary key. stream is the
// record's (one of the table's), vars are that stream's [JQVars].
func MapRows(ctx context.Context, t *spec.Table, stream string, rec any, vars []any) ([]map[string]any, error) {
	rows, errs := tableRows(ctx, t, nil, stream, rec, vars)
	out := make([]map[string]any, len(rows))
	for i, r := range rows {
		out[i] = r.data
	}
	return out, errors.Join(errs...)
}

// MapEntity is what an entity mapping makes of one record, as a run makes
// it; ok is false when the selector rejects the record.
func MapEntity(ctx context.Context, e *spec.Entity, rec any, vars []any) (ent map[string]any, ok bool, err error) {
	return mapEntity(ctx, e, rec, vars)
}
