package port

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// SpoolPrefix starts the name of the temporary file in which a sink keeps
// its run's entities (see [Config.SpoolDir]).
const SpoolPrefix = "ferry-port-spool-"

// spool keeps one run's entities, and what Port holds of the run's
// blueprints, in temporary files instead of on the heap, so a load's
// memory does not grow with its size: the entities' JSON, as mapped,
// appended to a data file (each batch's key records after its JSON: see
// keyIndex), and an SQLite file:
//
//	entity(bp, id, off, len, n)  every entity produced: where its JSON is in
//	                             the data file (off NULL when it failed
//	                             validation, so it is never sent but still
//	                             counts as produced); the JSON is not kept
//	                             in the table, whose rows then stay small
//	                             and cheap to insert in key order; n
//	                             numbers the puts (the outcomes in
//	                             memory are by n)
//	arrival(bp, id, off, len, n) entity rows put since the last query, in
//	                             the order they came: appending to a rowid
//	                             table is cheap where inserting into the
//	                             keyed one, batch after batch of scattered
//	                             keys, is not; the first query after them
//	                             moves them into entity at once, sorted
//	                             (settle)
//	cycle(n)                     entities written whose relations inside
//	                             a relation cycle remain for the second
//	                             pass, by entity.n (the other outcomes,
//	                             written or unchanged, are kept in memory,
//	                             a byte an entity: an outcome table cost
//	                             more to insert into than any query saved)
//	owned(bp, id, owner, body)   the owned entities listed before writing:
//	                             owner and the canonical stored entity
//	ref(bp, id)                  relation targets in Port, not of this
//	                             run, that written (or unchanged)
//	                             entities keep: never stale
//
// The files are made in the OS temp dir (or Config.SpoolDir), named
// ferry-port-spool-*.sqlite and *.data, and unlinked as soon as they are
// open where the OS allows it (Unix): the open descriptors keep them
// alive, and nothing is left behind however the process ends. Elsewhere
// close removes them. One connection serves every goroutine, one call at
// a time.
type spool struct {
	mu    sync.Mutex
	path  string
	db    *sql.DB
	conn  *sql.Conn
	stmts map[string]*sql.Stmt

	jsonFile *os.File // the entities' JSON, appended
	jsonPath string   // "" once unlinked
	jsonEnd  int64
	puts     int64  // entities put so far: the next one's n
	jsonBuf  []byte // one put's JSON, written at once

	states  []uint8            // outcome of each entity put, by n: stateWaiting, …
	tally   map[string]*[3]int // entities of each blueprint in each state but waiting
	cycles  map[int64]struct{} // entities whose row in cycle is not as their state says yet
	arrived bool               // arrival holds rows entity does not have yet
	index   keyIndex           // every put's key and place, for among
}

// Entity states in the spool; stateCycle is added to stateWritten when
// relations inside a relation cycle remain for the second pass.
const (
	stateWaiting   = 0
	stateWritten   = 1
	stateUnchanged = 2
	stateCycle     = 4
)

