package examples_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// gcpSim answers Google's token endpoint, Resource Manager v3's
// projects:search and Compute v1's instances aggregatedList as
// testdata/gcp.md says: the JWT bearer grant verified (RS256 with the
// account's key, iss, scope, aud, an exp at most an hour after iat);
// access tokens that expire at the expireAt-th request (401
// UNAUTHENTICATED); projects 4 a page, instances 3 a page whatever
// maxResults asks (above 500 a 400), items keyed by zone with
// NO_RESULTS_ON_PAGE scopes; nextPageToken left out on the last page;
// optional fields (labels, parent, accessConfigs, lastStartTimestamp)
// left out where unset.
type gcpSim struct {
	email    string
	key      *rsa.PublicKey
	tokenURI string // set once the server runs

	mu        sync.Mutex
	tokens    map[string]int
	tokenLife int
	// expireAt: at this API request every token issued so far expires,
	// as an hour-old token does (0: never).
	expireAt  int
	logins    int
	projects  []map[string]any
	instances map[string][]map[string]any // by projectId
	disabled  map[string]bool             // projects without the Compute API
	// faults, by "project|pageToken" ("search|token" for projects):
	// statuses (or "unreachable") answered before the page, one per request.
	faults map[string][]string
	// unreachable: projects whose zone us-east1-b never answers.
	unreachable map[string]bool
	asked       []string // every API request's path?query, in order
}

const gcpTokenPrefix = "ya29.sim-"

var gcpZones = []string{"us-central1-a", "us-east1-b", "europe-west1-c", "asia-east1-a"}

func newGCPSim(email string, key *rsa.PublicKey) *gcpSim {
	s := &gcpSim{email: email, key: key, tokens: map[string]int{}, tokenLife: 1 << 30,
		instances: map[string][]map[string]any{}, disabled: map[string]bool{}, faults: map[string][]string{}, unreachable: map[string]bool{}}
	n := 0
	for i := range 11 {
		id := fmt.Sprintf("acme-proj-%02d", i)
		p := map[string]any{"name": fmt.Sprintf("projects/%d", 415104041200+i), "projectId": id, "state": "ACTIVE",
			"displayName": fmt.Sprintf("Acme %d", i), "createTime": "2021-03-04T15:20:38.155Z", "updateTime": "2024-01-02T03:04:05.678Z", "etag": "W/\"abc\""}
		if i%3 != 0 {
			p["parent"] = "folders/1234567"
		}
		if i%2 == 0 {
			p["labels"] = map[string]any{"team": "platform"}
		}
		if i == 7 {
			p["state"], p["deleteTime"] = "DELETE_REQUESTED", "2026-11-30T00:00:00Z"
		}
		s.projects = append(s.projects, p)
		s.instances[id] = []map[string]any{}
		// 0 to 8 instances a project, over the zones; project 4 has none.
		for j := range (i * 5) % 9 {
			n++
			zone := gcpZones[(i+j)%3] // asia-east1-a never has any: always NO_RESULTS_ON_PAGE
			in := map[string]any{"kind": "compute#instance", "id": strconv.Itoa(7000000000000000000 + n), "name": fmt.Sprintf("vm-%d", j),
				"zone":        "https://www.googleapis.com/compute/v1/projects/" + id + "/zones/" + zone,
				"machineType": "https://www.googleapis.com/compute/v1/projects/" + id + "/zones/" + zone + "/machineTypes/e2-medium",
				"status":      []string{"RUNNING", "TERMINATED", "STOPPING"}[j%3], "cpuPlatform": "Intel Broadwell",
				"creationTimestamp": "2023-05-01T09:12:44.123-07:00", "deletionProtection": j%4 == 0,
				"networkInterfaces": []any{map[string]any{"name": "nic0", "networkIP": fmt.Sprintf("10.0.%d.%d", i, j)}},
				"selfLink":          "https://www.googleapis.com/compute/v1/projects/" + id + "/zones/" + zone + "/instances/" + fmt.Sprintf("vm-%d", j)}
			if j%2 == 0 {
				in["labels"] = map[string]any{"env": "prod"}
				in["lastStartTimestamp"] = "2024-02-01T10:00:00.000-08:00"
				in["networkInterfaces"].([]any)[0].(map[string]any)["accessConfigs"] = []any{map[string]any{"name": "External NAT", "natIP": fmt.Sprintf("34.1.%d.%d", i, j)}}
			}
			s.instances[id] = append(s.instances[id], in)
		}
	}
	s.disabled["acme-proj-05"] = true
	return s
}

