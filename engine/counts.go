package engine

import (
	"context"
	"sync"

	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink"
)

// counting wraps a run's Output and counts, per table, the rows written and,
// per blueprint, the entities produced: for the live view and the report.
// Behind a destination that commits rows in batches (with their page's
// checkpoint), a row counts once its batch is committed: rows of a page
// left unfinished, or of a batch the database refused, are not written.
type counting struct {
	out runner.Output

	mu       sync.Mutex
	rows     map[string]int64
	entities map[string]int64
	total    int64 // entities, every blueprint
}

// committer is an Output that writes rows in batches and says which rows
// each successful commit wrote.
type committer interface {
	runner.Checkpointer
	onCommit(func(rows []sink.Row))
}

// countingCP is counting for an Output that keeps checkpoints and commits
// rows in batches: rows are counted by the commits, not as they come.
type countingCP struct {
	*counting
	cp runner.Checkpointer
}

// newCounting wraps out, keeping it a Checkpointer when it is one.
func newCounting(out runner.Output) (runner.Output, *counting) {
	c := &counting{out: out, rows: map[string]int64{}, entities: map[string]int64{}}
	if cm, ok := out.(committer); ok {
		cm.onCommit(c.committed)
		return countingCP{counting: c, cp: cm}, c
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

// committed counts the rows of a commit.
func (c *counting) committed(rows []sink.Row) {
	c.mu.Lock()
	for _, r := range rows {
		c.rows[r.Table]++
	}
	c.mu.Unlock()
}

// Row is counted when its batch is committed (see committed).
func (c countingCP) Row(ctx context.Context, r sink.Row) error {
	return c.out.Row(ctx, r)
}

func (c countingCP) Checkpoint(ctx context.Context, cp sink.Checkpoint) error {
	return c.cp.Checkpoint(ctx, cp)
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
