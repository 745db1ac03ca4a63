package engine

import (
	"context"
	"fmt"
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

	mu       sync.Mutex
	problems []string
	count    int
}

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
		if errs := port.ValidateEntity(bp, e); errs != nil {
			c.mu.Lock()
			c.count++
			if len(c.problems) < 20 {
				c.problems = append(c.problems, fmt.Sprintf("blueprint %s, entity %v: %v", e.Blueprint, e.Data["identifier"], errs))
			}
			c.mu.Unlock()
		}
	}
	return c.Output.Entity(ctx, e)
}

// err reports the entities Port would reject.
func (c *checkedOutput) err() error {
	if c.count == 0 {
		return nil
	}
	return &InvalidEntitiesError{Count: c.count, Examples: c.problems}
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
