package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

const meanTimePath = "/v1/dora/mean-time"

// seiBody builds a mean-time request; window bounds are epoch seconds as
// strings, the way SEI's UI sends them. gt/lt 0 leave the bound out.
func seiBody(ou int, integrations []string, gt, lt int64, extra string) string {
	filter := map[string]any{
		"ratings":                       []string{"good", "slow", "needs_attention"},
		"calculation":                   "ticket_velocity",
		"work_items_type":               "jira",
		"limit_to_only_applicable_data": "true",
		"integration_ids":               integrations,
	}
	window := map[string]string{}
	if gt != 0 {
		window["$gt"] = fmt.Sprint(gt)
	}
	if lt != 0 {
		window["$lt"] = fmt.Sprint(lt)
	}
	if len(window) > 0 {
		filter["jira_issue_resolved_at"] = window
	}
	b, _ := json.Marshal(map[string]any{"filter": filter, "ou_ids": []int{ou}, "across": "velocity", "widget_id": "w1"})
	if extra != "" {
		b = append(b[:len(b)-1], []byte(","+extra+"}")...)
	}
	return string(b)
}

func TestSEIAuth(t *testing.T) {
	s := newSim(t, Generate(1, Small), Options{})
	o := s.srv.Options()
	ou := s.srv.acct.OUs[0]
	body := []byte(seiBody(ou.RefID, ou.IntegrationIDs, 0, 0, ""))
	tests := []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"none", map[string]string{}, 401},
		{"x-api-key with NG token", map[string]string{"x-api-key": o.Token}, 401},
		{"x-api-key with SEI key", map[string]string{"x-api-key": o.SEIKey}, 401},
		{"Bearer SEI key", map[string]string{"Authorization": "Bearer " + o.SEIKey}, 401},
		{"ApiKey wrong", map[string]string{"Authorization": "ApiKey nope"}, 401},
		{"ApiKey NG token", map[string]string{"Authorization": "ApiKey " + o.Token}, 401},
		{"ApiKey without key", map[string]string{"Authorization": "ApiKey"}, 401},
		{"ApiKey", map[string]string{"Authorization": "ApiKey " + o.SEIKey}, 200},
		{"APIKEY", map[string]string{"Authorization": "APIKEY " + o.SEIKey}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.hdr["Content-Type"] = "application/json"
			resp, b := s.do(http.MethodPost, s.srv.SEIPrefix()+meanTimePath, nil, tc.hdr, body)
			wantStatus(t, resp, b, tc.status)
			if bytes.Contains(b, []byte(o.SEIKey)) {
				t.Error("body leaks the SEI key")
			}
		})
	}
}

