package examples_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// sfSim answers Salesforce's OAuth client credentials token endpoint and
// the REST query resources (facts in testdata/salesforce.md): POST
// /services/oauth2/token with a form (an answer without expires_in);
// GET /services/data/vNN.N/query and /queryAll with q, a small SOQL subset
// (SELECT fields FROM object [WHERE SystemModstamp >= literal]), whose
// answer is {totalSize, done, nextRecordsUrl, records} paged by a server
// cursor: a snapshot of the matched records, batches of the
// Sforce-Query-Options batchSize (200..2000) or fewer (700 for contacts),
// nextRecordsUrl a path under /query/ whatever the resource; at most 10
// open cursors a user, the oldest released by the next; errors as a list
// [{message, errorCode}]; Sforce-Limit-Info on every answer; tokens that
// expire after a number of requests (401 INVALID_SESSION_ID).
type sfSim struct {
	clientID, secret string
	tokenLife        int // requests a token serves before its session times out
	// The JWT bearer flow: the app's certificate key, and the user the
	// JWT names (sub).
	jwtKey  *rsa.PublicKey
	jwtUser string

	mu       sync.Mutex
	records  map[string][]map[string]any // by object, in creation order
	tokens   map[string]int
	logins   int
	cursors  map[string]*sfCursor
	open     []string // open cursor ids, oldest first
	nextID   int
	used     int
	requests []*http.Request
	queries  []string // the q of each query asked
	// faults[object + "|" + page] are answered, in order, to the first
	// requests for that page of any cursor over object (page 0 is the
	// query itself): an HTTP status, or one of the sf* faults below.
	faults map[string][]int
}

type sfCursor struct {
	object string
	rows   []map[string]any
	size   int
	path   string // /services/data/vNN.N
}

const (
	sfClientID     = "3MVG9SimOnly.ClientId.0123456789"
	sfClientSecret = "SimOnlySfSecret-7f3a9c0e11d24b6a"
	sfTokenPrefix  = "00DSIMONLY!SimOnlySfToken"
	// Faults.
	sfConcurrent = -1 // 403 REQUEST_LIMIT_EXCEEDED: too many long-running requests
	sfTotal      = -2 // 403 REQUEST_LIMIT_EXCEEDED: the 24-hour allocation spent
	sfExpired    = -3 // the cursor expired (or was released) before this request
	sfShort      = -4 // this page says done, with records still unread
	sfTimeout    = -5 // 400 QUERY_TIMEOUT: the query ran too long
	sfOthers     = -6 // another client of the same user opens 10 cursors first
)

var sfFields = map[string][]string{
	"Account": {"Id", "Name", "Type", "Industry", "AnnualRevenue", "NumberOfEmployees", "OwnerId", "IsDeleted", "MasterRecordId", "CreatedDate", "SystemModstamp"},
	"Contact": {"Id", "AccountId", "FirstName", "LastName", "Email", "Title", "IsDeleted", "MasterRecordId", "CreatedDate", "SystemModstamp"},
}

// sfID is an 18-character record id with the object's key prefix.
func sfID(prefix string, i int) string {
	h := sha256.Sum256([]byte(prefix + strconv.Itoa(i)))
	return prefix + "RO" + strings.ToUpper(hex.EncodeToString(h[:])[:13])
}

// sfStamp writes t as the REST API writes a dateTime: UTC, milliseconds,
// an offset without a colon.
func sfStamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000-0700") }

// sfBase is when the simulated org's records were stamped from: two days
// before the test, so that every cursor is before the run's start.
var sfBase = time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Second)

