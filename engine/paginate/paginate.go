// Package paginate walks one request chain of a stream from page to page.
// Each pagination kind of the spec (cursor, next_url, link_header, page,
// offset) is a small strategy in a file of its own; the Pager around it
// holds what every kind shares: the page size parameter, stop_when, and the
// guards (guard.go): a position that repeats ends the chain with
// ErrNoProgress, and a chain longer than max_pages fails with ErrPageCap
// rather than looping forever.
package paginate

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ferry-etl/ferry/engine/eval"
	"github.com/ferry-etl/ferry/engine/spec"
)

// Request is the mutable part of the next request in a chain.
type Request struct {
	URL    string // when set it replaces the spec's path: absolute (next_url, link_header), or a path joined to the base URL (cursor in: path)
	Query  url.Values
	Header http.Header
	Body   any // JSON value; never mutated in place, only replaced by a changed copy
	// Text, for a text body (body_format text), renders the body sent
	// from Body, which then holds only the paging values put in: body
	// (the template's paging.<param>).
	Text func(paging any) (string, error)
}

// Page is what a strategy inspects after each response.
type Page struct {
	Number  int // 1-based position in the chain (counting pages read before a resume)
	Body    any // decoded JSON body
	Header  http.Header
	URL     string // URL that was requested, to resolve relative next links
	Records int    // records the page yielded
	// Listed is how many elements the list on the page held before the
	// records program filtered or expanded them, when ListedKnown (the
	// records program reads one list: .[], .a.b[], .a.b[] | f, or the
	// default; NDJSON lines, CSV rows). The server pages through that
	// list, so its length, not the records, says whether a page is empty
	// or short and how far an offset moves.
	Listed      int
	ListedKnown bool
	// Repeats is how many of the page's items the chain listed before (a
	// shifted page repeats one): the total check counts them once.
	Repeats int
	// Sum hashes the page's items as the server wrote them (or its body,
	// read whole), when Summed: a page the same as the one before is a
	// server that did not move (see CopyError).
	Sum    uint64
	Summed bool

	// The list's size in all as this page reports it (total or
	// total_header), when totalKnown: set by the Pager for its kind.
	total      int
	totalKnown bool
}

// length is how many items the server put on the page: the elements of
// its list when known, else the records.
func (p Page) length() int {
	if p.ListedKnown {
		return p.Listed
	}
	return p.Records
}

// State is where a chain stands after a page: enough to send the next
// request again after a restart. It holds the position only (token, page
// number, offset or next URL), never the request's other values.
//
// Its JSON is a checkpoint format: fields are only ever added, with
// omitempty, so a checkpoint written before a field existed still reads
// as it meant (TokenNumber came later: an older token is text).
type State struct {
	Number int    `json:"n,omitempty"`
	Token  string `json:"token,omitempty"`
	URL    string `json:"url,omitempty"`
	// TokenNumber: Token is the text of a JSON number, sent back as a
	// number in a JSON body.
	TokenNumber bool `json:"token_number,omitempty"`
	// Listed is how many items the chain's pages before this position
	// listed, and Total the smallest total they reported (on page
	// TotalPage; 0 when none did), so a resumed chain still knows whether
	// it read the total.
	Listed    int `json:"listed,omitempty"`
	Total     int `json:"total,omitempty"`
	TotalPage int `json:"total_page,omitempty"`
	// Counted: Listed is a count from the chain's first page although it
	// is 0, where a checkpoint written before ferry counted looks the
	// same (pages all empty so far).
	Counted bool `json:"counted,omitempty"`
	// Pages is the smallest total_pages a page before this position gave
	// (on page PagesAt; 0 when none did), so that a resumed page chain
	// still knows an empty page before it is no end.
	Pages   int `json:"pages,omitempty"`
	PagesAt int `json:"pages_at,omitempty"`
	// Raw is how many items the chain's pages before this position listed,
	// repeats too (Listed counts a repeat once), and Latest the total the
	// last of them to report one reported (on page LatestPage): a page or
	// offset chain that lists fewer than that lost some (see Ended). A
	// checkpoint written before they were saved has no Raw: the check
	// waits for a chain read from its start.
	Raw        int `json:"raw,omitempty"`
	Latest     int `json:"latest,omitempty"`
	LatestPage int `json:"latest_page,omitempty"`
}