func TestSEIValidation(t *testing.T) {
	s := newSim(t, Generate(1, Small), Options{})
	ou := s.srv.acct.OUs[0]
	f := fmt.Sprintf(`"filter":{"integration_ids":[%q]}`, ou.IntegrationIDs[0])
	tests := []struct {
		name   string
		body   string
		ct     string
		status int
		msg    string
	}{
		{"empty body", ``, "", 400, "Required request body is missing"},
		{"not json", `{`, "", 400, "JSON parse error"},
		{"json null", `null`, "", 400, "Required request body is missing"},
		{"no ou_ids", `{` + f + `}`, "", 400, "ou_id is missing in request."},
		{"null ou_ids", `{"ou_ids":null,` + f + `}`, "", 400, "ou_id is missing in request."},
		{"empty ou_ids", `{"ou_ids":[],` + f + `}`, "", 400, "ou_id is missing in request."},
		{"placeholder ou_id", `{"ou_ids":["<OU_ID>"],` + f + `}`, "", 400, "Cannot deserialize value of type `java.lang.Integer`"},
		{"ou_ids not a list", fmt.Sprintf(`{"ou_ids":%d,%s}`, ou.RefID, f), "", 400, "JSON parse error"},
		{"ou_id beyond Java int", `{"ou_ids":[4294967296],` + f + `}`, "", 400, "Cannot deserialize"},
		{"fractional ou_id", `{"ou_ids":[1.5],` + f + `}`, "", 400, "Cannot deserialize"},
		{"no filter", fmt.Sprintf(`{"ou_ids":[%d]}`, ou.RefID), "", 400, "filter is missing in request."},
		{"filter not object", fmt.Sprintf(`{"ou_ids":[%d],"filter":[]}`, ou.RefID), "", 400, "JSON parse error"},
		{"no integration_ids", fmt.Sprintf(`{"ou_ids":[%d],"filter":{}}`, ou.RefID), "", 400, "integration_ids is missing in request."},
		{"empty integration_ids", fmt.Sprintf(`{"ou_ids":[%d],"filter":{"integration_ids":[]}}`, ou.RefID), "", 400, "integration_ids is missing"},
		{"unknown OU", `{"ou_ids":[99],` + f + `}`, "", 400, "Failed to get workflow profile for ou_ref_id  99"},
		{"bad window value", fmt.Sprintf(`{"ou_ids":[%d],"filter":{"integration_ids":["1"],"jira_issue_resolved_at":{"$gt":"last week"}}}`, ou.RefID), "", 400, "jira_issue_resolved_at.$gt"},
		{"window not object", fmt.Sprintf(`{"ou_ids":[%d],"filter":{"integration_ids":["1"],"jira_issue_resolved_at":"2024"}}`, ou.RefID), "", 400, "invalid jira_issue_resolved_at"},
		{"negative page", fmt.Sprintf(`{"ou_ids":[%d],"page":-1,%s}`, ou.RefID, f), "", 400, "page must be"},
		{"text/plain", fmt.Sprintf(`{"ou_ids":[%d],%s}`, ou.RefID, f), "text/plain", 415, "not supported"},
		{"no content type", fmt.Sprintf(`{"ou_ids":[%d],%s}`, ou.RefID, f), "-", 415, "not supported"},
		// The Fivetran connector's literal body: placeholders never parse.
		{"fivetran body", `{"filter":{"ratings":["good","slow","needs_attention"],"calculation":"ticket_velocity","work_items_type":"jira","limit_to_only_applicable_data":"true","integration_ids":["<INTEGRATION_ID>"]},"ou_ids":["<OU_ID>"],"across":"velocity","widget_id":"<WIDGET_ID>"}`, "", 400, "Cannot deserialize"},
		{"numeric string ou_id is coerced", fmt.Sprintf(`{"ou_ids":["%d"],%s}`, ou.RefID, f), "", 200, `"records"`},
		{"charset content type", fmt.Sprintf(`{"ou_ids":[%d],%s}`, ou.RefID, f), "application/json; charset=utf-8", 200, `"records"`},
	}
	errSchema := loadSchema(t, "sei_error.json")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := s.authSEI()
			switch tc.ct {
			case "":
			case "-":
				delete(hdr, "Content-Type")
			default:
				hdr["Content-Type"] = tc.ct
			}
			resp, b := s.do(http.MethodPost, s.srv.SEIPrefix()+meanTimePath, nil, hdr, []byte(tc.body))
			wantStatus(t, resp, b, tc.status)
			mustContain(t, b, tc.msg)
			if tc.status >= 400 {
				if err := validate(errSchema, b); err != nil {
					t.Errorf("error body: %v", err)
				}
				if p := decode(t, b)["path"]; p != meanTimePath {
					t.Errorf("path = %v, want %s", p, meanTimePath)
				}
			}
		})
	}
}

type meanTimeResp struct {
	Records []struct {
		Key                 string
		AdditionalKey       string `json:"additional_key"`
		Median              int64
		Mean                float64
		P90, P95, Count     int64
		VelocityStageResult struct {
			LowerLimitValue int64  `json:"lower_limit_value"`
			LowerLimitUnit  string `json:"lower_limit_unit"`
			UpperLimitValue int64  `json:"upper_limit_value"`
			UpperLimitUnit  string `json:"upper_limit_unit"`
			Rating          string
		} `json:"velocity_stage_result"`
	}
	Count    int
	Metadata struct {
		PageSize   int  `json:"page_size"`
		Page       int  `json:"page"`
		HasNext    bool `json:"has_next"`
		TotalCount int  `json:"total_count"`
	} `json:"_metadata"`
}

func parseMeanTimeResp(t *testing.T, b []byte) meanTimeResp {
	t.Helper()
	var r meanTimeResp
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("decode %s: %v", truncate(b), err)
	}
	return r
}

// expectedCount counts by hand what the server should aggregate for stage si.
func expectedCount(ou OU, si int, ints []string, gt, lt int64) int64 {
	var n int64
	for _, inc := range ou.Incidents {
		if !slices.Contains(ints, inc.IntegrationID) || inc.StageSeconds[si] < 0 {
			continue
		}
		if (gt != 0 && inc.ResolvedAt <= gt) || (lt != 0 && inc.ResolvedAt >= lt) {
			continue
		}
		n++
	}
	return n
}

