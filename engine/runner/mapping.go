package runner

import (
	"context"
	"fmt"

	"github.com/ferry-etl/ferry/engine/sink"
	"github.com/ferry-etl/ferry/engine/spec"
)

// emit maps one released record to every table row and entity that comes
// from its stream. A mapping error is a failure of that record, reported
// with its place; it does not stop the run. An Output error does.
func (r *Runner) emit(ctx context.Context, st *streamState, rn *run, rec any, out Output, fails *failures) error {
	if len(st.tables) == 0 && len(st.entities) == 0 {
		return nil
	}
	vars := r.jqVars(st.s, rn)
	where := func() string {
		c := &chain{stream: st.s.Name, data: rec, up: rn.parent}
		return c.describe()
	}
	for _, t := range st.tables {
		rows, err := t.Row.Code().Run(ctx, rec, vars...)
		if ctx.Err() != nil {
			// Cancelled mid-mapping: not a mapping failure. Stopping here
			// keeps the page's checkpoint from being written without it.
			return ctx.Err()
		}
		if err != nil {
			fails.add(Failure{Stream: st.s.Name, Parents: where(), Err: fmt.Errorf("table %s: row: %w", t.Name, err)})
			st.stat.failed()
			continue
		}
		for _, row := range rows {
			m, ok := row.(map[string]any)
			if !ok {
				fails.add(Failure{Stream: st.s.Name, Parents: where(), Err: fmt.Errorf("table %s: row: want an object, got %s", t.Name, typeName(row))})
				st.stat.failed()
				continue
			}
			if err := out.Row(ctx, sink.Row{Table: t.Name, Stream: st.s.Name, Partition: rn.partition, Data: m}); err != nil {
				return fmt.Errorf("table %s: %w", t.Name, err)
			}
			st.stat.output()
		}
	}
	for _, e := range st.entities {
		ent, ok, err := mapEntity(ctx, e, rec, vars)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			fails.add(Failure{Stream: st.s.Name, Parents: where(), Err: fmt.Errorf("blueprint %s: %w", e.Blueprint.V, err)})
			st.stat.failed()
			continue
		}
		if !ok {
			continue
		}
		if err := out.Entity(ctx, sink.Entity{Blueprint: e.Blueprint.V, Stream: st.s.Name, Partition: rn.partition, Data: ent}); err != nil {
			return fmt.Errorf("blueprint %s: %w", e.Blueprint.V, err)
		}
		st.stat.output()
	}
	return nil
}

// mapEntity applies one Port mapping. ok is false when the selector
// rejects the record.
func mapEntity(ctx context.Context, e *spec.Entity, rec any, vars []any) (map[string]any, bool, error) {
	sel, _, err := e.Selector.Code().First(ctx, rec, vars...)
	if err != nil {
		return nil, false, fmt.Errorf("selector: %w", err)
	}
	if sel != true {
		return nil, false, nil
	}
	one := func(name string, q *spec.JQ) (any, error) {
		if q.Code() == nil {
			return nil, nil
		}
		v, _, err := q.Code().First(ctx, rec, vars...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return v, nil
	}
	id, err := one("identifier", &e.Identifier)
	if err != nil {
		return nil, false, err
	}
	ids, ok := id.(string)
	if !ok || ids == "" {
		return nil, false, fmt.Errorf("identifier: want a non-empty string, got %s", typeName(id))
	}
	ent := map[string]any{"identifier": ids}
	for name, q := range map[string]*spec.JQ{"title": &e.Title, "icon": &e.Icon, "team": &e.Team} {
		if q.Code() == nil {
			continue
		}
		v, err := one(name, q)
		if err != nil {
			return nil, false, err
		}
		ent[name] = v
	}
	props := make(map[string]any, len(e.Properties.Items))
	for i := range e.Properties.Items {
		it := &e.Properties.Items[i]
		v, err := one("properties."+it.Key, &it.Value)
		if err != nil {
			return nil, false, err
		}
		props[it.Key] = v
	}
	rels := make(map[string]any, len(e.Relations.Items))
	for i := range e.Relations.Items {
		it := &e.Relations.Items[i]
		v, err := one("relations."+it.Key, &it.Value)
		if err != nil {
			return nil, false, err
		}
		rels[it.Key] = v
	}
	ent["properties"] = props
	ent["relations"] = rels
	return ent, true, nil
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return "a number"
}
