package harness

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const projectsPath = "/ng/api/projects"

func TestSchemas(t *testing.T) {
	s := newSim(t, Generate(1, Small), Options{PageTokens: true})
	ou := s.srv.acct.OUs[0]
	seiBody := fmt.Sprintf(`{"ou_ids":[%d],"filter":{"integration_ids":[%q,%q]}}`, ou.RefID, ou.IntegrationIDs[0], ou.IntegrationIDs[1])
	tests := []struct {
		name   string
		call   func() (*http.Response, []byte)
		status int
		schema string
	}{
		{"projects", func() (*http.Response, []byte) { return s.get(projectsPath, s.ngQuery("pageSize", "5")) }, 200, "ng_projects.json"},
		{"projects last page", func() (*http.Response, []byte) {
			return s.get(projectsPath, s.ngQuery("pageSize", "5", "pageIndex", "2"))
		}, 200, "ng_projects.json"},
		{"projects past end", func() (*http.Response, []byte) { return s.get(projectsPath, s.ngQuery("pageIndex", "9")) }, 200, "ng_projects.json"},
		{"projects gateway", func() (*http.Response, []byte) { return s.get("/gateway"+projectsPath, s.ngQuery()) }, 200, "ng_projects.json"},
		{"catalogue", func() (*http.Response, []byte) { return s.get("/ng/api/connectors/catalogue", s.ngQuery()) }, 200, "ng_catalogue.json"},
		{"budgets", func() (*http.Response, []byte) { return s.get("/ccm/api/budgets", s.ngQuery()) }, 200, "ccm_budgets.json"},
		{"mean-time", func() (*http.Response, []byte) { return s.postSEI(seiBody) }, 200, "sei_mean_time.json"},
		{"ng 401", func() (*http.Response, []byte) { return s.do("GET", projectsPath, s.ngQuery(), nil, nil) }, 401, "ng_error.json"},
		{"ng 400", func() (*http.Response, []byte) { return s.get(projectsPath, s.ngQuery("pageSize", "101")) }, 400, "ng_failure.json"},
		{"ng 404", func() (*http.Response, []byte) { return s.get("/ng/api/nope", s.ngQuery()) }, 404, "ng_error.json"},
		{"ng 405", func() (*http.Response, []byte) { return s.do("POST", projectsPath, s.ngQuery(), s.authNG(), nil) }, 405, "ng_error.json"},
		{"sei 400", func() (*http.Response, []byte) { return s.postSEI(`{}`) }, 400, "sei_error.json"},
		{"sei 401", func() (*http.Response, []byte) {
			return s.do("POST", s.srv.SEIPrefix()+"/v1/dora/mean-time", nil, nil, []byte(seiBody))
		}, 401, "sei_error.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := tc.call()
			wantStatus(t, resp, body, tc.status)
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if err := validate(loadSchema(t, tc.schema), body); err != nil {
				t.Errorf("schema %s: %v\nbody: %s", tc.schema, err, truncate(body))
			}
		})
	}
}

