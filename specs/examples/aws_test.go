package examples_test

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/apitest"
)

const (
	awsKeyID   = "AKIAIOSFODNN7EXAMPLE"
	awsSecret  = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	awsSession = "IQoJb3JpZ2luX2VjEXAMPLE//sessiontoken+abc=="
	awsTarget  = "AWSOrganizationsV20161128.ListAccounts"
)

// orgSim is AWS Organizations' ListAccounts as its API reference and the
// JSON 1.1 protocol describe it (testdata/aws.md): it verifies every
// request's Signature Version 4 independently (apitest.SigV4), caps
// MaxResults at 20 (more is an error), sends short and empty pages while
// more follow, omits NextToken on the last page, throttles with a 400
// TooManyRequestsException and fails with a 500 ServiceException on cue.
type orgSim struct {
	verify   apitest.SigV4
	skew     time.Duration // the server's clock, off the real one
	accounts []map[string]any
	// faults are __type names answered to the n-th request (1-based)
	// before anything else.
	faults map[int]string
	// deny answers every request with this error (AccessDenied, say).
	deny *apitest.AWSError

	mu       sync.Mutex
	requests int
	pages    int
	tokens   map[string]int // NextToken -> offset
}

func newOrgSim(n int, session string) *orgSim {
	s := &orgSim{
		verify: apitest.SigV4{Region: "us-east-1", Service: "organizations",
			Keys: map[string]apitest.SigV4Key{awsKeyID: {Secret: awsSecret, SessionToken: session}}},
		faults: map[int]string{},
		tokens: map[string]int{},
	}
	s.verify.Now = func() time.Time { return time.Now().Add(s.skew) }
	for i := range n {
		a := map[string]any{
			"Id":              fmt.Sprintf("%012d", 100000000000+i*7919),
			"Arn":             fmt.Sprintf("arn:aws:organizations::111111111111:account/o-exampleorgid/%012d", 100000000000+i*7919),
			"Name":            fmt.Sprintf("account-%d", i),
			"JoinedMethod":    []string{"CREATED", "INVITED"}[i%2],
			"JoinedTimestamp": 1.4815e9 + float64(i)*86400.5,
		}
		if i%5 != 3 {
			a["Email"] = fmt.Sprintf("aws+%d@example.com", i) // optional: left out of some
		}
		if i%3 == 0 {
			a["Status"] = "ACTIVE" // an older answer: Status alone
		} else {
			a["State"], a["Status"] = "ACTIVE", "ACTIVE"
		}
		s.accounts = append(s.accounts, a)
	}
	return s
}

