package port

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math/bits"
	"slices"
	"sort"
	"strings"
	"sync"
)

// The spool keeps which entities a run produced as sorted runs in its
// data file, not as rows of an SQLite table: inserting every entity into
// a B-tree, and reading it back, cost a fifth of a Port run's CPU.
//
// A run is one blueprint's entries sorted by identifier, each key once:
// every put writes one run per blueprint it holds after its JSON; when a
// blueprint's newest runs are runFanout of one level, they are merged
// into one of the next level (a key in several keeps its latest put), so
// a blueprint has a few runs of each level while extracting and the
// entries are rewritten about log16(entities / batch) times. Reading in
// order (settle) merges a blueprint's runs into one. The heap holds, per
// run, every markEvery-th identifier and where its entry is, and a hash
// index once a lookup needed it: a settled run's is the one among asks.

// runFanout is how many runs of one level are merged into one.
const runFanout = 16

// markEvery is how many entries apart a run's marks are: a seek reads at
// most this many entries.
const markEvery = 64

// runEntry is one entity of a run: its identifier, its put's number,
// where its JSON is in the data file (off -1: it failed validation), and
// where it was mapped from (origins.ref), for the report of a failure.
type runEntry struct {
	id   string
	n    int64
	off  int64
	size int64
	from uint64
}

func (e runEntry) valid() bool { return e.off >= 0 }

// appendEntry encodes e: the identifier's length and bytes, then n,
// off+1, size and from, as uvarints.
func appendEntry(b []byte, e runEntry) []byte {
	b = binary.AppendUvarint(b, uint64(len(e.id)))
	b = append(b, e.id...)
	b = binary.AppendUvarint(b, uint64(e.n))
	b = binary.AppendUvarint(b, uint64(e.off+1))
	b = binary.AppendUvarint(b, uint64(e.size))
	return binary.AppendUvarint(b, e.from)
}

// errShortEntry says b ends inside an entry.
var errShortEntry = errors.New("entry cut short")

// decodeEntry reads one entry from the start of b and says how many bytes
// it took.
func decodeEntry(b []byte) (runEntry, int, error) {
	var e runEntry
	var vals [4]uint64
	l, k := binary.Uvarint(b)
	if k <= 0 {
		return e, 0, entryError(k)
	}
	at := k
	if uint64(len(b)-at) < l {
		return e, 0, errShortEntry
	}
	e.id = string(b[at : at+int(l)])
	at += int(l)
	for i := range vals {
		v, k := binary.Uvarint(b[at:])
		if k <= 0 {
			return runEntry{}, 0, entryError(k)
		}
		vals[i], at = v, at+k
	}
	e.n, e.off, e.size, e.from = int64(vals[0]), int64(vals[1])-1, int64(vals[2]), vals[3]
	return e, at, nil
}

func entryError(k int) error {
	if k == 0 {
		return errShortEntry
	}
	return errors.New("entry malformed")
}

// run is one blueprint's sorted entries in the data file.
type run struct {
	off, size int64 // where its entries are
	count     int
	valid     int // entries that are not off -1
	level     int
	marks     []runMark
	index     *hashIndex // nil until a lookup needs it or settle merges the run
}

// runMark is where a run's entry of id begins, from the run's start.
type runMark struct {
	id  string
	pos int64
}

// runBuilder encodes one run's entries, in order.
type runBuilder struct {
	buf          []byte // the entries not yet written
	base         int64  // the run's bytes written before buf
	count, valid int
	marks        []runMark
	last         string
}

func (b *runBuilder) add(e runEntry) error {
	if b.count > 0 && e.id <= b.last {
		return fmt.Errorf("port: spool: run entries out of order: %q after %q", e.id, b.last)
	}
	if b.count%markEvery == 0 {
		b.marks = append(b.marks, runMark{id: e.id, pos: b.base + int64(len(b.buf))})
	}
	b.buf = appendEntry(b.buf, e)
	b.count++
	if e.valid() {
		b.valid++
	}
	b.last = e.id
	return nil
}

// entryScanner reads a run's entries in order, a chunk of the file at a
// time.
type entryScanner struct {
	r        io.ReaderAt
	pos, end int64 // the file's next unread byte, and the run's end
	buf      []byte
	at       int // next entry in buf
	bufs     *scanBuffers
	lent     []byte // the buffer bufs lent, returned by release
}

// scanChunk is how much of a run a scanner reads at once.
const scanChunk = 32 << 10

// scanBuffers lends scanners their buffers: a page, a merge or a lookup
// would otherwise allocate (and clear) a chunk for each run it reads.
type scanBuffers struct {
	mu   sync.Mutex
	free [][]byte
}

func (p *scanBuffers) get() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		return b[:0]
	}
	return make([]byte, 0, scanChunk)
}

func (p *scanBuffers) put(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cap(b) == scanChunk && len(p.free) < 64 {
		p.free = append(p.free, b)
	}
}