// TestSchemasReject proves each schema can fail: a response with one field
// broken must not validate.
func TestSchemasReject(t *testing.T) {
	s := newSim(t, Generate(1, Small), Options{})
	ou := s.srv.acct.OUs[0]
	_, projects := s.get(projectsPath, s.ngQuery())
	_, catalogue := s.get("/ng/api/connectors/catalogue", s.ngQuery())
	_, budgets := s.get("/ccm/api/budgets", s.ngQuery())
	_, meanTime := s.postSEI(fmt.Sprintf(`{"ou_ids":[%d],"filter":{"integration_ids":[%q]}}`, ou.RefID, ou.IntegrationIDs[0]))
	_, ngErr := s.do("GET", projectsPath, s.ngQuery(), nil, nil)

	first := func(m map[string]any, path ...string) map[string]any {
		var cur any = m
		for _, p := range path {
			switch c := cur.(type) {
			case map[string]any:
				cur = c[p]
			case []any:
				cur = c[0]
			}
		}
		return cur.(map[string]any)
	}
	tests := []struct {
		name   string
		body   []byte
		schema string
		break_ func(m map[string]any)
	}{
		{"project without identifier", projects, "ng_projects.json", func(m map[string]any) {
			delete(first(m, "data", "content", "0", "project"), "identifier")
		}},
		{"createdAt as string", projects, "ng_projects.json", func(m map[string]any) {
			first(m, "data", "content", "0")["createdAt"] = "2024-01-01"
		}},
		{"unexpected field", projects, "ng_projects.json", func(m map[string]any) { first(m, "data")["nextPage"] = 1 }},
		{"status failure", catalogue, "ng_catalogue.json", func(m map[string]any) { m["status"] = "FAILURE" }},
		{"budgetAmount as string", budgets, "ccm_budgets.json", func(m map[string]any) {
			first(m, "data", "0")["budgetAmount"] = "1000"
		}},
		{"perspective without viewId", budgets, "ccm_budgets.json", func(m map[string]any) {
			delete(first(m, "data", "0", "scope"), "viewId")
		}},
		{"record without mean", meanTime, "sei_mean_time.json", func(m map[string]any) {
			delete(first(m, "records", "0"), "mean")
		}},
		{"record with band", meanTime, "sei_mean_time.json", func(m map[string]any) {
			first(m, "records", "0")["band"] = "ELITE"
		}},
		{"record with min", meanTime, "sei_mean_time.json", func(m map[string]any) {
			first(m, "records", "0")["min"] = 1
		}},
		{"record without additional_key", meanTime, "sei_mean_time.json", func(m map[string]any) {
			delete(first(m, "records", "0"), "additional_key")
		}},
		{"stage result without unit", meanTime, "sei_mean_time.json", func(m map[string]any) {
			delete(first(m, "records", "0", "velocity_stage_result"), "upper_limit_unit")
		}},
		{"lower-case rating", meanTime, "sei_mean_time.json", func(m map[string]any) {
			first(m, "records", "0", "velocity_stage_result")["rating"] = "good"
		}},
		{"2020 item with wrapper createdAt", projects, "ng_projects.json", func(m map[string]any) {
			projectItem(m, "emoji_only")["createdAt"] = 1
		}},
		{"2020 project without accountIdentifier", projects, "ng_projects.json", func(m map[string]any) {
			delete(projectItem(m, "emoji_only")["project"].(map[string]any), "accountIdentifier")
		}},
		{"current item with accountIdentifier", projects, "ng_projects.json", func(m map[string]any) {
			projectItem(m, "cafe_ops")["project"].(map[string]any)["accountIdentifier"] = "x"
		}},
		{"2021 envelope with status", budgets, "ccm_budgets.json", func(m map[string]any) { m["status"] = "SUCCESS" }},
		{"2021 budget with period", budgets, "ccm_budgets.json", func(m map[string]any) {
			budgetNamed(m, "Sandbox pennies")["period"] = "DAILY"
		}},
		{"2021 threshold with slackWebhooks", budgets, "ccm_budgets.json", func(m map[string]any) {
			th := budgetNamed(m, "Sandbox pennies")["alertThresholds"].([]any)[0].(map[string]any)
			th["slackWebhooks"] = []any{}
		}},
		{"error without code", ngErr, "ng_error.json", func(m map[string]any) { delete(m, "code") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sch := loadSchema(t, tc.schema)
			if err := validate(sch, tc.body); err != nil {
				t.Fatalf("unbroken body must validate: %v", err)
			}
			m := decode(t, tc.body)
			tc.break_(m)
			broken, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate(sch, broken); err == nil {
				t.Errorf("broken body validated against %s", tc.schema)
			}
		})
	}
}