// strategy is one pagination kind: it owns the chain's position, writes it
// into requests and moves it after each page.
type strategy interface {
	// start writes the first request's position into req.
	start(ctx context.Context, req *Request) error
	// advance reads page and rewrites req for the following page. more is
	// false when the chain is complete; mark names the new position for
	// the repeat guard ("" when the kind cannot repeat).
	advance(ctx context.Context, page Page, req *Request) (more bool, mark string, err error)
	// state returns the position after the last advance.
	state() State
	// restore writes a saved position into a freshly started req and
	// returns its mark.
	restore(ctx context.Context, st State, req *Request) (mark string, err error)
}

// Pager prepares the requests of one chain. It is not safe for concurrent
// use: a chain is sequential by nature.
type Pager struct {
	cfg   *spec.Paginate
	kind  strategy
	env   map[string]any // expr env for stop_when (config, parent, parents)
	guard guard
	total jq // the list's size in all, from the body (or cfg.TotalHeader)

	listed  int  // items the chain's pages listed (Page.length), pages before a resume too
	counted bool // listed counts every page: false after a checkpoint that did not save it
	// before is the Sum of the page before, when beforeSet (never across
	// a resume).
	before    uint64
	beforeSet bool
	// fewest is the smallest total a page reported (page fewestAt), when
	// reported.
	fewest, fewestAt int
	reported         bool
	// raw counts the items the pages listed, repeats too, when rawKnown;
	// latest is the total the last page to report one reported (page
	// latestAt), when reported.
	raw              int
	rawKnown         bool
	latest, latestAt int
}

// New returns a pager for cfg, or nil when the stream does not paginate.
// vars are the stream's jq variable values; env its expr environment.
func New(cfg *spec.Paginate, vars []any, env map[string]any) *Pager {
	if cfg == nil {
		return nil
	}
	p := &Pager{cfg: cfg, env: env, guard: newGuard(cfg), total: jq{&cfg.Total, vars, "total"}, counted: true, rawKnown: true}
	at := param{in: cfg.In.V, name: cfg.Param.V}
	pos := position{param: at, value: jq{&cfg.ParamValue, vars, "param_value"}}
	switch cfg.Type.V {
	case "cursor":
		p.kind = &cursor{token: jq{&cfg.Token, vars, "token"}, header: cfg.TokenHeader.V, at: at}
	case "next_url":
		p.kind = &nextURL{url: jq{&cfg.URL, vars, "url"}}
	case "link_header":
		lh := &linkHeader{}
		for _, it := range cfg.StopParams.Items {
			if lh.stop == nil {
				lh.stop = map[string]string{}
			}
			lh.stop[strings.ToLower(it.Key)] = it.Value.V
		}
		p.kind = lh
	case "page":
		pn := &pageNumber{at: pos, first: 1, total: jq{&cfg.TotalPages, vars, "total_pages"},
			token: jq{&cfg.Token, vars, "token"}, tokenParam: cfg.TokenParam.V}
		if cfg.Start.Set {
			pn.first = cfg.Start.V
		}
		p.kind = pn
	case "offset":
		o := &offset{at: pos, hasTotal: cfg.Total.Set || cfg.TotalHeader.Set, stopWhen: cfg.StopWhen.Program() != nil}
		if cfg.Size.Set {
			o.size = cfg.Size.V
		}
		p.kind = o
	default:
		p.kind = unknown(cfg.Type.V)
	}
	return p
}

// unknown stands for a type the spec validator would have refused, so a
// hand-built config fails on its first use instead of panicking.
type unknown string

func (u unknown) err() error                                               { return fmt.Errorf("unknown pagination type %q", string(u)) }
func (u unknown) start(context.Context, *Request) error                    { return u.err() }
func (u unknown) state() State                                             { return State{} }
func (u unknown) restore(context.Context, State, *Request) (string, error) { return "", u.err() }
func (u unknown) advance(context.Context, Page, *Request) (bool, string, error) {
	return false, "", u.err()
}

// Init sets the paging parameters of the first request: the page size
// where `in` says (query for link_header), then the kind's first position.
func (p *Pager) Init(ctx context.Context, req *Request) error {
	if p == nil {
		return nil
	}
	if c := p.cfg; c.Size.Set {
		if err := (param{in: c.In.V, name: c.SizeParam.V}).set(req, c.Size.V); err != nil {
			return err
		}
	}
	return p.kind.start(ctx, req)
}

