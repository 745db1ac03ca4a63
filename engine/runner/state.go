package runner

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-etl/ferry/engine/internal/jsonv"
	"github.com/ferry-etl/ferry/engine/paginate"
	"github.com/ferry-etl/ferry/engine/sink"
	"github.com/ferry-etl/ferry/engine/spec"
)

// pageState is the checkpoint of a request chain: pages committed, where the
// next request goes, and whether the chain is finished.
type pageState struct {
	// Window is the window of a windowed stream the chain is in (0-based);
	// Pages counts the pages committed in it.
	Window int            `json:"window,omitempty"`
	Pages  int            `json:"pages"`
	Next   paginate.State `json:"next"`
	Done   bool           `json:"done,omitempty"`
	// Redo: the records of page Pages were delivered but the request after
	// it could not be worked out; Next is the request of page Pages, which
	// a resumed chain sends again without writing its records.
	Redo bool `json:"redo,omitempty"`
	// Afresh: the chain ended short of the total its pages reported, so
	// items are missing from pages it passed: a resumed run reads it from
	// its start, as a chain without a checkpoint.
	Afresh bool `json:"afresh,omitempty"`
	// Since is the incremental cursor the chain started from: a resumed
	// chain asks the same question. Max is the largest cursor seen so far.
	Since any `json:"since,omitempty"`
	Max   any `json:"max,omitempty"`
	// Began is when the run that started the chain started (RFC 3339): a
	// time cursor is saved no later (see capped), resumed or not.
	Began string `json:"began,omitempty"`
	// From and Until are the start of a windowed chain's first window and
	// the end of its last: a resumed chain reads the same windows.
	From  string `json:"from,omitempty"`
	Until string `json:"until,omitempty"`
	// Step is the window step the windows were planned with: numbered
	// from From by another, Window would be another time range.
	Step string `json:"step,omitempty"`
	// Retry lists the records of committed pages whose table mappings
	// failed: a resumed run re-reads those pages and maps these records
	// into those tables only, so a failure is tried again rather than
	// skipped with its finished chain.
	Retry []recordPos `json:"retry,omitempty"`
	// Part counts the values (array elements, lines, rows) of page
	// Pages+1 already committed: a streamed page is committed in parts, so
	// a huge one never sits whole in memory. Digest is a hash of those
	// values' text: a resumed run asks the page again, re-reads them
	// without writing and goes on after them, unless the page changed.
	Part   int    `json:"part,omitempty"`
	Digest string `json:"digest,omitempty"`
	// Up is upCursors of the chain's parent: the versions of the
	// incremental records above it that it was read for.
	Up string `json:"up,omitempty"`
	// Of is chainDigest of the chain's parent: a resumed chain whose
	// parent is another record (a sibling of the same key) or changed
	// since is read afresh.
	Of string `json:"of,omitempty"`
	// Batch is batchDigest of a batch stream's list: the answer belongs
	// to the list sent, so a chain whose list changed is read afresh.
	Batch string `json:"batch,omitempty"`
	// Values are the keys of a partitions stream's values whose rows are
	// committed: a resumed run whose values changed writes the new ones
	// only. nil in a checkpoint from before they were saved: all were.
	Values *[]string `json:"values,omitempty"`
	// Held: a rule skipped a window (or download) before Window, so the
	// cursor stays before it; a resumed chain, which reads on from Window, keeps it
	// held, or the next run would never ask for the skipped window.
	Held bool `json:"held,omitempty"`
	// Undelivered: a record of the chain failed on delivery (a duplicate
	// under on_duplicate: fail, a lookup conflict) before Window and
	// Pages, so the cursor stays before it; a resumed chain keeps it
	// held, or it saved its committed pages' largest cursor, past the
	// record, and no later sync asked for it again.
	Undelivered bool `json:"undelivered,omitempty"`
	// Job is an async stream's export job: a resumed run polls it rather
	// than creating a new one, while it is still valid.
	Job *jobState `json:"job,omitempty"`
	// Results names the job's results up to the one the chain stands in
	// (see resultsDigest): a resumed chain goes on by position, which a
	// job listing them otherwise since (another order) would make another
	// file. "" in a checkpoint from before it was saved.
	Results string `json:"results,omitempty"`
	// ReplacedRetry are the retry lists of the chain's checkpoints of the
	// export jobs a new job replaced: what they name may not be in the
	// append tables, though its partition saved its keys (see failedThen).
	ReplacedRetry []recordPos `json:"replaced_retry,omitempty"`
	// Recs are the content hashes of the records of the chain's last page
	// read whole, for a stream with a table without a primary key (see
	// pageRecs). nil: unknown (a ferry from before they were saved).
	Recs *pageRecs `json:"recs,omitempty"`
	// cursor is the largest incremental cursor of a finished chain; it is
	// saved under the stream's watermark key, not in the page state.
	cursor any
	// flush: commit at once (a job was just created on the source).
	flush bool
	// fresh: the chain reads its partition from the start again, though
	// the sync committed a checkpoint of it (see sink.Checkpoint.Fresh).
	fresh bool
	// listed: the items the pages up to this mark listed that no earlier
	// mark saved (see sink.Checkpoint.Listed).
	listed []uint64
	// replacing: the first checkpoint of an export job that replaces the
	// one whose results the partition committed (see
	// sink.Checkpoint.Replaced); appended the appendSums of the records
	// since the last mark (see sink.Checkpoint.Appended).
	replacing bool
	appended  []uint64
	// committed, on an export job's checkpoint (st.jobMarks), is closed
	// by the release once the output has it (committed, with flush).
	committed chan struct{}
}

