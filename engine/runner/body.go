package runner

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/maphash"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/ferry-etl/ferry/engine/decode"
	"github.com/ferry-etl/ferry/engine/eval"
	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/internal/jsonv"
	"github.com/ferry-etl/ferry/engine/paginate"
	"github.com/ferry-etl/ferry/engine/spec"
)

// partValues is how many values (array elements, lines, rows) of a
// streamed page are committed together: the sink holds at most this many
// records' rows before a checkpoint, however large the page.
const partValues = 1000

// bodyPlan is how a stream's answers become records, decided once.
type bodyPlan struct {
	format string
	// stream: the body's values come one at a time (NDJSON, CSV, a JSON
	// array the records program iterates); else the document is one value.
	stream bool
	path   []string // JSON streamed: the array's keys
	// list is the keys of the list the records program reads (.a.b of
	// .a.b[] | f; none for the default or .[]) when listed, also for a
	// document read whole: the page's length is that list's.
	list    []string
	listed  bool
	dflt    bool       // JSON streamed: the default records program
	capture [][]string // JSON streamed: what pagination programs read
	// each is the program giving the records of one value: the rest of a
	// streamed records program, the records program of an NDJSON line or
	// a CSV row (nil: the value is the record), or the records program of
	// a document.
	each *eval.JQ
	// members: the only members of a streamed record anything reads,
	// when known (see recordMembers); nil: all.
	members     map[string]bool
	decoders    sync.Pool // of *jsonv.Decoder, reused page after page
	csv         decode.CSVOptions
	compression string
	maxBytes    int64
	allowEmpty  bool
	accept      string
}

// planBody decides how a stream reads its answers. A JSON body streams
// when its records program has one of the shapes decode.Split knows and
// whatever pagination reads of the body lies beside the streamed array
// (paths such as .next or .meta.total, and response.x.y in stop_when);
// otherwise the document is read whole.
func planBody(s *spec.Stream) *bodyPlan {
	p := &bodyPlan{format: s.Format(), each: s.Records.Code()}
	if r := s.Response; r != nil {
		p.compression, p.allowEmpty = r.Compression.V, r.AllowEmpty.V
		if r.MaxBytes.Set {
			p.maxBytes = int64(r.MaxBytes.V)
		}
		if c := r.CSV; c != nil {
			p.csv = decode.CSVOptions{NoHeader: c.Header.Set && !c.Header.V}
			for _, col := range c.Columns {
				p.csv.Columns = append(p.csv.Columns, col.V)
			}
			if c.Delimiter.Set {
				p.csv.Delimiter = c.Delimiter.V[0]
			}
			if c.Quote.Set {
				if c.Quote.V == "" {
					p.csv.NoQuote = true
				} else {
					p.csv.Quote = c.Quote.V[0]
				}
			}
		}
	}
	switch p.format {
	case spec.FormatNDJSON, spec.FormatCSV:
		p.stream = true
		if !s.Records.Set {
			p.each = nil
		}
	case spec.FormatJSON:
		p.streamJSON(s)
	case spec.FormatXML:
		// Read whole, as JSON: its list, when known, is what paging
		// counts. A list lies below the root element, at a child's name
		// (.issues.issue): the document is an object of one member, the
		// root, and the root an object of its children by name, so .[] or
		// .issues[] would count one item a page, empty or not.
		if s.Records.Set {
			p.list, p.listed = decode.ListPath(s.Records.V)
			p.listed = p.listed && len(p.list) >= 2
		}
	}
	if p.maxBytes == 0 {
		p.maxBytes = fetch.DefaultMaxBodyBytes
		if p.stream {
			p.maxBytes = fetch.DefaultMaxDownloadBytes
		}
	}
	p.accept = map[string]string{
		spec.FormatNDJSON: "application/x-ndjson, application/jsonl;q=0.9, */*;q=0.8",
		spec.FormatCSV:    "text/csv, */*;q=0.8",
		spec.FormatXML:    "application/xml, text/xml;q=0.9, */*;q=0.8",
	}[p.format]
	return p
}

