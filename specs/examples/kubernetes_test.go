package examples_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine/apitest/tlstest"
)

// kubeSim answers /api/v1/namespaces and /api/v1/pods as a Kubernetes API
// server does (facts from the API reference's ListOptions and "API
// Concepts: Retrieving large results sets in chunks"): a List {kind,
// apiVersion, metadata {resourceVersion, continue, remainingItemCount},
// items} of at most `limit` items in key order (namespace/name), with an
// opaque continue token while there is more (left out on the last chunk);
// a chunk may hold fewer than limit items while there is more. An expired
// token answers 410 Gone, a Status with reason Expired and a new token in
// metadata.continue that lists the items after the last one read, from
// the latest snapshot. Items leave out fields not set; 429 with
// Retry-After; errors are a Status {kind, apiVersion, metadata, status,
// message, reason, code}; the token as a bearer token.
type kubeSim struct {
	token      string
	namespaces []map[string]any
	pods       []map[string]any // in key order

	mu       sync.Mutex
	rv       int
	requests []*http.Request
	// short[path+"|"+n] serves the n-th chunk (from 1) of path with at
	// most that many items.
	short map[string]int
	// expire[path+"|"+n]: the token that asks the n-th chunk has expired.
	expire map[string]bool
	// onExpire runs (locked) when a token expires: the cluster changed.
	onExpire func(s *kubeSim)
	// faults[path + "|" + n] are answered, in order, to the first
	// requests for the n-th chunk.
	faults map[string][]int
	chunks map[string]int // token -> the chunk number it asks
}

type kubeToken struct {
	V     string `json:"v"`
	RV    int    `json:"rv"`
	Start string `json:"start"`
}

func kubePod(ns, name string, i int, created time.Time) map[string]any {
	p := map[string]any{
		"metadata": map[string]any{"name": name, "namespace": ns, "uid": fmt.Sprintf("%08x-1111-4222-8333-%012x", 0xc0de0000+i, i),
			"resourceVersion": strconv.Itoa(1000 + i), "creationTimestamp": created.Format(time.RFC3339)},
		"spec":   map[string]any{"nodeName": fmt.Sprintf("node-%d", i%7), "containers": []any{map[string]any{"name": "app", "image": "registry.example/app:1"}}},
		"status": map[string]any{"phase": "Running", "podIP": fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)},
	}
	if i%4 != 0 {
		p["metadata"].(map[string]any)["labels"] = map[string]any{"app": fmt.Sprintf("app-%d", i%9)}
	}
	if i%11 == 0 {
		p["status"] = map[string]any{"phase": "Pending"}
		delete(p["spec"].(map[string]any), "nodeName")
	}
	return p
}

func podKey(p map[string]any) string {
	m := p["metadata"].(map[string]any)
	return m["namespace"].(string) + "/" + m["name"].(string)
}

func newKubeSim(token string) *kubeSim {
	s := &kubeSim{token: token, rv: 5000, short: map[string]int{}, expire: map[string]bool{}, faults: map[string][]int{}, chunks: map[string]int{}}
	base := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	for n := range 23 {
		name := fmt.Sprintf("team-%02d", n)
		s.namespaces = append(s.namespaces, map[string]any{
			"metadata": map[string]any{"name": name, "uid": fmt.Sprintf("%08x-aaaa-4bbb-8ccc-%012x", 0xabc00000+n, n), "resourceVersion": strconv.Itoa(100 + n),
				"creationTimestamp": base.Add(time.Duration(n) * time.Hour).Format(time.RFC3339)},
			"spec": map[string]any{"finalizers": []string{"kubernetes"}}, "status": map[string]any{"phase": "Active"}})
		for j := range 100 {
			i := n*100 + j
			s.pods = append(s.pods, kubePod(name, fmt.Sprintf("app-%04d", j), i, base.Add(time.Duration(i)*time.Minute)))
		}
	}
	return s
}