func gcpError(w http.ResponseWriter, status int, canon, msg, reason string) {
	e := map[string]any{"code": status, "message": msg}
	if canon != "" {
		e["status"] = canon
	}
	if reason != "" {
		e["errors"] = []any{map[string]any{"message": msg, "domain": "global", "reason": reason}}
	}
	writeJSON(w, status, map[string]any{"error": e})
}

func (s *gcpSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		s.token(w, r)
		return
	}
	s.mu.Lock()
	s.asked = append(s.asked, r.URL.Path+"?"+r.URL.RawQuery)
	if len(s.asked) == s.expireAt {
		for k := range s.tokens {
			s.tokens[k] = 0
		}
	}
	s.mu.Unlock()
	if !spendBearer(&s.mu, s.tokens, r) {
		gcpError(w, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.", "")
		return
	}
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v3/projects:search":
		if s.fault(w, "search|"+q.Get("pageToken"), "") {
			return
		}
		var list []map[string]any
		for _, p := range s.projects {
			if q.Get("query") != "state:ACTIVE" || p["state"] == "ACTIVE" {
				list = append(list, p)
			}
		}
		s.page(w, r, list, 4, "projects", nil)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/compute/v1/projects/") && strings.HasSuffix(r.URL.Path, "/aggregated/instances"):
		project := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/compute/v1/projects/"), "/aggregated/instances")
		max, ok := queryInt(q, "maxResults", 500, 0)
		if !ok || max > 500 {
			gcpError(w, 400, "INVALID_ARGUMENT", fmt.Sprintf("Invalid value for field 'maxResults': '%s'. Must be less than or equal to 500", q.Get("maxResults")), "invalid")
			return
		}
		if s.disabled[project] {
			writeJSON(w, 403, map[string]any{"error": map[string]any{"code": 403, "status": "PERMISSION_DENIED",
				"message": "Compute Engine API has not been used in project " + project + " before or it is disabled.",
				"errors":  []any{map[string]any{"message": "Compute Engine API has not been used…", "domain": "usageLimits", "reason": "accessNotConfigured"}},
				"details": []any{map[string]any{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_DISABLED", "domain": "googleapis.com"}}}})
			return
		}
		if _, ok := s.instances[project]; !ok {
			gcpError(w, 404, "", "The resource 'projects/"+project+"' was not found", "notFound")
			return
		}
		s.mu.Lock()
		unreachable := s.unreachable[project]
		s.mu.Unlock()
		if s.fault(w, project+"|"+q.Get("pageToken"), project) {
			return
		}
		s.page(w, r, s.instances[project], min(max, 3), "instances", func(items []map[string]any, body map[string]any) {
			scopes := map[string]any{}
			for _, z := range gcpZones {
				var in []map[string]any
				for _, it := range items {
					if strings.HasSuffix(it["zone"].(string), "/"+z) {
						in = append(in, it)
					}
				}
				switch {
				case unreachable && z == "us-east1-b":
					scopes["zones/"+z] = gcpUnreachable(z)
				case len(in) == 0:
					scopes["zones/"+z] = map[string]any{"warning": map[string]any{"code": "NO_RESULTS_ON_PAGE",
						"message": "There are no results for scope 'zones/" + z + "' on this page.", "data": []any{map[string]any{"key": "scope", "value": "zones/" + z}}}}
				default:
					scopes["zones/"+z] = map[string]any{"instances": in}
				}
			}
			body["kind"], body["id"], body["selfLink"] = "compute#instanceAggregatedList", "projects/"+project+"/aggregated/instances", "https://www.googleapis.com/compute/v1/projects/"+project+"/aggregated/instances"
			body["items"] = scopes
		})
	default:
		gcpError(w, 404, "NOT_FOUND", "Requested entity was not found.", "")
	}
}

func gcpUnreachable(zone string) map[string]any {
	return map[string]any{"warning": map[string]any{"code": "UNREACHABLE", "message": "Scope 'zones/" + zone + "' is unreachable.",
		"data": []any{map[string]any{"key": "scope", "value": "zones/" + zone}}}}
}

// fault answers the next fault queued under key, if any: a status (429
// RESOURCE_EXHAUSTED, 503 UNAVAILABLE, 403 rateLimitExceeded,
// 403 PERMISSION_DENIED) or "unreachable", a 200 whose zone us-east1-b was not reached (and no
// instances at all, as a page of the zones that did answer, for project).
func (s *gcpSim) fault(w http.ResponseWriter, key, project string) bool {
	s.mu.Lock()
	fs := s.faults[key]
	if len(fs) == 0 {
		s.mu.Unlock()
		return false
	}
	f := fs[0]
	s.faults[key] = fs[1:]
	s.mu.Unlock()
	switch f {
	case "429":
		gcpError(w, 429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute'.", "rateLimitExceeded")
	case "503":
		gcpError(w, 503, "UNAVAILABLE", "The service is currently unavailable.", "backendError")
	case "403denied":
		gcpError(w, 403, "PERMISSION_DENIED", "Required 'compute.instances.list' permission for 'projects/"+project+"'", "forbidden")
	case "403rate":
		gcpError(w, 403, "", "Rate Limit Exceeded", "rateLimitExceeded")
	case "unreachable":
		writeJSON(w, 200, map[string]any{"kind": "compute#instanceAggregatedList", "id": "projects/" + project + "/aggregated/instances",
			"items": map[string]any{"zones/us-east1-b": gcpUnreachable("us-east1-b")}})
	}
	return true
}

// page answers list[from the pageToken:] cut to n, under name (or, with
// shape, as shape builds it), and a nextPageToken only when more follow
// (an empty one on the last page of an odd-sized instance list).
func (s *gcpSim) page(w http.ResponseWriter, r *http.Request, list []map[string]any, n int, name string, shape func([]map[string]any, map[string]any)) {
	from := 0
	if t := r.URL.Query().Get("pageToken"); t != "" {
		b, err := base64.RawURLEncoding.DecodeString(t)
		v, ok := strings.CutPrefix(string(b), "after:")
		if err == nil {
			from, err = strconv.Atoi(v)
		}
		if err != nil || !ok || from > len(list) {
			gcpError(w, 400, "INVALID_ARGUMENT", "Invalid page token.", "invalid")
			return
		}
	}
	end := min(from+n, len(list))
	body := map[string]any{}
	if shape != nil {
		shape(list[from:end], body)
	} else if end > from {
		body[name] = list[from:end]
	}
	switch {
	case end < len(list):
		body["nextPageToken"] = base64.RawURLEncoding.EncodeToString([]byte("after:" + strconv.Itoa(end)))
	case shape != nil && len(list)%2 == 1:
		// An empty token on the last page, as a server that writes
		// default values would send: it ends the list as an absent one.
		body["nextPageToken"] = ""
	}
	writeJSON(w, 200, body)
}

// token answers the JWT bearer grant, checking the assertion as Google
// does; a refusal is invalid_grant.
func (s *gcpSim) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.ParseForm() != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		writeJSON(w, 400, map[string]any{"error": "unsupported_grant_type", "error_description": "Invalid grant_type: " + r.PostForm.Get("grant_type")})
		return
	}
	if problem := s.checkJWT(r.PostForm.Get("assertion")); problem != "" {
		writeJSON(w, 400, map[string]any{"error": "invalid_grant", "error_description": problem})
		return
	}
	s.mu.Lock()
	s.logins++
	tok := fmt.Sprintf("%s%04d-c2VjcmV0", gcpTokenPrefix, s.logins)
	s.tokens[tok] = s.tokenLife
	s.mu.Unlock()
	writeJSON(w, 200, map[string]any{"access_token": tok, "expires_in": 3599, "token_type": "Bearer"})
}

func (s *gcpSim) checkJWT(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "Invalid JWT."
	}
	head, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	body, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	var h struct{ Alg, Typ string }
	var c struct {
		Iss, Scope, Aud, Sub string
		Iat, Exp             int64
	}
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(head, &h) != nil || json.Unmarshal(body, &c) != nil {
		return "Invalid JWT."
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	now := time.Now().Unix()
	switch {
	case h.Alg != "RS256" || rsa.VerifyPKCS1v15(s.key, crypto.SHA256, digest[:], sig) != nil:
		return "Invalid JWT Signature."
	case c.Iss != s.email:
		return "Invalid JWT: iss is not a known service account."
	case c.Aud != s.tokenURI:
		return "Invalid JWT: audience is not the token endpoint."
	case !slices.Contains(strings.Fields(c.Scope), "https://www.googleapis.com/auth/cloud-platform.read-only"):
		return "Invalid JWT: no scope asked."
	case c.Iat > now+60 || c.Exp <= now || c.Exp-c.Iat > 3600:
		return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
	}
	return ""
}

// gcpKey is a service account key file, as Google issues them, for the
// simulator's token endpoint.
func gcpKey(t *testing.T, tokenURI string) (keyJSON string, key *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(key))}))
	b, err := json.MarshalIndent(map[string]any{"type": "service_account", "project_id": "acme-admin",
		"private_key_id": "3f1e0c9d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e", "private_key": pemText,
		"client_email": "ferry-reader@acme-admin.iam.gserviceaccount.com", "client_id": "104523456789012345678",
		"auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": tokenURI,
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
		"client_x509_cert_url":        "https://www.googleapis.com/robot/v1/metadata/x509/ferry-reader%40acme-admin.iam.gserviceaccount.com",
		"universe_domain":             "googleapis.com"}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b), key
}

