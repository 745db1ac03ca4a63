package runner

import (
	"encoding/base64"
	"encoding/binary"
	"slices"

	"github.com/ferry-etl/ferry/engine/spec"
)

// pageRecs are the content hashes of the records of one page of a chain
// (Window, Page), saved with each checkpoint of a stream that feeds a
// table without a primary key (an append table): a resumed run that reads
// that page again tells by them the records its partition committed (not
// appended again) from one shifted onto the page since (a record before
// it went away), which the chain, going on after the page, would never
// read again. Keys cannot tell: an append table saves none, and a keyed
// table's key may be shared by several records. Only the last page read
// whole is kept, each checkpoint replacing the one before: the state is
// bounded by a page, not by the rows of the sync.
type pageRecs struct {
	Window int    `json:"w,omitempty"`
	Page   int    `json:"p"`
	Hashes string `json:"h"` // 8 bytes a record, little-endian, base64
}

// maxPageRecs bounds the hashes a page keeps: a page of more records (a
// huge streamed one) saves none, and a run replaying it says it cannot
// vouch for it, as for a checkpoint of an older ferry.
const maxPageRecs = 10_000

// chainRecs is what a chain keeps of pageRecs.
type chainRecs struct {
	keep bool // the stream feeds a table without a primary key
	// page: the hashes of the records released on the page being read
	// (nil once past maxPageRecs); last those of the last page read
	// whole, at lastAt, known unless lastUnknown.
	page        []uint64
	over        bool
	last        []uint64
	lastAt      position
	lastUnknown bool
	// saved counts the hashes the resumed checkpoint holds of page
	// savedAt that the replay has not met yet; met: the replay met one.
	saved   map[uint64]int
	savedAt position
	savedN  int
	met     bool
}

// keepsRecs tells a stream whose checkpoints save pageRecs.
func keepsRecs(st *streamState) bool {
	return slices.ContainsFunc(st.tables, func(t *spec.Table) bool { return len(t.PrimaryKey) == 0 })
}

// resumeRecs takes the records' hashes of cp, the checkpoint the chain
// resumes from (nil: from its start). A replay of committed pages that it
// holds none of (written by an older ferry) keeps the rule from before:
// a record is taken for committed unless a keyed table of the stream
// saved no key of it; said once for the stream, as a record shifted onto
// such a page may then be lost.
func (c *chainRun) resumeRecs(cp *pageState) {
	rs := &c.recs
	if !rs.keep || cp == nil {
		return
	}
	if cp.Recs == nil {
		rs.lastUnknown = true
		if c.replayUntil.page > 0 && c.st.recsUnknown.CompareAndSwap(false, true) {
			c.r.log.Warn("the checkpoint does not hold the records of its page (written by an older ferry, or a page too large to keep): a record shifted onto a committed page read again may be taken for committed and not appended to a table without a primary key; --full-refresh reads the stream whole",
				"stream", c.st.s.Name, "parents", c.rn.describe())
		}
		return
	}
	b, err := base64.StdEncoding.DecodeString(cp.Recs.Hashes)
	if err != nil || len(b)%8 != 0 {
		rs.lastUnknown = true
		c.r.log.Warn("ignoring the unreadable records of a checkpoint", "stream", c.st.s.Name, "parents", c.rn.describe())
		return
	}
	rs.saved, rs.savedAt = map[uint64]int{}, position{cp.Recs.Window, cp.Recs.Page}
	for i := 0; i < len(b); i += 8 {
		h := binary.LittleEndian.Uint64(b[i:])
		rs.saved[h]++
		rs.last = append(rs.last, h)
	}
	rs.savedN, rs.lastAt = len(rs.last), rs.savedAt
}

// noteRec adds a released record of the page being read.
func (c *chainRun) noteRec(rec any) {
	rs := &c.recs
	if !rs.keep || rs.over {
		return
	}
	if len(rs.page) == maxPageRecs {
		rs.page, rs.over = nil, true
		return
	}
	rs.page = append(rs.page, recHash(rec))
}

// pageDone makes the page at, read whole, the last page: the checkpoints
// from now on hold its records.
func (c *chainRun) pageDone(at position) {
	rs := &c.recs
	if !rs.keep {
		return
	}
	rs.last, rs.page = rs.page, rs.last[:0]
	rs.lastAt, rs.lastUnknown, rs.over = at, rs.over, false
	if rs.saved != nil && at == rs.savedAt && !rs.met && rs.savedN > 0 && c.st.recsUnknown.CompareAndSwap(false, true) {
		// None of the records the page held when committed is there now
		// (gone, or changed): the pages before it cannot tell a record
		// shifted onto them from one committed, and took them for
		// committed.
		c.r.log.Warn("none of the records a committed page held was met again when it was read again: a record shifted onto an earlier committed page may be taken for committed and not appended to a table without a primary key; --full-refresh reads the stream whole",
			"stream", c.st.s.Name, "parents", c.rn.describe())
	}
}

// markRecs is what a checkpoint made now holds of the records: those of
// the last page read whole, nil when unknown.
func (c *chainRun) markRecs() *pageRecs {
	rs := &c.recs
	if !rs.keep || rs.lastUnknown {
		return nil
	}
	b := make([]byte, 0, 8*len(rs.last))
	for _, h := range rs.last {
		b = binary.LittleEndian.AppendUint64(b, h)
	}
	return &pageRecs{Window: rs.lastAt.window, Page: rs.lastAt.page, Hashes: base64.StdEncoding.EncodeToString(b)}
}

// pageHeld tells whether rec, a record of the committed page at read
// again, was committed there, by the records the checkpoint's page held:
// on that page, and on any after the replay met one of them, a record
// they do not hold is not (shifted onto it, or new); before that, they
// cannot tell (known false: a page before the checkpoint's holds records
// committed on it, which it did not save). The n-th record alike is
// taken for committed only when the page held n of them.
func (c *chainRun) pageHeld(rec any, at position) (held, known bool) {
	rs := &c.recs
	if rs.saved == nil || !at.atMost(c.replayUntil) {
		// (A streamed page's committed part, read again, is checked
		// against its digest instead.)
		return false, false
	}
	h := recHash(rec)
	if n := rs.saved[h]; n > 0 {
		rs.saved[h], rs.met = n-1, true
		return true, true
	}
	return false, at == rs.savedAt || rs.met
}

// committedByOwnKey tells a record the page's hashes do not hold (pushed
// onto the page from an earlier one, by a record added before it) that
// its partition committed all the same, by a keyed table of the stream
// whose key is one record's: one under the default on_duplicate or fail,
// where two records sharing a key fail the run as a collision (under warn
// or merge a key may be many records', and only the hashes tell).
func (c *chainRun) committedByOwnKey(rec any, failedBefore map[string]bool) bool {
	for _, k := range c.st.tables {
		if !ownKey(k) || failedBefore[k.Name] {
			continue
		}
		if done, known := c.committedKeys(k, rec); known {
			return done
		}
	}
	return false
}

// ownKey tells a keyed table whose key is one record's: under the default
// on_duplicate or fail, two records sharing it fail the run as a
// collision. Under warn or merge many records may share one, and a new
// record taken for a committed one by it would never be appended.
func ownKey(t *spec.Table) bool {
	return len(t.PrimaryKey) > 0 && (t.OnDuplicate.V == "" || t.OnDuplicate.V == DupFail)
}

// recHash is a record's content hash, never 0.
func recHash(rec any) uint64 {
	return max(valueHash(rec), 1)
}
