package table

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-etl/ferry/engine/sink"
)

// Table modes.
const (
	ModeUpsert  = "upsert"  // upsert by primary key (or by _ferry_id)
	ModeAppend  = "append"  // every row inserted
	ModeReplace = "replace" // upsert; a complete run marks unseen rows deleted
)

// Columns ferry adds to every table.
const (
	ColID      = "_ferry_id"      // sha256 of the row, for tables without a primary key
	ColSynced  = "_ferry_synced"  // UTC time of the run that last wrote the row (upsert tables: last changed it)
	ColDeleted = "_ferry_deleted" // true once a complete replace run no longer saw the row
)

// ErrLocked is returned by [DB.Lock] when another live run holds the lock of
// the same spec on the same destination.
var ErrLocked = errors.New("destination is locked by another run")

// Table describes one destination table of a spec.
type Table struct {
	Name       string
	PrimaryKey []string
	// Columns holds declared types: STRING BOOLEAN INT LONG DOUBLE DECIMAL
	// JSON UTC_DATETIME NAIVE_DATE. Other columns are inferred from data.
	Columns    map[string]string
	Mode       string // upsert (default) | append | replace
	HardDelete bool   // replace mode: delete unseen rows instead of marking them
	// DeleteThreshold (replace mode) is the largest share, in (0, 1], of
	// the rows live (not marked deleted) when the sync began that one sync
	// may mark (or delete);
	// above it FinishRun marks none (see SkippedDeletes). 0 means
	// sink.DefaultDeleteThreshold.
	DeleteThreshold float64
	// Merge: a row whose key was already written in this sync (on_duplicate:
	// merge) keeps the stored value of every column the new row has null.
	Merge bool
}

// Options configures [Open].
type Options struct {
	Schema    string // spec name: PostgreSQL schema, SQLite table-name prefix
	Tables    []Table
	Logger    *slog.Logger     // default: discard
	Now       func() time.Time // default: time.Now; read once at Open for _ferry_synced
	BatchRows int              // rows per Write the caller should aim for; default 1000

	// rewriteUnchanged turns the change-only upsert off (benchmarks
	// compare the two).
	rewriteUnchanged bool
}

// DB is an open table destination. Its methods are safe for concurrent use;
// they are serialised, since both databases take one writer at a time.
type DB struct {
	mu      sync.Mutex
	be      backend
	schema  string
	log     *slog.Logger
	now     func() time.Time
	runTime time.Time
	batch   int
	cfgs    map[string]*tableCfg
	tables  map[string]*tbl
	closed  bool
	conv    conv
	hbuf    []byte
	entries []entry
	warned  map[string]bool

	// afterRows, when set (tests only), runs inside Write after the rows are
	// written and before the checkpoints and the commit.
	afterRows func() error

	unchanged map[string]int64         // per table: rows left as they were (change-only tables)
	skipped   map[string]SkippedDelete // per table: unseen rows FinishRun left unmarked (threshold)
	rewrite   bool                     // Options.rewriteUnchanged
}

// tableCfg is a validated [Table].
type tableCfg struct {
	name     string
	mode     string
	pk       []string        // physical column names
	keyField map[string]bool // the primary key's field names, as the rows have them
	declared map[string]colType
	order    []string // declared column names, sorted
	hard     bool
	merge    bool
	// threshold is Table.DeleteThreshold, the default filled in.
	threshold float64
	// changeOnly: an upsert table (not merge) leaves a stored row that is
	// identical to the new one, and not marked deleted, as it is —
	// _ferry_synced included. Replace and merge tables rewrite every row
	// they see: reconciliation and merging read _ferry_synced.
	changeOnly bool
}

// generational reports whether the table keeps a sync generation: replace
// tables to know what a sync did not see, merge tables to know which
// stored rows the sync wrote.
func (c *tableCfg) generational() bool { return c.mode == ModeReplace || c.merge }

// keyed reports whether rows are upserted by a user primary key.
func (c *tableCfg) keyed() bool { return c.mode != ModeAppend && len(c.pk) > 0 }

// hasID reports whether the table carries a _ferry_id column.
func (c *tableCfg) hasID() bool { return !c.keyed() }

// column is one user column of a destination table.
type column struct {
	name   string
	typ    colType
	native string // backend type name when the column was not made by ferry
	// keyAs is how the duplicate check keys the column (KeyTypes) where
	// its backend type stores more forms as one value than typ says (a
	// PostgreSQL uuid, numeric(10,2), timestamp(3)); "" for typ's way.
	keyAs string
	// limit is where the column's native type, not made by ferry, would
	// store a value changed without an error (numeric(10,2), varchar(5)).
	limit limit
}

// ferrys reports whether the column has a type ferry makes: a user's
// numeric(10,2) reads as DECIMAL but is not one (see limit), nor is a
// TEXT key of a NOCASE collation a STRING (ferry makes none; retyped by
// its first value, it would no longer compare keys its way).
func (c *column) ferrys() bool {
	return c.native == "" && c.limit.kind == limitNone && !textKey(c.keyAs)
}

// tbl is what ferry knows of one destination table. A tbl is never changed
// once published in DB.tables, except keyCache; a Write builds the next
// version and publishes it after the commit, so a rolled-back Write leaves
// nothing behind.
type tbl struct {
	cfg      *tableCfg
	ident    string // quoted physical name, ready for SQL
	phys     string // physical name, unquoted (without schema on PostgreSQL)
	exists   bool
	empty    bool // exists, without any row when first read in this run
	cols     []column
	byFold   map[string]int // folded column name -> index in cols
	keys     []int          // indices of the primary key columns (keyed tables)
	keyCache map[string]int // data key -> column index, -1 for skipped keys

	// replace and merge tables: set once this run has begun or resumed the
	// table's generation (see doc.go): since is its start, synced the
	// _ferry_synced of this run's rows (never before since).
	begun  bool
	since  time.Time
	synced time.Time
}

