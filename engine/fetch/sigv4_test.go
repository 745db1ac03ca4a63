package fetch

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/apitest"
)

const (
	awsKeyID   = "AKIDEXAMPLE"
	awsSecret  = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	awsSession = "FQoGZXIvYXdzEXAMPLEsessiontoken//+=="
)

// TestSigV4KnownAnswer signs AWS's published "get-vanilla" request (AWS
// Signature Version 4 test suite) and checks the signature it publishes;
// the simulator's own verifier must accept it too.
func TestSigV4KnownAnswer(t *testing.T) {
	s := newSigV4(Auth{AccessKeyID: awsKeyID, SecretAccessKey: awsSecret, Region: "us-east-1", Service: "service"})
	hdr := http.Header{}
	at := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	target, err := s.sign(t.Context(), hdr, "GET", "https://example.amazonaws.com/", nil, at)
	if err != nil {
		t.Fatal(err)
	}
	want := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
	if got := hdr.Get("Authorization"); got != want {
		t.Errorf("Authorization = %q, want %q", got, want)
	}
	if got := hdr.Get("X-Amz-Date"); got != "20150830T123600Z" {
		t.Errorf("X-Amz-Date = %q", got)
	}
	u, _ := url.Parse(target)
	r := &http.Request{Method: "GET", URL: u, Host: u.Host, Header: hdr}
	v := apitest.SigV4{Region: "us-east-1", Service: "service", Keys: map[string]apitest.SigV4Key{awsKeyID: {Secret: awsSecret}}, Now: func() time.Time { return at }}
	if err := v.Check(r, nil); err != nil {
		t.Errorf("the simulator refuses AWS's own example: %v", err)
	}
}

// awsServer verifies every request's signature by the fake clock, and
// answers what reply says (nil: 200 {"ok": true}).
func awsServer(t *testing.T, clk *fakeClock, key apitest.SigV4Key, reply func(n int, r *http.Request, w http.ResponseWriter) bool) (*httptest.Server, *[]http.Header) {
	t.Helper()
	v := apitest.SigV4{Region: "us-east-1", Service: "organizations", Keys: map[string]apitest.SigV4Key{awsKeyID: key}, Now: clk.Now}
	var mu sync.Mutex
	var seen []http.Header
	n := 0
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Date", clk.Now().Format(http.TimeFormat)) // AWS's clock, here the test's
		mu.Lock()
		n++
		i := n
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		if reply != nil && reply(i, r, w) {
			return
		}
		if e := v.Check(r, body); e != nil {
			e.Write(w)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		io.WriteString(w, `{"ok": true}`)
	})
	return srv, &seen
}

func sigAuth(secret, session string) Auth {
	return Auth{Type: AuthSigV4, AccessKeyID: awsKeyID, SecretAccessKey: secret, SessionToken: session, Region: "us-east-1", Service: "organizations"}
}

func TestSigV4Requests(t *testing.T) {
	tests := []struct {
		name string
		req  Request
	}{
		{"GET with a query", Request{URL: "/accounts/a b", Query: url.Values{"b": {"x y"}, "a": {"1", "0"}, "a-b": {"~*"}}}},
		{"JSON 1.1 POST", Request{Method: "POST", URL: "/", Header: http.Header{"X-Amz-Target": {"AWSOrganizationsV20161128.ListAccounts"}, "Content-Type": {"application/x-amz-json-1.1"}},
			Body: map[string]any{"NextToken": "tok/+=", "MaxResults": 20}}},
	}
	for _, tc := range tests {
		for _, session := range []string{"", awsSession} {
			t.Run(tc.name+map[bool]string{true: " with a session token"}[session != ""], func(t *testing.T) {
				clk := newFakeClock()
				srv, seen := awsServer(t, clk, apitest.SigV4Key{Secret: awsSecret, SessionToken: session}, nil)
				c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: srv.URL, Auth: sigAuth(awsSecret, session)})
				req := tc.req
				if _, err := c.Do(t.Context(), &req); err != nil {
					t.Fatalf("Do: %v", err)
				}
				if got := (*seen)[0].Get("X-Amz-Security-Token"); got != session {
					t.Errorf("X-Amz-Security-Token = %q, want %q", got, session)
				}
			})
		}
	}
}

