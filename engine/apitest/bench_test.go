package apitest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fanOutFixture: 100 parents, each with 20 children served in 2 Link pages.
func fanOutFixture() Fixture {
	return Fixture{Routes: []Route{
		{Path: "/parents", Generate: &Generate{Count: 100, Item: map[string]any{"id": "p{i}", "name": "Parent {i}"}}, Paginate: &Paging{Type: PageNumber, PageSize: 100}},
		{Path: "/parents/{id}/children", Paginate: &Paging{Type: PageLink, PageSize: 10}, ItemsFunc: func(p map[string]string) []any {
			items := make([]any, 20)
			for i := range items {
				items[i] = map[string]any{"id": fmt.Sprintf("%s-c%d", p["id"], i), "parent": p["id"], "n": i}
			}
			return items
		}},
	}}
}

// walkFanOut fetches every parent and pages through its children, returning
// the request URIs in order.
func walkFanOut(b *testing.B, c *http.Client, base string) []string {
	var uris []string
	fetch := func(u string) response {
		resp, err := c.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("GET %s: %d %v", u, resp.StatusCode, err)
		}
		uris = append(uris, u[len(base):])
		return response{status: resp.StatusCode, header: resp.Header, body: body}
	}
	parents := ids(b, decode(b, fetch(base+"/parents").body))
	for _, id := range parents {
		for next := base + "/parents/" + id + "/children"; next != ""; {
			next = nextLink(fetch(next).header)
		}
	}
	if len(uris) != 201 {
		b.Fatalf("walked %d requests, want 201", len(uris))
	}
	return uris
}

func BenchmarkFanOut(b *testing.B) {
	s, err := Start(fanOutFixture())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := s.Client()
	b.ResetTimer()
	for b.Loop() {
		walkFanOut(b, c, s.URL())
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*201), "ns/request")
}

// BenchmarkFanOutBaseline replays the same 201 requests against a plain
// handler that serves precomputed replies: the floor the simulator adds to.
func BenchmarkFanOutBaseline(b *testing.B) {
	sim, err := Start(fanOutFixture())
	if err != nil {
		b.Fatal(err)
	}
	replies := map[string]response{}
	c := sim.Client()
	base := sim.URL()
	for _, uri := range walkFanOut(b, c, base) {
		resp, err := c.Get(base + uri)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header.Clone()
		replies[uri] = response{status: resp.StatusCode, header: h, body: body}
	}
	sim.Close()

	var plainBase string
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep, ok := replies[r.URL.RequestURI()]
		if !ok {
			http.NotFound(w, r)
			return
		}
		for k, v := range rep.header {
			w.Header()[k] = v
		}
		if link := rep.header.Get("Link"); link != "" {
			// Point the recorded links at this server.
			w.Header().Set("Link", strings.ReplaceAll(link, base, plainBase))
		}
		w.WriteHeader(rep.status)
		_, _ = w.Write(rep.body)
	}))
	defer plain.Close()
	plainBase = plain.URL
	pc := plain.Client()
	b.ResetTimer()
	for b.Loop() {
		walkFanOut(b, pc, plain.URL)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*201), "ns/request")
}
