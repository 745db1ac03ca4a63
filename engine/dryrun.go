package engine

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink"
	"github.com/ferry-etl/ferry/engine/sink/port"
	"github.com/ferry-etl/ferry/engine/spec"
)

// checkedOutput is the dry-run Output: it prints everything, and checks
// each entity offline against its blueprint, as the Port destination would
// before sending, so a dry run shows the problems a real run would hit.
type checkedOutput struct {
	runner.Output
	blueprints map[string]*port.Blueprint

	mu sync.Mutex
	// invalid holds why each entity whose last version is invalid would
	// be rejected, in the order first met (order may hold keys a later
	// version cleared): a later version, not a merged part, replaces an
	// earlier one's failure, as the Port sink's Write does.
	invalid map[dryKey]string
	order   []dryKey
	// unkeyed are problems of entities without a string identifier,
	// which no later version replaces.
	unkeyed []string
}

// dryKey names an entity: its blueprint and identifier.
type dryKey struct{ blueprint, identifier string }

func newCheckedOutput(f *spec.File, out runner.Output) (*checkedOutput, error) {
	c := &checkedOutput{Output: out, blueprints: map[string]*port.Blueprint{}}
	if f.Port == nil {
		return c, nil
	}
	for _, raw := range f.Blueprints() {
		bp, err := port.ParseBlueprint(raw)
		if err != nil {
			return nil, fmt.Errorf("port: blueprints %s: %w", f.Port.Blueprints.V, err)
		}
		c.blueprints[bp.Identifier] = bp
	}
	return c, nil
}

func (c *checkedOutput) Entity(ctx context.Context, e sink.Entity) error {
	if bp := c.blueprints[e.Blueprint]; bp != nil {
		errs := port.ValidateEntity(bp, e)
		id, keyed := e.Data["identifier"].(string)
		k := dryKey{e.Blueprint, id}
		c.mu.Lock()
		if keyed && !e.Merge {
			delete(c.invalid, k)
		}
		if errs != nil {
			// Named as a real run's report names it: with its record's place.
			from := port.EntityError{Stream: e.Stream, Parents: e.Parents}.From()
			msg := fmt.Sprintf("blueprint %s, entity %v%s: %v", e.Blueprint, e.Data["identifier"], from, errs)
			switch {
			case !keyed:
				c.unkeyed = append(c.unkeyed, msg)
			case c.invalid[k] == "":
				if c.invalid == nil {
					c.invalid = map[dryKey]string{}
				}
				c.invalid[k] = msg
				c.order = append(c.order, k)
			}
		}
		c.mu.Unlock()
	}
	return c.Output.Entity(ctx, e)
}

// err reports the entities Port would reject.
func (c *checkedOutput) err() error {
	count := len(c.invalid) + len(c.unkeyed)
	if count == 0 {
		return nil
	}
	var examples []string
	for _, k := range c.order {
		if msg, ok := c.invalid[k]; ok && len(examples) < 20 && !slices.Contains(examples, msg) {
			examples = append(examples, msg)
		}
	}
	for _, msg := range c.unkeyed {
		if len(examples) < 20 {
			examples = append(examples, msg)
		}
	}
	return &InvalidEntitiesError{Count: count, Examples: examples}
}

// InvalidEntitiesError says how many mapped entities do not fit their
// blueprints.
type InvalidEntitiesError struct {
	Count    int
	Examples []string
}

func (e *InvalidEntitiesError) Error() string {
	msg := fmt.Sprintf("%d entities do not fit their blueprints (Port would reject them)", e.Count)
	for _, x := range e.Examples {
		msg += "\n  " + x
	}
	if e.Count > len(e.Examples) {
		msg += fmt.Sprintf("\n  … and %d more", e.Count-len(e.Examples))
	}
	return msg
}