func (t *tbl) clone() *tbl {
	n := *t
	n.cols = slices.Clone(t.cols)
	n.byFold = make(map[string]int, len(t.byFold)+4)
	for k, v := range t.byFold {
		n.byFold[k] = v
	}
	n.keys = slices.Clone(t.keys)
	return &n
}

type entry struct {
	ci  int32
	key string
	v   any
}

type widening struct {
	ci       int
	from, to colType
	first    bool // an empty table's undeclared column typed by its first value, not a widening
}

// plan is the work of one Write for one table.
type plan struct {
	t       *tbl // committed
	next    *tbl // after this Write
	create  bool
	added   []int // indices into next.cols
	widened []widening
	args    []any // n rows of width values: next.cols, then _ferry_id if any
	width   int
	n       int
	synced  time.Time // _ferry_synced of these rows; set by the backend
	since   time.Time // start of the table's sync generation (merge tables); set by the backend
	staged  int       // rows left once one per key is kept (PostgreSQL); set by the backend
	changed int       // rows the statements inserted or changed; set by the backend
}

// unchanged is how many of the plan's rows were identical to the stored
// ones and left as they were.
func (p *plan) unchanged() int {
	if !p.next.cfg.changeOnly {
		return 0
	}
	n := p.n
	if p.staged > 0 {
		n = p.staged
	}
	return max(n-p.changed, 0)
}

// writeJob is one Write: every table's plan plus the checkpoints.
type writeJob struct {
	plans     []*plan
	cps       []sink.Checkpoint
	now       time.Time // updated_at of the checkpoints
	runTime   time.Time
	afterRows func() error
	// trial: the backend rolls back instead of committing, returning
	// errTrial once everything but the commit succeeded.
	trial bool
}

// backend is a database dialect.
type backend interface {
	tableNames(table string) (ident, phys string)
	colName(key string) string
	fold(name string) string
	setup(ctx context.Context) error
	load(ctx context.Context, phys string) (exists bool, cols []column, pk []string, err error)
	hasRows(ctx context.Context, ident string) (bool, error)
	write(ctx context.Context, job *writeJob) error
	// finishRun fills each table's marked or skipped.
	finishRun(ctx context.Context, ts []*finishing, clear []string, runTime time.Time) error
	state(ctx context.Context) (map[string]map[string]json.RawMessage, error)
	// clearState deletes the state of streams (of every stream when all),
	// and with endGenerations every open sync generation, else those of
	// endTables, in one transaction.
	clearState(ctx context.Context, all bool, streams []string, endGenerations bool, endTables []string) error
	lock(ctx context.Context, holder string, now time.Time) error
	close() error
	// refuses tells an error of write caused by the rows' data (see
	// ErrRefused) from any other.
	refuses(err error) bool
	// maxColumns is the most columns a table may have, ferry's own
	// included.
	maxColumns() int
	// swapLog makes l the backend's logger, returning the one it had.
	swapLog(l *slog.Logger) *slog.Logger

	// For plans (Reader): whether the state table exists; a column read
	// back in the form normValue reads; the i-th (1-based) parameter of a
	// value for column c; a query's rows; the SQL true.
	hasState(ctx context.Context) (bool, error)
	display(c column) string
	param(i int, c column) string
	query(ctx context.Context, q string, args []any) ([][]any, error)
	trueLit() string
	// openGeneration reads the open sync generation of a table, if any
	// (none when _ferry_sync does not exist).
	openGeneration(ctx context.Context, table string) (g syncGen, open bool, err error)
}

// syncGen is a table's open sync generation, as _ferry_sync keeps it.
type syncGen struct {
	started time.Time
	live    int  // rows live when it began (replace tables; see colLiveAtStart)
	counted bool // live was saved: ferry before colLiveAtStart saved none
}

// Open opens the destination dest for the spec opts.Schema: "sqlite:PATH",
// a file path, or a "postgres://" / "postgresql://" URL. It creates what
// ferry needs there (the PostgreSQL schema, the state tables); destination
// tables are created by the first Write that carries rows for them.
func Open(ctx context.Context, dest string, opts Options) (*DB, error) {
	d, err := newDB(opts)
	if err != nil {
		return nil, err
	}
	kind, target, err := parseDest(dest)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "sqlite":
		d.be, err = openSQLiteDSN(ctx, target, sqliteDSN(target), opts.Schema, d.log)
	default:
		d.be, err = openPostgres(ctx, target, opts.Schema, d.log)
		d.conv.text, d.conv.pg = true, true
	}
	if err != nil {
		return nil, err
	}
	if d.cfgs, err = d.tableConfigs(opts.Tables); err != nil {
		d.be.close()
		return nil, err
	}
	if err := d.be.setup(ctx); err != nil {
		d.be.close()
		return nil, err
	}
	return d, nil
}