// recordPos is a record's place in its chain, page (1-based) and index,
// and a table whose mapping of it failed. (Entities need no list: a chain
// feeding Port is re-read whole on resume.) Key identifies the record (see
// identify): a resumed run asks the same question, but the answer may have
// moved records (one that changed in between goes to the end of a list
// sorted by cursor), so the record tried again is found by its key, not by
// what now stands at its place.
type recordPos struct {
	Window int    `json:"w,omitempty"`
	Page   int    `json:"p"`
	Index  int    `json:"i"`
	Table  string `json:"t"`
	Key    string `json:"k,omitempty"`
}

// retryKey is a failed record of a checkpoint's retry list by its key.
type retryKey struct{ key, table string }

// pending is the retry list of a chain's checkpoint after page: the records
// that failed in this run, and those of the saved list on later pages that
// this run has not read (or tried again) yet.
func pending(failed []recordPos, cp *pageState, at position, retried map[retryKey]bool) []recordPos {
	out := slices.Clone(failed)
	if cp != nil {
		for _, rp := range cp.Retry {
			if !(position{rp.Window, rp.Page}).atMost(at) && !(rp.Key != "" && retried[retryKey{rp.Key, rp.Table}]) {
				out = append(out, rp)
			}
		}
	}
	return out
}

// WatermarkSuffix names the state key of a stream's incremental cursors:
// "<stream>@cursor". Page checkpoints are cleared when a run ends; these
// are kept until --full-refresh.
const WatermarkSuffix = "@cursor"

// PortCursors names the incremental cursors that must wait for Port: by
// state key ("<stream>@cursor"), the blueprints fed by the stream's
// records or by those of a stream below it (for_each, batch). Entities
// reach Port only when a run ends, while a cursor is committed with its
// chain's last rows: a cursor committed before Port took those entities
// would let the next sync that does not resume read past them, and they
// would never be sent. The Output commits these once Port has them.
func PortCursors(f *spec.File) map[string][]string {
	out := map[string][]string{}
	if f.Port == nil {
		return out
	}
	for i := range f.Port.Entities {
		e := &f.Port.Entities[i]
		from := f.Stream(e.From.V)
		if from == nil {
			continue
		}
		for _, s := range append([]*spec.Stream{from}, from.Upstream()...) {
			if s.Incremental == nil {
				continue
			}
			k := s.Name + WatermarkSuffix
			if !slices.Contains(out[k], e.Blueprint.V) {
				out[k] = append(out[k], e.Blueprint.V)
			}
		}
	}
	return out
}