func (s *orgSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// AWS's clock: every answer carries its Date.
	w.Header().Set("Date", time.Now().Add(s.skew).UTC().Format(http.TimeFormat))
	w.Header().Set("X-Amzn-Requestid", "3f5a5b2e-0000-0000-0000-000000000000")
	fail := func(status int, typ, msg string) {
		(&apitest.AWSError{Status: status, Type: typ, Message: msg}).Write(w)
	}
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.requests++
	n := s.requests
	s.mu.Unlock()
	if e := s.verify.Check(r, body); e != nil {
		e.Write(w)
		return
	}
	if s.deny != nil {
		s.deny.Write(w)
		return
	}
	switch typ := s.faults[n]; typ {
	case "":
	case "TooManyRequestsException":
		// Organizations' own: Message capitalised, a Type beside it.
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"__type":"TooManyRequestsException","Message":"You have sent too many requests in too short a period of time. The quota helps protect against denial-of-service attacks. Try again later.","Type":null}`)
		return
	case "ServiceException":
		fail(http.StatusInternalServerError, typ, "AWS Organizations can't complete your request because of an internal service error. Try again later.")
		return
	default:
		fail(http.StatusBadRequest, typ, "fault")
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		fail(http.StatusNotFound, "UnknownOperationException", "")
		return
	}
	if r.Header.Get("X-Amz-Target") != awsTarget {
		fail(http.StatusBadRequest, "UnknownOperationException", "")
		return
	}
	if r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		fail(http.StatusBadRequest, "SerializationException", "")
		return
	}
	var in struct {
		MaxResults *int
		NextToken  *string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		fail(http.StatusBadRequest, "SerializationException", "Start of structure or map found where not expected.")
		return
	}
	size := 20
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 20 {
			fail(http.StatusBadRequest, "InvalidInputException", fmt.Sprintf("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 20", *in.MaxResults))
			return
		}
		size = *in.MaxResults
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	from := 0
	if in.NextToken != nil {
		off, ok := s.tokens[*in.NextToken]
		if !ok {
			fail(http.StatusBadRequest, "InvalidInputException", "You provided a value that does not match the required pattern.")
			return
		}
		from = off
	}
	s.pages++
	// Fewer than asked on some pages, none on one, while more follow.
	switch s.pages {
	case 2:
		size = 7
	case 3:
		size = 0
	}
	end := min(from+size, len(s.accounts))
	out := map[string]any{"Accounts": s.accounts[from:end]}
	if end < len(s.accounts) {
		tok := "AAMA-EFRSURBS" + strconv.Itoa(s.pages) + "x" + strconv.Itoa(end) + "/+=="
		s.tokens[tok] = end
		out["NextToken"] = tok
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

// awsSets are the inputs of a run against the simulators at orgURL and
// ctURL (CloudTrail, in eu-west-1).
func awsSets(orgURL, ctURL string) map[string]string {
	return map[string]string{"endpoint": orgURL, "cloudtrail_endpoint": ctURL, "cloudtrail_region": "eu-west-1",
		"access_key_id": awsKeyID, "secret_access_key": awsSecret, "session_token": awsSession}
}

// startAWS serves Organizations and CloudTrail until the test ends.
func startAWS(t *testing.T, org *orgSim, ct *ctSim) map[string]string {
	t.Helper()
	o, c := httptest.NewServer(org), httptest.NewServer(ct)
	t.Cleanup(o.Close)
	t.Cleanup(c.Close)
	return awsSets(o.URL, c.URL)
}

// ctSim is CloudTrail's LookupEvents (testdata/aws.md): signatures
// verified for eu-west-1 and service cloudtrail, MaxResults at most 50,
// two requests a second (a token bucket; a 400 ThrottlingException
// beyond), a NextToken valid only with the StartTime and EndTime it was
// issued for, newest events first, optional fields left out.
type ctSim struct {
	verify apitest.SigV4
	events []map[string]any
	faults map[int]string

	mu        sync.Mutex
	requests  int
	pages     int
	throttled int
	bucket    float64
	last      time.Time
	tokens    map[string]ctToken
	starts    []float64 // StartTime of each request
}

type ctToken struct {
	off        int
	start, end any
}

func newCTSim(n int, session string) *ctSim {
	s := &ctSim{
		verify: apitest.SigV4{Region: "eu-west-1", Service: "cloudtrail",
			Keys: map[string]apitest.SigV4Key{awsKeyID: {Secret: awsSecret, SessionToken: session}}},
		faults: map[int]string{}, tokens: map[string]ctToken{}, bucket: 2,
	}
	now := float64(time.Now().Unix())
	for i := range n {
		e := map[string]any{
			"EventId":         fmt.Sprintf("0f3c%04d-8f9e-4bd1-9d2a-%012d", i, i),
			"EventName":       []string{"ConsoleLogin", "DescribeInstances", "PutObject", "AssumeRole"}[i%4],
			"ReadOnly":        []string{"false", "true"}[i%2],
			"EventTime":       now - float64(i)*301.25,
			"EventSource":     "signin.amazonaws.com",
			"CloudTrailEvent": fmt.Sprintf(`{"eventVersion":"1.09","eventID":"%d","awsRegion":"eu-west-1"}`, i),
		}
		if i%4 != 1 {
			e["Username"] = fmt.Sprintf("user%d", i%7) // left out of some
			e["AccessKeyId"] = "ASIAEXAMPLE" + strconv.Itoa(i%3)
		}
		s.events = append(s.events, e)
	}
	return s
}

func (s *ctSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Date", time.Now().UTC().Format(http.TimeFormat))
	fail := func(status int, typ, msg string) {
		(&apitest.AWSError{Status: status, Type: typ, Message: msg}).Write(w)
	}
	body, _ := io.ReadAll(r.Body)
	if e := s.verify.Check(r, body); e != nil {
		e.Write(w)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	now := time.Now()
	if !s.last.IsZero() {
		s.bucket = min(2, s.bucket+2*now.Sub(s.last).Seconds())
	}
	s.last = now
	if s.bucket < 1 || s.faults[s.requests] == "ThrottlingException" {
		s.throttled++
		fail(http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
		return
	}
	s.bucket--
	if r.Header.Get("X-Amz-Target") != "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents" || r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		fail(http.StatusBadRequest, "UnknownOperationException", "")
		return
	}
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		fail(http.StatusBadRequest, "SerializationException", "")
		return
	}
	start, ok := in["StartTime"].(float64)
	if !ok {
		fail(http.StatusBadRequest, "SerializationException", "STRING_VALUE can not be converted to a Timestamp")
		return
	}
	s.starts = append(s.starts, start)
	size := 50
	if m, ok := in["MaxResults"].(float64); ok {
		if m < 1 || m > 50 {
			fail(http.StatusBadRequest, "InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
			return
		}
		size = int(m)
	}
	from := 0
	if tok, ok := in["NextToken"].(string); ok {
		t, known := s.tokens[tok]
		if !known || t.start != in["StartTime"] || t.end != in["EndTime"] {
			fail(http.StatusBadRequest, "InvalidNextTokenException", "Invalid NextToken: the token was issued for other parameters.")
			return
		}
		from = t.off
	}
	var match []map[string]any
	for _, e := range s.events {
		if e["EventTime"].(float64) >= start {
			match = append(match, e)
		}
	}
	s.pages++
	if s.pages == 2 {
		size = 13
	}
	end := min(from+size, len(match))
	out := map[string]any{"Events": match[from:end]}
	if end < len(match) {
		tok := fmt.Sprintf("kbOt5LlLU%d/%d+==", s.pages, end)
		s.tokens[tok] = ctToken{off: end, start: in["StartTime"], end: in["EndTime"]}
		out["NextToken"] = tok
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

func (s *ctSim) ids() []string {
	var out []string
	for _, e := range s.events {
		out = append(out, e["EventId"].(string))
	}
	return out
}

func (s *orgSim) ids() []string {
	var out []string
	for _, a := range s.accounts {
		out = append(out, a["Id"].(string))
	}
	return out
}

// AWS Organizations: every account written once, over NextToken pages
// in the body (capped at 20, short and empty pages mid-list), every
// request signed and verified, with temporary credentials; a throttle
// (a 400) and a 500 retried, re-signed; no secret printed.
func TestAWS(t *testing.T) {
	t.Parallel()
	sim := newOrgSim(53, awsSession)
	sim.faults[2] = "TooManyRequestsException"
	sim.faults[5] = "ServiceException"
	ct := newCTSim(130, awsSession)
	ct.faults[2] = "ThrottlingException"

	r := runVendor(t, "aws.yaml", startAWS(t, sim, ct), time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	sameIDs(t, "accounts", sim.ids(), column(r.rows["accounts"], "id"))
	sameIDs(t, "events", ct.ids(), column(r.rows["events"], "id"))
	for i, st := range ct.starts {
		if st != ct.starts[0] {
			t.Errorf("LookupEvents request %d: StartTime %v, the first's %v", i+1, st, ct.starts[0])
		}
	}
	if first := time.Unix(int64(ct.starts[0]), 0); time.Since(first) < 23*time.Hour || time.Since(first) > 25*time.Hour {
		t.Errorf("StartTime %v: want 24 hours back (lookback's default)", first)
	}
	for _, row := range r.rows["events"] {
		if row["at"] == nil || row["event"] == nil || row["read_only"] == nil {
			t.Errorf("event row %v: want its time, read_only and the parsed CloudTrailEvent", row)
			break
		}
	}
	if ct.throttled != 1 {
		t.Errorf("CloudTrail throttled %d requests, want only the one forced (rate_limit keeps under two a second)", ct.throttled)
	}
	for _, row := range r.rows["accounts"] {
		if row["state"] != "ACTIVE" || row["joined_at"] == nil {
			t.Errorf("account row %v: want its state (State, or Status alone) and joined_at", row)
			break
		}
	}
	if sim.pages < 5 {
		t.Errorf("%d pages, want at least 5 (20 at most a page, a short and an empty one)", sim.pages)
	}
	if s := stream(r.res, "accounts"); s.Retries < 2 {
		t.Errorf("retries = %d, want at least 2 (the throttle, the 500)", s.Retries)
	}
	noDuplicates(t, r)
	noSecret(t, r, awsSecret, awsSession)
}

// AWS's refusals fail the run, naming the stream, the __type and the
// message; a wrong secret is refused by the signature check.
func TestAWSErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		sets map[string]string
		deny *apitest.AWSError
		want []string
	}{
		{name: "a wrong secret", sets: map[string]string{"secret_access_key": "WRONGwrongWRONGwrongWRONGwrong/0123456"},
			want: []string{"accounts", "400", "InvalidSignatureException: The request signature we calculated does not match"}},
		{name: "an unknown key", sets: map[string]string{"access_key_id": "AKIAUNKNOWNKEY000000"},
			want: []string{"accounts", "UnrecognizedClientException"}},
		{name: "no session token for temporary credentials", sets: map[string]string{"session_token": ""},
			want: []string{"accounts", "UnrecognizedClientException: The security token included in the request is invalid"}},
		{name: "a key without the permission",
			deny: &apitest.AWSError{Status: 400, Type: "AccessDeniedException", Message: "You don't have permissions to access this resource."},
			want: []string{"accounts", "AccessDeniedException: You don't have permissions"}},
		{name: "an account outside an organization",
			deny: &apitest.AWSError{Status: 400, Type: "com.amazonaws.organizations.v20161128#AWSOrganizationsNotInUseException", Message: "Your account is not a member of an organization."},
			want: []string{"accounts", "AWSOrganizationsNotInUseException: Your account is not a member"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newOrgSim(30, awsSession)
			sim.deny = c.deny
			sets := startAWS(t, sim, newCTSim(10, awsSession))
			for k, v := range c.sets {
				sets[k] = v
			}
			r := runVendor(t, "aws.yaml", sets, time.Time{})
			failedRun(t, r, c.want)
			noSecret(t, r, awsSecret, awsSession, sets["secret_access_key"])
		})
	}
}

// A local clock more than 5 minutes off AWS's: refused (Signature
// expired), and the run says the clock is the cause.
func TestAWSClockSkew(t *testing.T) {
	t.Parallel()
	sim := newOrgSim(30, awsSession)
	sim.skew = 9 * time.Minute
	r := runVendor(t, "aws.yaml", startAWS(t, sim, newCTSim(10, awsSession)), time.Time{})
	failedRun(t, r, []string{"accounts", "Signature expired", "the local clock is", "behind the server's", "NTP"})
	noSecret(t, r, awsSecret, awsSession)
}

// --record keeps neither the secret key, nor the session token, nor a
// signature (a credential for its request for minutes): the signed
// headers are held as <volatile>, so the cassette replays.
func TestAWSRecordReplay(t *testing.T) {
	t.Parallel()
	sim := newOrgSim(45, awsSession)
	ct := newCTSim(60, awsSession)
	org, cts := httptest.NewServer(sim), httptest.NewServer(ct)
	sets := awsSets(org.URL, cts.URL)
	dir := t.TempDir()
	// Both runs at one time by their clock, as a ferry test case's now:
	// pins it: StartTime is computed from it.
	t0 := time.Now()
	at := func() time.Time { return t0 }
	r := runVendorOpts(t, "aws.yaml", sets, engine.RunOptions{DryRun: true, Record: dir, Now: at})
	org.Close()
	cts.Close()
	if r.err != nil {
		t.Fatalf("record: %v", r.err)
	}
	var files int
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, s := range []string{awsSecret, awsSession, "Signature=", "AWS4-HMAC-SHA256"} {
			if strings.Contains(string(b), s) {
				t.Errorf("%s holds %q", path, s)
			}
		}
		return nil
	})
	if err != nil || files == 0 {
		t.Fatalf("cassette: %d files, %v", files, err)
	}
	re := runVendorOpts(t, "aws.yaml", sets, engine.RunOptions{DryRun: true, Replay: dir, Now: at})
	if re.err != nil {
		t.Fatalf("replay: %v", re.err)
	}
	sameIDs(t, "replayed accounts", sim.ids(), column(re.rows["accounts"], "id"))
	sameIDs(t, "replayed events", ct.ids(), column(re.rows["events"], "id"))
}

// A long-term key: session_token left unset sends no
// X-Amz-Security-Token (an empty one, or "null", AWS would refuse).
func TestAWSLongTermKey(t *testing.T) {
	t.Parallel()
	sim := newOrgSim(21, "")
	ct := httptest.NewServer(newCTSim(5, ""))
	defer ct.Close()
	var mu sync.Mutex
	var tokens []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		tokens = append(tokens, r.Header.Values("X-Amz-Security-Token")...)
		mu.Unlock()
		sim.ServeHTTP(w, r)
	}))
	defer srv.Close()
	sets := awsSets(srv.URL, ct.URL)
	delete(sets, "session_token")
	r := runVendor(t, "aws.yaml", sets, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	sameIDs(t, "accounts", sim.ids(), column(r.rows["accounts"], "id"))
	if len(tokens) > 0 {
		t.Errorf("X-Amz-Security-Token sent: %q", tokens)
	}
	noSecret(t, r, awsSecret)
}

// CloudTrailEvent is, as every member of an Event in AWS's API model,
// optional, and the spec parses it as JSON. An event without it is still
// an event: its row is written with a null `event`. One whose
// CloudTrailEvent is no JSON document fails its row, reported, the run
// exiting 1. Neither is dropped without a word (a jq object whose value
// is empty, `{event: (x | fromjson?)}`, is no object at all: the row
// vanished, exit 0).
func TestAWSEventWithoutCloudTrailEvent(t *testing.T) {
	t.Parallel()
	t.Run("absent", func(t *testing.T) {
		ct := newCTSim(12, awsSession)
		delete(ct.events[3], "CloudTrailEvent")
		r := runVendor(t, "aws.yaml", startAWS(t, newOrgSim(3, awsSession), ct), time.Time{})
		if r.err != nil {
			t.Fatalf("run: %v", r.err)
		}
		sameIDs(t, "events", ct.ids(), column(r.rows["events"], "id"))
	})
	t.Run("not JSON", func(t *testing.T) {
		ct := newCTSim(12, awsSession)
		ct.events[5]["CloudTrailEvent"] = `{"eventVersion":"1.09","eventID":"5","awsRe`
		r := runVendor(t, "aws.yaml", startAWS(t, newOrgSim(3, awsSession), ct), time.Time{})
		failedRun(t, r, []string{"events", ct.events[5]["EventId"].(string)})
		if got := len(r.rows["events"]); got != 11 {
			t.Errorf("%d events written, want the 11 others", got)
		}
	})
}
