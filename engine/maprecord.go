package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/spec"
)

// MapInput is one record to map through one mapping, with what a run
// would give its programs.
type MapInput struct {
	// Table names a table mapping; Blueprint an entity mapping instead.
	// From is the record's stream, needed when several streams feed that
	// table or map to that blueprint.
	Table, Blueprint, From string
	Record                 any            // JSON-shaped (YAML values are converted)
	Parents                map[string]any // every ancestor record, by stream name
	Config                 map[string]any // config values; the spec's defaults fill the rest
	Batch                  []any          // $batch, for a stream that takes one
	Lookups                map[string]any // $lookups: lookup name -> key -> value
}

// MapRecord maps one record through one table or entity mapping, as a run
// maps it, without any request: the rows of a table mapping, each checked
// for its primary key, or the entity (none when the selector rejects the
// record, a failure when its identifier is not a non-empty string), as
// --dry-run prints them.
func MapRecord(ctx context.Context, sp *Spec, in MapInput) ([]map[string]any, error) {
	f := sp.f
	var (
		stream string
		table  *spec.Table
		entity *spec.Entity
	)
	switch {
	case in.Table != "" && in.Blueprint != "":
		return nil, fmt.Errorf("give a table or a blueprint, not both")
	case in.Table != "":
		if table = f.Tables.Get(in.Table); table == nil {
			return nil, fmt.Errorf("no table %q%s (the spec has: %s)", in.Table, didYouMean(in.Table, f.Tables.Keys()), strings.Join(f.Tables.Keys(), ", "))
		}
		streams := table.Streams()
		switch {
		case in.From != "" && !table.FedBy(in.From):
			return nil, fmt.Errorf("table %s is not fed by stream %q (its from: %s)", in.Table, in.From, strings.Join(streams, ", "))
		case in.From != "":
			stream = in.From
		case len(streams) > 1:
			return nil, fmt.Errorf("table %s is fed by several streams (%s): give from, the stream the record is of", in.Table, strings.Join(streams, ", "))
		case len(streams) == 1:
			stream = streams[0]
		}
	case in.Blueprint != "":
		var err error
		if entity, err = entityMapping(f, in.Blueprint, in.From); err != nil {
			return nil, err
		}
		stream = entity.From.V
	default:
		return nil, fmt.Errorf("give a table or a blueprint")
	}
	s := f.Stream(stream)
	if s == nil {
		return nil, fmt.Errorf("no stream %q", stream)
	}
	rec, err := jsonShaped(in.Record)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	parents, parent, err := ancestors(s, in.Parents)
	if err != nil {
		return nil, err
	}
	batch, err := jsonShaped(in.Batch)
	if err != nil {
		return nil, fmt.Errorf("batch: %w", err)
	}
	batchList, _ := batch.([]any)
	lookups, err := jsonShaped(in.Lookups)
	if err != nil {
		return nil, fmt.Errorf("lookups: %w", err)
	}
	lookupMap, _ := lookups.(map[string]any)
	config := map[string]any{}
	for _, it := range f.Config.Items {
		if it.Value.Default.Set {
			config[it.Key] = it.Value.Default.Tree()
		}
	}
	for k, v := range in.Config {
		if f.ConfigVar(k) == nil {
			return nil, fmt.Errorf("config: unknown input %q%s", k, didYouMean(k, f.Config.Keys()))
		}
		config[k] = v
	}
	// Typed as a run types them: a list given as "a, b" is a list here too.
	for k, v := range config {
		typed, err := f.ConfigVar(k).Convert(v)
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", k, err)
		}
		config[k] = typed
	}
	vars := runner.JQVars(s, config, parent, parents, batchList, lookupMap)
	if table != nil {
		return runner.MapRows(ctx, table, stream, rec, vars)
	}
	ent, ok, err := runner.MapEntity(ctx, entity, rec, vars)
	if err != nil || !ok {
		return nil, err
	}
	return []map[string]any{ent}, nil
}

// entityMapping finds the mapping of blueprint (from stream, when given).
func entityMapping(f *spec.File, blueprint, from string) (*spec.Entity, error) {
	var found []*spec.Entity
	var blueprints []string
	if f.Port != nil {
		for i := range f.Port.Entities {
			e := &f.Port.Entities[i]
			blueprints = append(blueprints, e.Blueprint.V)
			if e.Blueprint.V == blueprint && (from == "" || e.From.V == from) {
				found = append(found, e)
			}
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		var streams []string
		for _, e := range found {
			streams = append(streams, e.From.V)
		}
		return nil, fmt.Errorf("blueprint %s is mapped from several streams (%s): say which with from", blueprint, strings.Join(streams, ", "))
	case from != "":
		return nil, fmt.Errorf("no mapping of blueprint %q from stream %q", blueprint, from)
	}
	slices.Sort(blueprints)
	return nil, fmt.Errorf("no mapping of blueprint %q%s", blueprint, didYouMean(blueprint, slices.Compact(blueprints)))
}

// ancestors checks that every ancestor of s is given, and nothing else.
func ancestors(s *spec.Stream, given map[string]any) (map[string]any, any, error) {
	chain := s.Ancestors()
	names := make([]string, len(chain))
	for i, a := range chain {
		names[i] = a.Name
	}
	out := map[string]any{}
	for name, rec := range given {
		if !slices.Contains(names, name) {
			if len(names) == 0 {
				return nil, nil, fmt.Errorf("parents: stream %s has no parent stream, so no parents.%s", s.Name, name)
			}
			return nil, nil, fmt.Errorf("parents: %s is not an ancestor of stream %s (its ancestors: %s)", name, s.Name, strings.Join(names, ", "))
		}
		v, err := jsonShaped(rec)
		if err != nil {
			return nil, nil, fmt.Errorf("parents.%s: %w", name, err)
		}
		out[name] = v
	}
	var missing []string
	for _, n := range names {
		if _, ok := out[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("parents: stream %s fans out from %s: give the record of %s", s.Name, strings.Join(names, " < "), strings.Join(missing, ", "))
	}
	if len(chain) == 0 {
		return out, nil, nil
	}
	return out, out[chain[0].Name], nil
}

// jsonShaped turns a value (from YAML) into what a run's programs see: the
// JSON decoding of it, numbers exact.
func jsonShaped(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}