func (s *kubeSim) status(w http.ResponseWriter, code int, reason, msg string, meta map[string]any) {
	if meta == nil {
		meta = map[string]any{}
	}
	writeJSON(w, code, map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": meta, "status": "Failure",
		"message": msg, "reason": reason, "code": code})
}

// tokenFor makes the token that lists after key, as chunk n, at the
// current resourceVersion. s.mu is held.
func (s *kubeSim) tokenFor(after string, n int) string {
	b, _ := json.Marshal(kubeToken{V: "meta.k8s.io/v1", RV: s.rv, Start: after + "\x00"})
	t := base64.RawURLEncoding.EncodeToString(b)
	s.chunks[t] = n
	return t
}

func (s *kubeSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cont := q.Get("continue")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	chunk := 1
	if cont != "" {
		n, ok := s.chunks[cont]
		if !ok {
			s.status(w, 400, "BadRequest", "continue key is not valid: illegal base64 data", nil)
			return
		}
		chunk = n
	}
	key := r.URL.Path + "|" + strconv.Itoa(chunk)
	if f := s.faults[key]; len(f) > 0 {
		fault := f[0]
		s.faults[key] = f[1:]
		if fault == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
			s.status(w, 429, "TooManyRequests", "Too many requests, please try again later.", nil)
			return
		}
		s.status(w, fault, "InternalError", "Internal error occurred: etcdserver: request timed out", nil)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		s.status(w, 401, "Unauthorized", "Unauthorized", nil)
		return
	}
	var list []map[string]any
	var keyOf func(map[string]any) string
	kind := ""
	switch r.URL.Path {
	case "/api/v1/namespaces":
		list, kind = s.namespaces, "NamespaceList"
		keyOf = func(m map[string]any) string { return m["metadata"].(map[string]any)["name"].(string) }
	case "/api/v1/pods":
		list, kind, keyOf = s.pods, "PodList", podKey
	default:
		s.status(w, 404, "NotFound", "the server could not find the requested resource", nil)
		return
	}
	from := 0
	if cont != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cont)
		var tok kubeToken
		if err != nil || json.Unmarshal(raw, &tok) != nil {
			s.status(w, 400, "BadRequest", "continue key is not valid", nil)
			return
		}
		after := strings.TrimSuffix(tok.Start, "\x00")
		if s.expire[key] {
			// Compacted: the token is too old for a consistent list.
			delete(s.expire, key)
			if s.onExpire != nil {
				s.onExpire(s) // the next chunk lists the changed cluster
			}
			s.rv++
			s.status(w, 410, "Expired", "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
				map[string]any{"continue": s.tokenFor(after, chunk)})
			return
		}
		from = len(list)
		for i, it := range list {
			if keyOf(it) > after {
				from = i
				break
			}
		}
	}
	limit := len(list)
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.status(w, 400, "BadRequest", "invalid limit", nil)
			return
		}
		if n > 0 {
			limit = n
		}
	}
	if m, ok := s.short[key]; ok {
		limit = min(limit, m)
	}
	end := min(from+limit, len(list))
	meta := map[string]any{"resourceVersion": strconv.Itoa(s.rv)}
	if end < len(list) {
		meta["continue"] = s.tokenFor(keyOf(list[end-1]), chunk+1)
		meta["remainingItemCount"] = len(list) - end
	}
	items := list[from:end]
	if items == nil {
		items = []map[string]any{}
	}
	writeJSON(w, 200, map[string]any{"kind": kind, "apiVersion": "v1", "metadata": meta, "items": items})
}

func (s *kubeSim) asked(path string) []*http.Request {
	return requestsTo(&s.mu, &s.requests, path)
}

const kubeToken1 = "eyJhbGciOiJSUzI1NiIsImtpZCI6InNpbSJ9.c2VydmljZWFjY291bnQ6ZmVycnk.c2lnbmF0dXJlLXNpbQ"