func TestSEIMeanTime(t *testing.T) {
	acct := Generate(11, Demo)
	s := newSim(t, acct, Options{})
	ou := acct.OUs[0]
	q2 := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC).Unix()
	q3 := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC).Unix()
	q4 := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC).Unix()

	t.Run("deterministic", func(t *testing.T) {
		body := seiBody(ou.RefID, ou.IntegrationIDs, q2, q3, "")
		_, a := s.postSEI(body)
		_, b := s.postSEI(body)
		fresh := newSim(t, Generate(11, Demo), Options{})
		_, c := fresh.postSEI(body)
		if !bytes.Equal(a, b) || !bytes.Equal(a, c) {
			t.Errorf("same request, different bytes:\n%s\n%s\n%s", a, b, c)
		}
	})

	t.Run("window counts", func(t *testing.T) {
		for _, w := range [][2]int64{{q2, q3}, {q3, q4}, {0, q3}, {q2, 0}, {0, 0}} {
			_, b := s.postSEI(seiBody(ou.RefID, ou.IntegrationIDs, w[0], w[1], ""))
			r := parseMeanTimeResp(t, b)
			if len(r.Records) != len(ou.Profile.Stages) {
				t.Fatalf("window %v: %d records, want %d", w, len(r.Records), len(ou.Profile.Stages))
			}
			for si, rec := range r.Records {
				if rec.Key != ou.Profile.Stages[si].Name {
					t.Errorf("record %d key %q, want %q", si, rec.Key, ou.Profile.Stages[si].Name)
				}
				if want := expectedCount(ou, si, ou.IntegrationIDs, w[0], w[1]); rec.Count != want {
					t.Errorf("window %v stage %q: count %d, want %d", w, rec.Key, rec.Count, want)
				}
				if !(0 < rec.Median && rec.Median <= rec.P90 && rec.P90 <= rec.P95) {
					t.Errorf("stage %q: percentiles out of order: %+v", rec.Key, rec)
				}
				st := ou.Profile.Stages[si]
				if rec.AdditionalKey != st.AdditionalKey {
					t.Errorf("stage %q: additional_key %q, want the stage's end event %q", rec.Key, rec.AdditionalKey, st.AdditionalKey)
				}
				if v := rec.VelocityStageResult; v.LowerLimitValue != st.LowerLimitValue || v.LowerLimitUnit != st.LowerLimitUnit ||
					v.UpperLimitValue != st.UpperLimitValue || v.UpperLimitUnit != st.UpperLimitUnit {
					t.Errorf("stage %q: limits %+v, want the profile's %+v", rec.Key, v, st)
				}
			}
			if r.Count != len(r.Records) || r.Metadata.TotalCount != len(r.Records) || r.Metadata.HasNext {
				t.Errorf("count/_metadata = %d/%+v", r.Count, r.Metadata)
			}
		}
	})

	t.Run("different windows differ", func(t *testing.T) {
		_, a := s.postSEI(seiBody(ou.RefID, ou.IntegrationIDs, q2, q3, ""))
		_, b := s.postSEI(seiBody(ou.RefID, ou.IntegrationIDs, q3, q4, ""))
		if bytes.Equal(a, b) {
			t.Error("two windows gave identical results")
		}
	})

	t.Run("empty window", func(t *testing.T) {
		old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
		for _, w := range [][2]int64{{old, old + 86400}, {q3, q2}} {
			_, b := s.postSEI(seiBody(ou.RefID, ou.IntegrationIDs, w[0], w[1], ""))
			mustContain(t, b, `"records":[],"count":0`)
		}
	})

	t.Run("unknown integration", func(t *testing.T) {
		_, b := s.postSEI(seiBody(ou.RefID, []string{"<INTEGRATION_ID>"}, 0, 0, ""))
		mustContain(t, b, `"records":[]`)
	})

	t.Run("integration subset", func(t *testing.T) {
		one := ou.IntegrationIDs[:1]
		_, b := s.postSEI(seiBody(ou.RefID, one, 0, 0, ""))
		r := parseMeanTimeResp(t, b)
		if want := expectedCount(ou, 0, one, 0, 0); r.Records[0].Count != want {
			t.Errorf("count %d, want %d", r.Records[0].Count, want)
		}
	})

	t.Run("numbers as bounds", func(t *testing.T) {
		_, a := s.postSEI(seiBody(ou.RefID, ou.IntegrationIDs, q2, q3, ""))
		body := strings.Replace(seiBody(ou.RefID, ou.IntegrationIDs, 0, 0, ""), `"integration_ids"`,
			fmt.Sprintf(`"jira_issue_resolved_at":{"$gt":%d,"$lt":%d},"integration_ids"`, q2, q3), 1)
		_, b := s.postSEI(body)
		if !bytes.Equal(a, b) {
			t.Error("numeric bounds differ from string bounds")
		}
	})

	t.Run("time_range is not a filter", func(t *testing.T) {
		_, all := s.postSEI(seiBody(ou.RefID, ou.IntegrationIDs, 0, 0, ""))
		body := strings.Replace(seiBody(ou.RefID, ou.IntegrationIDs, 0, 0, ""), `"integration_ids"`,
			fmt.Sprintf(`"time_range":{"$gt":%d,"$lt":%d},"integration_ids"`, q2, q3), 1)
		_, b := s.postSEI(body)
		if !bytes.Equal(all, b) {
			t.Error("time_range changed the result; SEI ignores unknown filter keys")
		}
	})

	t.Run("ratings filter", func(t *testing.T) {
		body := strings.Replace(seiBody(ou.RefID, ou.IntegrationIDs, 0, 0, ""), `["good","slow","needs_attention"]`, `["good"]`, 1)
		_, b := s.postSEI(body)
		for _, rec := range parseMeanTimeResp(t, b).Records {
			if rec.VelocityStageResult.Rating != "GOOD" {
				t.Errorf("ratings [good] returned %s", rec.VelocityStageResult.Rating)
			}
		}
	})

	t.Run("paging metadata", func(t *testing.T) {
		_, b := s.postSEI(seiBody(ou.RefID, ou.IntegrationIDs, 0, 0, `"page":0,"page_size":2`))
		r := parseMeanTimeResp(t, b)
		if r.Metadata.PageSize != 2 || !r.Metadata.HasNext || len(r.Records) != len(ou.Profile.Stages) {
			t.Errorf("page_size 2: %d records, _metadata %+v", len(r.Records), r.Metadata)
		}
		_, b = s.postSEI(seiBody(ou.RefID, ou.IntegrationIDs, 0, 0, ""))
		if r := parseMeanTimeResp(t, b); r.Metadata.PageSize != 100 || r.Metadata.Page != 0 {
			t.Errorf("defaults: _metadata %+v", r.Metadata)
		}
	})

	t.Run("java double mean", func(t *testing.T) {
		_, b := s.postSEI(seiBody(ou.RefID, ou.IntegrationIDs, 0, 0, ""))
		for _, part := range strings.Split(string(b), `"mean":`)[1:] {
			num := part[:strings.IndexAny(part, ",}")]
			if !strings.ContainsAny(num, ".E") {
				t.Errorf("mean %s not written as a Java double", num)
			}
		}
	})

	t.Run("ratings differ across OUs", func(t *testing.T) {
		ratings := map[string]bool{}
		for _, o := range acct.OUs {
			_, b := s.postSEI(seiBody(o.RefID, o.IntegrationIDs, 0, 0, ""))
			for _, rec := range parseMeanTimeResp(t, b).Records {
				ratings[rec.VelocityStageResult.Rating] = true
			}
		}
		if len(ratings) < 2 {
			t.Errorf("only ratings %v across OUs", ratings)
		}
	})

	t.Run("OU without profile", func(t *testing.T) {
		s.srv.Update(func(a *Account) { a.OUs = append(a.OUs, OU{RefID: 5}) })
		resp, b := s.postSEI(seiBody(5, []string{"1"}, 0, 0, ""))
		wantStatus(t, resp, b, 400)
		mustContain(t, b, "Failed to get workflow profile for ou_ref_id  5")
	})
}

