package engine

import (
	"net"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/runner"
)

// Phases of a run, as Progress reports them.
const (
	PhaseFetching = "fetching" // streams are read, rows written as pages complete
	PhaseWriting  = "writing"  // every stream ended: last rows, then Port's upload and reconciliation
)

// Live is a run in progress, for displays: read it with Progress at any
// time from any goroutine.
type Live struct {
	stats      *runner.Stats
	pool       *fetch.Pool
	counts     *counting
	portOrigin string // scheme://host of Port's API; "" without Port
	phase      atomic.Value
}

// Progress is a copy of a run's counters.
type Progress struct {
	Phase   string
	Elapsed time.Duration
	Streams []Snapshot // in spec order
	// Rows counts, per table, the rows written so far; Entities, per
	// blueprint, the entities produced for Port (sent when the streams end).
	Rows, Entities map[string]int64
	EntitiesTotal  int64
	Hosts          []HostProgress // by host
}

// HostProgress counts the HTTP attempts sent to one host.
type HostProgress struct {
	Host                      string // scheme://host
	Port                      bool   // Port's API
	Requests, Retries, Errors int64
	RatePerSecond             float64 // the host's configured ceiling (rate_limit; 0: none), not the pacing of Port's rate-limit headers
	// RateCuts counts the times the host's answers (a rate limit, a 503)
	// cut the rate ferry sends at; AdaptiveRate is that rate now (0: not
	// paced), which a run that sent slowly is explained by. Both are 0
	// for Port's host, paced by its rate-limit headers instead.
	RateCuts     int64
	AdaptiveRate float64
}

func newLive(stats *runner.Stats, pool *fetch.Pool, counts *counting, portBase string) *Live {
	l := &Live{stats: stats, pool: pool, counts: counts}
	if portBase != "" {
		l.portOrigin = originOf(portBase)
	}
	l.phase.Store(PhaseFetching)
	return l
}

// Redact hides from s every secret the run knows: its inputs' and the
// tokens it fetched, as its logs and report do.
func (l *Live) Redact(s string) string { return l.pool.Redact(s) }

// Progress returns the run's counters now.
func (l *Live) Progress() Progress {
	streams, elapsed := l.stats.Snapshot()
	p := Progress{Phase: l.phase.Load().(string), Elapsed: elapsed, Streams: streams}
	p.Rows, p.Entities, p.EntitiesTotal = l.counts.snapshot()
	for origin, h := range l.pool.Stats().Hosts {
		p.Hosts = append(p.Hosts, HostProgress{Host: origin, Port: origin == l.portOrigin, Requests: h.Requests,
			Retries: h.Retries, Errors: h.Errors, RatePerSecond: h.RatePerSecond, RateCuts: h.RateCuts, AdaptiveRate: h.AdaptiveRate})
	}
	slices.SortFunc(p.Hosts, func(a, b HostProgress) int {
		switch {
		case a.Host < b.Host:
			return -1
		case a.Host > b.Host:
			return 1
		}
		return 0
	})
	return p
}

// originOf is scheme://host of a URL, as the HTTP pool names its hosts
// (lower case, without the scheme's default port).
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	scheme, h := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if hostname, port, err := net.SplitHostPort(h); err == nil && (scheme == "http" && port == "80" || scheme == "https" && port == "443") {
		h = hostname
		if strings.Contains(h, ":") {
			h = "[" + h + "]"
		}
	}
	return scheme + "://" + h
}
