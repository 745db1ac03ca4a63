package apitest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"

	"github.com/ferry-etl/ferry/engine/apitest"
)

// A cursor-paginated route walked by a plain client; the first request
// fails with a 503 the client has to retry.
func ExampleStart() {
	s, err := apitest.Start(apitest.Fixture{Routes: []apitest.Route{{
		Path:     "/orgs/{org}/apps",
		Generate: &apitest.Generate{Count: 5, Item: map[string]any{"id": "{org}-app-{i}"}},
		Paginate: &apitest.Paging{Type: apitest.PageCursor, Param: "cursor", PageSize: 2, TokenPath: "next", Envelope: "data"},
		Faults:   []apitest.Fault{{Status: 503, Headers: map[string]string{"Retry-After": "0"}}},
	}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	next := ""
	for {
		u := s.URL() + "/orgs/acme/apps"
		if next != "" {
			u += "?cursor=" + url.QueryEscape(next)
		}
		resp, err := s.Client().Get(u)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			fmt.Println("status", resp.StatusCode, "- retrying")
			continue
		}
		var page struct {
			Data []struct{ ID string }
			Next string
		}
		if err := json.Unmarshal(body, &page); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(page.Data)
		if page.Next == "" {
			break
		}
		next = page.Next
	}
	fmt.Println("requests:", s.Count("GET", "/orgs/{org}/apps"))
	// Output:
	// status 503 - retrying
	// [{acme-app-0} {acme-app-1}]
	// [{acme-app-2} {acme-app-3}]
	// [{acme-app-4}]
	// requests: 4
}