// checkpoint hands a page's checkpoint to an Output that keeps state.
func (r *Runner) checkpoint(ctx context.Context, st *streamState, rn *run, ps *pageState, out Output) error {
	cp, ok := out.(Checkpointer)
	if !ok || !st.produce {
		// A stream fetched only to drive a --streams selection wrote no
		// rows: a checkpoint would make a later run skip writing them.
		return nil
	}
	if ps.fresh || ps.replacing {
		r.targets.dropSaved(st.s.Name, rn.partition)
	}
	if ps.Next.URL != "" {
		// A next link may echo a query API key; state never holds secrets.
		// The HTTP client puts the real key back on the resumed request; a
		// secret input (in a path, say) is held by name and put back by
		// resumePoint.
		saved := *ps
		saved.Next.URL = r.opts.Pool.RedactURL(r.secretLinks().hold.Replace(ps.Next.URL))
		ps = &saved
	}
	if _, ok := ps.Since.(string); ok || isString(ps.Max) {
		// A token cursor may be a link echoing a query API key (see
		// holdCursor): the question a resumed chain asks again, and the
		// token it read, are.
		saved := *ps
		saved.Since, saved.Max = r.holdCursor(ps.Since), r.holdCursor(ps.Max)
		ps = &saved
	}
	val, err := json.Marshal(ps)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := cp.Checkpoint(ctx, sink.Checkpoint{Stream: st.s.Name, Partition: rn.partition, Value: val, Flush: ps.flush, Fresh: ps.fresh, Listed: ps.listed, Replaced: ps.replacing, Appended: ps.appended}); err != nil {
		return fmt.Errorf("checkpoint %s: %w", st.s.Name, err)
	}
	if ps.cursor != nil && st.unrunBelow != "" {
		// Its rows are written, but a stream below it is not read for
		// them: saved, the cursor would pass those records for good, and
		// their children's changes with them. The next run reads them
		// again from the cursor kept (an append table gets them again).
		if st.unrunWarned.CompareAndSwap(false, true) {
			r.log.Warn("the cursor is not saved: a stream below this one is not in --streams, and is not read for the records this run read; the next run reads them again from the cursor saved before",
				"stream", st.s.Name, "not_run", st.unrunBelow)
		}
	} else if ps.cursor != nil {
		// Committed with the chain's last rows: a crash before it leaves
		// the old cursor, and the next run reads those records again. A
		// parent's cursor waits for its children (cursorGate); a cursor
		// feeding Port waits for Port in the Output (PortCursors).
		var cur []byte
		var err error
		if rn.batchStream {
			cur, err = json.Marshal(listCursor{Cursor: r.holdCursor(ps.cursor), List: rn.list})
		} else {
			cur, err = json.Marshal(r.holdCursor(ps.cursor))
		}
		if err != nil {
			return fmt.Errorf("cursor: %w", err)
		}
		wm := sink.Checkpoint{Stream: st.s.Name + WatermarkSuffix, Partition: rn.partition, Value: cur}
		if rn.gate != nil {
			return rn.gate.offered(ctx, out, wm)
		}
		if err := cp.Checkpoint(ctx, wm); err != nil {
			return fmt.Errorf("cursor %s: %w", st.s.Name, err)
		}
	}
	return nil
}

// resumePoint is the saved state of a chain, or nil to start afresh.
func (r *Runner) resumePoint(st *streamState, partition string) *pageState {
	raw, ok := r.opts.State[st.s.Name][partition]
	if !ok || len(raw) == 0 {
		return nil
	}
	var ps pageState
	// Numbers kept as written: Since and Max as float64 were rounded past
	// 2^53 (a nanosecond epoch), and the resumed chain saved a cursor
	// later than any it read.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&ps); err != nil {
		r.log.Warn("ignoring unreadable checkpoint", "stream", st.s.Name, "error", err)
		return nil
	}
	ps.Next.URL = r.secretLinks().restore.Replace(ps.Next.URL)
	ps.Since, ps.Max = r.restoreCursor(ps.Since), r.restoreCursor(ps.Max)
	return &ps
}

// linkSecrets hold the secret inputs in a saved next link by name, in the
// forms a link carries them (as they are, escaped for a query or a path),
// and put this run's values back.
type linkSecrets struct{ hold, restore *strings.Replacer }

// minLinkSecret is the shortest value held by name, as the pool redacts.
const minLinkSecret = 4