func openSpool(ctx context.Context, dir string) (*spool, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, SpoolPrefix+"*.sqlite")
	if err != nil {
		return nil, fmt.Errorf("port: spool: %w", err)
	}
	path := f.Name()
	f.Close()
	// No journal on disk: the spool lives for one run, and a journal file
	// would outlive a crash (an in-memory one rolls back a failed statement).
	uri := "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path) +
		"?_pragma=journal_mode(MEMORY)&_pragma=synchronous(OFF)&_pragma=cache_size(-2048)&_pragma=temp_store(FILE)&_pragma=locking_mode(EXCLUSIVE)"
	db, err := sql.Open("sqlite", uri)
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("port: spool: %w", err)
	}
	// One connection for the spool's whole life: a second one would open
	// the path again, which no longer exists once unlinked.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	conn, err := db.Conn(ctx)
	if err == nil {
		for _, q := range []string{
			`CREATE TABLE entity (bp TEXT NOT NULL, id TEXT NOT NULL, off INTEGER, len INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (bp, id)) WITHOUT ROWID`,
			`CREATE TABLE arrival (bp TEXT NOT NULL, id TEXT NOT NULL, off INTEGER, len INTEGER NOT NULL, n INTEGER NOT NULL)`,
			`CREATE TABLE cycle (n INTEGER PRIMARY KEY)`,
			`CREATE TABLE owned (bp TEXT NOT NULL, id TEXT NOT NULL, owner TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (bp, id)) WITHOUT ROWID`,
			`CREATE TABLE ref (bp TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (bp, id)) WITHOUT ROWID`,
		} {
			if _, err = conn.ExecContext(ctx, q); err != nil {
				break
			}
		}
	}
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		db.Close()
		os.Remove(path)
		return nil, fmt.Errorf("port: spool: %w", err)
	}
	data, err := os.CreateTemp(dir, SpoolPrefix+"*.data")
	if err != nil {
		conn.Close()
		db.Close()
		os.Remove(path)
		return nil, fmt.Errorf("port: spool: %w", err)
	}
	sp := &spool{path: path, db: db, conn: conn, stmts: map[string]*sql.Stmt{}, jsonFile: data, jsonPath: data.Name(), index: newKeyIndex()}
	if runtime.GOOS != "windows" {
		if err := os.Remove(path); err == nil {
			sp.path = ""
		}
		if err := os.Remove(sp.jsonPath); err == nil {
			sp.jsonPath = ""
		}
	}
	return sp, nil
}

// close releases the connection and removes the file if it is still there.
func (sp *spool) close() error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for _, st := range sp.stmts {
		st.Close()
	}
	sp.stmts = nil
	err := errors.Join(sp.conn.Close(), sp.db.Close(), sp.jsonFile.Close())
	for _, p := range []*string{&sp.path, &sp.jsonPath} {
		if *p != "" {
			if rerr := os.Remove(*p); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = errors.Join(err, rerr)
			}
			*p = ""
		}
	}
	if err != nil {
		return fmt.Errorf("port: spool: %w", err)
	}
	return nil
}

// stmt returns q prepared once. sp.mu is held.
func (sp *spool) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := sp.stmts[q]; ok {
		return st, nil
	}
	st, err := sp.conn.PrepareContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("port: spool: %w", err)
	}
	sp.stmts[q] = st
	return st, nil
}

// tx runs fn in one transaction. sp.mu is held.
func (sp *spool) tx(ctx context.Context, fn func() error) error {
	if _, err := sp.conn.ExecContext(ctx, "BEGIN"); err != nil {
		return fmt.Errorf("port: spool: %w", err)
	}
	if err := fn(); err != nil {
		_, _ = sp.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	if _, err := sp.conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("port: spool: %w", err)
	}
	return nil
}

// spooled is one entity on its way into the spool; data nil marks one
// that failed validation.
type spooled struct {
	bp, id string
	data   []byte
}

// put stores entities; a later one of the same key replaces the earlier.
func (sp *spool) put(ctx context.Context, es []spooled) error {
	if len(es) == 0 {
		return nil
	}
	// In key order, the rows go into the table's B-tree next to each other
	// and a page read back in key order finds its JSON in a few runs of
	// the data file (rowsAfter).
	es = slices.Clone(es) // the caller's stays as it is
	slices.SortFunc(es, func(a, b spooled) int {
		return cmp.Or(strings.Compare(a.bp, b.bp), strings.Compare(a.id, b.id))
	})
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.puts+int64(len(es)) > maxIndexedPuts {
		return fmt.Errorf("port: spool: more than %d entities in one run", maxIndexedPuts)
	}
	// The batch's JSON goes to the data file in one write; a replaced
	// entity's earlier JSON stays there unread until the run ends (the
	// file grows with duplicates, on disk only).
	buf := sp.jsonBuf[:0]
	args := make([]any, 0, 5*len(es))
	for _, e := range es {
		var off any
		if e.data != nil {
			off = sp.jsonEnd + int64(len(buf))
			buf = append(buf, e.data...)
		}
		args = append(args, e.bp, e.id, off, len(e.data), sp.puts)
		sp.index.add(e.bp, e.id, sp.puts, e.data != nil)
		sp.puts++
	}
	// The batch's key records follow its JSON (keyIndex).
	keysAt := sp.jsonEnd + int64(len(buf))
	buf = append(buf, sp.index.pending...)
	if _, err := sp.jsonFile.WriteAt(buf, sp.jsonEnd); err != nil {
		sp.index.pending = sp.index.pending[:0]
		return fmt.Errorf("port: spool: %w", err)
	}
	blocks := len(sp.index.blocks)
	sp.index.spilled(keysAt)
	sp.jsonEnd += int64(len(buf))
	if cap(buf) <= 1<<20 {
		sp.jsonBuf = buf[:0] // reused; an unusually large one is let go
	}
	sp.arrived = true
	err := sp.tx(ctx, func() error {
		return sp.insertRows(ctx, `INSERT INTO arrival (bp, id, off, len, n) VALUES `, ``, 5, args)
	})
	if err != nil {
		// The rows did not reach the table: neither do their key records
		// reach the index, or among would say produced where the table
		// says not.
		sp.index.blocks = sp.index.blocks[:blocks]
	}
	return err
}