// newDB is a DB with opts applied and no backend yet.
func newDB(opts Options) (*DB, error) {
	if opts.Schema == "" {
		return nil, errors.New("table destination: empty schema name")
	}
	if strings.ContainsRune(opts.Schema, 0) {
		return nil, errors.New("table destination: schema name contains NUL")
	}
	d := &DB{
		schema:    opts.Schema,
		log:       opts.Logger,
		now:       opts.Now,
		batch:     opts.BatchRows,
		tables:    map[string]*tbl{},
		warned:    map[string]bool{},
		unchanged: map[string]int64{},
		skipped:   map[string]SkippedDelete{},
		rewrite:   opts.rewriteUnchanged,
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.batch <= 0 {
		d.batch = 1000
	}
	d.runTime = d.now().UTC().Truncate(time.Microsecond)
	return d, nil
}

// ErrBadDestination is wrapped by Open's error when the destination string
// itself is wrong (empty, an unknown scheme), as opposed to one that cannot
// be reached.
var ErrBadDestination = errors.New("bad table destination")

// parseDest splits a destination into a backend kind and its target.
func parseDest(dest string) (kind, target string, err error) {
	switch {
	case dest == "":
		return "", "", fmt.Errorf("%w: empty destination", ErrBadDestination)
	case strings.HasPrefix(dest, "postgres://"), strings.HasPrefix(dest, "postgresql://"):
		return "postgres", dest, nil
	case strings.HasPrefix(dest, "sqlite://"):
		target = strings.TrimPrefix(dest, "sqlite://")
	case strings.HasPrefix(dest, "sqlite:"):
		target = strings.TrimPrefix(dest, "sqlite:")
	default:
		if i := strings.Index(dest, "://"); i > 0 {
			return "", "", fmt.Errorf("%w: unsupported scheme %q (want sqlite: or postgres://)", ErrBadDestination, dest[:i])
		}
		target = dest
	}
	if target == "" {
		return "", "", fmt.Errorf("%w: empty sqlite path", ErrBadDestination)
	}
	return "sqlite", target, nil
}

func (d *DB) tableConfigs(tables []Table) (map[string]*tableCfg, error) {
	cfgs := make(map[string]*tableCfg, len(tables))
	for _, t := range tables {
		c, err := d.tableConfig(t)
		if err != nil {
			return nil, err
		}
		if _, dup := cfgs[t.Name]; dup {
			return nil, fmt.Errorf("table %q: declared twice", t.Name)
		}
		cfgs[t.Name] = c
	}
	return cfgs, nil
}

func (d *DB) tableConfig(t Table) (*tableCfg, error) {
	if err := checkTableName(t.Name); err != nil {
		return nil, err
	}
	c := &tableCfg{name: t.Name, mode: t.Mode, hard: t.HardDelete, merge: t.Merge, threshold: t.DeleteThreshold, declared: map[string]colType{}}
	if c.threshold == 0 {
		c.threshold = sink.DefaultDeleteThreshold
	}
	if c.threshold < 0 || c.threshold > 1 {
		return nil, fmt.Errorf("table %q: delete threshold %v: want a share in (0, 1]", t.Name, t.DeleteThreshold)
	}
	switch t.Mode {
	case "":
		c.mode = ModeUpsert
	case ModeUpsert, ModeReplace:
	case ModeAppend:
		if len(t.PrimaryKey) > 0 {
			return nil, fmt.Errorf("table %q: append mode takes no primary key", t.Name)
		}
		if t.Merge {
			return nil, fmt.Errorf("table %q: append mode has no key to merge rows on", t.Name)
		}
	default:
		return nil, fmt.Errorf("table %q: unknown mode %q (want upsert, append or replace)", t.Name, t.Mode)
	}
	seen := map[string]bool{}
	for _, k := range t.PrimaryKey {
		name := d.be.colName(k)
		if err := d.checkColumnName(name); err != nil {
			return nil, fmt.Errorf("table %q: primary key: %w", t.Name, err)
		}
		if seen[d.be.fold(name)] {
			return nil, fmt.Errorf("table %q: primary key column %q listed twice", t.Name, k)
		}
		seen[d.be.fold(name)] = true
		c.pk = append(c.pk, name)
		if c.keyField == nil {
			c.keyField = map[string]bool{}
		}
		c.keyField[k] = true
	}
	for k, ts := range t.Columns {
		typ, ok := parseType(ts)
		if !ok {
			return nil, fmt.Errorf("table %q: column %q: unknown type %q (want STRING, BOOLEAN, INT, LONG, DOUBLE, DECIMAL, JSON, UTC_DATETIME or NAIVE_DATE)", t.Name, k, ts)
		}
		name := d.be.colName(k)
		if err := d.checkColumnName(name); err != nil {
			return nil, fmt.Errorf("table %q: %w", t.Name, err)
		}
		c.declared[name] = typ
		c.order = append(c.order, name)
	}
	slices.Sort(c.order)
	c.changeOnly = c.mode == ModeUpsert && !c.merge && !d.rewrite
	return c, nil
}

func checkTableName(name string) error {
	switch {
	case name == "":
		return errors.New("table with an empty name")
	case strings.ContainsRune(name, 0):
		return fmt.Errorf("table %q: name contains NUL", name)
	case strings.HasPrefix(strings.ToLower(name), "_ferry_"):
		return fmt.Errorf("table %q: names starting with _ferry_ are reserved", name)
	}
	return nil
}

// checkColumnName rejects names a column cannot have.
func (d *DB) checkColumnName(name string) error {
	switch f := d.be.fold(name); {
	case name == "":
		return errors.New("empty column name")
	case strings.ContainsRune(name, 0):
		return fmt.Errorf("column %q: name contains NUL", name)
	case f == d.be.fold(ColID), f == d.be.fold(ColSynced), f == d.be.fold(ColDeleted):
		return fmt.Errorf("column %q: reserved for ferry", name)
	}
	return nil
}

// BatchRows is the number of rows per Write the caller should aim for.
func (d *DB) BatchRows() int { return d.batch }

// RunTime is the _ferry_synced value of this run: Options.Now at Open, in
// UTC, truncated to microseconds.
func (d *DB) RunTime() time.Time { return d.runTime }

// Lock takes the run lock of this spec on this destination, or returns an
// error wrapping [ErrLocked] naming the holder. The lock lives until Close,
// or until the process dies (see doc.go).
func (d *DB) Lock(ctx context.Context, holder string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errClosed
	}
	return d.be.lock(ctx, holder, d.now().UTC())
}

var errClosed = errors.New("table destination: closed")

// State returns every committed checkpoint: stream -> partition -> value.
func (d *DB) State(ctx context.Context) (map[string]map[string]json.RawMessage, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errClosed
	}
	return d.be.state(ctx)
}

// ClearState forgets the checkpoints of streams (all streams when empty),
// for a full refresh. With no streams it also ends every sync generation,
// so the next complete run alone decides what is deleted.
func (d *DB) ClearState(ctx context.Context, streams []string) error {
	return d.clear(ctx, len(streams) == 0, streams, len(streams) == 0, nil)
}