// Kubernetes: every namespace and every pod, each written once, over
// chunks (one shorter than the limit while there is more); a continue
// token that expired mid-list (a 410 with a new token) goes on after the
// last pod read, from the latest snapshot: a pod created meanwhile after
// that position is read, none is read twice, and the list neither ends
// there nor loops; a 429 and a 500 mid-list are retried, not lost; the
// token is never printed.
func TestKubernetes(t *testing.T) {
	t.Parallel()
	sim := newKubeSim(kubeToken1)
	sim.short["/api/v1/pods|2"] = 123
	sim.expire["/api/v1/pods|4"] = true
	var added, before map[string]any
	sim.onExpire = func(s *kubeSim) {
		// Meanwhile a pod was created near the end of the list, and one
		// near its start (behind the position: it comes in the next run).
		added = kubePod("team-22", "app-0050a", 9001, time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC))
		before = kubePod("team-00", "app-0000a", 9002, time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC))
		s.pods = append(s.pods, added, before)
		slices.SortFunc(s.pods, func(a, b map[string]any) int { return strings.Compare(podKey(a), podKey(b)) })
	}
	sim.faults["/api/v1/namespaces|1"] = []int{429}
	sim.faults["/api/v1/pods|3"] = []int{500}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "kubernetes.yaml", map[string]string{"api_url": srv.URL, "token": kubeToken1}, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var wantNS []string
	for _, n := range sim.namespaces {
		wantNS = append(wantNS, n["metadata"].(map[string]any)["uid"].(string))
	}
	if d := cmp.Diff(wantNS, ids(r.rows["namespaces"], "uid")); d != "" {
		t.Errorf("namespaces (-want +got):\n%s", d)
	}
	if added == nil {
		t.Fatal("the continue token never expired")
	}
	var wantPods []string
	for _, p := range sim.pods {
		if podKey(p) != podKey(before) {
			wantPods = append(wantPods, p["metadata"].(map[string]any)["uid"].(string))
		}
	}
	gotPods := ids(r.rows["pods"], "uid")
	if d := cmp.Diff(wantPods, gotPods); d != "" {
		t.Errorf("pods, each once, in key order (-want +got):\n%s", d)
	}
	// 2300 pods: chunks of 500, 123 (short), 500, then the 410, 500, 500
	// and the rest; one 500 retried.
	pages := sim.asked("/api/v1/pods")
	if len(pages) != 8 {
		t.Errorf("%d pod requests, want 8 (six chunks, the 410, one retried)", len(pages))
	}
	for i, p := range pages {
		if lim := p.URL.Query().Get("limit"); lim != "500" {
			t.Errorf("pod request %d: limit=%q, want 500", i, lim)
		}
	}
	if n := len(sim.asked("/api/v1/namespaces")); n != 2 {
		t.Errorf("%d namespace requests, want 2 (one chunk, the 429 retried)", n)
	}
	if s := stream(r.res, "namespaces"); s.Retries != 1 {
		t.Errorf("namespaces retries = %d, want 1 (the 429)", s.Retries)
	}
	if s := stream(r.res, "pods"); s.Retries != 1 {
		t.Errorf("pods retries = %d, want 1 (the 500)", s.Retries)
	}
	var pending map[string]any
	for _, p := range r.rows["pods"] {
		if p["name"] == "app-0011" && p["namespace"] == "team-00" {
			pending = p
		}
	}
	if pending["phase"] != "Pending" || pending["node"] != nil || pending["pod_ip"] != nil {
		t.Errorf("pending pod row = %v, want phase Pending, node and pod_ip null", pending)
	}
	noSecret(t, r, kubeToken1)
}

