package paginate

import (
	"context"
	"fmt"
	"net/url"
)

// nextURL follows the URL each page hands out (jq `url`), resolved against
// the URL requested. The chain ends when it is missing, null, false or "".
type nextURL struct {
	url jq
	follower
}

func (n *nextURL) start(context.Context, *Request) error { return nil }

func (n *nextURL) advance(ctx context.Context, page Page, req *Request) (bool, string, error) {
	next, ok, err := n.url.token(ctx, page.Body)
	if err != nil || !ok {
		return false, "", err
	}
	if next.number {
		return false, "", fmt.Errorf("paginate.url: got the number %s, want a URL", next.text)
	}
	return n.follow(page.URL, next.text, req)
}

// follower holds the next URL of next_url and link_header.
type follower struct {
	next string
}

// follow points req at next, resolved against current. The next URL
// carries its own query, so the spec's query (and the page size sent on
// the first request) is not sent again; headers and body stay.
func (f *follower) follow(current, next string, req *Request) (bool, string, error) {
	base, err := url.Parse(current)
	if err != nil {
		return false, "", fmt.Errorf("paginate: current URL: %w", err)
	}
	ref, err := url.Parse(next)
	if err != nil {
		return false, "", fmt.Errorf("paginate: next URL %q: %w", next, err)
	}
	abs := base.ResolveReference(ref).String()
	f.next = abs
	req.URL, req.Query = abs, url.Values{}
	return true, abs, nil
}

func (f *follower) state() State { return State{URL: f.next} }

func (f *follower) restore(_ context.Context, st State, req *Request) (string, error) {
	if st.URL == "" {
		return "", nil
	}
	f.next = st.URL
	req.URL, req.Query = st.URL, url.Values{}
	return st.URL, nil
}
