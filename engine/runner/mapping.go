package runner

import (
	"context"
	"fmt"

	"github.com/ferry-etl/ferry/engine/sink"
	"github.com/ferry-etl/ferry/engine/spec"
)

// mapped is what one record becomes: rows, entities, and the failures of
// mappings that could not be applied to it.
type mapped struct {
	rows  []sink.Row
	ents  []sink.Entity
	fails []Failure
}

// mapRecord applies every table and entity mapping of the record's stream.
// It runs in the fetching goroutine, so records of different request chains
// are mapped in parallel; the releaser only delivers in order. A mapping
// error is a failure of that record, reported with its place; the only error
// returned is cancellation (which must not pass for a mapping failure, or the
// page's checkpoint would commit without the record).
//
// rows is false for a record re-read after a restart: its rows were
// committed before, its entities (sent only when a run ends) were not.
func (r *Runner) mapRecord(ctx context.Context, st *streamState, rn *run, rec any, vars []any, rows bool) (*mapped, error) {
	if (!rows || len(st.tables) == 0) && len(st.entities) == 0 {
		return nil, nil
	}
	m := &mapped{}
	fail := func(err error) {
		c := &chain{stream: st.s.Name, data: rec, up: rn.parent}
		m.fails = append(m.fails, Failure{Stream: st.s.Name, Parents: c.describe(), Err: err})
	}
	tables := st.tables
	if !rows {
		tables = nil
	}
	for _, t := range tables {
		rows, err := t.Row.Code().Run(ctx, rec, vars...)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			fail(fmt.Errorf("table %s: row: %w", t.Name, err))
			continue
		}
		for _, row := range rows {
			obj, ok := row.(map[string]any)
			if !ok {
				fail(fmt.Errorf("table %s: row: want an object, got %s", t.Name, typeName(row)))
				continue
			}
			m.rows = append(m.rows, sink.Row{Table: t.Name, Stream: st.s.Name, Partition: rn.partition, Data: obj})
		}
	}
	for _, e := range st.entities {
		ent, ok, err := mapEntity(ctx, e, rec, vars)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			fail(fmt.Errorf("blueprint %s: %w", e.Blueprint.V, err))
			continue
		}
		if ok {
			m.ents = append(m.ents, sink.Entity{Blueprint: e.Blueprint.V, Stream: st.s.Name, Partition: rn.partition, Data: ent})
		}
	}
	return m, nil
}

// deliver hands a mapped record to the Output, in release order. An Output
// error stops the run.
func (r *Runner) deliver(ctx context.Context, st *streamState, m *mapped, out Output, fails *failures) error {
	if m == nil {
		return nil
	}
	for _, f := range m.fails {
		fails.add(f)
		st.stat.failed()
	}
	for _, row := range m.rows {
		if err := out.Row(ctx, row); err != nil {
			return fmt.Errorf("table %s: %w", row.Table, err)
		}
		st.stat.output()
	}
	for _, e := range m.ents {
		if err := out.Entity(ctx, e); err != nil {
			return fmt.Errorf("blueprint %s: %w", e.Blueprint, err)
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