// projectItem finds the list item of the project with identifier ident.
func projectItem(m map[string]any, ident string) map[string]any {
	for _, c := range m["data"].(map[string]any)["content"].([]any) {
		item := c.(map[string]any)
		if item["project"].(map[string]any)["identifier"] == ident {
			return item
		}
	}
	panic("no project " + ident)
}

// budgetNamed finds the budget called name.
func budgetNamed(m map[string]any, name string) map[string]any {
	for _, b := range m["data"].([]any) {
		if b.(map[string]any)["name"] == name {
			return b.(map[string]any)
		}
	}
	panic("no budget " + name)
}

// TestJacksonSpelling checks the byte-level habits of a Java server.
func TestJacksonSpelling(t *testing.T) {
	s := newSim(t, Generate(1, Small), Options{})
	_, budgets := s.get("/ccm/api/budgets", s.ngQuery())
	for _, want := range []string{`"budgetAmount":1000.0`, `"budgetAmount":2.5E7`, `"budgetAmount":5.0E-4`, `"lastMonthCost":0.0`, `"isNgBudget":true,"ngBudget":true`, `"metaData":null`} {
		mustContain(t, budgets, want)
	}
	_, projects := s.get(projectsPath, s.ngQuery("pageSize", "100"))
	mustContain(t, projects, `O'Brien's \"Quoted\" <Project> & Co.`) // no \u003c escapes
	mustContain(t, projects, `"description":null`)
	if strings.HasSuffix(string(projects), "\n") {
		t.Error("body ends with a newline; Jackson writes none")
	}
}

// pageThrough collects every project by following next(), failing on loops.
func pageThrough(t *testing.T, s *sim, first url.Values, next func(data map[string]any, q url.Values) bool) (seen map[string]int, pages int) {
	t.Helper()
	seen = map[string]int{}
	q := first
	for {
		pages++
		if pages > 50 {
			t.Fatal("paging did not stop")
		}
		resp, body := s.get(projectsPath, q)
		wantStatus(t, resp, body, 200)
		data := decode(t, body)["data"].(map[string]any)
		for _, c := range data["content"].([]any) {
			p := c.(map[string]any)["project"].(map[string]any)
			seen[p["orgIdentifier"].(string)+"/"+p["identifier"].(string)]++
		}
		if !next(data, q) {
			return seen, pages
		}
	}
}

func checkAllOnce(t *testing.T, acct *Account, seen map[string]int) {
	t.Helper()
	if len(seen) != len(acct.Projects) {
		t.Errorf("saw %d distinct projects, want %d", len(seen), len(acct.Projects))
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("project %s seen %d times", k, n)
		}
	}
}

func TestProjectsPageIndex(t *testing.T) {
	acct := Generate(7, Demo)
	s := newSim(t, acct, Options{})
	seen, pages := pageThrough(t, s, s.ngQuery("pageSize", "100"), func(data map[string]any, q url.Values) bool {
		if _, ok := data["pageToken"]; ok {
			t.Error("pageToken present although PageTokens is off")
		}
		idx, _ := data["pageIndex"].(json.Number).Int64()
		total, _ := data["totalPages"].(json.Number).Int64()
		if idx+1 >= total {
			return false
		}
		q.Set("pageIndex", fmt.Sprint(idx+1))
		return true
	})
	if want := (len(acct.Projects) + 99) / 100; pages != want || pages < 3 {
		t.Errorf("pages = %d, want %d (>= 3)", pages, want)
	}
	checkAllOnce(t, acct, seen)
}

func TestProjectsPageToken(t *testing.T) {
	acct := Generate(7, Demo)
	s := newSim(t, acct, Options{PageTokens: true})
	var lastToken any
	seen, pages := pageThrough(t, s, s.ngQuery("pageSize", "100"), func(data map[string]any, q url.Values) bool {
		tok, ok := data["pageToken"].(string)
		lastToken = data["pageToken"]
		if !ok || tok == "" {
			return false
		}
		q.Set("pageToken", tok)
		return true
	})
	if pages != 3 {
		t.Errorf("pages = %d, want 3", pages)
	}
	if lastToken != "" {
		t.Errorf("last page pageToken = %#v, want \"\"", lastToken)
	}
	checkAllOnce(t, acct, seen)
}

