package paginate

import (
	"context"
	"fmt"
)

// pageNumber counts pages in `param` from `start` (default 1). The chain
// ends after the page whose position in the chain reaches `total_pages`,
// or on an empty page that gives no total_pages. A page is empty when the server's list on it is
// (see Page.Listed): a page the records program filtered to nothing is
// not the end. A server token (jq `token`), when present, is sent
// along in the query parameter `token_param`. An empty page without
// total_pages before the smallest total_pages an earlier page gave is no
// end but the server stopping early (a 204 or an empty list under load):
// an error, so the chain is not complete and the pages after it are not
// taken as gone.
type pageNumber struct {
	at         position
	first      int // number of the first page
	total      jq
	token      jq
	tokenParam string

	number int    // page number of the next request
	tok    string // token sent with it ("" for none)

	pages, pagesAt int // the smallest total_pages a page gave, and which; 0 none
}

func (p *pageNumber) start(ctx context.Context, req *Request) error {
	p.number = p.first
	return p.at.set(ctx, req, p.number)
}

func (p *pageNumber) advance(ctx context.Context, page Page, req *Request) (bool, string, error) {
	total, known, err := p.total.count(ctx, page.Body)
	if err != nil {
		return false, "", err
	}
	if known && total > 0 && (p.pages == 0 || total < p.pages) {
		p.pages, p.pagesAt = total, page.Number
	}
	switch {
	case known && page.Number >= total:
		return false, "", nil
	case page.length() == 0 && !known && page.Number < p.pages:
		return false, "", p.short(page.Number, "the page is empty and gives no total_pages")
	case page.length() == 0 && !known:
		// An empty page ends the chain, unless the page says more pages
		// follow (an API that filters pages by permission can send an
		// empty one in the middle): the pages it counts are read.
		return false, "", nil
	}
	tok, hasToken, err := p.token.token(ctx, page.Body)
	if err != nil {
		return false, "", err
	}
	p.number++
	if err := p.at.set(ctx, req, p.number); err != nil {
		return false, "", err
	}
	p.tok = tok.text
	if p.tokenParam == "" {
		return true, "", nil
	}
	if !hasToken {
		req.Query.Del(p.tokenParam)
		return true, "", nil
	}
	return true, p.tok, param{name: p.tokenParam}.set(req, p.tok)
}

// short is the error of a chain that ended on its at-th page, before the
// smallest total_pages an earlier page gave; nil when it did not.
func (p *pageNumber) short(at int, why string) error {
	if at >= p.pages {
		return nil
	}
	return &PagesShortError{Why: why, At: at, Pages: p.pages, Page: p.pagesAt}
}

// PagesShortError is a page chain that ended on page At, before the
// smallest total_pages (Pages, on page Page) an earlier page gave. As
// with a ShortError, a resumed run reads the chain afresh: the list may
// have shrunk since (items deleted), and a run that asked page At again,
// knowing the old total, would fail there every time.
type PagesShortError struct {
	Why             string
	At, Pages, Page int
}

func (e *PagesShortError) Error() string {
	return fmt.Sprintf("%s, but page %d said the list has %d pages: the server stopped early, with pages %d to %d not read",
		e.Why, e.Page, e.Pages, e.At+1, e.Pages)
}

func (p *pageNumber) state() State {
	return State{Number: p.number, Token: p.tok, Pages: p.pages, PagesAt: p.pagesAt}
}

func (p *pageNumber) restore(ctx context.Context, st State, req *Request) (string, error) {
	p.number, p.tok, p.pages, p.pagesAt = st.Number, st.Token, st.Pages, st.PagesAt
	if err := p.at.set(ctx, req, p.number); err != nil {
		return "", err
	}
	if st.Token == "" || p.tokenParam == "" {
		return "", nil
	}
	return st.Token, param{name: p.tokenParam}.set(req, st.Token)
}