// settle moves the rows put since the last query into entity: sorted by
// key, so they go into its B-tree in order, a later row of a key
// replacing the earlier (by rowid, the order of the puts). sp.mu is held.
func (sp *spool) settle(ctx context.Context) error {
	if !sp.arrived {
		return nil
	}
	err := sp.tx(ctx, func() error {
		// WHERE true: SQLite's upsert after INSERT … SELECT wants a WHERE
		// (its parser could take ON CONFLICT for a join's ON).
		if err := sp.exec(ctx, true, `INSERT INTO entity (bp, id, off, len, n) SELECT bp, id, off, len, n FROM arrival WHERE true ORDER BY bp, id, rowid
ON CONFLICT (bp, id) DO UPDATE SET off = excluded.off, len = excluded.len, n = excluded.n`); err != nil {
			return err
		}
		return sp.exec(ctx, true, `DELETE FROM arrival`)
	})
	if err != nil {
		return err
	}
	sp.arrived = false
	return nil
}

// readJSON reads the JSON of one entity from the data file. sp.mu is held.
func (sp *spool) readJSON(off sql.NullInt64, n int) ([]byte, error) {
	if !off.Valid {
		return nil, nil
	}
	b := make([]byte, n)
	if _, err := sp.jsonFile.ReadAt(b, off.Int64); err != nil {
		return nil, fmt.Errorf("port: spool: %w", err)
	}
	return b, nil
}

// Reading a page's JSON: pieces of the data file closer than spanGap are
// read in one call, up to spanMax bytes.
const (
	spanGap = 4 << 10
	spanMax = 1 << 20
)

// jsonRef is where one entity's JSON is and where it goes once read.
type jsonRef struct {
	off, n int64
	dst    *[]byte
}

// readJSONs reads the JSON of many entities with few calls: sorted by
// place in the data file, pieces near each other are read together (the
// entities of one put are next to each other in key order). sp.mu is held.
func (sp *spool) readJSONs(refs []jsonRef) error {
	slices.SortFunc(refs, func(a, b jsonRef) int { return cmp.Compare(a.off, b.off) })
	for i := 0; i < len(refs); {
		start, end := refs[i].off, refs[i].off+refs[i].n
		j := i + 1
		for ; j < len(refs) && refs[j].off-end <= spanGap && refs[j].off+refs[j].n-start <= spanMax; j++ {
			end = max(end, refs[j].off+refs[j].n)
		}
		buf := make([]byte, end-start)
		if _, err := sp.jsonFile.ReadAt(buf, start); err != nil {
			return fmt.Errorf("port: spool: %w", err)
		}
		for _, r := range refs[i:j] {
			// Full slice expressions: an entity's JSON never grows into the next.
			*r.dst = buf[r.off-start : r.off-start+r.n : r.off-start+r.n]
		}
		i = j
	}
	return nil
}

// rowsPerInsert is how many rows one INSERT statement carries: a
// statement per row spent more on the statement than on the row.
const rowsPerInsert = 64

