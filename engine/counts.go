package engine

import (
	"context"
	"sync"

	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink"
)

// counting wraps a run's Output and counts, per table, the rows written and,
// per blueprint, the entities produced: for the live view and the report.
// Behind a destination that commits rows with their page's checkpoint, a
// row counts once its checkpoint came (rows of a page left unfinished are
// not written; the next run fetches them again).
type counting struct {
	out runner.Output

	mu       sync.Mutex
	pending  map[partKey]map[string]int64 // rows awaiting their checkpoint, by table
	rows     map[string]int64
	entities map[string]int64
	total    int64 // entities, every blueprint
}

// countingCP is counting for an Output that keeps checkpoints.
type countingCP struct {
	*counting
	cp runner.Checkpointer
}

// newCounting wraps out, keeping it a Checkpointer when it is one.
func newCounting(out runner.Output) (runner.Output, *counting) {
	c := &counting{out: out, pending: map[partKey]map[string]int64{}, rows: map[string]int64{}, entities: map[string]int64{}}
	if cp, ok := out.(runner.Checkpointer); ok {
		return countingCP{counting: c, cp: cp}, c
	}
	return c, c
}

func (c *counting) Row(ctx context.Context, r sink.Row) error {
	if err := c.out.Row(ctx, r); err != nil {
		return err
	}
	c.mu.Lock()
	c.rows[r.Table]++
	c.mu.Unlock()
	return nil
}

func (c *counting) Entity(ctx context.Context, e sink.Entity) error {
	if err := c.out.Entity(ctx, e); err != nil {
		return err
	}
	c.mu.Lock()
	c.entities[e.Blueprint]++
	c.total++
	c.mu.Unlock()
	return nil
}

func (c countingCP) Row(ctx context.Context, r sink.Row) error {
	if err := c.out.Row(ctx, r); err != nil {
		return err
	}
	c.mu.Lock()
	k := partKey{r.Stream, r.Partition}
	if c.pending[k] == nil {
		c.pending[k] = map[string]int64{}
	}
	c.pending[k][r.Table]++
	c.mu.Unlock()
	return nil
}

func (c countingCP) Checkpoint(ctx context.Context, cp sink.Checkpoint) error {
	if err := c.cp.Checkpoint(ctx, cp); err != nil {
		return err
	}
	c.mu.Lock()
	k := partKey{cp.Stream, cp.Partition}
	for t, n := range c.pending[k] {
		c.rows[t] += n
	}
	delete(c.pending, k)
	c.mu.Unlock()
	return nil
}

// snapshot copies the counts.
func (c *counting) snapshot() (rows, entities map[string]int64, total int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rows, entities = make(map[string]int64, len(c.rows)), make(map[string]int64, len(c.entities))
	for k, v := range c.rows {
		rows[k] = v
	}
	for k, v := range c.entities {
		entities[k] = v
	}
	return rows, entities, c.total
}
