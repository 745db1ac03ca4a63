package paginate

import "context"

// offset sends the number of records read so far in `param`. It advances
// by the records a page yielded, not by the size asked for: servers cap
// page sizes below what was asked (Jira returns 50 when 100 are asked).
// The chain ends on an empty page; with `total`, once the offset reaches
// it; without `total`, also on a page shorter than `size` (when size is
// given). So a server that caps its page size and gives no total needs
// `total`, or `size` left unset (send the limit in request.query or body),
// or it stops after its first short page.
type offset struct {
	at    param
	size  int // page size asked for; 0 when the server's default is used
	total jq

	position int // offset of the next request
}

func (o *offset) start(req *Request) error {
	o.position = 0
	return o.at.set(req, 0)
}

func (o *offset) advance(ctx context.Context, page Page, req *Request) (bool, string, error) {
	if page.Records == 0 {
		return false, "", nil
	}
	next := o.position + page.Records
	total, known, err := o.total.count(ctx, page.Body)
	if err != nil {
		return false, "", err
	}
	switch {
	case known && next >= total:
		return false, "", nil
	case o.total.q.Code() != nil:
		// A total is given (and may be missing on this page): a short
		// page is no end, only the total or an empty page is.
	case o.size > 0 && page.Records < o.size:
		return false, "", nil
	}
	o.position = next
	return true, "", o.at.set(req, o.position)
}

func (o *offset) state() State { return State{Number: o.position} }

func (o *offset) restore(st State, req *Request) (string, error) {
	o.position = st.Number
	return "", o.at.set(req, o.position)
}
