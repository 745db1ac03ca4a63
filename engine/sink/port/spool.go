package port

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/maphash"
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
// memory does not grow with its size: a data file and an SQLite file.
//
// The data file holds, appended, each put's entities' JSON as mapped and,
// after it, a sorted run per blueprint of the put: each entity's
// identifier, the number of its put (n: the outcomes in memory are by n)
// and where its JSON is (none when it failed validation, so it is never
// sent but still counts as produced). Runs are merged as they pile up and
// once more before reading in order (see runs.go); a replaced entity's
// earlier JSON and entries stay there unread until the run ends (the
// file grows with duplicates and merges, on disk only). The SQLite file
// holds what is looked up by key rather than read in order:
//
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

	jsonFile *os.File // the entities' JSON and runs, appended
	jsonPath string   // "" once unlinked
	jsonEnd  int64
	puts     int64  // entities put so far: the next one's n
	jsonBuf  []byte // one put's JSON and runs, written at once

	seed  maphash.Seed
	runs  map[string][]*run // each blueprint's runs, oldest first
	owned map[string]bool   // blueprints with rows in owned
	bufs  scanBuffers       // the runs' scanners' buffers

	states []uint8            // outcome of each entity put, by n: stateWaiting, …
	tally  map[string]*[3]int // entities of each blueprint in each state but waiting

	joins int // queries of the owned listing made by pages (tests count them)

	// origins are what the entries' from refer to, handed over with the
	// spool by Sink.take (Write fills the sink's while it queues).
	origins origins
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
	sp := &spool{path: path, db: db, conn: conn, stmts: map[string]*sql.Stmt{}, jsonFile: data, jsonPath: data.Name(),
		seed: maphash.MakeSeed(), runs: map[string][]*run{}, owned: map[string]bool{}}
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
	err := errors.Join(sp.conn.Close(), sp.db.Close(), sp.jsonFile.Close(), sp.origins.close())
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
	from   uint64 // its origin (origins.ref)
}

// put stores entities; a later one of the same key replaces the earlier
// (within es too).
func (sp *spool) put(ctx context.Context, es []spooled) error {
	if len(es) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	byKey := func(a, b spooled) int {
		return cmp.Or(strings.Compare(a.bp, b.bp), strings.Compare(a.id, b.id))
	}
	sorted := slices.Clone(es) // the caller's stays as it is
	slices.SortFunc(sorted, byKey)
	for i := 1; i < len(sorted); i++ {
		if byKey(sorted[i-1], sorted[i]) != 0 {
			continue
		}
		// A key twice in es (the sink's buffer holds a key once): the
		// later one is put, found by a stable sort.
		sorted = slices.Clone(es)
		slices.SortStableFunc(sorted, byKey)
		out := sorted[:0]
		for j, e := range sorted {
			if j+1 == len(sorted) || byKey(sorted[j+1], e) != 0 {
				out = append(out, e)
			}
		}
		sorted = out
		break
	}
	es = sorted
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.puts+int64(len(es)) > maxIndexedPuts {
		return fmt.Errorf("port: spool: more than %d entities in one run", maxIndexedPuts)
	}
	// The batch's JSON, then a run of each of its blueprints, go to the
	// data file in one write.
	buf := sp.jsonBuf[:0]
	entries := make([]runEntry, len(es))
	for i, e := range es {
		entries[i] = runEntry{id: e.id, n: sp.puts + int64(i), off: -1, size: int64(len(e.data)), from: e.from}
		if e.data != nil {
			entries[i].off = sp.jsonEnd + int64(len(buf))
			buf = append(buf, e.data...)
		}
	}
	type added struct {
		bp string
		rn *run
	}
	var runs []added
	for i := 0; i < len(es); {
		j := i + 1
		for j < len(es) && es[j].bp == es[i].bp {
			j++
		}
		b := runBuilder{buf: buf, base: -int64(len(buf))}
		for _, e := range entries[i:j] {
			if err := b.add(e); err != nil {
				return err
			}
		}
		at := int64(len(buf))
		buf = b.buf
		runs = append(runs, added{es[i].bp, &run{off: sp.jsonEnd + at, size: int64(len(buf)) - at, count: b.count, valid: b.valid, marks: b.marks}})
		i = j
	}
	if _, err := sp.jsonFile.WriteAt(buf, sp.jsonEnd); err != nil {
		return fmt.Errorf("port: spool: %w", err)
	}
	sp.jsonEnd += int64(len(buf))
	sp.puts += int64(len(es))
	if cap(buf) <= 1<<20 {
		sp.jsonBuf = buf[:0] // reused; an unusually large one is let go
	}
	// Every run of the put is in before any merge: a merge that fails
	// leaves the put whole (its JSON and numbers are taken), not its later
	// blueprints left out.
	for _, a := range runs {
		sp.runs[a.bp] = append(sp.runs[a.bp], a.rn)
	}
	for _, a := range runs {
		if err := sp.compact(a.bp); err != nil {
			return err
		}
	}
	return nil
}