func (r *Runner) secretLinks() *linkSecrets {
	r.linksOnce.Do(func() {
		type form struct{ value, name string }
		var forms []form
		for _, it := range r.f.Config.Items {
			v, ok := r.opts.Config[it.Key]
			if !it.Value.Secret.V || !ok || v == nil {
				continue
			}
			s := fmt.Sprint(v)
			if len(s) < minLinkSecret {
				continue
			}
			forms = append(forms, form{s, "{{secret:" + it.Key + "}}"}, form{url.QueryEscape(s), "{{secret:" + it.Key + ":query}}"}, form{url.PathEscape(s), "{{secret:" + it.Key + ":path}}"})
		}
		// Longest first, so a secret that holds another is held whole.
		slices.SortStableFunc(forms, func(a, b form) int { return len(b.value) - len(a.value) })
		var hold, restore []string
		seen := map[string]bool{}
		for _, f := range forms {
			if !seen[f.value] {
				seen[f.value] = true
				hold = append(hold, f.value, f.name)
			}
			restore = append(restore, f.name, f.value)
		}
		r.links = &linkSecrets{hold: strings.NewReplacer(hold...), restore: strings.NewReplacer(restore...)}
	})
	return r.links
}

// listCursor is how a batch stream's cursor is saved: with listDigest of
// the items it answers for. Asked of other items, it would lose them: an
// item added to the list has changes older than it, never read.
type listCursor struct {
	Cursor any    `json:"cursor"`
	List   string `json:"list"`
}

// watermark is the cursor an incremental chain starts from: the one saved by
// the last run (saved is true), else the spec's initial value. list is the
// listDigest a batch stream's cursor was saved with ("" when unknown: saved
// before lists were, or by a stream without a batch).
func (r *Runner) watermark(st *stream, partition string) (cursor any, saved bool, list string) {
	inc := st.s.Incremental
	if raw, ok := r.opts.State[st.s.Name+WatermarkSuffix][partition]; ok && len(raw) > 0 {
		if v, err := jsonv.Decode(raw); err == nil {
			// Only a batch stream's cursor is saved wrapped: another's may
			// be any object, these two members too.
			if m, ok := v.(map[string]any); ok && len(m) == 2 && st.s.BatchOf() != nil {
				if l, ok := m["list"].(string); ok {
					if c, ok := m["cursor"]; ok {
						return r.restoreCursor(c), true, l
					}
				}
			}
			return r.restoreCursor(v), true, ""
		}
		r.log.Warn("ignoring unreadable cursor", "stream", st.s.Name)
	}
	return inc.Initial.Tree(), false, ""
}

// holdCursor is a cursor as state keeps it: a string with each secret
// input's value held by name, and the secrets got at run time (a session
// token in a query parameter) redacted, as in a next link. An API hands
// out links as tokens (incremental.token), and one that echoes a query
// API key or token in them would put it in the state. (The HTTP client
// sets the auth parameter again on the link's request.)
func (r *Runner) holdCursor(v any) any {
	if s, ok := v.(string); ok {
		s = r.secretLinks().hold.Replace(s)
		if r.opts.Pool != nil {
			s = r.opts.Pool.RedactURL(s)
		}
		return s
	}
	return v
}

func isString(v any) bool {
	_, ok := v.(string)
	return ok
}

// restoreCursor puts back the secrets holdCursor held.
func (r *Runner) restoreCursor(v any) any {
	if s, ok := v.(string); ok {
		return r.secretLinks().restore.Replace(s)
	}
	return v
}

// later reports whether cursor a is after b. Numbers compare by value,
// exactly (a nanosecond epoch or a 64-bit id is past float64's 2^53), and
// so do strings of digits (proto3 JSON writes an int64 as one: "99" is
// before "100"). Times with an offset compare as instants: an API stamping
// records in its account's zone writes "02:10+01:00" after "02:50+02:00"
// when the clocks go back, and Go's RFC 3339 drops a zero fraction
// ("10:00:00Z" before "10:00:00.5Z"); a time is after anything that is
// not one. Anything else compares as text.
func later(a, b any) bool {
	return keyOf(a).after(keyOf(b))
}

// cursorKey is a cursor read for comparing (see later). A chain keeps its
// largest cursor read (maxKey): each record's is read once, not the
// largest again with each.
type cursorKey struct {
	v      any
	num    number
	isNum  bool
	t      time.Time
	isTime bool
}

func keyOf(v any) cursorKey {
	k := cursorKey{v: v}
	if v == nil {
		return k
	}
	if k.num, k.isNum = numeric(v); !k.isNum {
		// A number is never a time: instant reads strings only.
		k.t, k.isTime = instant(v)
	}
	return k
}

