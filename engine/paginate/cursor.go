package paginate

import (
	"context"
	"fmt"
	"strings"
)

// cursor sends back the token each page hands out (jq `token` on the
// body, or the response header `token_header`), in `param` where `in`
// says, or as the next path (`in: path`). The chain ends when the token is
// missing, null, false or "".
type cursor struct {
	token  jq
	header string // token_header: the token is this response header
	at     param
	next   token
}

func (c *cursor) start(context.Context, *Request) error { return nil }

func (c *cursor) advance(ctx context.Context, page Page, req *Request) (bool, string, error) {
	var tok token
	ok := false
	if c.header != "" {
		tok.text = strings.TrimSpace(page.Header.Get(c.header))
		ok = tok.text != ""
	} else {
		var err error
		if tok, ok, err = c.token.token(ctx, page.Body); err != nil {
			return false, "", err
		}
	}
	if !ok {
		return false, "", nil
	}
	if c.at.in == "path" && tok.number {
		return false, "", fmt.Errorf("paginate.%s: got the number %s, want a path", c.token.name, tok.text)
	}
	c.next = tok
	return true, tok.text, c.at.set(req, tok.value())
}

func (c *cursor) state() State {
	return State{Token: c.next.text, TokenNumber: c.next.number}
}

func (c *cursor) restore(_ context.Context, st State, req *Request) (string, error) {
	if st.Token == "" {
		return "", nil
	}
	c.next = token{text: st.Token, number: st.TokenNumber}
	return st.Token, c.at.set(req, c.next.value())
}