// Refresh forgets the checkpoints of streams (none when empty) and ends
// the sync generations of tables, in one transaction: a full refresh of
// some streams, whose tables' next complete run alone decides what is
// deleted (in their open generation, a row the refresh no longer reads,
// written before it, would count as seen).
func (d *DB) Refresh(ctx context.Context, streams, tables []string) error {
	return d.clear(ctx, false, streams, false, tables)
}

// Restart begins a new sync: the state of every stream that keep rejects
// is deleted and every sync generation ends, in one transaction. (The
// engine keeps incremental cursors, which outlive syncs.)
func (d *DB) Restart(ctx context.Context, keep func(stream string) bool) error {
	st, err := d.State(ctx)
	if err != nil {
		return err
	}
	var drop []string
	for stream := range st {
		if !keep(stream) {
			drop = append(drop, stream)
		}
	}
	slices.Sort(drop)
	return d.clear(ctx, false, drop, true, nil)
}

func (d *DB) clear(ctx context.Context, all bool, streams []string, endGenerations bool, endTables []string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errClosed
	}
	if err := d.be.clearState(ctx, all, streams, endGenerations, endTables); err != nil {
		return err
	}
	for name, t := range d.tables {
		if endGenerations || slices.Contains(endTables, name) {
			n := *t
			n.begun = false
			d.tables[name] = &n
		}
	}
	return nil
}

// Write commits rows and checkpoints in one transaction: after a crash
// either all of it is visible or none. Tables and columns are created or
// widened as the rows need, in the same transaction. A checkpoint with an
// empty Value deletes that stream partition's state.
func (d *DB) Write(ctx context.Context, rows []sink.Row, cps []sink.Checkpoint) error {
	if len(rows) == 0 && len(cps) == 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errClosed
	}
	return d.writeLocked(ctx, rows, cps, false)
}

// writeLocked is Write with d.mu held. A trial write does all of it, then
// rolls back, keeping nothing (see FindRefused).
func (d *DB) writeLocked(ctx context.Context, rows []sink.Row, cps []sink.Checkpoint, trial bool) error {
	job := &writeJob{cps: cps, now: d.now().UTC(), runTime: d.runTime, afterRows: d.afterRows, trial: trial}
	if trial {
		job.afterRows = nil
	}
	for _, g := range groupRows(rows) {
		t, err := d.table(ctx, g[0].Table)
		if err != nil {
			return err
		}
		p, err := d.plan(t, g)
		if err != nil {
			var re *rowError
			if errors.As(err, &re) {
				return refused(ctx, err)
			}
			return err
		}
		job.plans = append(job.plans, p)
	}
	if err := d.be.write(ctx, job); err != nil {
		if trial && errors.Is(err, errTrial) {
			return nil
		}
		if d.be.refuses(err) {
			return refused(ctx, err)
		}
		return err
	}
	if trial {
		return nil
	}
	for _, p := range job.plans {
		n := p.next
		if n.cfg.generational() && p.n > 0 {
			n.begun, n.since, n.synced = true, p.since, p.synced
		}
		if p.n > 0 {
			n.empty = false
		}
		d.tables[n.cfg.name] = n
		d.unchanged[n.cfg.name] += int64(p.unchanged())
	}
	return nil
}

// Unchanged returns, per table, the rows written so far that were
// identical to the stored row and not rewritten (upsert tables only; see
// doc.go).
func (d *DB) Unchanged() map[string]int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.unchanged)
}

// groupRows splits rows by table, keeping their order within a table.
func groupRows(rows []sink.Row) [][]sink.Row {
	if len(rows) == 0 {
		return nil
	}
	same := true
	for i := range rows {
		if rows[i].Table != rows[0].Table {
			same = false
			break
		}
	}
	if same {
		return [][]sink.Row{rows}
	}
	idx := map[string]int{}
	var out [][]sink.Row
	for _, r := range rows {
		i, ok := idx[r.Table]
		if !ok {
			i = len(out)
			idx[r.Table] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], r)
	}
	return out
}

// finishing is one table of FinishRun: whether its unseen rows may be
// marked; then, from the backend, how many were, or why none was.
type finishing struct {
	t        *tbl
	complete bool

	marked  int
	skipped *SkippedDelete
}

// SkippedDelete is a replace table whose complete sync marked none of its
// unseen rows: Stale of its Live rows (those not marked deleted when the
// sync began, see colLiveAtStart) would have gone, more than its delete threshold allows. An API that answers
// a complete-looking empty list (a token allowed to see nothing, a wrong
// org) must not empty the table.
type SkippedDelete struct {
	Table     string
	Stale     int
	Live      int
	Threshold float64
	Reason    string
}

// colLiveAtStart is the column of _ferry_sync keeping, for a replace
// table, how many of its rows were live (not marked deleted) when its
// generation began: before the sync's first row reached it, which is
// when the sync began for the table (nothing else changes it in
// between). A row a sync did not see was live then, so the share it
// would mark is counted over those rows: the rows the sync inserted
// must not dilute it (a source now listing 30 other rows into a table of
// 3 would otherwise mark 3 of 33, where 3 of 3 is the whole table).
const colLiveAtStart = "live_at_start"

// heldAtStart is the denominator of a replace table's delete threshold:
// the rows live when its generation began (began, when counted), or the
// rows live now (live). Now is the same count when the sync wrote no row
// to the table (no generation began); a generation begun by a ferry that
// saved no count (NULL) falls back to it as that ferry counted.
func heldAtStart(live int, began int64, counted bool) int {
	if counted {
		return int(began)
	}
	return live
}

