package port

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"io"
	"math/bits"
	"slices"
	"sort"
)

// keyIndex finds the last put of an entity key without asking SQLite:
// among asks it for every relation target of every entity sent, and an
// IN (…) query per page of targets cost more than the rest of the
// relation work together. It holds, per put, a 64-bit hash of the key and
// the put's place (n, and whether the entity was valid): on disk beside
// the entities' JSON until the first lookup, then 12 bytes a put and at
// most half a byte of bucket directory on the heap, sized exactly, until
// the spool closes. While extracting, the peak of a run, the heap keeps
// only where each batch's records are (16 bytes a batch of up to
// spoolBatch puts).
//
// Answers are exact where a key was never put (no hash of it) and where
// only one put has its hash. A hash held by two or more puts — the same
// key put again (an on_duplicate: merge entity, a repeat) or two keys
// whose hashes collide — is ambiguous: the caller asks the spool's table,
// which knows the keys. The one answer a collision could make wrong is a
// key never put whose hash equals a put key's: among then says yes, the
// relation is kept and Port refuses the entity naming a target it does
// not hold, so that entity fails, loudly (odds about puts² / 2⁶⁴).
type keyIndex struct {
	seed maphash.Seed
	// Until the first lookup the puts' records wait on disk, each
	// batch's (one spool.put) after its JSON in the spool's data file
	// (spilled), so the sink's heap does not grow while extracting;
	// settle reads them into hashes and places, sized exactly.
	pending []byte     // the current batch's records, recordSize bytes each
	blocks  []keyBlock // where the batches spilled so far have theirs

	hashes  []uint64
	places  []uint32 // n<<1 | valid; ambiguousPlace when several puts share the hash
	settled bool     // every put is in hashes (ascending, each once)
	// starts[b] is where the sorted hashes whose top 64-shift bits are b
	// begin (starts[b+1] where they end): 8 to 16 hashes a bucket, one or
	// two cache lines, so a lookup reads a few lines where a binary search
	// over the whole list missed the cache at most of its steps (a quarter
	// to half a byte a put). Nil for a short list.
	starts []uint32
	shift  uint
}

// keyBlock is where one batch's records are in the data file.
type keyBlock struct {
	off int64
	n   int
}

// recordSize is one put's record on disk: its hash and its place.
const recordSize = 12

// ambiguousPlace marks a hash held by more than one put.
const ambiguousPlace = ^uint32(0)

// maxIndexedPuts is the most puts a keyIndex places (n<<1 | 1 must stay
// below ambiguousPlace).
const maxIndexedPuts = 1<<31 - 1

func newKeyIndex() keyIndex { return keyIndex{seed: maphash.MakeSeed(), settled: true} }

func (x *keyIndex) hash(bp, id string) uint64 {
	// The key's two strings are hashed as a map hashes them, each with
	// its length: no two keys are the same bytes to the hash, so only a
	// true collision makes two keys share a hash, whatever bytes (NUL
	// included) a key holds.
	return maphash.Comparable(x.seed, entityKey{bp, id})
}

// add records the put numbered n of key (bp, id).
func (x *keyIndex) add(bp, id string, n int64, valid bool) {
	p := uint32(n) << 1
	if valid {
		p |= 1
	}
	x.pending = binary.LittleEndian.AppendUint64(x.pending, x.hash(bp, id))
	x.pending = binary.LittleEndian.AppendUint32(x.pending, p)
	x.settled = false
}

// spilled records that the pending records were written at off.
func (x *keyIndex) spilled(off int64) {
	if len(x.pending) > 0 {
		x.blocks = append(x.blocks, keyBlock{off: off, n: len(x.pending) / recordSize})
	}
	x.pending = x.pending[:0]
}

// find returns the place of the last put of (bp, id): found false when
// none was put, ambiguous true when the caller must ask the table (also
// for any key while puts since the last settle are not in).
func (x *keyIndex) find(bp, id string) (n int64, valid, found, ambiguous bool) {
	if !x.settled {
		return 0, false, true, true
	}
	h := x.hash(bp, id)
	lo, hi := 0, len(x.hashes)
	if x.starts != nil {
		b := h >> x.shift
		lo, hi = int(x.starts[b]), int(x.starts[b+1])
	}
	i, ok := slices.BinarySearch(x.hashes[lo:hi], h)
	i += lo
	if !ok {
		return 0, false, false, false
	}
	p := x.places[i]
	if p == ambiguousPlace {
		return 0, false, true, true
	}
	return int64(p >> 1), p&1 == 1, true, false
}

// settle reads every put's record (from r, and those not yet spilled),
// sorts them by hash and keeps one entry a hash, marked ambiguous where
// several puts share it.
func (x *keyIndex) settle(r io.ReaderAt) error {
	if x.settled {
		return nil
	}
	total := len(x.pending) / recordSize
	for _, b := range x.blocks {
		total += b.n
	}
	x.hashes, x.places = make([]uint64, 0, total), make([]uint32, 0, total)
	decode := func(recs []byte) {
		for ; len(recs) >= recordSize; recs = recs[recordSize:] {
			x.hashes = append(x.hashes, binary.LittleEndian.Uint64(recs))
			x.places = append(x.places, binary.LittleEndian.Uint32(recs[8:]))
		}
	}
	var buf []byte
	for _, b := range x.blocks {
		buf = slices.Grow(buf[:0], b.n*recordSize)[:b.n*recordSize]
		if _, err := r.ReadAt(buf, b.off); err != nil {
			x.hashes, x.places = nil, nil
			return fmt.Errorf("port: spool: key index: %w", err)
		}
		decode(buf)
	}
	decode(x.pending)
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
	x.hashes, x.places = x.hashes[:out], x.places[:out]
	x.settled = true
	x.starts = nil
	if len(x.hashes) < 64 {
		return nil
	}
	// 2^k buckets of 8 to 16 hashes on average: k the largest with
	// 2^k ≤ len/8.
	k := uint(bits.Len(uint(len(x.hashes)/8)) - 1)
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
	return nil
}

// byHash sorts a keyIndex's two slices together.
type byHash struct{ x *keyIndex }

func (s byHash) Len() int           { return len(s.x.hashes) }
func (s byHash) Less(i, j int) bool { return s.x.hashes[i] < s.x.hashes[j] }
func (s byHash) Swap(i, j int) {
	s.x.hashes[i], s.x.hashes[j] = s.x.hashes[j], s.x.hashes[i]
	s.x.places[i], s.x.places[j] = s.x.places[j], s.x.places[i]
}
