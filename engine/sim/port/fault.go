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
	// FaultStatus answers Fault.Status (a 5xx from Port or the gateway in
	// front of it) with Port's error body. Nothing is applied, unless
	// Applied: then the request is served first and its answer replaced,
	// as when a gateway times out while Port applies a write.
	FaultStatus
	// FaultDrop serves the request (its writes happen), then closes the
	// connection without an answer: the client's timeout or reset after
	// Port applied the write.
	FaultDrop
	// FaultOmit serves the request, then leaves the first entity out of
	// the answer's list — entities of a bulk upsert, deletedEntities of a
	// bulk delete — though Port applied it: an answer that forgets one.
	// With Unapplied the first entity is neither written (deleted) nor
	// named: Port skipped it without a word.
	FaultOmit
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
	RetryAfter string // FaultThrottle, FaultStatus: the Retry-After value ("" sends none)
	Status     int    // FaultStatus: the status answered (500 when 0)
	Applied    bool   // FaultStatus: serve the request before answering the status
	Unapplied  bool   // FaultOmit: the entity left out of the answer is not applied either
}

// FaultFunc decides, for a request no injected fault matched, whether it
// fails and how (nil: answered as usual). It is called once per request
// (the token route excepted), from the request's goroutine, with the
// escaped path and the body; tests use it for seeded, per-request faults
// and to act at the n-th request (cancel a run).
type FaultFunc func(method, path string, body []byte) *Fault

// SetFaultFunc sets the function consulted after the injected faults (nil
// removes it).
func (s *Server) SetFaultFunc(fn FaultFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faultFn = fn
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
	if f := s.takeInjected(method, path, body); f != nil {
		return f
	}
	s.mu.Lock()
	fn := s.faultFn
	s.mu.Unlock()
	if fn == nil {
		return nil
	}
	// Called unlocked: the function may use the server (read its catalog).
	return fn(method, path, body)
}

func (s *Server) takeInjected(method, path string, body []byte) *Fault {
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

// omitFirst removes the first entity from a bulk answer's list
// (FaultOmit); other answers are left as they are.
func omitFirst(resp any) {
	m, ok := resp.(map[string]any)
	if !ok {
		return
	}
	for _, k := range []string{"entities", "deletedEntities"} {
		switch l := m[k].(type) {
		case []map[string]any:
			if len(l) > 0 {
				m[k] = l[1:]
			}
		case []any:
			if len(l) > 0 {
				m[k] = l[1:]
			}
		case []string:
			if len(l) > 0 {
				m[k] = l[1:]
			}
		}
	}
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
