package humanitec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func get(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+DefaultToken)
	return http.DefaultClient.Do(req)
}

func TestStart(t *testing.T) {
	srv, err := Start(t.Context(), Generate(1, Small()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(srv.URL(), "http://127.0.0.1:") {
		t.Errorf("URL() = %q, want a loopback URL", srv.URL())
	}
	resp, err := get(t.Context(), srv.URL()+"/orgs/"+DemoOrgID+"/apps")
	if err != nil {
		t.Fatal(err)
	}
	var apps []applicationResponse
	err = json.NewDecoder(resp.Body).Decode(&apps)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(apps) != 3 {
		t.Fatalf("GET apps: status %d, %d apps, err %v", resp.StatusCode, len(apps), err)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("request log has %d entries, want 1", n)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := get(t.Context(), srv.URL()+"/orgs/"+DemoOrgID+"/apps"); err == nil {
		t.Error("request after Close succeeded")
	}
}

func TestStartStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	srv, err := Start(ctx, Generate(1, Small()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	// Close waits for the serving goroutine, which the cancel already ended.
	if err := srv.Close(); err != nil {
		t.Errorf("Close after cancel: %v", err)
	}
}

func TestStartBadAddr(t *testing.T) {
	_, err := Start(t.Context(), Generate(1, Small()), Options{Addr: "256.0.0.1:http"})
	if err == nil {
		t.Fatal("Start on a bad address succeeded")
	}
	var ne interface{ Timeout() bool }
	if !errors.As(err, &ne) {
		t.Errorf("error %v does not wrap the net error", err)
	}
}

func ExampleStart() {
	ctx := context.Background()
	srv, err := Start(ctx, Generate(1, Demo()), Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	resp, err := get(ctx, srv.URL()+"/orgs/"+DemoOrgID+"/pipelines?per_page=50")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var page []Pipeline
	_ = json.NewDecoder(resp.Body).Decode(&page)
	fmt.Println(resp.StatusCode, len(page), resp.Header.Get("Link") != "")
	// Output: 200 50 true
}
