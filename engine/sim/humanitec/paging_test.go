package humanitec

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var linkNext = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// walk follows Link headers from start and returns every page's pipelines.
func walk(t *testing.T, ts *httptest.Server, start string) (pages [][]Pipeline, links []string) {
	t.Helper()
	next := ts.URL + start
	for next != "" {
		if len(pages) > 1000 {
			t.Fatal("walk: more than 1000 pages, Link loops")
		}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, next, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+DefaultToken)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page []Pipeline
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("GET %s: decode: %v", next, err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d", next, resp.StatusCode)
		}
		pages = append(pages, page)
		next = ""
		if l := resp.Header.Get("Link"); l != "" {
			m := linkNext.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("GET %s: Link %q is not <url>; rel=\"next\"", req.URL, l)
			}
			links = append(links, m[1])
			next = m[1]
		}
	}
	return pages, links
}

func allPipelineKeys(org *Org, apps ...string) map[pageKey]bool {
	keys := map[pageKey]bool{}
	for _, a := range org.Apps {
		if len(apps) > 0 && !contains(apps, a.ID) {
			continue
		}
		for _, p := range a.Pipelines {
			keys[pageKey{a.ID, p.ID}] = true
		}
	}
	return keys
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func TestPipelinesWalkEveryItemOnce(t *testing.T) {
	org := Generate(11, Demo())
	ts := httptest.NewServer(NewServer(org, Options{}))
	defer ts.Close()
	want := allPipelineKeys(org)
	if len(want) <= 100 {
		t.Fatalf("demo org has %d pipelines, want > 100", len(want))
	}

	tests := []struct {
		name      string
		query     string
		perPage   int
		wantPages int
	}{
		{"per_page 50", "?per_page=50", 50, (len(want) + 49) / 50},
		{"default page size", "", 50, (len(want) + 49) / 50},
		{"per_page 100", "?per_page=100", 100, (len(want) + 99) / 100},
		{"per_page 1", "?per_page=1", 1, len(want)},
		{"empty page token is the first page", "?page=&per_page=50", 50, (len(want) + 49) / 50},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pages, links := walk(t, ts, "/orgs/"+org.ID+"/pipelines"+tc.query)
			if len(pages) != tc.wantPages {
				t.Errorf("pages = %d, want %d", len(pages), tc.wantPages)
			}
			if tc.perPage == 50 && len(pages) < 3 {
				t.Errorf("pages = %d, want at least 3 at per_page 50", len(pages))
			}
			seen := map[pageKey]int{}
			for i, p := range pages {
				if i < len(pages)-1 && len(p) != tc.perPage {
					t.Errorf("page %d has %d items, want %d", i, len(p), tc.perPage)
				}
				if len(p) == 0 {
					t.Errorf("page %d is empty; Link must only announce pages with items", i)
				}
				for _, pl := range p {
					seen[pageKey{pl.AppID, pl.ID}]++
				}
			}
			for k, n := range seen {
				if n != 1 {
					t.Errorf("pipeline %v seen %d times", k, n)
				}
				if !want[k] {
					t.Errorf("pipeline %v is not in the org", k)
				}
			}
			if len(seen) != len(want) {
				t.Errorf("walk saw %d pipelines, org has %d", len(seen), len(want))
			}
			for _, l := range links {
				u, err := url.Parse(l)
				if err != nil || !u.IsAbs() || "http://"+u.Host != ts.URL {
					t.Errorf("Link target %q is not an absolute URL on %s", l, ts.URL)
				}
				if tc.query != "" && u.Query().Get("per_page") != tc.query[strings.LastIndex(tc.query, "=")+1:] {
					t.Errorf("Link target %q lost per_page", l)
				}
			}
		})
	}
}

func TestPipelinesFilters(t *testing.T) {
	org := Generate(5, Demo())
	ts := httptest.NewServer(NewServer(org, Options{}))
	defer ts.Close()
	o := "/orgs/" + org.ID
	a, b := org.Apps[0].ID, org.Apps[3].ID

	t.Run("app filter repeated", func(t *testing.T) {
		pages, links := walk(t, ts, o+"/pipelines?app="+a+"&app="+b+"&per_page=7")
		got := map[pageKey]bool{}
		for _, p := range pages {
			for _, pl := range p {
				got[pageKey{pl.AppID, pl.ID}] = true
			}
		}
		if diff := cmp.Diff(allPipelineKeys(org, a, b), got); diff != "" {
			t.Errorf("filtered walk (-want +got):\n%s", diff)
		}
		for _, l := range links {
			u, _ := url.Parse(l)
			if apps := u.Query()["app"]; len(apps) != 2 {
				t.Errorf("Link %q dropped the app filter: %v", l, apps)
			}
		}
	})
	t.Run("unknown app filter", func(t *testing.T) {
		pages, links := walk(t, ts, o+"/pipelines?app=no-such-app")
		if len(pages) != 1 || len(pages[0]) != 0 || len(links) != 0 {
			t.Errorf("got %d pages (%v), %d links; want one empty page and no Link", len(pages), pages, len(links))
		}
	})
	t.Run("app-level endpoint", func(t *testing.T) {
		pages, _ := walk(t, ts, o+"/apps/"+a+"/pipelines?per_page=2")
		n := 0
		for _, p := range pages {
			for _, pl := range p {
				n++
				if pl.AppID != a || pl.OrgID != org.ID {
					t.Errorf("pipeline %s has app_id %q org_id %q", pl.ID, pl.AppID, pl.OrgID)
				}
			}
		}
		if n != len(org.Apps[0].Pipelines) {
			t.Errorf("app walk saw %d pipelines, want %d", n, len(org.Apps[0].Pipelines))
		}
	})
	t.Run("trigger and metadata", func(t *testing.T) {
		pages, _ := walk(t, ts, o+"/pipelines?trigger=deployment_request&metadata%5Bteam%5D=platform&per_page=100")
		n := 0
		for _, p := range pages {
			for _, pl := range p {
				n++
				if !contains(pl.TriggerTypes, "deployment_request") || pl.Metadata["team"] != "platform" {
					t.Errorf("pipeline %s/%s passed the filter: %v %v", pl.AppID, pl.ID, pl.TriggerTypes, pl.Metadata)
				}
			}
		}
		if n == 0 {
			t.Error("filter matched nothing; the generator should produce matches")
		}
	})
}