// skipDelete is the SkippedDelete of marking stale of live rows of c, nil
// when the threshold allows it.
func (c *tableCfg) skipDelete(stale, live int) *SkippedDelete {
	r := sink.DeleteRefusal(stale, live, c.threshold, "live rows", "tables."+c.name+".delete_threshold")
	if r == "" {
		return nil
	}
	return &SkippedDelete{Table: c.name, Stale: stale, Live: live, Threshold: c.threshold, Reason: r}
}

// FinishRun ends a sync in one transaction: every table named in tables
// ends its sync generation, and a replace table named with true (complete:
// everything feeding it was read) first has its rows that the sync did not
// write marked _ferry_deleted (deleted with HardDelete) — unless more
// than its delete threshold of the rows live when the sync began would
// be, when none is (see
// SkippedDeletes); the checkpoints
// of clearStreams are deleted. Doing it at once is what makes a crash
// while finishing harmless: either nothing happened (the checkpoints are
// still there, a rerun resumes and finishes) or all of it did. Tables not
// named are left as they are. It returns the rows marked per table.
func (d *DB) FinishRun(ctx context.Context, tables map[string]bool, clearStreams []string) (map[string]int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errClosed
	}
	var fs []*finishing
	for _, name := range slices.Sorted(maps.Keys(tables)) {
		t, err := d.table(ctx, name)
		if err != nil {
			return nil, err
		}
		if t.cfg.generational() {
			fs = append(fs, &finishing{t: t, complete: tables[name] && t.cfg.mode == ModeReplace})
		}
	}
	if err := d.be.finishRun(ctx, fs, clearStreams, d.runTime); err != nil {
		return nil, err
	}
	marked := map[string]int{}
	for _, f := range fs {
		n := *f.t
		n.begun = false
		d.tables[f.t.cfg.name] = &n
		switch {
		case f.skipped != nil:
			sk := f.skipped
			d.skipped[sk.Table] = *sk
			d.log.Warn("table deletion skipped: no unseen row marked", "table", sk.Table, "stale", sk.Stale, "live", sk.Live,
				"threshold", sk.Threshold, "option", "tables."+sk.Table+".delete_threshold", "reason", sk.Reason)
		case f.complete:
			marked[f.t.cfg.name] = f.marked
			d.log.Info("table finished", "table", f.t.cfg.name, "marked", f.marked, "hard_delete", f.t.cfg.hard)
		}
	}
	return marked, nil
}

// SkippedDeletes returns, per table, the replace tables whose unseen
// rows FinishRun left unmarked over their delete threshold.
func (d *DB) SkippedDeletes() map[string]SkippedDelete {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.skipped)
}

// EnsureTables creates every declared table that does not exist yet, with
// its declared columns and key, so that a table whose stream gave no rows
// (or was skipped) is there, empty, rather than missing. A key column
// whose type is not declared is made STRING.
func (d *DB) EnsureTables(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errClosed
	}
	job := &writeJob{now: d.now().UTC(), runTime: d.runTime}
	for _, name := range slices.Sorted(maps.Keys(d.cfgs)) {
		t, err := d.table(ctx, name)
		if err != nil {
			return err
		}
		if t.exists {
			continue
		}
		p, err := d.plan(t, nil)
		if err != nil {
			return err
		}
		job.plans = append(job.plans, p)
	}
	if len(job.plans) == 0 {
		return nil
	}
	if err := d.be.write(ctx, job); err != nil {
		return err
	}
	for _, p := range job.plans {
		d.tables[p.next.cfg.name] = p.next
		d.log.Info("empty table created", "table", p.next.cfg.name)
	}
	return nil
}

// Key types of text columns that compare values other than byte by byte
// (see KeyTypes): the duplicate check keys a value as the column compares
// it.
const (
	KeyLower  = "LOWER"  // lower-cased (PostgreSQL's citext)
	KeyNoCase = "NOCASE" // ASCII letters lower-cased (SQLite's NOCASE; citext in a C database)
	KeyRTrim  = "RTRIM"  // trailing spaces dropped (SQLite's RTRIM; PostgreSQL's character(n))
)

// textKey tells whether key type typ is one of a text column's
// comparison: the column stores the value as given (its limit, if any,
// still applies), unlike a type that rounds it.
func textKey(typ string) bool {
	return typ == KeyLower || typ == KeyNoCase || typ == KeyRTrim
}

// KeyTypes reports, for each keyed table of the spec, the type of each of
// its primary-key columns (in PrimaryKey's order) as the destination would
// store a row now: an existing column's own type, which a changed
// declaration does not change (the database tells rows apart by it, so the
// runner's duplicate check must key by it too); for a table not made yet,
// the declared type. "" where the first value written decides (an
// undeclared key column of a new table, or of an empty one EnsureTables
// made), or where the column is not one ferry made (a native type). A
// PostgreSQL column whose type stores forms as one that the check would
// key apart has a type of its own (pgKeyType: "UUID", "DECIMAL(10,2)",
// "UTC_DATETIME(3)", "LOCAL_DATETIME(6)"; see StoredKeyDatetime), and so
// has one whose collation or type compares text other than byte by byte
// (KeyLower, KeyNoCase, KeyRTrim).
func (d *DB) KeyTypes(ctx context.Context) (map[string][]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errClosed
	}
	out := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(d.cfgs)) {
		cfg := d.cfgs[name]
		if !cfg.keyed() {
			continue
		}
		t, err := d.table(ctx, name)
		if err != nil {
			return nil, err
		}
		types := make([]string, len(cfg.pk))
		for i, k := range cfg.pk {
			types[i] = t.keyType(d.be, k)
		}
		out[name] = types
	}
	return out, nil
}

// keyType is KeyTypes' type of key column col (its physical name).
func (t *tbl) keyType(be backend, col string) string {
	if !t.exists {
		if typ, ok := t.cfg.declared[col]; ok {
			return typ.String()
		}
		return ""
	}
	ci, ok := t.byFold[be.fold(col)]
	if !ok {
		return ""
	}
	c := t.cols[ci]
	if _, declared := t.cfg.declared[c.name]; t.empty && !declared && c.ferrys() {
		return "" // typed by its first value, as plan does
	}
	if c.keyAs != "" {
		return c.keyAs
	}
	if c.native != "" {
		return ""
	}
	return c.typ.String()
}

