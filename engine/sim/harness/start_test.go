package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestStart(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	acct := Generate(1, Demo)
	srv, err := Start(ctx, acct, Options{PageTokens: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(srv.URL(), "http://127.0.0.1:") {
		t.Errorf("URL = %q", srv.URL())
	}
	if want := srv.URL() + "/prod1/sei/api"; srv.SEIBaseURL() != want {
		t.Errorf("SEIBaseURL = %q, want %q", srv.SEIBaseURL(), want)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/ng/api/projects?pageSize=1&accountIdentifier="+acct.ID, nil)
	req.Header.Set("x-api-key", srv.Options().Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantStatus(t, resp, body, 200)

	cancel() // stops the listener
	if err := srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := http.Get(srv.URL()); err == nil {
		t.Error("server still answers after Close")
	}

	if n := NewServer(acct, Options{}); n.URL() != "" || n.SEIBaseURL() != "" || n.Close() != nil {
		t.Error("unstarted server reports a URL or fails Close")
	}
}

func TestStartBadAddr(t *testing.T) {
	if _, err := Start(t.Context(), Generate(1, Small), Options{Addr: "256.0.0.1:bad"}); err == nil {
		t.Error("Start on a bad address succeeded")
	}
}

func BenchmarkGenerateDemo(b *testing.B) {
	for b.Loop() {
		Generate(1, Demo)
	}
}

// benchServe drives the handler in-process, without sockets.
func benchServe(b *testing.B, srv *Server, method, target, body string, hdr map[string]string) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(method, target, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
		srv.ResetRequests()
	}
}

func BenchmarkProjectsPage(b *testing.B) {
	for _, size := range []Size{Demo, Large} {
		b.Run(size.String(), func(b *testing.B) {
			acct := Generate(1, size)
			srv := NewServer(acct, Options{PageTokens: true})
			benchServe(b, srv, "GET", "/ng/api/projects?pageSize=100&pageIndex=1&accountIdentifier="+acct.ID, "",
				map[string]string{"x-api-key": srv.Options().Token})
		})
	}
}

func BenchmarkMeanTime(b *testing.B) {
	for _, size := range []Size{Demo, Large} {
		b.Run(size.String(), func(b *testing.B) {
			acct := Generate(1, size)
			srv := NewServer(acct, Options{})
			ou := acct.OUs[0]
			body := fmt.Sprintf(`{"ou_ids":[%d],"filter":{"integration_ids":[%q,%q],"jira_issue_resolved_at":{"$gt":"1719792000","$lt":"1727740800"}}}`,
				ou.RefID, ou.IntegrationIDs[0], ou.IntegrationIDs[1])
			benchServe(b, srv, "POST", "/prod1/sei/api/v1/dora/mean-time", body,
				map[string]string{"Authorization": "ApiKey " + srv.Options().SEIKey, "Content-Type": "application/json"})
		})
	}
}