// after reports whether cursor a is after b (see later).
func (a cursorKey) after(b cursorKey) bool {
	if b.v == nil {
		return a.v != nil
	}
	if a.v == nil {
		return false
	}
	if a.isNum && b.isNum {
		return a.num.cmp(b.num) > 0
	}
	switch {
	case a.isTime && b.isTime:
		return a.t.After(b.t)
	case a.isTime || b.isTime:
		// Beside times, a value that is not one ("Invalid date", "n/a")
		// is no cursor: sent back, an API may match nothing with it.
		return a.isTime
	}
	return text(a.v) > text(b.v)
}

func text(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// number is an exact number, held as it came so that two of a kind
// compare without arithmetic (later runs for every record): decimal
// digits as they are written, an int or a float64 as itself; any other
// pair, or a number of another kind, as big.Rats.
type number struct {
	kind numKind
	neg  bool
	// whole without leading zeros, frac without trailing ones (digits).
	whole, frac string
	i           int64
	f           float64
	rat         *big.Rat
}

type numKind uint8

const (
	numDigits numKind = iota
	numInt
	numFloat
	numRat
)

// digitsOf holds s, digits with an optional fraction (see decimal), as a
// number.
func digitsOf(s string, neg bool) number {
	whole, frac, _ := strings.Cut(s, ".")
	whole, frac = strings.TrimLeft(whole, "0"), strings.TrimRight(frac, "0")
	return number{kind: numDigits, neg: neg && (whole != "" || frac != ""), whole: whole, frac: frac}
}

func (n number) ratOf() *big.Rat {
	switch n.kind {
	case numInt:
		return new(big.Rat).SetInt64(n.i)
	case numFloat:
		return new(big.Rat).SetFloat64(n.f)
	case numRat:
		return n.rat
	}
	r, _ := new(big.Rat).SetString("0" + n.whole + "." + n.frac + "0")
	if n.neg {
		r.Neg(r)
	}
	return r
}

func (n number) cmp(m number) int {
	switch {
	case n.kind != m.kind || n.kind == numRat:
		return n.ratOf().Cmp(m.ratOf())
	case n.kind == numInt:
		return cmp.Compare(n.i, m.i)
	case n.kind == numFloat:
		return cmp.Compare(n.f, m.f) // finite: NaN and Inf are no numbers here
	case n.neg != m.neg:
		if n.neg {
			return -1
		}
		return 1
	}
	c := cmp.Compare(len(n.whole), len(m.whole))
	if c == 0 {
		c = strings.Compare(n.whole, m.whole)
	}
	if c == 0 {
		c = strings.Compare(n.frac, m.frac)
	}
	if n.neg {
		return -c
	}
	return c
}

// numeric reads cursor v as an exact number: a JSON number, or a string
// of digits with an optional fraction (Slack's ts).
func numeric(v any) (number, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
		if d, neg := strings.CutPrefix(s, "-"); decimal(d) {
			return digitsOf(d, neg), true
		}
		if strings.ContainsAny(s, "eE") {
			// Read as a float: an exponent of billions would make
			// big.Rat build a number of that many digits.
			return floatOf(jsonv.Float(x))
		}
	case string:
		if !decimal(x) {
			return number{}, false
		}
		return digitsOf(x, false), true
	// What a cursor program computes (jq's arithmetic, tonumber): exact
	// too, not through float64.
	case int:
		return number{kind: numInt, i: int64(x)}, true
	case int64:
		return number{kind: numInt, i: x}, true
	case int32:
		return number{kind: numInt, i: int64(x)}, true
	case uint64:
		return digitsOf(strconv.FormatUint(x, 10), false), true
	case *big.Int:
		if x == nil {
			return number{}, false
		}
		return number{kind: numRat, rat: new(big.Rat).SetInt(x)}, true
	default:
		return floatOf(jsonv.Float(v))
	}
	r, ok := new(big.Rat).SetString(s)
	return number{kind: numRat, rat: r}, ok
}

func floatOf(f float64, ok bool) (number, bool) {
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
		return number{}, false
	}
	return number{kind: numFloat, f: f}, true
}

// decimal tells digits with at most one point between digits. (A loop:
// it runs for every record's cursor.)
func decimal(s string) bool {
	point := -1
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
		case c == '.' && point < 0:
			point = i
		default:
			return false
		}
	}
	return s != "" && point != 0 && point != len(s)-1
}