// Close releases the lock and the connection.
func (d *DB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	return d.be.close()
}

// table returns what is known of a destination table, reading its columns
// from the database the first time.
func (d *DB) table(ctx context.Context, name string) (*tbl, error) {
	if t, ok := d.tables[name]; ok {
		return t, nil
	}
	cfg, ok := d.cfgs[name]
	if !ok {
		// A table the spec did not declare: upsert by _ferry_id.
		if err := checkTableName(name); err != nil {
			return nil, err
		}
		cfg = &tableCfg{name: name, mode: ModeUpsert, declared: map[string]colType{}, changeOnly: !d.rewrite}
		d.cfgs[name] = cfg
	}
	t := &tbl{cfg: cfg, byFold: map[string]int{}, keyCache: map[string]int{}}
	t.ident, t.phys = d.be.tableNames(name)
	exists, cols, pk, err := d.be.load(ctx, t.phys)
	if err != nil {
		return nil, fmt.Errorf("table %q: %w", name, err)
	}
	if exists {
		if err := d.adopt(t, cols, pk); err != nil {
			return nil, err
		}
		rows, err := d.be.hasRows(ctx, t.ident)
		if err != nil {
			return nil, fmt.Errorf("table %q: %w", name, err)
		}
		t.empty = !rows
	}
	d.tables[name] = t
	return t, nil
}

// adopt fills t from an existing table, checking it is one ferry can write.
func (d *DB) adopt(t *tbl, cols []column, pk []string) error {
	meta := map[string]bool{}
	for _, c := range cols {
		switch f := d.be.fold(c.name); f {
		case d.be.fold(ColID), d.be.fold(ColSynced), d.be.fold(ColDeleted):
			meta[f] = true
			continue
		}
		t.byFold[d.be.fold(c.name)] = len(t.cols)
		t.cols = append(t.cols, c)
	}
	if !meta[d.be.fold(ColSynced)] || !meta[d.be.fold(ColDeleted)] {
		return fmt.Errorf("table %q: %s exists but was not made by ferry (no %s/%s columns)", t.cfg.name, t.phys, ColSynced, ColDeleted)
	}
	var want []string
	switch {
	case t.cfg.keyed():
		want = t.cfg.pk
	case t.cfg.mode != ModeAppend:
		want = []string{ColID}
	}
	if t.cfg.hasID() && !meta[d.be.fold(ColID)] {
		return fmt.Errorf("table %q: %s has no %s column; it was made with a primary key", t.cfg.name, t.phys, ColID)
	}
	if !sameNames(d.be, pk, want) {
		return fmt.Errorf("table %q: %s has primary key (%s) but the spec wants (%s); drop or rename the table to change it",
			t.cfg.name, t.phys, strings.Join(pk, ", "), strings.Join(want, ", "))
	}
	for _, k := range want {
		if i, ok := t.byFold[d.be.fold(k)]; ok {
			t.keys = append(t.keys, i)
		}
	}
	t.exists = true
	return nil
}

func sameNames(be backend, a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	fa := make([]string, len(a))
	fb := make([]string, len(b))
	for i := range a {
		fa[i], fb[i] = be.fold(a[i]), be.fold(b[i])
	}
	slices.Sort(fa)
	slices.Sort(fb)
	return slices.Equal(fa, fb)
}

func (d *DB) warnOnce(key string, msg string, args ...any) {
	if d.warned[key] {
		return
	}
	d.warned[key] = true
	d.log.Warn(msg, args...)
}