// Kubernetes' refusals fail the run with the Status' reason and message,
// naming the stream; a 410 without a new token fails it (never a quiet
// end of the list, nor a loop); the token is never printed.
func TestKubernetesErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		sets   map[string]string
		setup  func(s *kubeSim)
		server func(s *kubeSim) http.Handler
		want   []string
	}{
		{name: "a wrong token", sets: map[string]string{"token": "wrong.wrong.wrong"},
			want: []string{"namespaces", "401", "Unauthorized"}},
		{name: "a 500 on every attempt",
			setup: func(s *kubeSim) { s.faults["/api/v1/pods|2"] = []int{500, 500, 500, 500, 500, 500, 500, 500} },
			want:  []string{"pods", "500", "page 2"}},
		{name: "an expired token without a new one",
			server: func(s *kubeSim) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Query().Get("continue") != "" {
						s.status(w, 410, "Expired", "The provided continue parameter is too old to display a consistent list result.", nil)
						return
					}
					s.ServeHTTP(w, r)
				})
			},
			want: []string{"pods", "410", "Expired", "too old"}},
		// A chunk that counts items after it (remainingItemCount, which
		// the API server omits on the last chunk) but gives no continue
		// token to ask them: an aggregated API server or a proxy that
		// drops the token. The list fails rather than end there.
		{name: "a chunk that says more remain without a continue token",
			server: func(s *kubeSim) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/api/v1/pods" && r.URL.Query().Get("continue") != "" {
						rec := httptest.NewRecorder()
						s.ServeHTTP(rec, r)
						var body map[string]any
						_ = json.Unmarshal(rec.Body.Bytes(), &body)
						if meta, ok := body["metadata"].(map[string]any); ok && meta["continue"] != nil {
							delete(meta, "continue")
						}
						writeJSON(w, rec.Code, body)
						return
					}
					s.ServeHTTP(w, r)
				})
			},
			want: []string{"pods", "remainingItemCount"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newKubeSim(kubeToken1)
			if c.setup != nil {
				c.setup(sim)
			}
			var h http.Handler = sim
			if c.server != nil {
				h = c.server(sim)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			sets := map[string]string{"api_url": srv.URL, "token": kubeToken1}
			for k, v := range c.sets {
				sets[k] = v
			}
			r := runVendor(t, "kubernetes.yaml", sets, time.Time{})
			failedRun(t, r, c.want)
			noSecret(t, r, kubeToken1, sets["token"])
		})
	}
}

// An API server of a private CA that requires client certificates (the
// simulator, unkind as in TestKubernetes, served over mutual TLS with
// certificates made by the test): without ca_file the run fails before any
// request reaches it, naming the host and tls.ca_file; with the CA but no
// client certificate the server refuses the handshake and the run says to
// set client_cert_file; with both it reads every namespace and pod. The
// key's content is never printed.
func TestKubernetesTLS(t *testing.T) {
	t.Parallel()
	pki := tlstest.New(t)
	sim := newKubeSim(kubeToken1)
	sim.faults["/api/v1/namespaces|1"] = []int{429}
	srv := tlstest.Server(t, pki.ServerConfig(t, true), sim)
	host := strings.TrimPrefix(srv.URL, "https://")
	sets := map[string]string{"api_url": srv.URL, "token": kubeToken1}

	r := runVendor(t, "kubernetes.yaml", sets, time.Time{})
	failedRun(t, r, []string{host, "not signed by a CA the system trusts", "http.tls.ca_file"})
	if n := len(sim.asked("/api/v1/namespaces")) + len(sim.asked("/api/v1/pods")); n != 0 {
		t.Errorf("%d requests reached the server through a failed handshake", n)
	}

	sets["ca_file"] = pki.CAFile
	r = runVendor(t, "kubernetes.yaml", sets, time.Time{})
	failedRun(t, r, []string{host, "asks for a client certificate", "client_cert_file"})

	sets["client_cert"], sets["client_key"] = pki.ClientCertFile, pki.ClientKeyFile
	r = runVendor(t, "kubernetes.yaml", sets, time.Time{})
	if r.err != nil {
		t.Fatalf("with the CA and the client certificate: %v", r.err)
	}
	if got, want := len(r.rows["namespaces"]), len(sim.namespaces); got != want {
		t.Errorf("%d namespaces, want %d", got, want)
	}
	if got, want := len(r.rows["pods"]), len(sim.pods); got != want {
		t.Errorf("%d pods, want %d", got, want)
	}
	key, err := os.ReadFile(pki.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Split(strings.TrimSpace(string(key)), "\n")[1]
	noSecret(t, r, kubeToken1, body)
}