// Restore moves a freshly initialised request to a saved position. The
// request it leaves is the one the interrupted chain would have sent next.
func (p *Pager) Restore(ctx context.Context, st State, req *Request) error {
	if p == nil {
		return nil
	}
	mark, err := p.kind.restore(ctx, st, req)
	if err != nil {
		return err
	}
	p.guard.remember(mark)
	p.listed = st.Listed
	if st.Total > 0 {
		p.fewest, p.fewestAt, p.reported = st.Total, st.TotalPage, true
		p.latest, p.latestAt = st.Total, st.TotalPage
	}
	if st.Latest > 0 {
		p.latest, p.latestAt = st.Latest, st.LatestPage
	}
	// A checkpoint that listed items but saved no raw count is older.
	p.raw, p.rawKnown = st.Raw, st.Raw >= st.Listed
	position := st
	position.Listed, position.Total, position.TotalPage, position.Counted = 0, 0, 0, false
	position.Raw, position.Latest, position.LatestPage = 0, 0, 0
	if o, ok := p.kind.(*offset); ok {
		// An offset's position is the raw count.
		p.raw, p.rawKnown = o.position, true
	}
	if o, ok := p.kind.(*offset); ok && st.Listed == 0 && !st.Counted {
		// An offset counts the items (repeats too), in checkpoints of any
		// age.
		p.listed = o.position
	} else if st.Listed == 0 && !st.Counted && position != (State{}) {
		// Saved before ferry counted items (or by a chain resumed from
		// such a checkpoint): the count is unknown, so the total is not
		// checked.
		p.counted = false
	}
	return nil
}

// State returns the position of the chain after the last Next.
func (p *Pager) State() State {
	if p == nil {
		return State{}
	}
	st := p.kind.state()
	if p.counted {
		// A chain resumed from a checkpoint that did not count saves no
		// count: what it counted since is not the chain's.
		st.Listed, st.Counted = p.listed, p.listed == 0
		if p.rawKnown {
			st.Raw = p.raw
		}
	}
	if p.reported {
		st.Total, st.TotalPage = p.fewest, p.fewestAt
		st.Latest, st.LatestPage = p.latest, p.latestAt
	}
	return st
}

// Total is the smallest total the chain's pages reported, if any did.
func (p *Pager) Total() (int, bool) {
	if p == nil || !p.reported {
		return 0, false
	}
	return p.fewest, true
}

// Next inspects page and rewrites req for the following page. It returns
// false when the chain is complete. stop_when is asked first: it can end a
// chain, but the records of the page it stops on have already been read.
//
// A chain that ends having listed fewer items than a page said the list
// holds in all (total, total_header) ends with a *ShortError: the server
// stopped paging early, and the rest is unread.
func (p *Pager) Next(ctx context.Context, page Page, req *Request) (bool, error) {
	if p == nil {
		return false, nil
	}
	if err := p.notCopied(page); err != nil {
		return false, err
	}
	if err := p.readTotal(ctx, &page); err != nil {
		return false, err
	}
	p.listed += max(0, page.length()-page.Repeats)
	p.raw += page.length()
	stop, err := p.stopWhen(page)
	if err != nil {
		return false, err
	}
	if !stop {
		more, mark, err := p.kind.advance(ctx, page, req)
		if err != nil {
			return false, err
		}
		if more {
			return true, p.guard.check(mark, page.Number)
		}
	}
	return false, p.Ended()
}

// CopyError is a page that holds the page before's items again, byte for
// byte: the server did not move (one that ignores a misnamed param answers
// its first page again and again), and the pages after it would never be
// read. Its records were the page before's, not its own.
type CopyError struct {
	Page  int    // the copy's position in the chain
	Param string // the spec's param, "" when it has none
}

func (e *CopyError) Error() string {
	hint := ""
	if e.Param != "" {
		hint = fmt.Sprintf(" (does it read paginate.param %q?)", e.Param)
	}
	return fmt.Sprintf("the page holds page %d's items again, byte for byte: the server did not move to the next page%s, and the pages after it would never be read", e.Page-1, hint)
}

// notCopied checks page against the page before it. A page of one item
// repeats the one before when the list shifts by one as it is read: no
// sign of a server that did not move, so only pages of two or more count.
func (p *Pager) notCopied(page Page) error {
	if !page.Summed || page.length() < 2 {
		p.beforeSet = false // the next page's before is this one
		return nil
	}
	copied := p.beforeSet && page.Sum == p.before
	p.before, p.beforeSet = page.Sum, true
	if copied {
		return &CopyError{Page: page.Number, Param: p.cfg.Param.V}
	}
	return nil
}