func (p *bodyPlan) streamJSON(s *spec.Stream) {
	var path []string
	var rest *eval.JQ
	if s.Records.Set {
		var ok bool
		var err error
		if path, rest, ok, err = decode.Split(s.Records.V, s.JQVars()); !ok || err != nil {
			// Read whole. Its list, when known, is still what paging
			// counts: a page a filter emptied is no end of the list.
			if err == nil {
				p.list, p.listed = decode.ListPath(s.Records.V)
			}
			return
		}
	}
	p.list, p.listed = path, true
	var capture [][]string
	if pg := s.Paginate; pg != nil {
		for _, q := range []spec.JQ{pg.Token, pg.URL, pg.TotalPages, pg.Total} {
			if !q.Set {
				continue
			}
			keys, ok := decode.PathOf(q.V)
			if !ok {
				return
			}
			capture = append(capture, keys)
		}
		if pg.StopWhen.Set {
			paths, ok := decode.MemberPaths(pg.StopWhen.V, "response")
			if !ok {
				return
			}
			capture = append(capture, paths...)
		}
	}
	if inc := s.Incremental; inc != nil && inc.Token.Set {
		// The next sync's token lies beside the list, like a next link.
		keys, ok := decode.PathOf(inc.Token.V)
		if !ok {
			return
		}
		capture = append(capture, keys)
	}
	for _, c := range capture {
		if isPrefix(c, path) || isPrefix(path, c) {
			return // pagination reads the array itself (or the whole body)
		}
	}
	p.stream, p.path, p.dflt, p.capture, p.each = true, path, !s.Records.Set, capture, rest
}

func isPrefix(a, b []string) bool { return len(a) <= len(b) && slices.Equal(a, b[:len(a)]) }

func (p *bodyPlan) options(h http.Header) decode.Options {
	return decode.Options{Format: p.format, Compression: p.compression, ContentType: h.Get("Content-Type"), ContentEncoding: h.Get("Content-Encoding"),
		MaxBytes: p.maxBytes, Stream: p.stream, Path: p.path, Default: p.dflt, Capture: p.capture, Members: p.members, CSV: p.csv}
}

// header adds the Accept header of the format unless the spec sets one.
func (p *bodyPlan) header(h http.Header) http.Header {
	if p.accept == "" || h.Get("Accept") != "" {
		return h
	}
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Accept", p.accept)
	return h
}

// pageRead is one page: its answer, what pagination reads of its body, and
// what its records did.
type pageRead struct {
	resp    *fetch.Response
	body    any // the document, the captured part of a streamed one, or nil
	records int
	listed  int    // elements of the page's list (see paginate.Page.Listed)
	known   bool   // listed is known
	repeats int    // of them, items the chain listed before (see paginate.Page.Repeats)
	bodySum uint64 // hash of the list's items as sent, or of the body when read whole (see paginate.Page.Sum)
	summed  bool   // bodySum is set
	retried bool   // records of a committed page were written again where they had failed
	empty   bool   // a rule said "no data": the chain is done
	emptyBy error  // the rule's answer, when empty
	skipped bool   // a rule skipped the request
}

// readPage sends a page's request and releases its records (see
// decodePage). state is the pager's position of this request, for the
// checkpoints of a page committed in parts.
func (c *chainRun) readPage(client *fetch.Client, req *paginate.Request, target string, at position, replay bool, state paginate.State) (*pageRead, error) {
	st, s := c.st, c.st.s
	plan := st.body
	u := target
	if req.URL != "" {
		u = req.URL
	}
	method, bodyFormat, body := st.method, s.Request.BodyFormat.V, req.Body
	if c.downloads != nil {
		method, bodyFormat = http.MethodGet, ""
	} else if req.Text != nil {
		text, err := req.Text(req.Body)
		if err != nil {
			return nil, fmt.Errorf("%spage %d: %w", c.windowLabel(at.window), at.page, err)
		}
		body = text
	}
	resp, err := client.Download(c.ctx, &fetch.Request{Method: method, URL: u, Query: req.Query, Header: plan.header(req.Header), Body: body, BodyFormat: bodyFormat},
		fetch.Download{MaxBytes: plan.maxBytes, NotJSON: plan.format != spec.FormatJSON})
	answered := 0
	if resp != nil {
		answered = resp.Attempts
		if resp.Spool != nil {
			defer resp.Spool.Close()
		}
	}
	st.stat.answered(answered, err)
	if errors.Is(err, fetch.ErrSkipped) {
		// A response rule skipped the request: nothing failed, but what
		// it would have read is unknown, so its stream is incomplete.
		st.stat.unread() // counted as skipped once listed (see release)
		c.r.log.Warn("request skipped", "stream", s.Name, "parents", c.rn.describe(), "page", at.page, "reason", err.Error())
		sk := &Skip{Stream: s.Name, Parents: c.rn.describe(), Window: c.windowName(at.window), Page: at.page, Reason: err.Error()}
		if !c.send(item{skip: sk}) {
			return nil, errCancelled
		}
		return &pageRead{skipped: true}, nil
	}
	// A response rule said "no data": the page has no records and the
	// chain is done, complete.
	empty := errors.Is(err, fetch.ErrEmpty)
	var emptyBy error
	if empty {
		st.read.emptied()
		emptyBy, err = err, nil
	}
	if err != nil {
		if c.ctx.Err() != nil {
			return nil, errCancelled
		}
		return nil, fmt.Errorf("%spage %d: %w", c.windowLabel(at.window), at.page, err)
	}
	st.stat.page()
	pg := &pageRead{resp: resp, empty: empty, emptyBy: emptyBy}
	if empty || resp.Status == http.StatusNoContent {
		// No content: no records, whatever the records program says.
		return pg, nil
	}
	if err := c.decodePage(pg, method, at, replay, state); err != nil {
		return nil, err
	}
	if s.Paginate != nil && resp.Spool != nil && !pg.summed {
		// The body as the server sent it, hashed while its spool is
		// open: a page the same as the one before is a server that did
		// not move (see pages). A list read value by value hashes its
		// items instead (decodePage).
		var h maphash.Hash
		h.SetSeed(c.seed)
		if _, err := io.Copy(&h, resp.Spool.Reader()); err != nil {
			return nil, fmt.Errorf("%spage %d: reading the body again: %w", c.windowLabel(at.window), at.page, err)
		}
		pg.bodySum, pg.summed = h.Sum64(), true
	}
	return pg, nil
}