// newScanner reads rn from the entry at from (bytes from its start),
// chunk bytes at a time, in a buffer from bufs.
func newScanner(r io.ReaderAt, rn *run, from int64, bufs *scanBuffers, chunk int) *entryScanner {
	lent := bufs.get()
	return &entryScanner{r: r, pos: rn.off + from, end: rn.off + rn.size, buf: lent[:0:min(chunk, cap(lent))], bufs: bufs, lent: lent}
}

// release returns the scanner's buffer; the scanner is not used again.
func (s *entryScanner) release() {
	if s.lent != nil {
		s.bufs.put(s.lent)
		s.lent, s.buf = nil, nil
	}
}

// next returns the next entry; ok false at the end of the run.
func (s *entryScanner) next() (e runEntry, ok bool, err error) {
	for {
		e, k, err := decodeEntry(s.buf[s.at:])
		if err == nil {
			s.at += k
			return e, true, nil
		}
		if !errors.Is(err, errShortEntry) {
			return e, false, fmt.Errorf("port: spool: %w", err)
		}
		if s.pos >= s.end {
			if s.at < len(s.buf) {
				return e, false, fmt.Errorf("port: spool: run ends inside an entry")
			}
			return e, false, nil
		}
		// Keep the unread tail, grow for an entry longer than the
		// buffer, and read on.
		rest := copy(s.buf, s.buf[s.at:])
		s.buf, s.at = s.buf[:rest], 0
		want := min(int64(max(cap(s.buf)-rest, len(s.buf)+1)), s.end-s.pos)
		s.buf = slices.Grow(s.buf, int(want))[:rest+int(want)]
		if _, err := s.r.ReadAt(s.buf[rest:], s.pos); err != nil {
			return e, false, fmt.Errorf("port: spool: %w", err)
		}
		s.pos += want
	}
}

// seek returns a scanner of rn at its first entry whose identifier is
// greater than after ("": the first entry), or equal to it when orEqual.
func seek(r io.ReaderAt, rn *run, after string, orEqual bool, bufs *scanBuffers, chunk int) (*entryScanner, *runEntry, error) {
	// The last mark at or before after: every entry from it on that is
	// not past after is skipped.
	i := sort.Search(len(rn.marks), func(i int) bool { return rn.marks[i].id > after }) - 1
	from := int64(0)
	if i >= 0 {
		from = rn.marks[i].pos
	}
	s := newScanner(r, rn, from, bufs, chunk)
	for {
		e, ok, err := s.next()
		if err != nil || !ok {
			return s, nil, err
		}
		if e.id > after || (orEqual && e.id == after) {
			return s, &e, nil
		}
	}
}

// lookup finds the entry of id in rn (found false when it has none),
// reading one stretch between two marks.
func lookup(r io.ReaderAt, rn *run, id string, bufs *scanBuffers) (runEntry, bool, error) {
	s, e, err := seek(r, rn, id, true, bufs, 4<<10)
	s.release()
	if err != nil || e == nil || e.id != id {
		return runEntry{}, false, err
	}
	return *e, true, nil
}

// hashIndex finds a key's hash among a run's without reading the run:
// among asks it for every relation target of every entity sent. It holds
// each entry's hash and place (n<<1 | valid), sorted by hash: 12 bytes an
// entry, and a bucket directory of at most half a byte an entry.
//
// Answers are exact where no entry has the key's hash and where one
// entry has it and is the key. A hash two entries share (two keys whose
// hashes collide) is marked ambiguous, and the caller looks the key up
// in the run. The one answer a collision could make wrong is for a key
// not in the run whose hash equals an entry's: among says yes, the
// relation is kept and Port refuses the entity naming a target it does
// not hold, so that entity fails, loudly (odds about entries² / 2⁶⁴).
type hashIndex struct {
	hashes []uint64
	places []uint32 // n<<1 | valid; ambiguousPlace when several entries share the hash
	// starts[b] is where the sorted hashes whose top 64-shift bits are b
	// begin (starts[b+1] where they end): 8 to 16 hashes a bucket, one or
	// two cache lines, so a lookup reads a few lines where a binary search
	// over the whole list missed the cache at most of its steps. Nil for
	// a short list.
	starts []uint32
	shift  uint
}

// ambiguousPlace marks a hash held by more than one entry.
const ambiguousPlace = ^uint32(0)

// maxIndexedPuts is the most puts a spool numbers (n<<1 | 1 must stay
// below ambiguousPlace).
const maxIndexedPuts = 1<<31 - 1

func place(e runEntry) uint32 {
	p := uint32(e.n) << 1
	if e.valid() {
		p |= 1
	}
	return p
}

// idHash is the hash of an identifier in a blueprint's runs.
func idHash(seed maphash.Seed, id string) uint64 { return maphash.String(seed, id) }