func TestPipelinesBadParameters(t *testing.T) {
	org := Generate(1, Small())
	h := NewServer(org, Options{})
	o := "/orgs/" + org.ID
	valid := encodeToken(pageKey{org.Apps[0].ID, "default"})
	tests := []struct {
		name   string
		target string
		want   int
	}{
		{"per_page 101", o + "/pipelines?per_page=101", 400},
		{"per_page 0", o + "/pipelines?per_page=0", 400},
		{"per_page negative", o + "/pipelines?per_page=-5", 400},
		{"per_page not a number", o + "/pipelines?per_page=ten", 400},
		{"per_page 100", o + "/pipelines?per_page=100", 200},
		{"per_page 1", o + "/pipelines?per_page=1", 200},
		{"app per_page 101", o + "/apps/" + org.Apps[0].ID + "/pipelines?per_page=101", 400},
		{"token not base64", o + "/pipelines?page=%21%21%21", 400},
		{"spec example token", o + "/pipelines?page=AAAAAAAAAA%3D%3D", 400},
		{"truncated token", o + "/pipelines?page=" + url.QueryEscape(valid[:len(valid)-4]), 400},
		{"token with trailing bytes", o + "/pipelines?page=" + url.QueryEscape(base64.StdEncoding.EncodeToString(append(mustDecode(t, valid), 'x'))), 400},
		// A client that does not escape '+' sends a space in disguise.
		{"unescaped plus in token", o + "/pipelines?page=" + encodeToken(pageKey{"a", ">>>?"}), 400},
		{"escaped plus in token", o + "/pipelines?page=" + url.QueryEscape(encodeToken(pageKey{"a", ">>>?"})), 200},
		{"valid token", o + "/pipelines?page=" + url.QueryEscape(valid), 200},
		{"app token bad", o + "/apps/" + org.Apps[0].ID + "/pipelines?page=zz", 400},
	}
	c := loadContract(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(h, DefaultToken, tc.target)
			if rec.Code != tc.want {
				t.Fatalf("GET %s: status %d, want %d; body %s", tc.target, rec.Code, tc.want, rec.Body)
			}
			path := "/orgs/{orgId}/pipelines"
			if strings.Contains(tc.target, "/apps/") {
				path = "/orgs/{orgId}/apps/{appId}/pipelines"
			}
			if err := c.validate(t, path, rec.Code, rec.Body.Bytes()); err != nil {
				t.Errorf("body: %v", err)
			}
			if tc.want != 200 && rec.Header().Get("Link") != "" {
				t.Errorf("error answer carries a Link header")
			}
		})
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPipelinesKeysetStable changes the data between pages: the walk must
// neither repeat nor skip the pipelines that existed throughout.
func TestPipelinesKeysetStable(t *testing.T) {
	org := Generate(2, Small())
	srv := NewServer(org, Options{})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	o := "/orgs/" + org.ID

	rec := do(srv, DefaultToken, o+"/pipelines?per_page=10")
	var first []Pipeline
	if err := json.Unmarshal(rec.Body.Bytes(), &first); err != nil {
		t.Fatal(err)
	}
	m := linkNext.FindStringSubmatch(rec.Header().Get("Link"))
	if m == nil {
		t.Fatalf("no Link on the first page")
	}
	// Delete the first item already sent and add one that sorts before the
	// cursor: neither may shift what comes next.
	srv.Update(func(org *Org) {
		a := org.App(first[0].AppID)
		for i, p := range a.Pipelines {
			if p.ID == first[0].ID {
				a.Pipelines = append(a.Pipelines[:i], a.Pipelines[i+1:]...)
				break
			}
		}
		a.Pipelines = append(a.Pipelines, Pipeline{ID: "aaa-early", Name: "Early", Status: "active", Version: "v", Etag: "e", CreatedAt: "2024-01-01T00:00:00Z"})
	})
	u, _ := url.Parse(m[1])
	pages, _ := walk(t, ts, u.RequestURI())
	seen := map[pageKey]int{}
	for _, p := range append([][]Pipeline{first}, pages...) {
		for _, pl := range p {
			seen[pageKey{pl.AppID, pl.ID}]++
		}
	}
	for k := range allPipelineKeys(org) {
		if k.id == "aaa-early" {
			continue
		}
		if seen[k] != 1 {
			t.Errorf("pipeline %v seen %d times, want 1", k, seen[k])
		}
	}
}

func TestTokenRoundTrip(t *testing.T) {
	for _, k := range []pageKey{{"", ""}, {"a", "b"}, {"cafe-unicode-app", "default"}, {strings.Repeat("x", 300), "ü/+="}} {
		tok := encodeToken(k)
		got, err := decodeToken(tok)
		if err != nil || got != k {
			t.Errorf("decodeToken(encodeToken(%v)) = %v, %v", k, got, err)
		}
	}
}

func FuzzDecodeToken(f *testing.F) {
	f.Add(encodeToken(pageKey{"app", "id"}))
	f.Add("AAAAAAAAAA==")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := decodeToken(s)
		if err == nil && encodeToken(k) != s {
			t.Errorf("decodeToken(%q) accepted a token that does not re-encode to itself", s)
		}
	})
}
