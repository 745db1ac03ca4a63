package paginate

import "context"

// pageNumber counts pages in `param` from `start` (default 1). The chain
// ends after the page whose position in the chain reaches `total_pages`,
// or on an empty page that gives no total_pages. A page is empty when the server's list on it is
// (see Page.Listed): a page the records program filtered to nothing is
// not the end. A server token (jq `token`), when present, is sent
// along in the query parameter `token_param`.
type pageNumber struct {
	at         position
	first      int // number of the first page
	total      jq
	token      jq
	tokenParam string

	number int    // page number of the next request
	tok    string // token sent with it ("" for none)
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
	switch {
	case known && page.Number >= total:
		return false, "", nil
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

func (p *pageNumber) state() State { return State{Number: p.number, Token: p.tok} }

func (p *pageNumber) restore(ctx context.Context, st State, req *Request) (string, error) {
	p.number, p.tok = st.Number, st.Token
	if err := p.at.set(ctx, req, p.number); err != nil {
		return "", err
	}
	if st.Token == "" || p.tokenParam == "" {
		return "", nil
	}
	return st.Token, param{name: p.tokenParam}.set(req, st.Token)
}