// buildIndex makes the index of hashes and their places (both taken).
func buildIndex(hashes []uint64, places []uint32) *hashIndex {
	x := &hashIndex{hashes: hashes, places: places}
	sort.Sort(byHash{x})
	out := 0
	for i := 0; i < len(x.hashes); {
		j := i + 1
		for j < len(x.hashes) && x.hashes[j] == x.hashes[i] {
			j++
		}
		x.hashes[out], x.places[out] = x.hashes[i], x.places[i]
		if j-i > 1 {
			x.places[out] = ambiguousPlace
		}
		out++
		i = j
	}
	// Sized exactly: a settled run's index lives until the spool closes,
	// and a merge's lists had room for every merged run's entries (a key
	// put in many batches is one entry). Clip alone would keep the arrays.
	x.hashes, x.places = x.hashes[:out], x.places[:out]
	if out < cap(x.hashes) || out < cap(x.places) {
		x.hashes, x.places = slices.Clone(x.hashes), slices.Clone(x.places)
	}
	if out < 64 {
		return x
	}
	// 2^k buckets of 8 to 16 hashes on average: k the largest with
	// 2^k ≤ len/8.
	k := uint(bits.Len(uint(out/8)) - 1)
	x.shift = 64 - k
	x.starts = make([]uint32, 1<<k+1)
	b := uint64(0)
	for i, h := range x.hashes {
		for ; b <= h>>x.shift; b++ {
			x.starts[b] = uint32(i)
		}
	}
	for ; b <= 1<<k; b++ {
		x.starts[b] = uint32(len(x.hashes))
	}
	return x
}

// find returns the place of the entry with hash h: found false when no
// entry has it, ambiguous true when several do.
func (x *hashIndex) find(h uint64) (n int64, valid, found, ambiguous bool) {
	lo, hi := 0, len(x.hashes)
	if x.starts != nil {
		b := h >> x.shift
		lo, hi = int(x.starts[b]), int(x.starts[b+1])
	}
	i, ok := slices.BinarySearch(x.hashes[lo:hi], h)
	if !ok {
		return 0, false, false, false
	}
	p := x.places[lo+i]
	if p == ambiguousPlace {
		return 0, false, true, true
	}
	return int64(p >> 1), p&1 == 1, true, false
}

// byHash sorts a hashIndex's two slices together.
type byHash struct{ x *hashIndex }

func (s byHash) Len() int           { return len(s.x.hashes) }
func (s byHash) Less(i, j int) bool { return s.x.hashes[i] < s.x.hashes[j] }
func (s byHash) Swap(i, j int) {
	s.x.hashes[i], s.x.hashes[j] = s.x.hashes[j], s.x.hashes[i]
	s.x.places[i], s.x.places[j] = s.x.places[j], s.x.places[i]
}

// indexRun reads rn and makes its hash index.
func indexRun(r io.ReaderAt, seed maphash.Seed, rn *run, bufs *scanBuffers) (*hashIndex, error) {
	hashes, places := make([]uint64, 0, rn.count), make([]uint32, 0, rn.count)
	s := newScanner(r, rn, 0, bufs, scanChunk)
	defer s.release()
	for {
		e, ok, err := s.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		hashes, places = append(hashes, idHash(seed, e.id)), append(places, place(e))
	}
	return buildIndex(hashes, places), nil
}

// mergeHead is one run's current entry in a merge.
type mergeHead struct {
	e runEntry
	s *entryScanner
}

// mergeRuns merges runs (oldest first) into one sorted list of entries,
// each identifier once with its latest put (highest n), calling emit for
// each in order.
func mergeRuns(r io.ReaderAt, runs []*run, bufs *scanBuffers, emit func(runEntry) error) error {
	chunk := max(4<<10, min(scanChunk, (1<<20)/max(len(runs), 1)))
	var heads []mergeHead
	var scanners []*entryScanner
	defer func() {
		for _, s := range scanners {
			s.release()
		}
	}()
	for _, rn := range runs {
		s := newScanner(r, rn, 0, bufs, chunk)
		scanners = append(scanners, s)
		e, ok, err := s.next()
		if err != nil {
			return err
		}
		if ok {
			heads = append(heads, mergeHead{e: e, s: s})
		}
	}
	less := func(a, b *mergeHead) bool {
		if c := strings.Compare(a.e.id, b.e.id); c != 0 {
			return c < 0
		}
		return a.e.n > b.e.n
	}
	// A binary heap of heads, smallest identifier (then latest put) on top.
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(heads) {
				return
			}
			m := l
			if l+1 < len(heads) && less(&heads[l+1], &heads[l]) {
				m = l + 1
			}
			if !less(&heads[m], &heads[i]) {
				return
			}
			heads[i], heads[m] = heads[m], heads[i]
			i = m
		}
	}
	for i := len(heads)/2 - 1; i >= 0; i-- {
		down(i)
	}
	advance := func() error {
		e, ok, err := heads[0].s.next()
		if err != nil {
			return err
		}
		if ok {
			heads[0].e = e
		} else {
			heads[0] = heads[len(heads)-1]
			heads = heads[:len(heads)-1]
		}
		down(0)
		return nil
	}
	for len(heads) > 0 {
		top := heads[0].e
		if err := emit(top); err != nil {
			return err
		}
		// The same key in older runs: an earlier put, replaced.
		for len(heads) > 0 && heads[0].e.id == top.id {
			if err := advance(); err != nil {
				return err
			}
		}
	}
	return nil
}
