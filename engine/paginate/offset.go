package paginate

import "context"

// offset sends the number of items read so far in `param`. It advances
// by the items a page held (the elements of its list, before the records
// program filtered them, when known: see Page.Listed), not by the size
// asked for: servers cap page sizes below what was asked (Jira returns 50
// when 100 are asked). The chain ends on an empty page; with `total`, once
// the offset reaches it; without `total` and without stop_when, also on a
// page shorter than `size` (when size is given). So a server that caps its
// page size and gives neither a total nor a sign of more (for stop_when)
// needs `size` left unset (send the limit in request.query or body), or it
// stops after its first short page.
type offset struct {
	at       position
	size     int  // page size asked for; 0 when the server's default is used
	hasTotal bool // total or total_header is given
	stopWhen bool // the spec says when paging ends: a short page does not

	position int // offset of the next request
}

func (o *offset) start(ctx context.Context, req *Request) error {
	o.position = 0
	return o.at.set(ctx, req, 0)
}

func (o *offset) advance(ctx context.Context, page Page, req *Request) (bool, string, error) {
	n := page.length()
	if n == 0 {
		return false, "", nil
	}
	next := o.position + n
	switch {
	case page.totalKnown && next >= page.total:
		return false, "", nil
	case o.hasTotal, o.stopWhen:
		// A total is given (and may be missing on this page), or
		// stop_when says when the list ends (PagerDuty's `more`): a
		// short page is no end, only they or an empty page are.
	case o.size > 0 && n < o.size:
		return false, "", nil
	}
	o.position = next
	return true, "", o.at.set(ctx, req, o.position)
}

func (o *offset) state() State { return State{Number: o.position} }

func (o *offset) restore(ctx context.Context, st State, req *Request) (string, error) {
	o.position = st.Number
	return "", o.at.set(ctx, req, o.position)
}