type gcpFixture struct {
	sim     *gcpSim
	srv     *httptest.Server
	keyJSON string
	keyLine string // a line of the private key's PEM, to look for in output
}

func newGCPFixture(t *testing.T) *gcpFixture {
	t.Helper()
	f := &gcpFixture{}
	// The key names the token endpoint, so the server runs first.
	var h http.Handler
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(f.srv.Close)
	keyJSON, key := gcpKey(t, f.srv.URL+"/token")
	f.sim = newGCPSim("ferry-reader@acme-admin.iam.gserviceaccount.com", &key.PublicKey)
	f.sim.tokenURI = f.srv.URL + "/token"
	h = f.sim
	f.keyJSON = keyJSON
	var k struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal([]byte(keyJSON), &k); err != nil {
		t.Fatal(err)
	}
	f.keyLine = strings.Split(k.PrivateKey, "\n")[3]
	return f
}

func (f *gcpFixture) sets() map[string]string {
	return map[string]string{"service_account_key": f.keyJSON, "resource_manager_url": f.srv.URL, "compute_url": f.srv.URL}
}

// instanceKeys are the project|id of every instance of the projects the
// simulator lists as ACTIVE, whose Compute API is enabled.
func (s *gcpSim) instanceKeys() []string {
	var out []string
	for _, p := range s.projects {
		id := p["projectId"].(string)
		if p["state"] != "ACTIVE" || s.disabled[id] {
			continue
		}
		for _, in := range s.instances[id] {
			out = append(out, id+"|"+in["id"].(string))
		}
	}
	return out
}