// TestSigV4WrongSecret: AWS's refusal fails the request, naming it, and
// neither the secret nor the session token is in the error or the logs.
func TestSigV4WrongSecret(t *testing.T) {
	clk := newFakeClock()
	// An unkind server that echoes the security token it was sent.
	srv, _ := awsServer(t, clk, apitest.SigV4Key{Secret: awsSecret}, func(n int, r *http.Request, w http.ResponseWriter) bool {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"__type":"InvalidSignatureException","message":"The request signature we calculated does not match (token `+r.Header.Get("X-Amz-Security-Token")+`)"}`)
		return true
	})
	var logs syncBuffer
	wrong := "wrongSecretKeyValue/abc+def"
	c := mustClient(t, testPool(clk, 0, textLogger(&logs)), HostConfig{BaseURL: srv.URL, Auth: sigAuth(wrong, awsSession)})
	_, err := c.Do(t.Context(), &Request{URL: "/"})
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusBadRequest || !strings.Contains(err.Error(), "InvalidSignatureException") {
		t.Fatalf("Do: %v, want a 400 InvalidSignatureException", err)
	}
	if strings.Contains(err.Error(), "clock") {
		t.Errorf("Do: %v: a wrong key is no clock error", err)
	}
	for _, s := range []string{wrong, awsSession, url.QueryEscape(wrong)} {
		if strings.Contains(err.Error(), s) || strings.Contains(logs.String(), s) {
			t.Errorf("%q leaked:\n%v\n%s", s, err, logs.String())
		}
	}
}

// TestSigV4RetrySignsAgain: each attempt is signed at its own time, after
// its wait; one signed once would be refused after a wait of over five
// minutes (Signature expired).
func TestSigV4RetrySignsAgain(t *testing.T) {
	clk := newFakeClock()
	srv, seen := awsServer(t, clk, apitest.SigV4Key{Secret: awsSecret}, func(n int, r *http.Request, w http.ResponseWriter) bool {
		if n == 1 {
			clk.Advance(2 * time.Minute) // a slow answer, then a long wait
			w.Header().Set("Retry-After", "301")
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: srv.URL, Auth: sigAuth(awsSecret, ""), Retry: Retry{Max: time.Second}})
	if _, err := c.Do(t.Context(), &Request{Method: "POST", URL: "/", Body: map[string]any{}}); err != nil {
		t.Fatalf("Do: %v", err)
	}
	if len(*seen) != 2 || (*seen)[0].Get("X-Amz-Date") == (*seen)[1].Get("X-Amz-Date") {
		t.Errorf("attempts signed at %q and %q: want two attempts, each at its time", (*seen)[0].Get("X-Amz-Date"), (*seen)[len(*seen)-1].Get("X-Amz-Date"))
	}
}

// TestSigV4ClockSkew: AWS refuses a request signed more than 5 minutes
// off its clock; the error says the clock is wrong, and by how much.
func TestSigV4ClockSkew(t *testing.T) {
	tests := []struct {
		name   string
		status int
		date   time.Duration // the server's Date, off the local clock
		body   string
		want   string
	}{
		{"JSON protocol, server ahead", 400, 7 * time.Minute, `{"__type":"InvalidSignatureException","message":"Signature expired: 20260304T050607Z is now earlier than 20260304T050807Z (20260304T051307Z - 5 min.)"}`, "the local clock is 7m0s behind the server's"},
		{"server behind", 400, -10 * time.Minute, `{"__type":"InvalidSignatureException","message":"Signature not yet current"}`, "the local clock is 10m0s ahead of the server's"},
		{"XML, no Date", 403, 0, `<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the current time is too large.</Message></Error>`, "AWS refuses the request's time"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			srv, _ := awsServer(t, clk, apitest.SigV4Key{Secret: awsSecret}, func(n int, r *http.Request, w http.ResponseWriter) bool {
				if tc.date != 0 {
					w.Header().Set("Date", clk.Now().Add(tc.date).Format(http.TimeFormat))
				} else {
					w.Header()["Date"] = nil
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
				return true
			})
			c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: srv.URL, Auth: sigAuth(awsSecret, ""),
				Rules: []Rule{{Name: "rules[0]", Statuses: []StatusRange{{Min: 400, Max: 499}}, Action: ActionFail}}})
			_, err := c.Do(t.Context(), &Request{URL: "/"})
			var se *StatusError
			if !errors.As(err, &se) || se.Status != tc.status {
				t.Fatalf("Do: %v, want a StatusError %d", err, tc.status)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "NTP") {
				t.Errorf("Do: %v\nwant it to say %q", err, tc.want)
			}
		})
	}
}

// TestSigV4StaysOnOrigin: requests to another host are not signed.
func TestSigV4StaysOnOrigin(t *testing.T) {
	var got string
	other := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization") + r.Header.Get("X-Amz-Date")
	})
	clk := newFakeClock()
	srv, _ := awsServer(t, clk, apitest.SigV4Key{Secret: awsSecret}, nil)
	c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: srv.URL, Auth: sigAuth(awsSecret, "")})
	if _, err := c.Do(t.Context(), &Request{URL: other.URL + "/x"}); err != nil {
		t.Fatal(err)
	}
	if got != "" {
		t.Errorf("another host got %q", got)
	}
}

// TestSigV4RedirectSignsAgain: a redirect on the API's host is signed for
// its new path (the first request's signature covers the old one, and AWS
// would refuse it); a redirect to another host is not signed at all.
func TestSigV4RedirectSignsAgain(t *testing.T) {
	var got string
	other := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization") + r.Header.Get("X-Amz-Date") + r.Header.Get("X-Amz-Security-Token")
		io.WriteString(w, `{"ok": true}`)
	})
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			clk := newFakeClock()
			srv, seen := awsServer(t, clk, apitest.SigV4Key{Secret: awsSecret, SessionToken: awsSession}, func(n int, r *http.Request, w http.ResponseWriter) bool {
				switch r.URL.Path {
				case "/old":
					http.Redirect(w, r, "/new?b=1", http.StatusTemporaryRedirect)
					return true
				case "/away":
					http.Redirect(w, r, other.URL+"/x", http.StatusTemporaryRedirect)
					return true
				}
				return false
			})
			c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: srv.URL, Auth: sigAuth(awsSecret, awsSession)})
			req := Request{Method: method, URL: "/old"}
			if method == "POST" {
				req.Body = map[string]any{"MaxResults": 20}
			}
			if _, err := c.Do(t.Context(), &req); err != nil {
				t.Fatalf("Do through a redirect: %v", err)
			}
			if len(*seen) != 2 {
				t.Fatalf("%d requests, want 2", len(*seen))
			}
			if (*seen)[0].Get("Authorization") == (*seen)[1].Get("Authorization") {
				t.Errorf("the redirected request carried the first one's signature")
			}
			got = "unset"
			away := Request{Method: method, URL: "/away", Body: req.Body}
			if _, err := c.Do(t.Context(), &away); err != nil {
				t.Fatalf("Do through a redirect to another host: %v", err)
			}
			if got != "" {
				t.Errorf("another host got %q", got)
			}
		})
	}
}

// TestSigV4DefaultPort: a base URL that names its scheme's default port
// is signed and sent without it, as AWS reads the Host header: signed with
// the port and sent without (or the other way), AWS refuses it.
func TestSigV4DefaultPort(t *testing.T) {
	s := newSigV4(Auth{AccessKeyID: awsKeyID, SecretAccessKey: awsSecret, Region: "us-east-1", Service: "service"})
	at := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	want := http.Header{}
	if _, err := s.sign(t.Context(), want, "GET", "https://example.amazonaws.com/", nil, at); err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{"https://example.amazonaws.com:443/", "https://example.amazonaws.com:/"} {
		hdr := http.Header{}
		target, err := s.sign(t.Context(), hdr, "GET", raw, nil, at)
		if err != nil {
			t.Fatal(err)
		}
		if u, _ := url.Parse(target); u.Host != "example.amazonaws.com" {
			t.Errorf("%s is sent to host %q, want it without :443", raw, u.Host)
		}
		if hdr.Get("Authorization") != want.Get("Authorization") {
			t.Errorf("%s: Authorization %q, want the signature without the port %q", raw, hdr.Get("Authorization"), want.Get("Authorization"))
		}
	}
	hdr := http.Header{}
	target, err := s.sign(t.Context(), hdr, "GET", "http://localhost:8443/", nil, at)
	if err != nil || !strings.Contains(target, ":8443") {
		t.Errorf("another port: %q, %v: want it kept", target, err)
	}
}