func TestProjectsPageTokenRules(t *testing.T) {
	s := newSim(t, Generate(7, Demo), Options{PageTokens: true})
	_, body := s.get(projectsPath, s.ngQuery("pageSize", "100"))
	tok := decode(t, body)["data"].(map[string]any)["pageToken"].(string)
	if tok == "" {
		t.Fatal("first page has no pageToken")
	}

	t.Run("token wins over pageIndex", func(t *testing.T) {
		_, b := s.get(projectsPath, s.ngQuery("pageSize", "100", "pageIndex", "2", "pageToken", tok))
		data := decode(t, b)["data"].(map[string]any)
		if got := data["pageIndex"].(json.Number).String(); got != "1" {
			t.Errorf("pageIndex = %s, want 1", got)
		}
		if got := data["pageItemCount"].(json.Number).String(); got != "100" {
			t.Errorf("pageItemCount = %s, want 100", got)
		}
	})
	forged := base64.RawURLEncoding.EncodeToString([]byte("100.forged"))
	for _, bad := range []string{"not base64!", forged, tok + "x", base64.RawURLEncoding.EncodeToString([]byte("-5." + "x"))} {
		t.Run("invalid "+bad, func(t *testing.T) {
			resp, b := s.get(projectsPath, s.ngQuery("pageSize", "100", "pageToken", bad))
			wantStatus(t, resp, b, 400)
			mustContain(t, b, `"fieldId":"pageToken"`)
		})
	}
	t.Run("ignored by older builds", func(t *testing.T) {
		old := newSim(t, Generate(7, Demo), Options{})
		resp, b := old.get(projectsPath, old.ngQuery("pageToken", "garbage"))
		wantStatus(t, resp, b, 200)
		if got := decode(t, b)["data"].(map[string]any)["pageIndex"].(json.Number).String(); got != "0" {
			t.Errorf("pageIndex = %s, want 0", got)
		}
	})
}

func TestProjectsParams(t *testing.T) {
	acct := Generate(3, Demo)
	s := newSim(t, acct, Options{})
	tests := []struct {
		name      string
		q         url.Values
		status    int
		wantField string // Failure fieldId for 400s
		check     func(t *testing.T, data map[string]any)
	}{
		{"default page size", s.ngQuery(), 200, "", func(t *testing.T, d map[string]any) {
			if got := d["pageSize"].(json.Number).String(); got != "50" {
				t.Errorf("pageSize = %s, want 50", got)
			}
			if n := len(d["content"].([]any)); n != 50 {
				t.Errorf("content has %d items, want 50", n)
			}
		}},
		{"page size 100", s.ngQuery("pageSize", "100"), 200, "", nil},
		{"page size 101", s.ngQuery("pageSize", "101"), 400, "pageSize", nil},
		{"page size 0", s.ngQuery("pageSize", "0"), 400, "pageSize", nil},
		{"page size text", s.ngQuery("pageSize", "ten"), 400, "pageSize", nil},
		{"negative page", s.ngQuery("pageIndex", "-1"), 400, "pageIndex", nil},
		{"page beyond Java int", s.ngQuery("pageIndex", "2147483648"), 400, "pageIndex", nil},
		{"largest page", s.ngQuery("pageIndex", "2147483647", "pageSize", "100"), 200, "", func(t *testing.T, d map[string]any) {
			if d["empty"] != true {
				t.Error("want an empty page")
			}
		}},
		{"past the end", s.ngQuery("pageIndex", "99"), 200, "", func(t *testing.T, d map[string]any) {
			if d["empty"] != true || len(d["content"].([]any)) != 0 {
				t.Errorf("want empty page, got %v", d)
			}
		}},
		{"org filter", s.ngQuery("orgIdentifier", "platform", "pageSize", "100"), 200, "", func(t *testing.T, d map[string]any) {
			found := false
			for _, c := range d["content"].([]any) {
				p := c.(map[string]any)["project"].(map[string]any)
				if p["orgIdentifier"] != "platform" {
					t.Errorf("org filter leaked %v", p["orgIdentifier"])
				}
				found = found || p["identifier"] == "default_project"
			}
			if !found {
				t.Error("platform/default_project missing")
			}
		}},
		{"identifiers", url.Values{"accountIdentifier": {acct.ID}, "identifiers": {"default_project", "cafe_ops"}}, 200, "", func(t *testing.T, d map[string]any) {
			if got := d["totalItems"].(json.Number).String(); got != "3" {
				t.Errorf("totalItems = %s, want 3 (two default_project, one cafe_ops)", got)
			}
		}},
		{"search term", s.ngQuery("searchTerm", "CAFÉ"), 200, "", func(t *testing.T, d map[string]any) {
			if len(d["content"].([]any)) == 0 {
				t.Error("searchTerm found nothing")
			}
		}},
		{"missing account", url.Values{"pageSize": {"10"}}, 400, "accountIdentifier", nil},
		{"wrong account", url.Values{"accountIdentifier": {"someoneElse"}}, 400, "accountIdentifier", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := s.get(projectsPath, tc.q)
			wantStatus(t, resp, body, tc.status)
			m := decode(t, body)
			if tc.wantField != "" {
				if m["status"] != "FAILURE" {
					t.Errorf("status = %v, want FAILURE", m["status"])
				}
				mustContain(t, body, `"fieldId":"`+tc.wantField+`"`)
			}
			if tc.check != nil {
				tc.check(t, m["data"].(map[string]any))
			}
		})
	}
}