func TestSEIPrefix(t *testing.T) {
	s := newSim(t, Generate(1, Small), Options{SEIPrefix: "gratis/sei/api/"})
	if got := s.srv.SEIPrefix(); got != "/gratis/sei/api" {
		t.Fatalf("SEIPrefix = %q", got)
	}
	ou := s.srv.acct.OUs[0]
	resp, b := s.postSEI(seiBody(ou.RefID, ou.IntegrationIDs, 0, 0, ""))
	wantStatus(t, resp, b, 200)
	resp, b = s.do(http.MethodPost, "/prod1/sei/api"+meanTimePath, nil, s.authSEI(), []byte(`{}`))
	wantStatus(t, resp, b, 404)
}

// FuzzMeanTimeBody: any body gets a 200, 400 or 415, never a panic.
func FuzzMeanTimeBody(f *testing.F) {
	acct := Generate(1, Small)
	ou := acct.OUs[0]
	f.Add(seiBody(ou.RefID, ou.IntegrationIDs, 1, 1<<40, ""))
	f.Add(`{"ou_ids":["31000"],"filter":{"integration_ids":[4000],"jira_issue_resolved_at":{"$gt":null}}}`)
	f.Add(`{"ou_ids":[1e3],"page":"2","page_size":2147483647,"filter":{"integration_ids":["x"]}}`)
	f.Add(`[]`)
	srv := NewServer(acct, Options{})
	auth := "ApiKey " + srv.Options().SEIKey
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/prod1/sei/api/v1/dora/mean-time", strings.NewReader(body))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != 400 {
			t.Errorf("status %d for %q", rec.Code, body)
		}
		srv.ResetRequests()
	})
}