// decodePage decodes a page's body value by value and releases the
// records of each as it comes: a huge page is never whole in memory. A
// streamed page is committed in parts of partValues values: after each
// part a checkpoint names the values committed (and a digest of them), so
// the sink holds one part at a time. Every failure (a malformed value, a
// body cut short, data after the document, a records or cursor error)
// fails the chain: the parts before it are committed, the rest of the page
// is not, and the next run goes on from the last part.
//
// A page whose first values were committed by an earlier run is asked
// again; those values are read without writing (but for rows that failed)
// and checked against the digest. A page that changed in between cannot be
// resumed without skipping or repeating records: its checkpoint goes back
// to the page's start and the chain fails, so the next run reads it whole.
func (c *chainRun) decodePage(pg *pageRead, method string, at position, replay bool, state paginate.State) error {
	st := c.st
	plan, resp := st.body, pg.resp
	where := fmt.Sprintf("%spage %d: %s %s: %d", c.windowLabel(at.window), at.page, method, resp.URL, resp.Status)
	kind := strings.ToUpper(plan.format)
	// One page at a time per decoder: a stream's pages share their keys
	// and short values (jsonv.Decoder.KeepValues).
	jv, _ := plan.decoders.Get().(*jsonv.Decoder)
	if jv == nil {
		jv = &jsonv.Decoder{KeepValues: true}
	}
	defer plan.decoders.Put(jv)
	opts := plan.options(resp.Header)
	opts.Shared = jv
	var dec *decode.Decoder
	var err error
	if b, ok := resp.Spool.Memory(); ok {
		dec, err = decode.NewBytes(b, opts) // in place, not copied
	} else {
		dec, err = decode.New(resp.Spool.Reader(), opts)
	}
	if err != nil {
		return fmt.Errorf("%s: response is not valid %s: %w", where, kind, err)
	}
	defer dec.Close()
	// Strings read as U+FFFD are counted for the stream, said at the end
	// of the run: a page that fails halfway released some of them.
	defer func() { st.stat.replaced(dec.Replaced()) }()
	skip, want := c.committedPart(at)
	if c.listedTwice != nil {
		c.listedTwice.turn()
	}
	// items hashes the list's items as the server wrote them, not the
	// rest of the body: a copy of the page before that carries a new
	// request id or time is still a copy (see pages).
	var items *maphash.Hash
	if plan.stream && st.s.Paginate != nil {
		items = &maphash.Hash{}
		items.SetSeed(c.seed)
	}
	var digest hash.Hash
	if plan.stream {
		digest = sha256.New()
	}
	values := 0
	for {
		v, err := dec.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, decode.ErrEmpty) {
			if plan.allowEmpty {
				break
			}
			return fmt.Errorf("%s: empty body where %s was expected (a stream whose API answers empty for \"no records\" sets response.allow_empty)", where, kind)
		}
		if err != nil {
			var re *decode.RecordsError
			var ke *jsonv.KeyError // valid JSON, but two keys read as one
			if errors.As(err, &re) || errors.As(err, &ke) {
				return fmt.Errorf("%s: %w", where, err)
			}
			return fmt.Errorf("%s: response is not valid %s: %w", where, kind, err)
		}
		if items != nil {
			var n [8]byte
			binary.BigEndian.PutUint64(n[:], uint64(len(dec.Raw())))
			items.Write(n[:])
			items.Write(dec.Raw())
		}
		if digest != nil {
			var n [8]byte
			binary.BigEndian.PutUint64(n[:], uint64(len(dec.Raw())))
			digest.Write(n[:])
			digest.Write(dec.Raw())
		}
		if !plan.stream && plan.listed {
			pg.listed, pg.known = listLength(v, plan.list)
		}
		recs := []any{v}
		if plan.each != nil {
			if recs, err = plan.each.Run(c.ctx, v, c.vars...); err != nil {
				return fmt.Errorf("%s: records: %w", where, err)
			}
		}
		if err := c.cursors(recs); err != nil {
			return fmt.Errorf("%spage %d: incremental.cursor: %w", c.windowLabel(at.window), at.page, err)
		}
		switch {
		case c.listedTwice == nil:
		case plan.stream:
			// v is one item of the list, as the server wrote it: a
			// shifted page repeats the same text.
			if c.listedTwice.again(dec.Raw()) {
				pg.repeats++
			}
		case pg.known:
			// The document read whole: its list's items, encoded.
			var buf []byte
			for _, item := range listItems(v, plan.list) {
				if buf, err = jsonv.Append(buf[:0], item, false); err == nil && c.listedTwice.again(buf) {
					pg.repeats++
				}
			}
		}
		retried, err := c.release(recs, at, pg.records, replay || values < skip)
		pg.retried = pg.retried || retried
		if err != nil {
			return err
		}
		pg.records += len(recs)
		st.read.records(len(recs))
		values++
		switch {
		case values == skip && sum(digest) != want:
			return c.pageChanged(at, state, skip)
		case digest != nil && !replay && values > skip && values%partValues == 0:
			mark := c.mark(at, state, false, false)
			mark.Pages, mark.Part, mark.Digest = at.page-1, values, sum(digest)
			if !c.send(item{mark: mark}) {
				return errCancelled
			}
		}
	}
	if values < skip {
		return c.pageChanged(at, state, skip)
	}
	if plan.stream {
		pg.listed, pg.known = values, true
	}
	pg.body = dec.Doc()
	if !plan.stream && st.s.Paginate != nil && plan.listed {
		// A document read whole whose list is an array: its items,
		// encoded, as a streamed list's are hashed (the rest of the
		// body, a request id, is not the page's content).
		if list, _ := valueAt(pg.body, plan.list); list != nil {
			if arr, ok := list.([]any); ok {
				items = &maphash.Hash{}
				items.SetSeed(c.seed)
				var buf []byte
				for _, item := range arr {
					if buf, err = jsonv.Append(buf[:0], item, false); err != nil {
						return fmt.Errorf("%s: %w", where, err)
					}
					var n [8]byte
					binary.BigEndian.PutUint64(n[:], uint64(len(buf)))
					items.Write(n[:])
					items.Write(buf)
				}
			}
		}
	}
	if items != nil {
		pg.bodySum, pg.summed = items.Sum64(), true
	}
	return nil
}