// plan types and converts the rows of one table. Nothing in t changes
// except keyCache.
func (d *DB) plan(t *tbl, rows []sink.Row) (*plan, error) {
	cfg := t.cfg
	ncur := len(t.cols)
	types := make([]colType, ncur, ncur+8)
	for i, c := range t.cols {
		types[i] = c.typ
	}
	var newNames []string
	var newFold map[string]int
	local := map[string]int{}
	lookup := func(name string) (int, bool) {
		f := d.be.fold(name)
		if i, ok := t.byFold[f]; ok {
			return i, true
		}
		i, ok := newFold[f]
		return i, ok
	}
	add := func(name string, typ colType) int {
		if newFold == nil {
			newFold = map[string]int{}
		}
		for _, k := range cfg.pk {
			// A field that folds onto the key's column (ID beside id on
			// SQLite) does not name it: the key's own name does, whichever
			// of the two a row's map gave first.
			if d.be.fold(k) == d.be.fold(name) {
				name = k
			}
		}
		i := ncur + len(newNames)
		newNames = append(newNames, name)
		types = append(types, typ)
		newFold[d.be.fold(name)] = i
		return i
	}
	for _, name := range cfg.order {
		if _, ok := lookup(name); !ok {
			add(name, cfg.declared[name])
		}
	}
	if len(rows) == 0 && !t.exists {
		// An empty table (EnsureTables): its key columns must exist.
		for _, k := range cfg.pk {
			if _, ok := lookup(k); !ok {
				add(k, typeString)
			}
		}
	}
	declaredNew := len(newNames) // new columns no row brings
	retype := func(ci int, v any) {
		old := types[ci]
		typ := old
		for i := 0; i < 4 && !d.fits(typ, v); i++ {
			typ = widen(typ, v)
		}
		types[ci] = typ
		name := ""
		if ci < ncur {
			name = t.cols[ci].name
		} else {
			name = newNames[ci-ncur]
		}
		d.log.Warn("column type widened", "table", cfg.name, "column", name, "from", old.String(), "to", typ.String())
	}

	// Pass 1: find every column and settle its type.
	var firstTyped map[int]bool
	if t.empty {
		firstTyped = map[int]bool{}
	}
	entries := d.entries[:0]
	starts := make([]int, len(rows)+1)
	for ri := range rows {
		starts[ri] = len(entries)
		for k, v := range rows[ri].Data {
			ci, ok := t.keyCache[k]
			if !ok {
				ci, ok = local[k]
			}
			if !ok {
				name := d.be.colName(k)
				if err := d.checkColumnName(name); err != nil {
					t.keyCache[k] = -1
					d.warnOnce(cfg.name+"\x00"+k, "row field skipped", "table", cfg.name, "field", k, "reason", err.Error())
					continue
				}
				if i, found := lookup(name); found {
					ci = i
				} else {
					if v == nil {
						continue // a column is made once it sees a value
					}
					ci = add(name, infer(v))
				}
				if ci < ncur {
					t.keyCache[k] = ci
				} else {
					local[k] = ci
				}
			}
			if ci < 0 {
				continue
			}
			if v != nil && ci < ncur && t.empty && !firstTyped[ci] {
				// A column of a table that holds no row yet, whose type
				// was not declared (made by EnsureTables), takes the type of
				// its first value, as a new column would: the outcome does
				// not depend on whether the table was made empty first.
				firstTyped[ci] = true
				if _, declared := cfg.declared[t.cols[ci].name]; !declared && t.cols[ci].ferrys() {
					types[ci] = infer(v)
				}
			}
			if v != nil {
				if typ := types[ci]; typ != typeString && (typ != typeJSON || d.conv.pg) && !d.fits(typ, v) {
					retype(ci, v)
				} else if typ == typeDatetime && subMicros(v) {
					// The databases keep microseconds. A key cut there
					// could become another record's (two times 100 ns
					// apart, one row): a key column widens to STRING.
					// Another column keeps its declared type, and is told
					// once that it drops the digits past the microsecond.
					name := d.be.colName(k)
					if slices.Contains(cfg.pk, name) {
						types[ci] = typeString
						d.log.Warn("column type widened", "table", cfg.name, "column", name, "from", typ.String(), "to", typeString.String(),
							"reason", "a key with digits past the microsecond, which the column would cut")
					} else {
						d.warnOnce(cfg.name+"\x00"+name+"\x00micros", "digits past the microsecond dropped", "table", cfg.name, "column", name,
							"reason", "UTC_DATETIME keeps microseconds; declare the column STRING to keep every digit")
					}
				}
			}
			entries = append(entries, entry{ci: int32(ci), key: k, v: v})
		}
	}
	starts[len(rows)] = len(entries)
	d.entries = entries[:0]

	// Order new columns: a new table gets its key columns first; the rest
	// are sorted by name so table layout does not depend on map order.
	perm := make([]int, len(newNames))
	if len(newNames) > 0 {
		order := make([]int, len(newNames))
		for i := range order {
			order[i] = i
		}
		rank := func(i int) int {
			if t.exists {
				return len(cfg.pk)
			}
			f := d.be.fold(newNames[i])
			for j, k := range cfg.pk {
				if d.be.fold(k) == f {
					return j
				}
			}
			return len(cfg.pk)
		}
		slices.SortStableFunc(order, func(a, b int) int {
			if ra, rb := rank(a), rank(b); ra != rb {
				return ra - rb
			}
			return strings.Compare(newNames[a], newNames[b])
		})
		for pos, i := range order {
			perm[i] = ncur + pos
		}
	}
	remap := func(ci int) int {
		if ci >= ncur {
			return perm[ci-ncur]
		}
		return ci
	}

	if len(newNames) > 0 {
		// Refused here, before any column is added: the database would
		// refuse it after adding them all, once per trial of FindRefused.
		total := ncur + len(newNames) + 2 // _ferry_synced, _ferry_deleted
		if cfg.hasID() {
			total++
		}
		if most := d.be.maxColumns(); total > most {
			fixed := total - len(newNames) + declaredNew
			if len(rows) == 0 {
				return nil, &rowError{err: fmt.Errorf("table %q: too many columns: %d declared, ferry's own included, and the database allows %d", cfg.name, total, most)}
			}
			at, err := blameColumns(cfg.name, entries, starts, ncur+declaredNew, len(newNames)-declaredNew, fixed, total, most)
			return nil, &rowError{err: err, blame: true, table: rows[0].Table, at: at}
		}
	}

	p := &plan{t: t, next: t, n: len(rows)}
	for ci := 0; ci < ncur; ci++ {
		if types[ci] != t.cols[ci].typ {
			p.widened = append(p.widened, widening{ci: ci, from: t.cols[ci].typ, to: types[ci], first: firstTyped[ci]})
		}
	}
	if len(newNames) > 0 || len(p.widened) > 0 || !t.exists {
		n := t.clone()
		n.cols = slices.Grow(n.cols, len(newNames))[:ncur+len(newNames)]
		for i, name := range newNames {
			j := perm[i]
			n.cols[j] = column{name: name, typ: types[ncur+i]}
			n.byFold[d.be.fold(name)] = j
		}
		for _, w := range p.widened {
			n.cols[w.ci] = column{name: n.cols[w.ci].name, typ: w.to}
		}
		if !t.exists {
			p.create = true
			n.exists = true
			if cfg.keyed() {
				n.keys = n.keys[:0]
				for _, k := range cfg.pk {
					i, ok := n.byFold[d.be.fold(k)]
					if !ok {
						return nil, &rowError{err: fmt.Errorf("table %q: no row has primary key column %q", cfg.name, k)}
					}
					n.keys = append(n.keys, i)
				}
			}
		} else {
			for i := range newNames {
				p.added = append(p.added, perm[i])
			}
			slices.Sort(p.added)
		}
		p.next = n
	}

	// Pass 2: convert values into driver arguments.
	next := p.next
	w := len(next.cols)
	if cfg.hasID() {
		w++
	}
	p.width = w
	p.args = make([]any, len(rows)*w)
	setRow := make([]int32, len(next.cols))
	setKey := make([]string, len(next.cols))
	ctypes := make([]colType, len(next.cols))
	for i, c := range next.cols {
		ctypes[i] = c.typ
	}
	var isKey []bool // PostgreSQL cleans text: its key values are checked
	if d.conv.pg && len(next.keys) > 0 {
		isKey = make([]bool, len(next.cols))
		for _, k := range next.keys {
			isKey[k] = true
		}
	}
	// A key column of a type that stores several forms as one keeps its
	// type's rounding: the runner keys rows by it (KeyTypes). One that
	// only compares text its way stores it as given, within its limit.
	isLimitKey := make([]bool, len(next.cols))
	for _, k := range next.keys {
		isLimitKey[k] = next.cols[k].keyAs != "" && !textKey(next.cols[k].keyAs)
	}
	for ri := range rows {
		base := ri * w
		for _, e := range entries[starts[ri]:starts[ri+1]] {
			ci := remap(int(e.ci))
			if setRow[ci] == int32(ri+1) {
				// Two fields land in one column (names equal once folded or
				// truncated): the primary key's own field wins (the runner
				// checked it; the other would move the row to another key),
				// else the smaller name, whatever the map order.
				prev := setKey[ci]
				win := e.key < prev
				if cfg.keyField[prev] || cfg.keyField[e.key] {
					win = cfg.keyField[e.key]
				}
				winner, loser := prev, e.key
				if win {
					winner, loser = e.key, prev
				}
				d.warnOnce(cfg.name+"\x00dup\x00"+winner, "row fields share a column", "table", cfg.name, "field", winner, "other", loser)
				if !win {
					continue
				}
			}
			setRow[ci], setKey[ci] = int32(ri+1), e.key
			p.args[base+ci] = d.conv.value(ctypes[ci], e.v)
			if err := checkLimit(next, ci, p.args[base+ci], isLimitKey); err != nil {
				return nil, &rowError{err: fmt.Errorf("table %q: row %d: %w", cfg.name, ri, err), blame: true, table: rows[0].Table, at: ri}
			}
			if d.conv.altered {
				d.conv.altered = false
				d.warnOnce(cfg.name+"\x00altered\x00"+next.cols[ci].name, "value stored altered: NUL bytes dropped (PostgreSQL) or invalid UTF-8 replaced by U+FFFD",
					"table", cfg.name, "column", next.cols[ci].name, "row", ri)
			}
			if isKey != nil && isKey[ci] && pgAltered(e.v) {
				// Cleaned, the key could be another record's: one of the
				// two would be lost without a word.
				return nil, &rowError{err: fmt.Errorf("table %q: row %d: primary key column %q holds a NUL byte or invalid UTF-8, which PostgreSQL cannot store as it is", cfg.name, ri, next.cols[ci].name)}
			}
		}
		if cfg.hasID() {
			var id string
			d.hbuf, id = hashRow(d.hbuf, rows[ri].Data)
			p.args[base+w-1] = id
		}
		for _, ki := range next.keys {
			if p.args[base+ki] == nil {
				return nil, &rowError{err: fmt.Errorf("table %q: row %d has no value for primary key column %q", cfg.name, ri, next.cols[ki].name)}
			}
		}
	}
	return p, nil
}