// Google Cloud: a service account key's JWT exchanged for access tokens
// (asked again when one expires); every active project written once, and
// every instance of every zone once, over pages that hold fewer than
// asked and zones with none; a 429, a 503, a 403 rateLimitExceeded and a
// page with a zone not reached retried; a project without the Compute
// API skipped and reported, not read as empty; neither the key, the JWT
// nor a token printed.
func TestGCP(t *testing.T) {
	t.Parallel()
	f := newGCPFixture(t)
	s := f.sim
	s.expireAt = 12 // the run sends about 30 API requests
	s.faults["search|"+base64.RawURLEncoding.EncodeToString([]byte("after:4"))] = []string{"429"}
	s.faults["acme-proj-02|"] = []string{"503", "403rate"}
	s.faults["acme-proj-08|"+base64.RawURLEncoding.EncodeToString([]byte("after:3"))] = []string{"unreachable"}

	r := runVendor(t, "gcp.yaml", f.sets(), time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v\n%s", r.err, r.said)
	}
	var active []string
	for _, p := range s.projects {
		if p["state"] == "ACTIVE" {
			active = append(active, p["projectId"].(string))
		}
	}
	sameIDs(t, "active projects, each once", active, ids(r.rows["projects"], "project_id"))
	var got []string
	for _, row := range r.rows["instances"] {
		got = append(got, fmt.Sprint(row["project_id"], "|", row["id"]))
	}
	sameIDs(t, "instances, each once", s.instanceKeys(), got)
	noDuplicates(t, r)
	for _, row := range r.rows["instances"] {
		if row["zone"] == nil || strings.Contains(fmt.Sprint(row["zone"]), "/") || row["machine_type"] != "e2-medium" || row["internal_ip"] == nil {
			t.Errorf("instance row %v: want the zone's and machine type's names, the internal IP", row)
			break
		}
	}
	for _, row := range r.rows["projects"] {
		if row["project_id"] == "acme-proj-01" && (row["project_number"] != "415104041201" || row["parent"] != "folders/1234567") {
			t.Errorf("project row %v: want number 415104041201 and parent folders/1234567", row)
		}
	}
	if len(r.res.Summary.Skips) != 1 || r.res.Summary.Skips[0].Stream != "instances" || !strings.Contains(r.res.Summary.Skips[0].Parents, "acme-proj-05") ||
		!strings.Contains(r.res.Summary.Skips[0].Reason, "not enabled") {
		t.Errorf("skips %+v: want the project without the Compute API, acme-proj-05, named", r.res.Summary.Skips)
	}
	if r.res.Summary.Tables["instances"] {
		t.Error("the instances table may be reconciled although one project's were not read")
	}
	for _, q := range s.asked {
		if strings.Contains(q, "acme-proj-07") {
			t.Errorf("asked %s: a project pending deletion (state:ACTIVE leaves it out)", q)
		}
		if strings.HasPrefix(q, "/v3/projects:search?") && !strings.Contains(q, "query=state%3AACTIVE") {
			t.Errorf("asked %s without query=state:ACTIVE", q)
		}
	}
	if s.logins != 2 {
		t.Errorf("%d tokens issued, want 2: another once the first expired", s.logins)
	}
	noSecret(t, r, f.keyLine, "3f1e0c9d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e", "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.", gcpTokenPrefix, "c2VjcmV0")
}

