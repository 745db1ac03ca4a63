package paginate

import "context"

// cursor sends back the token each page hands out (jq `token`), in `param`
// where `in` says. The chain ends when the token is missing, null, false
// or "".
type cursor struct {
	token jq
	at    param
	next  token
}

func (c *cursor) start(*Request) error { return nil }

func (c *cursor) advance(ctx context.Context, page Page, req *Request) (bool, string, error) {
	tok, ok, err := c.token.token(ctx, page.Body)
	if err != nil || !ok {
		return false, "", err
	}
	c.next = tok
	return true, tok.text, c.at.set(req, tok.value())
}

func (c *cursor) state() State {
	return State{Token: c.next.text, TokenNumber: c.next.number}
}

func (c *cursor) restore(st State, req *Request) (string, error) {
	if st.Token == "" {
		return "", nil
	}
	c.next = token{text: st.Token, number: st.TokenNumber}
	return st.Token, c.at.set(req, c.next.value())
}