func newSFSim() *sfSim {
	s := &sfSim{clientID: sfClientID, secret: sfClientSecret, tokenLife: 1 << 30, records: map[string][]map[string]any{},
		tokens: map[string]int{}, cursors: map[string]*sfCursor{}, faults: map[string][]int{}}
	types := []any{"Customer - Direct", "Prospect", nil, "Partner"}
	// 4,500 accounts changed 25 at a time, a minute apart: many share a
	// SystemModstamp, and pages of 2,000 end inside a second.
	for i := range 4500 {
		at := sfStamp(sfBase.Add(time.Duration(i/25) * time.Minute))
		a := map[string]any{"Id": sfID("001", i), "Name": fmt.Sprintf("Account %d", i), "Type": types[i%4], "Industry": nil,
			"AnnualRevenue": float64(i) * 1000.5, "NumberOfEmployees": i % 300, "OwnerId": sfID("005", i%7), "IsDeleted": false,
			"MasterRecordId": nil, "CreatedDate": at, "SystemModstamp": at}
		if i%3 == 0 {
			a["Industry"] = "Energy"
		}
		s.records["Account"] = append(s.records["Account"], a)
	}
	// Deleted (in the recycle bin), and one merged into account 1.
	s.records["Account"][10]["IsDeleted"] = true
	s.records["Account"][11]["IsDeleted"], s.records["Account"][11]["MasterRecordId"] = true, sfID("001", 1)
	for i := range 2100 {
		at := sfStamp(sfBase.Add(time.Duration(i/10) * time.Second))
		c := map[string]any{"Id": sfID("003", i), "AccountId": sfID("001", i%4500), "FirstName": fmt.Sprintf("First%d", i), "LastName": "Last",
			"Email": nil, "Title": nil, "IsDeleted": i%500 == 7, "MasterRecordId": nil, "CreatedDate": at, "SystemModstamp": at}
		if i%2 == 0 {
			c["Email"] = fmt.Sprintf("c%d@example.com", i)
		}
		s.records["Contact"] = append(s.records["Contact"], c)
	}
	return s
}

func sfError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, []map[string]any{{"message": msg, "errorCode": code}})
}