// listLength is the number of values the list at path in doc holds (an
// object's values, as jq iterates them; none for null), or false when
// there is no list there.
func listLength(doc any, path []string) (int, bool) {
	v, ok := valueAt(doc, path)
	if !ok {
		return 0, false
	}
	switch x := v.(type) {
	case []any:
		return len(x), true
	case map[string]any:
		return len(x), true
	case nil:
		return 0, true
	}
	return 0, false
}

// listItems is the list at path in doc (an object's values are not
// counted as repeats: nothing shifts them from page to page).
func listItems(doc any, path []string) []any {
	v, _ := valueAt(doc, path)
	items, _ := v.([]any)
	return items
}

// valueAt is the value at path in doc (nil where an object lacks a key);
// false when a step of the path is no object.
func valueAt(doc any, path []string) (any, bool) {
	v := doc
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		v = m[k]
	}
	return v, true
}

// cursors moves the chain's largest incremental cursor over recs.
func (c *chainRun) cursors(recs []any) error {
	inc := c.st.s.Incremental
	if inc == nil || inc.Cursor.Code() == nil {
		return nil
	}
	for _, rec := range recs {
		cur, _, err := inc.Cursor.Code().First(c.ctx, rec, c.vars...)
		if err != nil {
			return err
		}
		if k := keyOf(cur); k.after(c.maxKey) {
			c.maxCursor, c.maxKey = cur, k
		}
	}
	return nil
}

func sum(h hash.Hash) string {
	if h == nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// committedPart is how many values of the page at were committed by an
// earlier run, and their digest.
func (c *chainRun) committedPart(at position) (int, string) {
	if cp := c.cp; cp != nil && cp.Part > 0 && at == (position{cp.Window, cp.Pages + 1}) {
		return cp.Part, cp.Digest
	}
	return 0, ""
}

// pageChanged puts the chain's checkpoint back to the start of the page at
// and fails the chain.
func (c *chainRun) pageChanged(at position, state paginate.State, committed int) error {
	mark := c.mark(at, state, false, false)
	mark.Pages = at.page - 1
	if !c.send(item{mark: mark}) {
		return errCancelled
	}
	return fmt.Errorf("%spage %d: the answer changed since an interrupted run committed its first %d values: going on after them could skip or repeat records, so the next run reads the page again from its start (an append table may get those records twice)",
		c.windowLabel(at.window), at.page, committed)
}