// gcpFastRetries is gcp.yaml with its retries a few milliseconds apart,
// for the runs whose retries all fail.
func gcpFastRetries(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("gcp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const slow = "initial: 1s, max: 60s}"
	if !strings.Contains(string(b), slow) {
		t.Fatalf("gcp.yaml's retry is not %q", slow)
	}
	path := filepath.Join(t.TempDir(), "gcp.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), slow, "initial: 1ms, max: 5ms}", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A zone that is never reached (a 200 whose page lacks its instances)
// fails the project's chain, naming the zone, instead of ending as a
// whole list; the other projects are written.
func TestGCPUnreachableZone(t *testing.T) {
	t.Parallel()
	f := newGCPFixture(t)
	f.sim.unreachable["acme-proj-03"] = true
	r := runVendor(t, gcpFastRetries(t), f.sets(), time.Time{})
	failedRun(t, r, []string{"instances", "acme-proj-03", "zones/us-east1-b"})
	if n := len(r.rows["instances"]); n == 0 {
		t.Error("no instance written: the other projects' were read whole")
	}
	for _, row := range r.rows["instances"] {
		if row["project_id"] == "acme-proj-03" {
			t.Errorf("a row of the project whose zone was not reached: %v", row)
		}
	}
}

// Errors fail the run with Google's status and message: a project the
// account may not list instances of, and a key the token endpoint
// refuses (its JWT signed by another key); no secret printed.
func TestGCPErrors(t *testing.T) {
	t.Parallel()
	f := newGCPFixture(t)
	f.sim.faults["acme-proj-06|"] = []string{"403denied"}
	r := runVendor(t, gcpFastRetries(t), f.sets(), time.Time{})
	failedRun(t, r, []string{"instances", "acme-proj-06", "PERMISSION_DENIED", "compute.instances.list"})

	f = newGCPFixture(t)
	f.sim.projects = append(f.sim.projects, map[string]any{"name": "projects/999", "projectId": "ghost-project", "state": "ACTIVE"})
	r = runVendor(t, gcpFastRetries(t), f.sets(), time.Time{})
	failedRun(t, r, []string{"instances", "ghost-project", "404: The resource 'projects/ghost-project' was not found"})

	other, _ := gcpKey(t, f.sim.tokenURI) // a key the account does not have
	sets := f.sets()
	sets["service_account_key"] = other
	r = runVendor(t, gcpFastRetries(t), sets, time.Time{})
	failedRun(t, r, []string{"projects", "invalid_grant", "Invalid JWT Signature."})
	noSecret(t, r, strings.Split(other, "\\n")[3])
}