// TestSEIContract: every answer, for every OU of every preset and several
// windows, has exactly the recorded record shape (do validates each against
// sei_mean_time.json), and answers mix limit units and ratings as real ones
// do.
func TestSEIContract(t *testing.T) {
	q1 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	q2 := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC).Unix()
	y := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for _, size := range []Size{Small, Demo, Large} {
		t.Run(size.String(), func(t *testing.T) {
			acct := Generate(1, size)
			s := newSim(t, acct, Options{})
			ratings := map[string]bool{}
			for i, ou := range acct.OUs {
				for _, w := range [][2]int64{{0, 0}, {q1, y}, {q1, q2}} {
					resp, b := s.postSEI(seiBody(ou.RefID, ou.IntegrationIDs, w[0], w[1], ""))
					wantStatus(t, resp, b, 200)
					for _, invented := range []string{`"band"`, `"min"`, `"max"`} {
						if bytes.Contains(b, []byte(invented)) {
							t.Errorf("OU %d: answer has %s, which real velocity records lack", ou.RefID, invented)
						}
					}
					r := parseMeanTimeResp(t, b)
					units, inAnswer := map[string]bool{}, map[string]bool{}
					for _, rec := range r.Records {
						units[rec.VelocityStageResult.LowerLimitUnit] = true
						units[rec.VelocityStageResult.UpperLimitUnit] = true
						inAnswer[rec.VelocityStageResult.Rating] = true
						ratings[rec.VelocityStageResult.Rating] = true
					}
					if len(r.Records) > 0 && len(units) < 3 {
						t.Errorf("OU %d window %v: limit units %v, want several in one answer", ou.RefID, w, units)
					}
					if i == 0 && w == [2]int64{} && len(inAnswer) < 3 {
						t.Errorf("first OU's answer has ratings %v, want GOOD, NEEDS_ATTENTION and SLOW side by side", inAnswer)
					}
				}
			}
			if len(ratings) < 3 {
				t.Errorf("ratings served: %v, want all three", ratings)
			}
		})
	}
}

// TestSEIAggregates recomputes each stage from the incidents: count, mean
// and the nearest-rank (percentile_disc) median, p90 and p95, in seconds.
func TestSEIAggregates(t *testing.T) {
	acct := Generate(4, Small)
	s := newSim(t, acct, Options{})
	for _, ou := range acct.OUs {
		_, b := s.postSEI(seiBody(ou.RefID, ou.IntegrationIDs, 0, 0, ""))
		r := parseMeanTimeResp(t, b)
		for si, rec := range r.Records {
			var vals []int64
			var sum int64
			for _, inc := range ou.Incidents {
				if d := inc.StageSeconds[si]; d >= 0 {
					vals = append(vals, d)
					sum += d
				}
			}
			slices.Sort(vals)
			rank := func(p float64) int64 { return vals[int(math.Ceil(p*float64(len(vals))))-1] }
			mean := float64(sum) / float64(len(vals))
			if rec.Count != int64(len(vals)) || math.Abs(rec.Mean-mean) > 1e-9*mean ||
				rec.Median != rank(0.5) || rec.P90 != rank(0.9) || rec.P95 != rank(0.95) {
				t.Errorf("OU %d stage %q: got count %d mean %v median %d p90 %d p95 %d; want %d %v %d %d %d",
					ou.RefID, rec.Key, rec.Count, rec.Mean, rec.Median, rec.P90, rec.P95,
					len(vals), mean, rank(0.5), rank(0.9), rank(0.95))
			}
		}
	}
}