// insertRows runs head, a VALUES list, tail for args, width values a row,
// rowsPerInsert rows a statement (rows later in args win a conflict, as
// they would one statement each). Statements of a full chunk, or of at
// most a bulk request's entities, are prepared once. sp.mu is held.
func (sp *spool) insertRows(ctx context.Context, head, tail string, width int, args []any) error {
	tuple := "(?" + strings.Repeat(",?", width-1) + ")"
	for len(args) > 0 {
		chunk := args[:min(len(args), rowsPerInsert*width)]
		args = args[len(chunk):]
		n := len(chunk) / width
		q := head + tuple + strings.Repeat(","+tuple, n-1) + tail
		if err := sp.exec(ctx, n == rowsPerInsert || n <= maxBulkEntities, q, chunk...); err != nil {
			return err
		}
	}
	return nil
}

// exec runs q, prepared once when keep says its text recurs (statements
// with lists of parameters come in many lengths; only the usual ones are
// kept). sp.mu is held.
func (sp *spool) exec(ctx context.Context, keep bool, q string, args ...any) error {
	var err error
	if keep {
		var st *sql.Stmt
		if st, err = sp.stmt(ctx, q); err != nil {
			return err
		}
		_, err = st.ExecContext(ctx, args...)
	} else {
		_, err = sp.conn.ExecContext(ctx, q, args...)
	}
	if err != nil {
		return fmt.Errorf("port: spool: %w", err)
	}
	return nil
}

// data returns the stored JSON of one entity; nil when there is none or
// it failed validation.
func (sp *spool) data(ctx context.Context, bp, id string) ([]byte, error) {
	if err := sp.lockRead(ctx); err != nil {
		return nil, err
	}
	defer sp.mu.Unlock()
	st, err := sp.stmt(ctx, `SELECT off, len FROM entity WHERE bp = ? AND id = ?`)
	if err != nil {
		return nil, err
	}
	var off sql.NullInt64
	var n int
	err = st.QueryRowContext(ctx, bp, id).Scan(&off, &n)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("port: spool: %w", err)
	}
	return sp.readJSON(off, n)
}

// strings runs a query, prepared once, whose rows are one string each.
func (sp *spool) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	if err := sp.lockRead(ctx); err != nil {
		return nil, err
	}
	defer sp.mu.Unlock()
	st, err := sp.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("port: spool: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("port: spool: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("port: spool: %w", err)
	}
	return out, nil
}

// blueprints lists the blueprints with entities to send, sorted.
func (sp *spool) blueprints(ctx context.Context) ([]string, error) {
	return sp.strings(ctx, `SELECT DISTINCT bp FROM entity WHERE off IS NOT NULL ORDER BY bp`)
}

// Filters of idsAfter and rowsAfter.
const (
	selValid        = `e.off IS NOT NULL`
	selValidUnowned = `e.off IS NOT NULL AND NOT EXISTS (SELECT 1 FROM owned o WHERE o.bp = e.bp AND o.id = e.id)`
	selCycleWritten = `e.off IS NOT NULL AND EXISTS (SELECT 1 FROM cycle x WHERE x.n = e.n)`
	selAll          = `1`
)

// idsAfter pages through the identifiers of bp that match sel, in order.
func (sp *spool) idsAfter(ctx context.Context, bp, sel, after string, limit int) ([]string, error) {
	return sp.strings(ctx, `SELECT e.id FROM entity e WHERE e.bp = ? AND `+sel+` AND e.id > ? ORDER BY e.id LIMIT ?`, bp, after, limit)
}

// spoolRow is one entity read back, with what Port holds for it (owner
// and body empty when the owned listing did not have it).
type spoolRow struct {
	id    string
	n     int64 // entity.n
	data  []byte
	owner string
	body  []byte
}