func TestProjectsSortedByLastModified(t *testing.T) {
	s := newSim(t, Generate(5, Demo), Options{})
	var prev int64 = 1 << 62
	for page := 0; page < 3; page++ {
		_, body := s.get(projectsPath, s.ngQuery("pageSize", "100", "pageIndex", fmt.Sprint(page)))
		for _, c := range decode(t, body)["data"].(map[string]any)["content"].([]any) {
			// 2020 items carry lastModifiedAt inside project; the 2023
			// mock shape carries none.
			item := c.(map[string]any)
			n, ok := item["lastModifiedAt"].(json.Number)
			if !ok {
				n, ok = item["project"].(map[string]any)["lastModifiedAt"].(json.Number)
			}
			if !ok {
				continue
			}
			lm, _ := n.Int64()
			if lm > prev {
				t.Fatalf("page %d: lastModifiedAt %d after %d: not descending", page, lm, prev)
			}
			prev = lm
		}
	}
}

func TestNGAuth(t *testing.T) {
	s := newSim(t, Generate(1, Small), Options{})
	o := s.srv.Options()
	tests := []struct {
		name   string
		hdr    map[string]string
		q      url.Values
		status int
		code   string
	}{
		{"no key", nil, s.ngQuery(), 401, "INVALID_CREDENTIAL"},
		{"wrong key", map[string]string{"x-api-key": "pat.nope"}, s.ngQuery(), 401, "INVALID_TOKEN"},
		{"SEI key in x-api-key", map[string]string{"x-api-key": o.SEIKey}, s.ngQuery(), 401, "INVALID_TOKEN"},
		{"Authorization ApiKey", map[string]string{"Authorization": "ApiKey " + o.Token}, s.ngQuery(), 401, "INVALID_CREDENTIAL"},
		{"Authorization Bearer", map[string]string{"Authorization": "Bearer " + o.Token}, s.ngQuery(), 401, "INVALID_CREDENTIAL"},
		{"auth checked before account", nil, url.Values{}, 401, "INVALID_CREDENTIAL"},
		{"ok", map[string]string{"x-api-key": o.Token}, s.ngQuery(), 200, ""},
	}
	for _, path := range []string{projectsPath, "/ng/api/connectors/catalogue", "/ccm/api/budgets"} {
		for _, tc := range tests {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				resp, body := s.do("GET", path, tc.q, tc.hdr, nil)
				wantStatus(t, resp, body, tc.status)
				if tc.code != "" {
					m := decode(t, body)
					if m["code"] != tc.code || m["status"] != "ERROR" {
						t.Errorf("status/code = %v/%v, want ERROR/%s", m["status"], m["code"], tc.code)
					}
					if strings.Contains(string(body), o.Token) {
						t.Error("error body leaks the token")
					}
				}
			})
		}
	}
}