// ShortError is a chain that ended with fewer items listed than a page
// reported in all.
type ShortError struct {
	Listed int // items the chain's pages listed
	Total  int // the smallest total a page reported
	Page   int // the page that reported it
}

func (e *ShortError) Error() string {
	return fmt.Sprintf("paging ended after %d items, but page %d said the list holds %d (paginate.total): the server stopped early, with at least %d not read",
		e.Listed, e.Page, e.Total, e.Total-e.Listed)
}

// Ended checks a chain that has ended (after its last page, or on a page
// a response rule read as no data): an error when a total was reported
// and the chain listed fewer items. The smallest total reported is the
// one compared: a list that grows while it is read reports more on later
// pages than it held at the start (an item added behind a cursor's
// position is not on the pages still to come), one that shrinks reports
// less. A list that held that many items as it was read and came out
// shorter lost some.
//
// A list that grew, read by its position (page, offset), is checked
// against the last total too (a cursor's is not: an item added behind it
// is never listed): an item added behind the read position moves the
// rest one place on (a page then lists the one before again), one added
// ahead is on the pages to come, so the pages list, repeats counted, as
// many items as the last total says the list holds. Fewer is a page the
// server cut short, which the smallest total, made up by the items added
// ahead, does not tell.
func (p *Pager) Ended() error {
	if p == nil || !p.counted || !p.reported {
		return nil
	}
	if p.listed < p.fewest {
		return &ShortError{Listed: p.listed, Total: p.fewest, Page: p.fewestAt}
	}
	if p.positional() && p.rawKnown && p.latest > p.fewest && p.raw < p.latest {
		return &ShortError{Listed: p.raw, Total: p.latest, Page: p.latestAt}
	}
	return nil
}

// positional tells a kind that asks for a page by its position in the
// list (a page number, an offset), where what comes next moves with the
// items added or removed before it.
func (p *Pager) positional() bool {
	switch p.kind.(type) {
	case *pageNumber, *offset:
		return true
	}
	return false
}

// EndedAt is Ended for a chain a response rule's "no data" ended on its
// page-th page. Page paging ends there only past the pages an earlier
// page counted (some APIs answer 404 past the last page): before them,
// it is the server failing to give the rest.
func (p *Pager) EndedAt(page int) error {
	if p == nil {
		return nil
	}
	if pn, ok := p.kind.(*pageNumber); ok {
		if err := pn.short(page, "a response rule read the page as no data"); err != nil {
			return err
		}
	}
	return p.Ended()
}

// readTotal sets page's total from the body (total) or a header
// (total_header) and keeps the smallest one. A total that is missing or
// null is unknown (GitLab leaves X-Total out above 10,000 items).
func (p *Pager) readTotal(ctx context.Context, page *Page) error {
	var n int
	var known bool
	if name := p.cfg.TotalHeader.V; p.cfg.TotalHeader.Set {
		v := strings.TrimSpace(page.Header.Get(name))
		if v != "" {
			var err error
			if n, err = strconv.Atoi(v); err != nil || n < 0 {
				return fmt.Errorf("paginate.total_header: %s is %q, want a whole number", name, v)
			}
			known = true
		}
	} else {
		var err error
		if n, known, err = p.total.count(ctx, page.Body); err != nil {
			return err
		}
	}
	page.total, page.totalKnown = n, known
	if known && (!p.reported || n < p.fewest) {
		p.fewest, p.fewestAt, p.reported = n, page.Number, true
	}
	if known {
		p.latest, p.latestAt = n, page.Number
	}
	return nil
}

// stopWhen evaluates stop_when over the config/parent env plus response
// (the body), page (1-based position in the chain) and records (on this
// page).
func (p *Pager) stopWhen(page Page) (bool, error) {
	prog := p.cfg.StopWhen.Program()
	if prog == nil {
		return false, nil
	}
	env := make(map[string]any, len(p.env)+3)
	for k, v := range p.env {
		env[k] = v
	}
	env["response"], env["page"], env["records"] = eval.Normalize(page.Body), page.Number, page.Records
	stop, err := prog.EvalBool(env)
	if err != nil {
		return false, fmt.Errorf("paginate.stop_when: %w", err)
	}
	return stop, nil
}
