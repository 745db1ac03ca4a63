package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink"
	"github.com/ferry-etl/ferry/engine/sink/port"
	"github.com/ferry-etl/ferry/engine/sink/table"
	"github.com/ferry-etl/ferry/engine/spec"
)

// DefaultDest is where tables go when no --dest is given.
const DefaultDest = "sqlite:ferry.db"

// PortOptions say how to reach Port. Credentials usually come from
// PORT_CLIENT_ID and PORT_CLIENT_SECRET (see PortFromEnv).
type PortOptions struct {
	BaseURL, ClientID, ClientSecret string
	NoDelete                        bool
	DeleteThreshold                 float64
}

// PortFromEnv reads PORT_CLIENT_ID, PORT_CLIENT_SECRET and PORT_BASE_URL
// (default Port's EU API; https://api.us.port.io for the US region).
func PortFromEnv(getenv func(string) (string, bool)) PortOptions {
	get := func(k string) string { v, _ := getenv(k); return v }
	return PortOptions{BaseURL: get("PORT_BASE_URL"), ClientID: get("PORT_CLIENT_ID"), ClientSecret: get("PORT_CLIENT_SECRET")}
}

// ErrNoPortCredentials stops a run that has Port entities before anything is
// fetched.
var ErrNoPortCredentials = errors.New("this spec writes Port entities: set PORT_CLIENT_ID and PORT_CLIENT_SECRET (and PORT_BASE_URL for the US region), or use --dry-run")

// destinations is the Output of a real run: table rows go to the table
// database in batches, entities to the Port sink.
type destinations struct {
	f      *spec.File
	log    *slog.Logger
	tables *table.DB
	port   *port.Sink

	// Rows wait in pending until their page's checkpoint arrives; then they
	// and the checkpoint are ready, and are committed together. A crash
	// therefore loses only rows that the resumed run fetches again.
	mu       sync.Mutex
	pending  map[partKey][]sink.Row
	rows     []sink.Row
	cps      []sink.Checkpoint
	batch    int
	resuming bool // the destination held checkpoints of an interrupted run
}

type partKey struct{ stream, partition string }

func tableDefs(f *spec.File) []table.Table {
	var out []table.Table
	for _, it := range f.Tables.Items {
		t := it.Value
		def := table.Table{Name: t.Name, Mode: t.Mode.V, Columns: map[string]string{}}
		for _, k := range t.PrimaryKey {
			def.PrimaryKey = append(def.PrimaryKey, k.V)
		}
		for _, c := range t.Columns.Items {
			def.Columns[c.Key] = c.Value.V
		}
		out = append(out, def)
	}
	return out
}

// openDestinations prepares every destination the spec needs, before any
// request: a missing credential or a locked database stops the run early.
func openDestinations(ctx context.Context, f *spec.File, opts RunOptions) (*destinations, error) {
	d := &destinations{f: f, log: opts.Logger}
	if len(f.Tables.Items) > 0 {
		dest := opts.Dest
		if dest == "" {
			dest = DefaultDest
		}
		db, err := table.Open(ctx, dest, table.Options{Schema: f.Name.V, Tables: tableDefs(f), Logger: opts.Logger, Now: opts.Now})
		if err != nil {
			return nil, fmt.Errorf("destination %s: %w", redactDSN(dest), err)
		}
		if err := db.Lock(ctx, fmt.Sprintf("ferry run %s (pid %d)", f.Path, os.Getpid())); err != nil {
			db.Close()
			return nil, fmt.Errorf("destination %s: %w", redactDSN(dest), err)
		}
		d.tables, d.batch, d.pending = db, db.BatchRows(), map[partKey][]sink.Row{}
		if opts.FullRefresh {
			if err := db.ClearState(ctx, nil); err != nil {
				d.close()
				return nil, fmt.Errorf("destination: full refresh: %w", err)
			}
		}
	}
	if f.Port != nil && len(f.Port.Entities) > 0 {
		po := opts.Port
		if po.ClientID == "" || po.ClientSecret == "" {
			d.close()
			return nil, ErrNoPortCredentials
		}
		ps, err := port.New(port.Config{BaseURL: po.BaseURL, ClientID: po.ClientID, ClientSecret: po.ClientSecret,
			Owner: f.Name.V, NoDelete: po.NoDelete, DeleteThreshold: po.DeleteThreshold, Logger: opts.Logger})
		if err != nil {
			d.close()
			return nil, fmt.Errorf("port: %w", err)
		}
		if err := ps.EnsureBlueprints(ctx, f.Blueprints()); err != nil {
			d.close()
			return nil, fmt.Errorf("port: blueprints: %w", err)
		}
		d.port = ps
	}
	return d, nil
}

// redactDSN hides a password in a database URL.
func redactDSN(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	scheme := strings.Index(dsn, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return dsn
	}
	userinfo := dsn[scheme+3 : at]
	if user, _, ok := strings.Cut(userinfo, ":"); ok {
		return dsn[:scheme+3] + user + ":REDACTED" + dsn[at:]
	}
	return dsn
}