func TestRoutes(t *testing.T) {
	s := newSim(t, Generate(1, Small), Options{})
	tests := []struct {
		method, path string
		hdr          map[string]string
		status       int
		allow        string
	}{
		{"GET", "/ng/api/nope", s.authNG(), 404, ""},
		{"GET", "/ng/api/projects/", s.authNG(), 404, ""},
		{"GET", "/", s.authNG(), 404, ""},
		{"POST", projectsPath, s.authNG(), 405, "GET"},
		{"DELETE", "/ccm/api/budgets", s.authNG(), 405, "GET"},
		{"GET", "/gateway/ccm/api/budgets", s.authNG(), 200, ""},
		// The Fivetran connector's URL: not an SEI route on the main base.
		{"POST", "/v1/dora/mean-time", map[string]string{"x-api-key": s.srv.Options().Token}, 404, ""},
		{"GET", s.srv.SEIPrefix() + "/v1/dora/mean-time", s.authSEI(), 405, "POST"},
		{"POST", s.srv.SEIPrefix() + "/v1/dora/lead-time", s.authSEI(), 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp, body := s.do(tc.method, tc.path, s.ngQuery(), tc.hdr, nil)
			wantStatus(t, resp, body, tc.status)
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	clock := newClock()
	s := newSim(t, Generate(1, Small), Options{RateLimit: 3, Window: 10 * time.Second, Now: clock.Now})
	errSchema := loadSchema(t, "ng_error.json")
	call := func(sei bool) (*http.Response, []byte) {
		if sei {
			return s.postSEI(`{}`)
		}
		return s.get("/ng/api/connectors/catalogue", s.ngQuery())
	}
	for i := range 3 {
		resp, body := call(false)
		wantStatus(t, resp, body, 200)
		_ = i
	}
	for _, sei := range []bool{false, true} {
		resp, body := call(sei)
		wantStatus(t, resp, body, 429)
		if _, ok := resp.Header["Retry-After"]; ok {
			t.Error("429 carries Retry-After; Harness's edge sends none")
		}
		if err := validate(errSchema, body); err != nil {
			t.Errorf("429 body: %v", err)
		}
		mustContain(t, body, `"code":"TOO_MANY_REQUESTS"`)
	}
	clock.Advance(9 * time.Second)
	resp, body := call(false)
	wantStatus(t, resp, body, 429)
	clock.Advance(time.Second) // window over
	resp, body = call(false)
	wantStatus(t, resp, body, 200)
}

func TestFailPath(t *testing.T) {
	s := newSim(t, Generate(1, Small), Options{FailPath: func(method, path string) int {
		switch {
		case strings.HasSuffix(path, "/budgets"):
			return 503
		case strings.HasSuffix(path, "/mean-time"):
			return 500
		}
		return 0
	}})
	resp, body := s.get("/ccm/api/budgets", s.ngQuery())
	wantStatus(t, resp, body, 503)
	if err := validate(loadSchema(t, "ng_error.json"), body); err != nil {
		t.Errorf("503 body: %v", err)
	}
	resp, body = s.postSEI(`{}`)
	wantStatus(t, resp, body, 500)
	if err := validate(loadSchema(t, "sei_error.json"), body); err != nil {
		t.Errorf("SEI 500 body: %v", err)
	}
	resp, body = s.get(projectsPath, s.ngQuery())
	wantStatus(t, resp, body, 200)
}

func TestRequestLog(t *testing.T) {
	s := newSim(t, Generate(1, Small), Options{})
	s.get(projectsPath, s.ngQuery("pageSize", "5"))
	s.postSEI(`{"ou_ids":[]}`)
	got := s.srv.Requests()
	if len(got) != 2 {
		t.Fatalf("logged %d requests, want 2", len(got))
	}
	r0, r1 := got[0], got[1]
	if r0.Seq != 1 || r0.Method != "GET" || r0.Path != projectsPath || r0.Query.Get("pageSize") != "5" || r0.Status != 200 {
		t.Errorf("first request logged as %+v", r0)
	}
	if r0.Header.Get("x-api-key") != s.srv.Options().Token {
		t.Error("auth header not logged")
	}
	if r1.Seq != 2 || r1.Method != "POST" || string(r1.Body) != `{"ou_ids":[]}` || r1.Status != 400 {
		t.Errorf("second request logged as %+v", r1)
	}
	s.srv.ResetRequests()
	if n := len(s.srv.Requests()); n != 0 {
		t.Errorf("after reset: %d requests", n)
	}
}

// TestUpdateWhileServing runs readers against writers; -race checks it.
func TestUpdateWhileServing(t *testing.T) {
	s := newSim(t, Generate(1, Small), Options{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 10 {
				s.get(projectsPath, s.ngQuery())
				s.get("/ccm/api/budgets", s.ngQuery())
				s.get("/ng/api/connectors/catalogue", s.ngQuery())
			}
		})
		wg.Go(func() {
			for j := range 10 {
				s.srv.Update(func(a *Account) {
					a.Projects[0].Project.Tags = map[string]string{"n": fmt.Sprint(i, j)}
					a.Projects[0].LastModifiedAt++
					a.Budgets[0].EmailAddresses = append(a.Budgets[0].EmailAddresses, "x@example.com")
					a.Catalogue[0].Connectors = append(a.Catalogue[0].Connectors, "Extra")
				})
			}
		})
	}
	wg.Wait()
	_, body := s.get(projectsPath, s.ngQuery("identifiers", "default_project", "orgIdentifier", "default"))
	mustContain(t, body, `"tags":{"n":`)
}

// FuzzProjectsQuery: any query string gets a 200 or 400, never a panic.
func FuzzProjectsQuery(f *testing.F) {
	acct := Generate(1, Small)
	for _, q := range []string{"pageSize=5&pageIndex=2", "pageIndex=-1", "pageToken=MTAw", "pageSize=100&identifiers=a,b&moduleType=CD&hasModule=false", "searchTerm=%C3%A9&onlyFavorites=true"} {
		f.Add(q)
	}
	srv := NewServer(acct, Options{PageTokens: true})
	f.Fuzz(func(t *testing.T, raw string) {
		req := httptest.NewRequest(http.MethodGet, "/ng/api/projects", nil)
		req.URL.RawQuery = raw + "&accountIdentifier=" + url.QueryEscape(acct.ID)
		req.Header.Set("x-api-key", srv.Options().Token)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != 400 {
			t.Errorf("status %d for %q", rec.Code, raw)
		}
		srv.ResetRequests()
	})
}

// TestLatencyCancelled: a slow response is abandoned when the client gives
// up, so closing the test server does not wait out the latency.
func TestLatencyCancelled(t *testing.T) {
	acct := Generate(1, Small)
	srv := NewServer(acct, Options{Latency: time.Hour})
	ts := httptest.NewServer(srv)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+projectsPath+"?accountIdentifier="+acct.ID, nil)
	req.Header.Set("x-api-key", srv.Options().Token)
	if resp, err := ts.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("request finished despite an hour of latency")
	}
	ts.Close() // hangs if the handler ignores the cancelled request
}