// rowsAfter pages through the entities of bp that match sel, in order.
func (sp *spool) rowsAfter(ctx context.Context, bp, sel, after string, limit int) ([]spoolRow, error) {
	if err := sp.lockRead(ctx); err != nil {
		return nil, err
	}
	defer sp.mu.Unlock()
	st, err := sp.stmt(ctx, `SELECT e.id, e.n, e.off, e.len, o.owner, o.body FROM entity e LEFT JOIN owned o ON o.bp = e.bp AND o.id = e.id
WHERE e.bp = ? AND `+sel+` AND e.id > ? ORDER BY e.id LIMIT ?`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, bp, after, limit)
	if err != nil {
		return nil, fmt.Errorf("port: spool: %w", err)
	}
	defer rows.Close()
	var out []spoolRow
	var offs []sql.NullInt64
	var lens []int64
	for rows.Next() {
		var r spoolRow
		var owner sql.NullString
		var off sql.NullInt64
		var n int64
		if err := rows.Scan(&r.id, &r.n, &off, &n, &owner, &r.body); err != nil {
			return nil, fmt.Errorf("port: spool: %w", err)
		}
		r.owner = owner.String
		out = append(out, r)
		offs, lens = append(offs, off), append(lens, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("port: spool: %w", err)
	}
	refs := make([]jsonRef, 0, len(out))
	for i := range out {
		if offs[i].Valid {
			refs = append(refs, jsonRef{off: offs[i].Int64, n: lens[i], dst: &out[i].data})
		}
	}
	if err := sp.readJSONs(refs); err != nil {
		return nil, err
	}
	return out, nil
}

// ownedRow is one entity of the owned listing.
type ownedRow struct {
	id, owner string
	body      []byte
}

func (sp *spool) putOwned(ctx context.Context, bp string, rs []ownedRow) error {
	if len(rs) == 0 {
		return nil
	}
	args := make([]any, 0, 4*len(rs))
	for _, r := range rs {
		args = append(args, bp, r.id, r.owner, r.body)
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.tx(ctx, func() error {
		return sp.insertRows(ctx, `INSERT INTO owned (bp, id, owner, body) VALUES `, ` ON CONFLICT (bp, id) DO UPDATE SET owner = excluded.owner, body = excluded.body`, 4, args)
	})
}

// dropOwned forgets what a listing of bp stored.
func (sp *spool) dropOwned(ctx context.Context, bp string) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if _, err := sp.conn.ExecContext(ctx, `DELETE FROM owned WHERE bp = ?`, bp); err != nil {
		return fmt.Errorf("port: spool: %w", err)
	}
	return nil
}

// ownedBy lists the identifiers of bp that the listing found under an
// owner other than owner (adopted ones), with that owner.
func (sp *spool) ownedBy(ctx context.Context, bp, owner string) (map[string]string, error) {
	if err := sp.lockRead(ctx); err != nil {
		return nil, err
	}
	defer sp.mu.Unlock()
	st, err := sp.stmt(ctx, `SELECT o.id, o.owner FROM owned o JOIN entity e ON e.bp = o.bp AND e.id = o.id WHERE o.bp = ? AND o.owner != ? AND e.off IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, bp, owner)
	if err != nil {
		return nil, fmt.Errorf("port: spool: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, o string
		if err := rows.Scan(&id, &o); err != nil {
			return nil, fmt.Errorf("port: spool: %w", err)
		}
		out[id] = o
	}
	return out, rows.Err()
}

// setState records the outcome of entities of one blueprint (ids, their
// entity.n in ns: spoolRow.n); cycle says which of them have relation
// targets inside a relation cycle left for the second pass (nil: none).
// The outcomes are kept in memory; those that change the cycle table go
// in when cycleBatch wait, or before a query.
func (sp *spool) setState(ctx context.Context, bp string, ids []string, ns []int64, state int, cycle []bool) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.tally == nil {
		sp.tally, sp.cycles = map[string]*[3]int{}, map[int64]struct{}{}
	}
	t := sp.tally[bp]
	if t == nil {
		t = &[3]int{}
		sp.tally[bp] = t
	}
	for i, n := range ns {
		if n < 0 || n >= sp.puts {
			return fmt.Errorf("port: spool: entity %q of %s has no place %d", ids[i], bp, n)
		}
		if int(n) >= len(sp.states) {
			sp.states = slices.Grow(sp.states, int(sp.puts)-len(sp.states))[:sp.puts]
		}
		was, now := sp.states[n], uint8(state)
		if state == stateWritten && cycle != nil && cycle[i] {
			now |= stateCycle
		}
		if was&^stateCycle != stateWaiting {
			t[was&^stateCycle]--
		}
		t[state]++
		sp.states[n] = now
		if (was|now)&stateCycle != 0 {
			sp.cycles[n] = struct{}{}
		}
	}
	if len(sp.cycles) < cycleBatch {
		return nil
	}
	return sp.flushCycles(ctx)
}

// cycleBatch is how many changes to the cycle table wait before they are
// made.
const cycleBatch = 2048

// flushCycles brings the cycle table up to the states, in the order of n
// (the table's B-tree is filled in order). sp.mu is held.
func (sp *spool) flushCycles(ctx context.Context) error {
	if len(sp.cycles) == 0 {
		return nil
	}
	var in, out []any
	for _, n := range slices.Sorted(maps.Keys(sp.cycles)) {
		if sp.states[n]&stateCycle != 0 {
			in = append(in, n)
		} else {
			out = append(out, n) // rare: written again without them
		}
	}
	err := sp.tx(ctx, func() error {
		for _, n := range out {
			if err := sp.exec(ctx, true, `DELETE FROM cycle WHERE n = ?`, n); err != nil {
				return err
			}
		}
		return sp.insertRows(ctx, `INSERT INTO cycle (n) VALUES `, ` ON CONFLICT DO NOTHING`, 1, in)
	})
	if err != nil {
		return err
	}
	clear(sp.cycles)
	return nil
}

// lockRead locks the spool for a query, moving the entities put and
// bringing the cycle table up to date first so that every query sees
// them. On success sp.mu is held.
func (sp *spool) lockRead(ctx context.Context) error {
	sp.mu.Lock()
	if err := sp.settle(ctx); err != nil {
		sp.mu.Unlock()
		return err
	}
	if err := sp.flushCycles(ctx); err != nil {
		sp.mu.Unlock()
		return err
	}
	return nil
}

// stateAt is the state of the entity numbered n, without stateCycle.
// sp.mu is held.
func (sp *spool) stateAt(n int64) int {
	if n < 0 || n >= int64(len(sp.states)) {
		return stateWaiting
	}
	return int(sp.states[n] &^ stateCycle)
}

// maxInList is the most identifiers one IN (…) list of the spool's
// statements holds.
const maxInList = 500

// among returns which of ids of bp the run produced valid or, with done,
// wrote or found unchanged: from the key index, and from the entity table
// for the few keys the index cannot tell apart.
func (sp *spool) among(ctx context.Context, bp string, done bool, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	var ask []string
	sp.mu.Lock()
	if err := sp.index.settle(sp.jsonFile); err != nil {
		sp.mu.Unlock()
		return nil, err
	}
	for _, id := range ids {
		n, valid, found, ambiguous := sp.index.find(bp, id)
		switch {
		case ambiguous:
			ask = append(ask, id)
		case found && valid && (!done || sp.stateAt(n) != stateWaiting):
			out[id] = true
		}
	}
	sp.mu.Unlock()
	query := `SELECT e.id, e.n FROM entity e WHERE e.bp = ? AND ` + selValid + ` AND e.id IN (`
	for chunk := range slices.Chunk(ask, maxInList) {
		args := make([]any, 0, len(chunk)+1)
		args = append(args, bp)
		for _, id := range chunk {
			args = append(args, id)
		}
		// Only valid entities get an outcome: with done, the valid ones
		// whose state is not waiting.
		if err := sp.lockRead(ctx); err != nil {
			return nil, err
		}
		// Most lists are short (keys put again among a page's targets).
		keep := len(chunk) == maxInList || len(chunk) <= maxBulkEntities
		err := sp.query(ctx, keep, query+`?`+strings.Repeat(",?", len(chunk)-1)+`)`, args, func(rows *sql.Rows) error {
			var id string
			var n int64
			if err := rows.Scan(&id, &n); err != nil {
				return err
			}
			if !done || sp.stateAt(n) != stateWaiting {
				out[id] = true
			}
			return nil
		})
		sp.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// addRefs records relation targets that written entities keep.
func (sp *spool) addRefs(ctx context.Context, keys []entityKey) error {
	if len(keys) == 0 {
		return nil
	}
	// Many entities of a page name the same few targets (their app, their
	// environment): each is inserted once.
	seen := make(map[entityKey]bool, len(keys))
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			args = append(args, k.blueprint, k.identifier)
		}
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.tx(ctx, func() error {
		return sp.insertRows(ctx, `INSERT INTO ref (bp, id) VALUES `, ` ON CONFLICT DO NOTHING`, 2, args)
	})
}

// stale lists the owned entities of bp that the run did not produce and
// that no entity it wrote relates to, in order.
func (sp *spool) stale(ctx context.Context, bp string) ([]string, error) {
	return sp.strings(ctx, `SELECT o.id FROM owned o WHERE o.bp = ?
AND NOT EXISTS (SELECT 1 FROM entity e WHERE e.bp = o.bp AND e.id = o.id)
AND NOT EXISTS (SELECT 1 FROM ref r WHERE r.bp = o.bp AND r.id = o.id) ORDER BY o.id`, bp)
}

// kept lists the owned entities of bp that the run did not produce but
// that an entity it wrote relates to: stale, yet not deleted, in order.
func (sp *spool) kept(ctx context.Context, bp string) ([]string, error) {
	return sp.strings(ctx, `SELECT o.id FROM owned o WHERE o.bp = ?
AND NOT EXISTS (SELECT 1 FROM entity e WHERE e.bp = o.bp AND e.id = o.id)
AND EXISTS (SELECT 1 FROM ref r WHERE r.bp = o.bp AND r.id = o.id) ORDER BY o.id`, bp)
}

// counts returns, per blueprint with valid entities, the entities in each
// state: the valid ones counted in one scan, the written and unchanged
// ones in memory (only valid entities get an outcome), the rest waiting.
func (sp *spool) counts(ctx context.Context) (map[string][3]int, error) {
	if err := sp.lockRead(ctx); err != nil {
		return nil, err
	}
	defer sp.mu.Unlock()
	out := map[string][3]int{}
	err := sp.query(ctx, true, `SELECT bp, count(*) FROM entity WHERE off IS NOT NULL GROUP BY bp`, nil, func(rows *sql.Rows) error {
		var bp string
		var n int
		if err := rows.Scan(&bp, &n); err != nil {
			return err
		}
		c := [3]int{stateWaiting: n}
		if t := sp.tally[bp]; t != nil {
			c[stateWritten], c[stateUnchanged] = t[stateWritten], t[stateUnchanged]
			c[stateWaiting] -= t[stateWritten] + t[stateUnchanged]
		}
		out[bp] = c
		return nil
	})
	return out, err
}

// query runs q, prepared once when keep says its text recurs (see exec),
// calling fn for each row. sp.mu is held.
func (sp *spool) query(ctx context.Context, keep bool, q string, args []any, fn func(*sql.Rows) error) error {
	var rows *sql.Rows
	var err error
	if keep {
		var st *sql.Stmt
		if st, err = sp.stmt(ctx, q); err != nil {
			return err
		}
		rows, err = st.QueryContext(ctx, args...)
	} else {
		rows, err = sp.conn.QueryContext(ctx, q, args...)
	}
	if err != nil {
		return fmt.Errorf("port: spool: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return fmt.Errorf("port: spool: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("port: spool: %w", err)
	}
	return nil
}

// stateOf returns the state of one entity (-1: not produced or invalid).
func (sp *spool) stateOf(ctx context.Context, k entityKey) (int, error) {
	if err := sp.lockRead(ctx); err != nil {
		return -1, err
	}
	defer sp.mu.Unlock()
	st, err := sp.stmt(ctx, `SELECT n FROM entity e WHERE e.bp = ? AND e.id = ? AND e.off IS NOT NULL`)
	if err != nil {
		return -1, err
	}
	var n int64
	err = st.QueryRowContext(ctx, k.blueprint, k.identifier).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return -1, nil
	}
	if err != nil {
		return -1, fmt.Errorf("port: spool: %w", err)
	}
	return sp.stateAt(n), nil
}