// stampLike writes t as like, a time instant reads, is written: the same
// offset form and as many fraction digits (t is cut, never rounded up).
func stampLike(t time.Time, like string) string {
	layout := "2006-01-02T15:04:05"
	if like[10] == ' ' {
		layout = "2006-01-02 15:04:05"
	}
	if rest := like[len(layout):]; strings.HasPrefix(rest, ".") {
		n := len(rest) - len(strings.TrimLeft(rest[1:], "0123456789")) - 1
		layout += "." + strings.Repeat("0", n)
	}
	switch c := like[len(like)-3]; {
	case strings.HasSuffix(like, "Z"):
		layout += "Z07:00"
	case c == ':':
		layout += "-07:00"
	case c == '+' || c == '-':
		layout += "-07"
	default:
		layout += "-0700"
	}
	return t.Format(layout)
}

// instant reads cursor v as an ISO 8601 time with a UTC offset: RFC 3339
// (any fraction), with the offset's colon left out (Jira's "+0200") or
// of hours only (PostgreSQL's "+00"), and a space for the "T" (Python's
// str of a datetime, PostgreSQL's text).
func instant(v any) (time.Time, bool) {
	s, ok := v.(string)
	if !ok || len(s) < len("2006-01-02T15:04:05Z") {
		return time.Time{}, false
	}
	// One parse, by how the offset ends: "Z" or "+hh:mm", "+hh", else
	// "+hhmm" (a failed parse costs an error: with every record).
	space := s[10] == ' '
	var layout string
	switch c := s[len(s)-3]; {
	case s[len(s)-1] == 'Z' || c == ':':
		layout = time.RFC3339Nano
		if space {
			layout = "2006-01-02 15:04:05.999999999Z07:00"
		}
	case c == '+' || c == '-':
		layout = "2006-01-02T15:04:05.999999999Z07"
		if space {
			layout = "2006-01-02 15:04:05.999999999Z07"
		}
	default:
		layout = "2006-01-02T15:04:05.999999999Z0700"
		if space {
			layout = "2006-01-02 15:04:05.999999999Z0700"
		}
	}
	t, err := time.Parse(layout, s)
	return t, err == nil
}

// naiveTime reports whether cursor v is a date and time without a UTC
// offset: "2006-01-02T15:04" or with seconds and a fraction, a space for
// the "T" too.
func naiveTime(v any) bool {
	s, ok := v.(string)
	if !ok || len(s) < len("2006-01-02T15:04") || s[10] != 'T' && s[10] != ' ' {
		return false
	}
	t := s[:10] + "T" + s[11:]
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04"} {
		if _, err := time.Parse(layout, t); err == nil {
			return true
		}
	}
	return false
}