// itemShape names a served projects list item's shape by its keys.
func itemShape(item map[string]any) string {
	p := item["project"].(map[string]any)
	_, fav := item["isFavorite"]
	created, hasCreated := item["createdAt"]
	_, hasModified := item["lastModifiedAt"]
	_, innerAcct := p["accountIdentifier"]
	_, innerModified := p["lastModifiedAt"]
	switch {
	case len(item) == 1 && innerAcct && innerModified:
		return "2020"
	case innerAcct || innerModified:
		return "unknown"
	case hasCreated && created == nil && hasModified && fav && len(item) == 4:
		return "null createdAt"
	case hasCreated && hasModified && fav && len(item) == 4:
		return "current"
	case hasCreated && hasModified && !fav && len(item) == 3:
		return "no isFavorite"
	case fav && len(item) == 2:
		return "isFavorite only"
	}
	return "unknown"
}

// TestOlderShapesServed: every preset serves each recorded project shape
// and a 2021 budget, and the budgets envelope follows the account.
func TestOlderShapesServed(t *testing.T) {
	for _, size := range []Size{Small, Demo, Large} {
		t.Run(size.String(), func(t *testing.T) {
			acct := Generate(1, size)
			s := newSim(t, acct, Options{})
			shapes := map[string]int{}
			for page := 0; ; page++ {
				_, body := s.get(projectsPath, s.ngQuery("pageSize", "100", "pageIndex", fmt.Sprint(page)))
				data := decode(t, body)["data"].(map[string]any)
				for _, c := range data["content"].([]any) {
					item := c.(map[string]any)
					shape := itemShape(item)
					shapes[shape]++
					if shape == "2020" {
						p := item["project"].(map[string]any)
						if p["accountIdentifier"] != acct.ID || p["lastModifiedAt"].(json.Number).String() == "0" {
							t.Errorf("2020 item %v: want accountIdentifier %s and a lastModifiedAt inside project", p, acct.ID)
						}
					}
				}
				if total, _ := data["totalPages"].(json.Number).Int64(); int64(page+1) >= total {
					break
				}
			}
			for _, want := range []string{"current", "no isFavorite", "null createdAt", "isFavorite only", "2020"} {
				if shapes[want] == 0 {
					t.Errorf("no %q project served; shapes %v", want, shapes)
				}
			}
			if shapes["unknown"] > 0 {
				t.Errorf("%d items in no recorded shape", shapes["unknown"])
			}

			_, body := s.get("/ccm/api/budgets", s.ngQuery())
			m := decode(t, body)
			old := budgetNamed(m, "Sandbox pennies")
			for _, k := range []string{"period", "growthRate", "startTime", "endTime", "isNgBudget", "ngBudget"} {
				if _, ok := old[k]; ok {
					t.Errorf("2021 budget has %s", k)
				}
			}
			if th := old["alertThresholds"].([]any)[0].(map[string]any); th["notifyOnSlack"] != true {
				t.Errorf("2021 threshold %v: want notifyOnSlack true", th)
			}
			if _, ok := budgetNamed(m, "Monthly AWS")["period"]; !ok {
				t.Error("today's budget lost its period")
			}
		})
	}

	t.Run("budgets envelope", func(t *testing.T) {
		for seed, want := range map[int64][]string{1: {"metaData", "data", "responseMessages"}, 2: {"status", "data", "metaData", "correlationId"}} {
			acct := Generate(seed, Small)
			s := newSim(t, acct, Options{})
			_, body := s.get("/ccm/api/budgets", s.ngQuery())
			m := decode(t, body)
			var keys []string
			for k := range m {
				keys = append(keys, k)
			}
			if !sameKeys(keys, want) {
				t.Errorf("seed %d (2021 envelope %v): keys %v, want %v", seed, acct.BudgetsEnvelope2021, keys, want)
			}
			if n := len(m["data"].([]any)); n != len(acct.Budgets) {
				t.Errorf("seed %d: %d budgets served, want %d", seed, n, len(acct.Budgets))
			}
		}
	})
}

func sameKeys(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