var (
	sfQueryRE   = regexp.MustCompile(`^SELECT (.+) FROM (\w+)(?: WHERE SystemModstamp >= (\S+))?$`)
	sfLiteralRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$`)
	sfPathRE    = regexp.MustCompile(`^(/services/data/v\d+\.\d)/(query|queryAll)(?:/(01g[0-9A-Za-z]+)-(\d+))?/?$`)
)

func (s *sfSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	s.used++
	w.Header().Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/15000", s.used))
	s.mu.Unlock()
	if r.URL.Path == "/services/oauth2/token" {
		s.token(w, r)
		return
	}
	m := sfPathRE.FindStringSubmatch(r.URL.Path)
	if m == nil || m[1] != "/services/data/v62.0" {
		sfError(w, 404, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	if !s.authorized(r) {
		sfError(w, 401, "INVALID_SESSION_ID", "Session expired or invalid")
		return
	}
	var (
		object string
		page   int
		cur    *sfCursor
		id     = m[3]
	)
	s.mu.Lock()
	if id != "" {
		// A later page: the cursor must still be open.
		page, _ = strconv.Atoi(m[4])
		cur = s.cursors[id]
		if cur != nil {
			object = cur.object
			page /= cur.size
		}
	} else {
		q := r.URL.Query().Get("q")
		s.queries = append(s.queries, q)
		if qm := sfQueryRE.FindStringSubmatch(q); qm != nil {
			object = qm[2]
		}
	}
	fault := 0
	if f := s.faults[object+"|"+strconv.Itoa(page)]; object != "" && len(f) > 0 {
		fault, s.faults[object+"|"+strconv.Itoa(page)] = f[0], f[1:]
	}
	if fault == sfExpired && cur != nil {
		s.closeCursor(id)
		cur = nil
	}
	if fault == sfOthers {
		// Each opens a cursor of the user's 10: the oldest are released.
		for range 10 {
			s.nextID++
			other := fmt.Sprintf("01gSIM%09dAAA", s.nextID)
			s.cursors[other] = &sfCursor{object: "Contact", size: 200, path: m[1]}
			s.open = append(s.open, other)
			if len(s.open) > 10 {
				s.closeCursor(s.open[0])
			}
		}
		cur = s.cursors[id]
	}
	s.mu.Unlock()

	switch fault {
	case sfConcurrent:
		sfError(w, 403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded")
		return
	case sfTotal:
		sfError(w, 403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
		return
	case sfTimeout:
		sfError(w, 400, "QUERY_TIMEOUT", "Your query request was running for too long.")
		return
	case 0, sfExpired, sfShort, sfOthers:
	default:
		sfError(w, fault, "UNKNOWN_EXCEPTION", http.StatusText(fault))
		return
	}
	if id != "" {
		if cur == nil {
			sfError(w, 400, "INVALID_QUERY_LOCATOR", "invalid query locator")
			return
		}
		s.page(w, id, cur, page*cur.size, fault == sfShort)
		return
	}
	s.query(w, r, m[1], m[2], fault == sfShort)
}

// query runs a SOQL query and answers its first batch.
func (s *sfSim) query(w http.ResponseWriter, r *http.Request, version, resource string, short bool) {
	q := r.URL.Query().Get("q")
	qm := sfQueryRE.FindStringSubmatch(q)
	if qm == nil {
		sfError(w, 400, "MALFORMED_QUERY", "unexpected token: the simulator reads SELECT … FROM … [WHERE SystemModstamp >= …]")
		return
	}
	object, fields := qm[2], strings.Split(qm[1], ", ")
	known, ok := sfFields[object]
	if !ok {
		sfError(w, 400, "INVALID_TYPE", "sObject type '"+object+"' is not supported.")
		return
	}
	for _, f := range fields {
		if !slices.Contains(known, f) {
			sfError(w, 400, "INVALID_FIELD", "No such column '"+f+"' on entity '"+object+"'.")
			return
		}
	}
	var since time.Time
	if qm[3] != "" {
		if !sfLiteralRE.MatchString(qm[3]) {
			sfError(w, 400, "MALFORMED_QUERY", "value of filter criterion for field 'SystemModstamp' must be of type dateTime and should not be enclosed in quotes")
			return
		}
		since, _ = time.Parse(time.RFC3339, qm[3])
	}
	size := 2000
	if opt := r.Header.Get("Sforce-Query-Options"); opt != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(opt, "batchSize="))
		if err != nil {
			sfError(w, 400, "INVALID_QUERY_OPTIONS", "invalid Sforce-Query-Options: "+opt)
			return
		}
		size = min(max(n, 200), 2000)
	}
	if object == "Contact" {
		size = min(size, 700) // wide records: the server sends fewer
	}
	s.mu.Lock()
	var rows []map[string]any
	for _, rec := range s.records[object] {
		if resource == "query" && rec["IsDeleted"] == true {
			continue
		}
		if at, _ := time.Parse("2006-01-02T15:04:05.000-0700", rec["SystemModstamp"].(string)); at.Before(since) {
			continue
		}
		row := map[string]any{"attributes": map[string]any{"type": object, "url": version + "/sobjects/" + object + "/" + rec["Id"].(string)}}
		for _, f := range fields {
			row[f] = rec[f]
		}
		rows = append(rows, row)
	}
	s.nextID++
	id := fmt.Sprintf("01gSIM%09dAAA", s.nextID)
	s.cursors[id] = &sfCursor{object: object, rows: rows, size: size, path: version}
	s.open = append(s.open, id)
	if len(s.open) > 10 {
		// A user has at most 10 open cursors: the oldest is released.
		s.closeCursor(s.open[0])
	}
	cur := s.cursors[id]
	s.mu.Unlock()
	s.page(w, id, cur, 0, short)
}

// page answers the batch of cur from offset.
func (s *sfSim) page(w http.ResponseWriter, id string, cur *sfCursor, offset int, short bool) {
	end := min(offset+cur.size, len(cur.rows))
	body := map[string]any{"totalSize": len(cur.rows), "done": end >= len(cur.rows) || short, "records": cur.rows[min(offset, end):end]}
	if end < len(cur.rows) && !short {
		body["nextRecordsUrl"] = fmt.Sprintf("%s/query/%s-%d", cur.path, id, end)
	} else {
		s.mu.Lock()
		s.closeCursor(id)
		s.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	writeJSON(w, 200, body)
}

// closeCursor drops cursor id; s.mu is held.
func (s *sfSim) closeCursor(id string) {
	delete(s.cursors, id)
	s.open = slices.DeleteFunc(s.open, func(o string) bool { return o == id })
}

// expireAll drops every open cursor, as 15 idle minutes would.
func (s *sfSim) expireAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range slices.Clone(s.open) {
		s.closeCursor(id)
	}
}

func (s *sfSim) authorized(r *http.Request) bool {
	return spendBearer(&s.mu, s.tokens, r)
}

// token answers the client credentials grant (a form with grant_type,
// client_id and client_secret) and, with jwtKey, the JWT bearer grant
// (grant_type and assertion); no expires_in, no refresh token.
func (s *sfSim) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		writeJSON(w, 400, map[string]any{"error": "invalid_request", "error_description": "must use HTTP POST"})
		return
	}
	f := r.PostForm
	if f.Get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer" && s.jwtKey != nil {
		if problem := s.checkJWT(f.Get("assertion")); problem != "" {
			writeJSON(w, 400, map[string]any{"error": "invalid_grant", "error_description": problem})
			return
		}
	} else if f.Get("grant_type") != "client_credentials" {
		writeJSON(w, 400, map[string]any{"error": "unsupported_grant_type", "error_description": "grant type not supported"})
		return
	} else if f.Get("client_id") != s.clientID || f.Get("client_secret") != s.secret {
		writeJSON(w, 400, map[string]any{"error": "invalid_client", "error_description": "invalid client credentials"})
		return
	}
	s.mu.Lock()
	s.logins++
	tok := fmt.Sprintf("%s%04d.%s", sfTokenPrefix, s.logins, sfID("tok", s.logins))
	s.tokens[tok] = s.tokenLife
	s.mu.Unlock()
	writeJSON(w, 200, map[string]any{"access_token": tok, "signature": "c2lnbmF0dXJlLXNpbQ==", "token_format": "opaque", "scope": "api",
		"instance_url": "http://" + r.Host, "id": "https://login.salesforce.com/id/00DSIM000000001/005SIM000000001",
		"token_type": "Bearer", "issued_at": strconv.FormatInt(time.Now().UnixMilli(), 10)})
}

// checkJWT checks a JWT bearer flow's assertion: RS256 signed by the
// app's certificate key, iss the consumer key, sub the user, aud the login
// host, exp in the next three minutes; it says what is wrong, or "".
func (s *sfSim) checkJWT(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "invalid assertion"
	}
	head, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	body, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	var h struct{ Alg string }
	var c struct {
		Iss, Sub, Aud string
		Exp           int64
	}
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(head, &h) != nil || json.Unmarshal(body, &c) != nil {
		return "invalid assertion"
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch exp := time.Unix(c.Exp, 0); {
	case h.Alg != "RS256" || rsa.VerifyPKCS1v15(s.jwtKey, crypto.SHA256, digest[:], sig) != nil:
		return "invalid assertion"
	case c.Iss != s.clientID:
		return "invalid client credentials"
	case c.Sub != s.jwtUser:
		return "user hasn't approved this consumer"
	case c.Aud != "https://login.salesforce.com":
		return "audience is invalid"
	case !exp.After(time.Now()) || exp.After(time.Now().Add(3*time.Minute+5*time.Second)):
		return "expired authorization code"
	}
	return ""
}

// revoke makes every token, present and future, refused.
func (s *sfSim) revoke() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenLife = 0
	for k := range s.tokens {
		s.tokens[k] = 0
	}
}

// ids are the ids of object's records queryAll lists.
func (s *sfSim) ids(object string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.records[object] {
		out = append(out, r["Id"].(string))
	}
	return out
}

func (s *sfSim) asked(object string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, q := range s.queries {
		if strings.Contains(q, " FROM "+object) {
			out = append(out, q)
		}
	}
	return out
}

func sfSets(url string) map[string]string {
	return map[string]string{"instance_url": url, "client_id": sfClientID, "client_secret": sfClientSecret}
}

func sfRun(t *testing.T, url, db string) vendorRun {
	t.Helper()
	return runVendorOpts(t, "salesforce.yaml", sfSets(url), engine.RunOptions{Dest: "sqlite:" + db})
}

// Salesforce: every account and contact written once, deleted ones
// (queryAll) marked is_deleted: batches capped below what was asked, a
// 503 and a concurrent-requests refusal retried, a session that times out
// renewed; the first run asks from the initial cursor in SOQL's literal
// form; the secret and tokens never printed.
func TestSalesforce(t *testing.T) {
	t.Parallel()
	sim := newSFSim()
	// The session times out after six requests: more than the contacts
	// stream sends in all, so that it cannot spend a token renewed while an
	// account request is in flight (a session times out idle, never a
	// moment after it began).
	sim.tokenLife = 6
	sim.faults["Account|1"] = []int{503, sfConcurrent}
	sim.faults["Contact|0"] = []int{500}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "salesforce.yaml", sfSets(srv.URL), time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	sameIDs(t, "accounts, each once", sim.ids("Account"), ids(r.rows["accounts"], "id"))
	sameIDs(t, "contacts, each once", sim.ids("Contact"), ids(r.rows["contacts"], "id"))
	byID := map[string]map[string]any{}
	for _, row := range r.rows["accounts"] {
		byID[fmt.Sprint(row["id"])] = row
	}
	if row := byID[sfID("001", 11)]; row == nil || row["is_deleted"] != true || row["master_record_id"] != sfID("001", 1) {
		t.Errorf("the merged account's row = %v, want is_deleted and its master", row)
	}
	if row := byID[sfID("001", 14)]; row == nil || row["is_deleted"] != false || row["type"] != nil || row["industry"] != nil {
		t.Errorf("account 14's row = %v, want alive, type and industry null", row)
	}
	for _, q := range append(sim.asked("Account"), sim.asked("Contact")...) {
		if !strings.HasSuffix(q, "WHERE SystemModstamp >= 1970-01-01T00:00:00Z") {
			t.Errorf("query %q: want the initial cursor as a SOQL literal", q)
		}
	}
	for _, req := range sim.requests {
		if strings.HasPrefix(req.URL.Path, "/services/data/") && req.Header.Get("Sforce-Query-Options") != "batchSize=2000" {
			t.Errorf("%s sent without Sforce-Query-Options", req.URL.Path)
			break
		}
	}
	for k, f := range sim.faults {
		if len(f) > 0 {
			t.Errorf("faults %v of %s never answered", f, k)
		}
	}
	// The 503 and the concurrent limit, and a renewed session's resend
	// when the timeout fell on an account request.
	if s := stream(r.res, "accounts"); s.Retries < 2 {
		t.Errorf("accounts retries = %d, want at least 2 (the 503, the concurrent limit)", s.Retries)
	}
	if sim.logins < 2 {
		t.Errorf("%d token requests, want another after the session timed out", sim.logins)
	}
	noDuplicates(t, r)
	noSecret(t, r, sfClientSecret, sfTokenPrefix)
}

// The next run asks only what changed since the largest SystemModstamp
// read, less the lookback: a change, a deletion, and a record a long
// transaction committed after the first run though it was stamped before
// that run's cursor are all written.
func TestSalesforceIncremental(t *testing.T) {
	t.Parallel()
	sim := newSFSim()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	db := filepath.Join(t.TempDir(), "sf.db")
	if r := sfRun(t, srv.URL, db); r.err != nil {
		t.Fatalf("first run: %v", r.err)
	}
	last := sfBase.Add(4499 / 25 * time.Minute) // the newest account's stamp: the saved cursor

	sim.mu.Lock()
	accts := sim.records["Account"]
	accts[5]["Name"], accts[5]["SystemModstamp"] = "Renamed", sfStamp(last.Add(time.Hour))
	accts[6]["IsDeleted"], accts[6]["SystemModstamp"] = true, sfStamp(last.Add(time.Hour))
	late := map[string]any{"Id": sfID("001", 90001), "Name": "Committed late", "Type": nil, "Industry": nil, "AnnualRevenue": nil,
		"NumberOfEmployees": nil, "OwnerId": sfID("005", 1), "IsDeleted": false, "MasterRecordId": nil,
		"CreatedDate": sfStamp(last.Add(-4 * time.Minute)), "SystemModstamp": sfStamp(last.Add(-4 * time.Minute))}
	sim.records["Account"] = append(accts, late)
	sim.mu.Unlock()

	r := sfRun(t, srv.URL, db)
	if r.err != nil {
		t.Fatalf("second run: %v", r.err)
	}
	asked := sim.asked("Account")
	if want := "WHERE SystemModstamp >= " + last.Add(-10*time.Minute).Format("2006-01-02T15:04:05Z"); len(asked) != 2 || !strings.HasSuffix(asked[1], want) {
		t.Errorf("account queries %q: want the second to end %q", asked, want)
	}
	got := query(t, db, `SELECT id, name, is_deleted FROM salesforce__accounts WHERE id IN ('`+sfID("001", 5)+`', '`+sfID("001", 6)+`', '`+sfID("001", 90001)+`') ORDER BY name`)
	want := []string{sfID("001", 6) + "|Account 6|1", sfID("001", 90001) + "|Committed late|0", sfID("001", 5) + "|Renamed|0"}
	if !slices.Equal(got, want) {
		t.Errorf("changed accounts = %q, want %q", got, want)
	}
	if n := query(t, db, `SELECT count(*) FROM salesforce__accounts`); !slices.Equal(n, []string{"4501"}) {
		t.Errorf("%v accounts, want 4501", n)
	}
	if n := stream(r.res, "accounts").Records; n > 300 {
		t.Errorf("the second run read %d accounts, want only those of its last 10 minutes and the changes", n)
	}
}

// A run fails inside the account query (a page's QUERY_TIMEOUT);
// its checkpoint holds the query locator, which expires before the next
// run: that run's request for the page is refused INVALID_QUERY_LOCATOR,
// and the rule's restart queries again from the start, in the same run:
// every account written once. So when another client of the same user
// releases the cursor mid-read (10 open cursors a user). Refused again
// from the start, the run fails saying so.
func TestSalesforceExpiredLocator(t *testing.T) {
	t.Parallel()
	sim := newSFSim()
	sim.faults["Account|2"] = []int{sfTimeout}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	db := filepath.Join(t.TempDir(), "sf.db")
	failedRun(t, sfRun(t, srv.URL, db), []string{"accounts", "QUERY_TIMEOUT"})

	sim.expireAll()
	r := sfRun(t, srv.URL, db)
	if r.err != nil {
		t.Fatalf("the resumed run: %v", r.err)
	}
	if !strings.Contains(r.said, "reading it again from its start") || !strings.Contains(r.said, "INVALID_QUERY_LOCATOR") {
		t.Errorf("the run does not say it queried again, and why:\n%.2000s", r.said)
	}
	if n := query(t, db, `SELECT count(*) FROM salesforce__accounts`); !slices.Equal(n, []string{"4500"}) {
		t.Errorf("%v accounts, want 4500", n)
	}
	noDuplicates(t, r)

	// Another client of the same user opens ten cursors while the
	// accounts are read: the account cursor is released, and the query
	// is asked again in the same run.
	sim = newSFSim()
	sim.faults["Account|1"] = []int{sfOthers}
	srv1 := httptest.NewServer(sim)
	defer srv1.Close()
	db = filepath.Join(t.TempDir(), "sf.db")
	if r = sfRun(t, srv1.URL, db); r.err != nil {
		t.Fatalf("the run whose cursor was released: %v", r.err)
	}
	if n := len(sim.asked("Account")); n != 2 {
		t.Errorf("%d account queries, want 2 (the one released, the one read again)", n)
	}
	if n := query(t, db, `SELECT count(*) FROM salesforce__accounts`); !slices.Equal(n, []string{"4500"}) {
		t.Errorf("%v accounts, want 4500", n)
	}

	sim = newSFSim()
	sim.faults["Account|1"] = []int{sfExpired, sfExpired}
	srv2 := httptest.NewServer(sim)
	defer srv2.Close()
	r = runVendor(t, "salesforce.yaml", sfSets(srv2.URL), time.Time{})
	failedRun(t, r, []string{"accounts", "INVALID_QUERY_LOCATOR", "refused again when read from its start"})
}

// Salesforce's refusals fail the run, naming the stream and the reason;
// the spent 24-hour allocation is not retried; a chain that says done
// before its totalSize fails; nothing secret is printed.
func TestSalesforceErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		sets   map[string]string
		faults map[string][]int
		revoke bool
		want   []string
		tries  int // requests of the account query, when checked
	}{
		{name: "the 24-hour allocation spent", faults: map[string][]int{"Account|0": {sfTotal, sfTotal, sfTotal}},
			want: []string{"accounts", "403", "REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded", "rolling 24 hours"}, tries: 1},
		{name: "a wrong client secret", sets: map[string]string{"client_secret": "WrongSfSecret-000000000000"},
			want: []string{"accounts", "invalid_client"}},
		{name: "a session refused after renewal", revoke: true,
			want: []string{"accounts", "401", "INVALID_SESSION_ID: Session expired or invalid"}},
		{name: "a query that ends before its totalSize", faults: map[string][]int{"Account|1": {sfShort}},
			want: []string{"accounts", "paginate.total", "4500"}},
		{name: "an API version the org does not know", sets: map[string]string{"api_version": "19.0"},
			want: []string{"accounts", "404", "NOT_FOUND: The requested resource does not exist"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newSFSim()
			for k, v := range c.faults {
				sim.faults[k] = v
			}
			if c.revoke {
				sim.revoke()
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			sets := sfSets(srv.URL)
			for k, v := range c.sets {
				sets[k] = v
			}
			r := runVendor(t, "salesforce.yaml", sets, time.Time{})
			failedRun(t, r, c.want)
			if n := len(sim.asked("Account")); c.tries > 0 && n != c.tries {
				t.Errorf("%d account queries, want %d (not retried)", n, c.tries)
			}
			noSecret(t, r, sfClientSecret, sets["client_secret"], sfTokenPrefix)
		})
	}
}

// The JWT bearer flow the spec's comments describe: a JWT signed with the
// app's key (iss the consumer key, sub the user, aud the login host, exp
// three minutes ahead) sent as the form field assertion; asked again when
// the session times out; every record written once; neither the key, the
// JWT nor a token printed.
func TestSalesforceJWT(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("salesforce.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec := string(b)
	// The auth block as the spec's comments give it, their "# " cut.
	var variant []string
	in := false
	for _, line := range strings.Split(spec, "\n") {
		switch {
		case strings.HasPrefix(line, "# JWT bearer flow:"):
			in = true
		case in && strings.HasPrefix(line, "#   "):
			variant = append(variant, strings.TrimPrefix(line, "# "))
		case !strings.HasPrefix(line, "#"):
			in = false
		}
	}
	current := `  auth:
    type: oauth2
    token_url: ${ config.instance_url }/services/oauth2/token
    client_id: ${ config.client_id }
    client_secret: ${ config.client_secret }
    client_auth: body
`
	if len(variant) < 5 || !strings.Contains(spec, current) {
		t.Fatalf("salesforce.yaml's auth block or its JWT variant is not the one this test reads: %q", variant)
	}
	spec = strings.Replace(spec, current, strings.Join(variant, "\n")+"\n", 1)
	spec = strings.Replace(spec, "config:\n", `config:
  username:
    required: true
  private_key:
    required: true
    secret: true
`, 1)
	spec = strings.Replace(spec, "  client_secret:\n    required: true\n", "  client_secret:\n", 1)
	path := filepath.Join(t.TempDir(), "salesforce-jwt.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(key))}))
	sim := newSFSim()
	sim.jwtKey, sim.jwtUser = &key.PublicKey, "etl@acme.example"
	sim.tokenLife = 4 // the session times out after four requests (contacts send three)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	sets := map[string]string{"instance_url": srv.URL, "client_id": sfClientID, "username": "etl@acme.example", "private_key": keyPEM}
	r := runVendor(t, path, sets, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	sameIDs(t, "accounts, each once", sim.ids("Account"), ids(r.rows["accounts"], "id"))
	sameIDs(t, "contacts, each once", sim.ids("Contact"), ids(r.rows["contacts"], "id"))
	if sim.logins < 2 {
		t.Errorf("%d tokens issued, want another after the session timed out", sim.logins)
	}
	keyLine := strings.Split(keyPEM, "\n")[3]
	noSecret(t, r, keyLine, "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.", sfTokenPrefix)

	sim.jwtUser = "someone.else@acme.example" // the app is not approved for this user
	failedRun(t, runVendor(t, path, sets, time.Time{}), []string{"accounts", "invalid_grant", "user hasn't approved this consumer"})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