// compact merges bp's newest runs while runFanout of them are of one
// level. sp.mu is held.
func (sp *spool) compact(bp string) error {
	for {
		rs := sp.runs[bp]
		if len(rs) < runFanout {
			return nil
		}
		tail := rs[len(rs)-runFanout:]
		for _, rn := range tail {
			if rn.level != tail[0].level {
				return nil
			}
		}
		merged, err := sp.merge(tail, tail[0].level+1, false)
		if err != nil {
			return err
		}
		sp.runs[bp] = append(rs[:len(rs)-runFanout], merged)
	}
}

// merge writes runs (oldest first) as one run of level, with its hash
// index when withIndex. sp.mu is held.
func (sp *spool) merge(runs []*run, level int, withIndex bool) (*run, error) {
	start := sp.jsonEnd
	b := runBuilder{buf: sp.jsonBuf[:0]}
	var hashes []uint64
	var places []uint32
	if withIndex {
		total := 0
		for _, rn := range runs {
			total += rn.count
		}
		hashes, places = make([]uint64, 0, total), make([]uint32, 0, total)
	}
	flush := func() error {
		if _, err := sp.jsonFile.WriteAt(b.buf, start+b.base); err != nil {
			return fmt.Errorf("port: spool: %w", err)
		}
		b.base += int64(len(b.buf))
		b.buf = b.buf[:0]
		return nil
	}
	err := mergeRuns(sp.jsonFile, runs, &sp.bufs, func(e runEntry) error {
		if err := b.add(e); err != nil {
			return err
		}
		if withIndex {
			hashes, places = append(hashes, idHash(sp.seed, e.id)), append(places, place(e))
		}
		if len(b.buf) >= 256<<10 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if cap(b.buf) <= 1<<20 {
		sp.jsonBuf = b.buf[:0]
	}
	if err != nil {
		return nil, err
	}
	sp.jsonEnd = start + b.base
	rn := &run{off: start, size: b.base, count: b.count, valid: b.valid, level: level, marks: slices.Clip(b.marks)}
	if withIndex {
		rn.index = buildIndex(hashes, places)
	}
	return rn, nil
}

// settle merges each blueprint's runs into one, indexed (a blueprint's
// only run is indexed by its first lookup), so that it reads in order and
// among finds its keys. sp.mu is held.
func (sp *spool) settle() error {
	var unmerged []string
	for bp, rs := range sp.runs {
		if len(rs) > 1 {
			unmerged = append(unmerged, bp)
		}
	}
	slices.Sort(unmerged) // the data file's layout the same run to run
	for _, bp := range unmerged {
		rs := sp.runs[bp]
		level := 0
		for _, rn := range rs {
			level = max(level, rn.level)
			// An unmerged run's index (a merging stream's lookups) is not
			// kept beside the merged run's while that is made.
			rn.index = nil
		}
		merged, err := sp.merge(rs, level, true)
		if err != nil {
			return err
		}
		sp.runs[bp] = []*run{merged}
	}
	return nil
}

// indexed returns rn's hash index, made on first use. sp.mu is held.
func (sp *spool) indexed(rn *run) (*hashIndex, error) {
	if rn.index == nil {
		x, err := indexRun(sp.jsonFile, sp.seed, rn, &sp.bufs)
		if err != nil {
			return nil, err
		}
		rn.index = x
	}
	return rn.index, nil
}

// find returns the entry of the last put of (bp, id), without settling:
// the newest run that holds it has it. sp.mu is held.
func (sp *spool) find(bp, id string) (runEntry, bool, error) {
	h := idHash(sp.seed, id)
	rs := sp.runs[bp]
	for i := len(rs) - 1; i >= 0; i-- {
		x, err := sp.indexed(rs[i])
		if err != nil {
			return runEntry{}, false, err
		}
		if _, _, found, _ := x.find(h); !found {
			continue
		}
		e, ok, err := lookup(sp.jsonFile, rs[i], id, &sp.bufs)
		if err != nil || ok {
			return e, ok, err
		}
	}
	return runEntry{}, false, nil
}

// readJSON reads the JSON of one entry from the data file. sp.mu is held.
func (sp *spool) readJSON(e runEntry) ([]byte, error) {
	if !e.valid() {
		return nil, nil
	}
	b := make([]byte, e.size)
	if _, err := sp.jsonFile.ReadAt(b, e.off); err != nil {
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
// it failed validation. It reads the runs as they are: a merging stream
// asks it for every entity it writes, between puts.
func (sp *spool) data(ctx context.Context, bp, id string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	e, ok, err := sp.find(bp, id)
	if err != nil || !ok {
		return nil, err
	}
	return sp.readJSON(e)
}

// blueprints lists the blueprints with entities to send, sorted.
func (sp *spool) blueprints(ctx context.Context) ([]string, error) {
	if err := sp.lockRead(ctx); err != nil {
		return nil, err
	}
	defer sp.mu.Unlock()
	var out []string
	for bp, rs := range sp.runs {
		if len(rs) > 0 && rs[0].valid > 0 {
			out = append(out, bp)
		}
	}
	slices.Sort(out)
	return out, nil
}

// selector says which entities a page holds.
type selector int

const (
	selValid        selector = iota // valid ones
	selValidUnowned                 // valid ones the owned listing does not have
	selCycleWritten                 // valid ones written with cycle relations left
	selAll                          // every one
)

// idsAfter pages through the identifiers of bp that sel selects, in order.
func (sp *spool) idsAfter(ctx context.Context, bp string, sel selector, after string, limit int) ([]string, error) {
	rows, err := sp.page(ctx, bp, sel, after, limit, false)
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.id
	}
	return ids, err
}

// spoolRow is one entity read back, with what Port holds for it (owner
// and body empty when the owned listing did not have it).
type spoolRow struct {
	id    string
	n     int64  // its put's number
	from  uint64 // its origin (origins.ref)
	data  []byte
	owner string
	body  []byte
}

// rowsAfter pages through the entities of bp that sel selects, in order.
func (sp *spool) rowsAfter(ctx context.Context, bp string, sel selector, after string, limit int) ([]spoolRow, error) {
	return sp.page(ctx, bp, sel, after, limit, true)
}

// page reads up to limit entities of bp past after that sel selects,
// with their owned rows, and with their JSON and owned body when full.
func (sp *spool) page(ctx context.Context, bp string, sel selector, after string, limit int, full bool) ([]spoolRow, error) {
	if err := sp.lockRead(ctx); err != nil {
		return nil, err
	}
	defer sp.mu.Unlock()
	rs := sp.runs[bp]
	if len(rs) == 0 || limit <= 0 {
		return nil, nil
	}
	s, next, err := seek(sp.jsonFile, rs[0], after, false, &sp.bufs, scanChunk)
	defer s.release()
	if err != nil {
		return nil, err
	}
	// Entities not in the owned listing are found a page's worth of
	// candidates to each query of it, not what the page still lacks, or
	// a page short of a few where Port owns the entities after them would
	// ask once an entity (those past the page are read again by the next).
	unowned := sel == selValidUnowned && sp.owned[bp]
	out := make([]spoolRow, 0, limit)
	locs := make([]int64, 0, 2*limit) // each row's JSON: offset and size
	for next != nil && len(out) < limit {
		start := len(out)
		want := limit - start
		if unowned {
			want = limit
		}
		for next != nil && len(out)-start < want {
			e := *next
			if e.valid() || sel == selAll {
				if sel != selCycleWritten || (e.n < int64(len(sp.states)) && sp.states[e.n]&stateCycle != 0) {
					out = append(out, spoolRow{id: e.id, n: e.n, from: e.from})
					locs = append(locs, e.off, e.size)
				}
			}
			e, ok, err := s.next()
			if err != nil {
				return nil, err
			}
			next = nil
			if ok {
				next = &e
			}
		}
		if len(out) == start {
			break
		}
		if !sp.owned[bp] {
			continue
		}
		listed, err := sp.joinOwned(ctx, bp, out[start:], full)
		if err != nil {
			return nil, err
		}
		if !unowned {
			continue
		}
		kept := start
		for i, r := range out[start:] {
			if !listed[i] {
				out[kept], locs[2*kept], locs[2*kept+1] = r, locs[2*(start+i)], locs[2*(start+i)+1]
				kept++
			}
		}
		out, locs = out[:kept], locs[:2*kept]
	}
	if len(out) > limit {
		out, locs = out[:limit], locs[:2*limit]
	}
	if full {
		refs := make([]jsonRef, 0, len(out))
		for i := range out {
			if off := locs[2*i]; off >= 0 {
				refs = append(refs, jsonRef{off: off, n: locs[2*i+1], dst: &out[i].data})
			}
		}
		if err := sp.readJSONs(refs); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// joinOwned fills the owner (and, when full, the body) of the rows, in
// order, that the owned listing of bp has, and says which. sp.mu is held.
func (sp *spool) joinOwned(ctx context.Context, bp string, rows []spoolRow, full bool) ([]bool, error) {
	q := `SELECT id, owner, NULL FROM owned WHERE bp = ? AND id >= ? AND id <= ? ORDER BY id`
	if full {
		q = `SELECT id, owner, body FROM owned WHERE bp = ? AND id >= ? AND id <= ? ORDER BY id`
	}
	sp.joins++
	i := 0
	listed := make([]bool, len(rows))
	err := sp.query(ctx, true, q, []any{bp, rows[0].id, rows[len(rows)-1].id}, func(r *sql.Rows) error {
		var id, owner string
		var body []byte
		if err := r.Scan(&id, &owner, &body); err != nil {
			return err
		}
		for i < len(rows) && rows[i].id < id {
			i++
		}
		if i < len(rows) && rows[i].id == id {
			rows[i].owner, rows[i].body, listed[i] = owner, body, true
		}
		return nil
	})
	return listed, err
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
	err := sp.tx(ctx, func() error {
		return sp.insertRows(ctx, `INSERT INTO owned (bp, id, owner, body) VALUES `, ` ON CONFLICT (bp, id) DO UPDATE SET owner = excluded.owner, body = excluded.body`, 4, args)
	})
	if err == nil {
		sp.owned[bp] = true
	}
	return err
}

// dropOwned forgets what a listing of bp stored.
func (sp *spool) dropOwned(ctx context.Context, bp string) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if _, err := sp.conn.ExecContext(ctx, `DELETE FROM owned WHERE bp = ?`, bp); err != nil {
		return fmt.Errorf("port: spool: %w", err)
	}
	delete(sp.owned, bp)
	return nil
}

// ownedBy lists the identifiers of bp that the listing found under an
// owner other than owner (adopted ones), with that owner.
func (sp *spool) ownedBy(ctx context.Context, bp, owner string) (map[string]string, error) {
	if err := sp.lockRead(ctx); err != nil {
		return nil, err
	}
	defer sp.mu.Unlock()
	out := map[string]string{}
	err := sp.query(ctx, true, `SELECT id, owner FROM owned WHERE bp = ? AND owner != ?`, []any{bp, owner}, func(rows *sql.Rows) error {
		var id, o string
		if err := rows.Scan(&id, &o); err != nil {
			return err
		}
		e, ok, err := sp.find(bp, id)
		if err != nil {
			return err
		}
		if ok && e.valid() {
			out[id] = o
		}
		return nil
	})
	return out, err
}

// setState records the outcome of entities of one blueprint (ids, their
// puts' numbers in ns: spoolRow.n); cycle says which of them have
// relation targets inside a relation cycle left for the second pass (nil:
// none). The outcomes are kept in memory, a byte an entity.
func (sp *spool) setState(ctx context.Context, bp string, ids []string, ns []int64, state int, cycle []bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.tally == nil {
		sp.tally = map[string]*[3]int{}
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
	}
	return nil
}

// lockRead locks the spool for a query, merging each blueprint's runs
// first. On success sp.mu is held.
func (sp *spool) lockRead(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sp.mu.Lock()
	if err := sp.settle(); err != nil {
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

// among returns which of ids of bp the run produced valid or, with done,
// wrote or found unchanged: from the hash index of bp's run, and from the
// run itself for the rare hash two of its keys share.
func (sp *spool) among(ctx context.Context, bp string, done bool, ids []string) (map[string]bool, error) {
	if err := sp.lockRead(ctx); err != nil {
		return nil, err
	}
	defer sp.mu.Unlock()
	out := map[string]bool{}
	rs := sp.runs[bp]
	if len(rs) == 0 {
		return out, nil
	}
	x, err := sp.indexed(rs[0])
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		n, valid, found, ambiguous := x.find(idHash(sp.seed, id))
		if ambiguous {
			e, ok, err := lookup(sp.jsonFile, rs[0], id, &sp.bufs)
			if err != nil {
				return nil, err
			}
			n, valid, found = e.n, e.valid(), ok
		}
		if found && valid && (!done || sp.stateAt(n) != stateWaiting) {
			out[id] = true
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
	return sp.unproduced(ctx, bp, false)
}

// kept lists the owned entities of bp that the run did not produce but
// that an entity it wrote relates to: stale, yet not deleted, in order.
func (sp *spool) kept(ctx context.Context, bp string) ([]string, error) {
	return sp.unproduced(ctx, bp, true)
}

// unproduced lists the owned entities of bp that the run did not produce
// (valid or not) that ref has (referred) or has not, in order: the owned
// listing and bp's run read side by side.
func (sp *spool) unproduced(ctx context.Context, bp string, referred bool) ([]string, error) {
	if err := sp.lockRead(ctx); err != nil {
		return nil, err
	}
	defer sp.mu.Unlock()
	var s *entryScanner
	var next *runEntry
	if rs := sp.runs[bp]; len(rs) > 0 {
		var err error
		s, next, err = seek(sp.jsonFile, rs[0], "", false, &sp.bufs, scanChunk)
		defer s.release()
		if err != nil {
			return nil, err
		}
	}
	var out []string
	err := sp.query(ctx, true, `SELECT o.id, EXISTS (SELECT 1 FROM ref r WHERE r.bp = o.bp AND r.id = o.id) FROM owned o WHERE o.bp = ? ORDER BY o.id`, []any{bp}, func(rows *sql.Rows) error {
		var id string
		var ref bool
		if err := rows.Scan(&id, &ref); err != nil {
			return err
		}
		for next != nil && next.id < id {
			e, ok, err := s.next()
			if err != nil {
				return err
			}
			next = nil
			if ok {
				next = &e
			}
		}
		if (next == nil || next.id != id) && ref == referred {
			out = append(out, id)
		}
		return nil
	})
	return out, err
}

// counts returns, per blueprint with valid entities, the entities in each
// state: the valid ones counted by the runs, the written and unchanged
// ones in memory (only valid entities get an outcome), the rest waiting.
func (sp *spool) counts(ctx context.Context) (map[string][3]int, error) {
	if err := sp.lockRead(ctx); err != nil {
		return nil, err
	}
	defer sp.mu.Unlock()
	out := map[string][3]int{}
	for bp, rs := range sp.runs {
		if len(rs) == 0 || rs[0].valid == 0 {
			continue
		}
		c := [3]int{stateWaiting: rs[0].valid}
		if t := sp.tally[bp]; t != nil {
			c[stateWritten], c[stateUnchanged] = t[stateWritten], t[stateUnchanged]
			c[stateWaiting] -= t[stateWritten] + t[stateUnchanged]
		}
		out[bp] = c
	}
	return out, nil
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
	e, ok, err := sp.find(k.blueprint, k.identifier)
	if err != nil || !ok || !e.valid() {
		return -1, err
	}
	return sp.stateAt(e.n), nil
}