// state returns the checkpoints an interrupted run left, to resume from.
func (d *destinations) state(ctx context.Context) (map[string]map[string]json.RawMessage, error) {
	if d.tables == nil {
		return nil, nil
	}
	st, err := d.tables.State(ctx)
	if err != nil {
		return nil, fmt.Errorf("destination: read state: %w", err)
	}
	// Page checkpoints mean an interrupted run; incremental cursors
	// ("<stream>@cursor") are kept across runs and do not.
	for stream := range st {
		if !strings.HasSuffix(stream, runner.WatermarkSuffix) {
			d.resuming = true
		}
	}
	return st, nil
}

func (d *destinations) Row(ctx context.Context, r sink.Row) error {
	if d.tables == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	k := partKey{r.Stream, r.Partition}
	d.pending[k] = append(d.pending[k], r)
	return nil
}

// Checkpoint makes the partition's pending rows ready with it, and commits
// when a batch is full.
func (d *destinations) Checkpoint(ctx context.Context, cp sink.Checkpoint) error {
	if d.tables == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	k := partKey{cp.Stream, cp.Partition}
	d.rows = append(d.rows, d.pending[k]...)
	delete(d.pending, k)
	d.cps = append(d.cps, cp)
	if len(d.rows) >= d.batch {
		return d.flushLocked(ctx)
	}
	return nil
}

func (d *destinations) flushLocked(ctx context.Context) error {
	if len(d.rows) == 0 && len(d.cps) == 0 {
		return nil
	}
	if err := d.tables.Write(ctx, d.rows, d.cps); err != nil {
		return fmt.Errorf("write tables: %w", err)
	}
	d.rows, d.cps = d.rows[:0], d.cps[:0]
	return nil
}

func (d *destinations) Entity(ctx context.Context, e sink.Entity) error {
	if d.port == nil {
		return nil
	}
	return d.port.Write(ctx, e)
}

// Report is what the destinations did, for the run summary.
type Report struct {
	Tables map[string]int // table -> rows marked deleted (replace mode)
	Port   *port.Report
}

// finish writes what is buffered, then completes each target: tables in
// replace mode mark unseen rows deleted and Port deletes stale owned
// entities, but only for targets whose every feeding stream completed. After
// a fatal error (interrupt, a destination failing) nothing is complete.
func (d *destinations) finish(ctx context.Context, sum *runner.Summary, produced func(stream string) bool, runErr error) (*Report, error) {
	rep := &Report{Tables: map[string]int{}}
	fatal := runErr != nil && !isRunError(runErr)
	complete := func(stream string) bool {
		return !fatal && sum != nil && produced(stream) && sum.Complete[stream]
	}
	var errs []error
	if d.tables != nil {
		d.mu.Lock()
		if !fatal {
			// Rows of a page whose chain then failed have no checkpoint; the
			// run is over, so they are written rather than lost. After an
			// interrupt they are left for the resumed run to fetch again.
			for k, rows := range d.pending {
				d.rows = append(d.rows, rows...)
				delete(d.pending, k)
			}
		}
		err := d.flushLocked(ctx)
		d.mu.Unlock()
		if err != nil {
			errs = append(errs, err)
		}
		// A run that reached its end, even with failures, leaves no page
		// checkpoints: the next run reads everything again. Only an
		// interrupted run leaves them, to resume from. Clearing them and
		// finishing the replace tables is one transaction: a crash in
		// between would either let a rerun read everything again (append
		// tables twice) or resume into a fresh replace cycle (rows taken
		// for stale).
		if !fatal && err == nil {
			done := map[string]bool{}
			for _, it := range d.f.Tables.Items {
				done[it.Key] = complete(it.Value.From.V)
			}
			marked, ferr := d.tables.FinishRun(ctx, done, ranStreams(sum))
			if ferr != nil {
				errs = append(errs, fmt.Errorf("finish tables: %w", ferr))
			}
			for k, n := range marked {
				rep.Tables[k] = n
			}
		}
	}
	if d.port != nil && !fatal {
		if d.resuming {
			// Chains finished before the interruption were not fetched
			// again, so their entities were not produced this time: taking
			// them for stale would delete live entities.
			d.log.Warn("resumed run: stale Port entities are not deleted this time")
		}
		bpComplete := map[string]bool{}
		for _, e := range d.f.Port.Entities {
			ok := complete(e.From.V) && !d.resuming
			if prev, seen := bpComplete[e.Blueprint.V]; seen {
				ok = ok && prev
			}
			bpComplete[e.Blueprint.V] = ok
		}
		prep, err := d.port.Finish(ctx, bpComplete)
		rep.Port = &prep
		if err != nil {
			errs = append(errs, fmt.Errorf("port: %w", err))
		}
	}
	return rep, errors.Join(errs...)
}

// ranStreams names the streams this run fetched: only their checkpoints
// are cleared (a --streams run leaves the others' for a resume).
func ranStreams(sum *runner.Summary) []string {
	if sum == nil {
		return nil
	}
	out := make([]string, len(sum.Streams))
	for i, sn := range sum.Streams {
		out[i] = sn.Stream
	}
	return out
}

func isRunError(err error) bool {
	var re *runner.RunError
	return errors.As(err, &re)
}

func (d *destinations) close() {
	if d.tables != nil {
		if err := d.tables.Close(); err != nil {
			d.log.Warn("close destination", "error", err)
		}
	}
}
