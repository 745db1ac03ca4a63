package port

import "strings"

// FaultKind is how an injected fault answers a request.
type FaultKind int

const (
	// FaultBody serves the request as usual — its writes happen — but
	// replaces the body of a 2xx answer with Fault.Body: a garbled, empty
	// or wrongly shaped answer from Port or a proxy in front of it.
	FaultBody FaultKind = iota + 1
	// FaultThrottle refuses the request with a 429 that still reports the
	// window's quota as left (the request is not counted), with
	// Fault.RetryAfter as Retry-After when set. Nothing is applied.
	FaultThrottle
)

// Fault is one injected misbehaviour for requests matching Method and Path.
type Fault struct {
	Method string // "" matches any method
	// Path is an escaped path: exact, a prefix when it ends in "*", or a
	// suffix when it starts with "*" (e.g. "*/entities/search").
	Path string
	// BodyContains, when set, must occur in the request body (Go encodes
	// JSON object keys sorted, so a rule such as
	// `"property":"ferryOwner"` can be matched).
	BodyContains string
	Times        int // how many matching requests it affects; 0 means every one
	Kind         FaultKind

	Body       string // FaultBody: the 2xx body sent instead of the real one
	RetryAfter string // FaultThrottle: the Retry-After value ("" sends none)
}

// InjectFault adds f; faults are tried in the order added, and the first
// that matches a request answers it.
func (s *Server) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fc := f
	s.faults = append(s.faults, &fc)
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// takeFault returns the fault that answers this request, counting it.
func (s *Server) takeFault(method, path string, body []byte) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if (f.Method != "" && f.Method != method) || !pathMatches(f.Path, path) || !strings.Contains(string(body), f.BodyContains) {
			continue
		}
		out := *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return &out
	}
	return nil
}

// pathMatches matches an escaped path against an exact path, a prefix
// ("/v1/blueprints/*") or a suffix ("*/entities/bulk").
func pathMatches(pattern, path string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(path, p)
	}
	if p, ok := strings.CutPrefix(pattern, "*"); ok {
		return strings.HasSuffix(path, p)
	}
	return path == pattern
}