// batchDigest names the list a batch stream's run sends ("" for a run of
// another stream): a hash of its records' JSON.
func batchDigest(rn *run) string {
	if !rn.batchStream {
		return ""
	}
	b, _ := json.Marshal(nonNil(rn.batch))
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// listDigest names the items a batch stream's run asks about by their keys
// (identify), whatever their order: a list whose records only changed
// fields (as repositories do on each push) is the same question, and its
// saved cursor still answers it. A record without a key is known by its
// content, so any change to it reads afresh: more, never less.
func listDigest(keys []string) string {
	ks := slices.Compact(slices.Sorted(slices.Values(keys)))
	h := sha256.New()
	for _, k := range ks {
		h.Write([]byte(k))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// partitionKey names a run by its ancestor records, stably across runs.
func partitionKey(c *chain) string {
	var parts []string
	for x := c; x != nil; x = x.up {
		parts = append(parts, x.stream+"="+x.key)
	}
	slices.Reverse(parts)
	return strings.Join(parts, "/")
}

// identify returns what identifies a record of stream s among its siblings
// (key, for partitions) and how messages name it (label). The stream's
// `key` program decides when set; else the record's id, identifier or uuid
// field; else a hash of its content ("key" or "name" fields are often
// shared by siblings, e.g. in key/value lists, so they only label).
func (r *Runner) identify(ctx context.Context, s *spec.Stream, rec any, vars []any) (key, label string) {
	if q := s.Key.Code(); q != nil {
		if v, ok, err := q.First(ctx, rec, vars...); err == nil && ok && v != nil {
			k := fmt.Sprint(v)
			if s.Partitions != nil && r.holdsSecret(k) {
				// As a value (below): its key program may give it whole.
				return "secret-" + contentKey(k), labelOf("key", k)
			}
			return url.PathEscape(k), labelOf("key", k)
		}
	}
	m, _ := rec.(map[string]any)
	if s.Partitions != nil {
		// A partition's record is its value. One that holds a secret (a
		// secret input, or a value built from one) is named by a hash of
		// it: the key names its children's checkpoints, and state never
		// holds a secret.
		v := fmt.Sprint(m["value"])
		if r.holdsSecret(v) {
			return "secret-" + contentKey(v), labelOf("value", v)
		}
		return url.PathEscape(v), labelOf("value", v)
	}
	for _, f := range []string{"id", "identifier", "uuid"} {
		if x, ok := m[f]; ok && x != nil {
			k := fmt.Sprint(x)
			return url.PathEscape(k), labelOf(f, k)
		}
	}
	for _, f := range []string{"key", "name"} {
		if x, ok := m[f]; ok && x != nil {
			label = labelOf(f, fmt.Sprint(x))
			break
		}
	}
	return contentKey(rec), label
}

// holdsSecret reports whether v holds a value the pool redacts.
func (r *Runner) holdsSecret(v string) bool {
	return r.opts.Pool != nil && r.opts.Pool.Redact(v) != v
}

// contentKey is what identifies a record without a key or an id field:
// a hash of its content.
func contentKey(rec any) string {
	b, _ := json.Marshal(rec)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func labelOf(field, value string) string {
	if len(value) > 80 {
		return ""
	}
	return fmt.Sprintf("[%s=%s]", field, value)
}

// epochUnit is the unit of a time written as a number that v, an
// incremental stream's initial cursor, is in: epoch seconds, milliseconds,
// microseconds or nanoseconds by its whole digits (10, 13, 16 or 19: a
// time since 2001), 0 for another value. An initial cursor written so says
// the records' cursors are times too, and a time cursor is held at when
// its chain began (see capped); a number alone could be an id.
func epochUnit(v any) time.Duration {
	n, ok := numeric(v)
	if !ok || n.neg {
		return 0
	}
	r := n.ratOf()
	switch len(new(big.Int).Quo(r.Num(), r.Denom()).String()) {
	case 10:
		return time.Second
	case 13:
		return time.Millisecond
	case 16:
		return time.Microsecond
	case 19:
		return time.Nanosecond
	}
	return 0
}

// epochAfter reports whether cursor v, a number of unit since the epoch
// (see epochUnit), is after t; ok is false when v is no number. Compared
// exactly: a cursor in a larger unit than the initial one (milliseconds
// among seconds) is far past what a time.Time holds.
func epochAfter(v any, unit time.Duration, t time.Time) (after, ok bool) {
	n, ok := numeric(v)
	if !ok {
		return false, false
	}
	return n.ratOf().Cmp(big.NewRat(t.UnixNano(), int64(unit))) > 0, true
}

// epochTime reads cursor v as a number of unit since the epoch (see
// epochUnit); false for another value, or one past what a time.Time holds.
func epochTime(v any, unit time.Duration) (time.Time, bool) {
	n, ok := numeric(v)
	if !ok {
		return time.Time{}, false
	}
	r := new(big.Rat).Mul(n.ratOf(), big.NewRat(int64(unit), 1))
	ns := new(big.Int).Quo(r.Num(), r.Denom())
	if !ns.IsInt64() {
		return time.Time{}, false
	}
	return time.Unix(0, ns.Int64()).UTC(), true
}

// epochLike writes t as a number of unit since the epoch, of cursor like's
// kind (a JSON number, a string of digits with as many fraction digits, a
// Go number), cut to the unit, never rounded up.
func epochLike(t time.Time, unit time.Duration, like any) any {
	n := t.UnixNano() / int64(unit)
	switch x := like.(type) {
	case string:
		s := strconv.FormatInt(n, 10)
		if _, frac, ok := strings.Cut(x, "."); ok {
			s += "." + strings.Repeat("0", len(frac))
		}
		return s
	case int:
		return int(n)
	case int64:
		return n
	case float64:
		return float64(n)
	}
	return json.Number(strconv.FormatInt(n, 10))
}

// unitName names an epoch unit (see epochUnit) in words.
func unitName(unit time.Duration) string {
	switch unit {
	case time.Second:
		return "seconds"
	case time.Millisecond:
		return "milliseconds"
	case time.Microsecond:
		return "microseconds"
	}
	return "nanoseconds"
}
