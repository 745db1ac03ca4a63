package port

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// windowLimiter counts requests in fixed windows aligned to the Unix epoch,
// the model behind Port's x-ratelimit-* headers. Rejected requests do not
// count.
type windowLimiter struct {
	mu     sync.Mutex
	limit  int // < 0: unlimited
	window time.Duration
	start  int64 // current window start, Unix nanoseconds
	count  int
}

type limitState struct {
	limit, remaining int
	end              time.Time
}

func (l *windowLimiter) roll(now time.Time) {
	ns := now.UnixNano()
	w := int64(l.window)
	start := ns - ((ns%w)+w)%w
	if start != l.start {
		l.start = start
		l.count = 0
	}
}

func (l *windowLimiter) state() limitState {
	st := limitState{limit: l.limit, end: time.Unix(0, l.start+int64(l.window))}
	if l.limit < 0 {
		st.limit = 0
		return st
	}
	st.remaining = max(0, l.limit-l.count)
	return st
}

// take counts one request if the window has room.
func (l *windowLimiter) take(now time.Time) (bool, limitState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	if l.limit >= 0 && l.count >= l.limit {
		return false, l.state()
	}
	l.count++
	return true, l.state()
}

func (l *windowLimiter) peek(now time.Time) limitState {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	return l.state()
}

// setRateHeaders writes x-ratelimit-period/limit/remaining/reset. Seconds are
// rounded up so a client that waits for them is never early.
func (s *Server) setRateHeaders(h http.Header, st limitState, now time.Time) {
	if s.opts.RateLimit < 0 {
		return
	}
	h.Set("x-ratelimit-period", strconv.FormatInt(ceilSeconds(s.opts.Window), 10))
	h.Set("x-ratelimit-limit", strconv.Itoa(st.limit))
	h.Set("x-ratelimit-remaining", strconv.Itoa(st.remaining))
	if s.opts.ResetEpoch {
		sec := st.end.Unix()
		if st.end.Nanosecond() > 0 {
			sec++
		}
		h.Set("x-ratelimit-reset", strconv.FormatInt(sec, 10))
		return
	}
	h.Set("x-ratelimit-reset", strconv.FormatInt(ceilSeconds(st.end.Sub(now)), 10))
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