// fits is [fits] on this backend: SQLite's NUMERIC affinity turns a
// number's text into an int64 or a float64, so there DECIMAL holds only
// the numbers one of those holds exactly (PostgreSQL's numeric holds all).
func (d *DB) fits(t colType, v any) bool {
	if !fits(t, v) {
		return false
	}
	if t == typeJSON {
		// jsonb keeps its numbers as numeric.
		return !d.conv.pg || pgJSONNumbers(v)
	}
	if t != typeDecimal {
		return true
	}
	k, num := classify(v)
	lit, ok := numberOf(v, k, num)
	if !ok {
		return true // null
	}
	if d.conv.pg {
		return pgNumeric(lit)
	}
	if isIntegerLiteral(lit) {
		if _, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return true
		}
	}
	return exactFloat(lit)
}

// pgNumeric reports whether PostgreSQL's numeric takes a JSON number
// literal: at most 131072 digits before the point and 16383 after.
func pgNumeric(lit string) bool {
	mant, exp := lit, 0
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		e, err := strconv.Atoi(lit[i+1:])
		if err != nil || e >= math.MaxInt32/2 || e <= -math.MaxInt32/2 {
			return false // PostgreSQL refuses such an exponent, even on a zero
		}
		mant, exp = lit[:i], e
	}
	mant = strings.TrimPrefix(mant, "-")
	whole, frac, _ := strings.Cut(mant, ".")
	before := 0 // digits before the point, from the first non-zero one
	if f := strings.IndexFunc(whole+frac, func(r rune) bool { return r != '0' }); f >= 0 {
		before = len(whole) + exp - f
	}
	return before <= 131072 && len(frac)-exp <= 16383
}

// pgJSONNumbers reports whether every number in v is one numeric takes.
func pgJSONNumbers(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			if !pgJSONNumbers(e) {
				return false
			}
		}
		return true
	case []any:
		for _, e := range x {
			if !pgJSONNumbers(e) {
				return false
			}
		}
		return true
	}
	if k, num := classify(v); k == kindNumber {
		return pgNumeric(num)
	}
	return true
}

// pgAltered reports whether cleaning for PostgreSQL (NUL bytes dropped,
// invalid UTF-8 replaced) changes a value.
func pgAltered(v any) bool {
	switch x := v.(type) {
	case string:
		return cleanPG(x) != x
	case nil, bool, json.Number:
		return false
	}
	if k, _ := classify(v); k == kindComposite {
		return string(appendJSON(nil, v, true)) != string(appendJSON(nil, v, false))
	}
	return false
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// quoteLit quotes an SQL string literal.
func quoteLit(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
