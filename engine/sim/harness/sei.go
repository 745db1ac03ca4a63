package harness

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// SEI paging defaults when the body has no page / page_size.
const (
	seiDefaultPage     = 0
	seiDefaultPageSize = 100
)

// Messages the SEI server uses (LegacyLeadTimeCalculationService).
const (
	msgOUMissing = "ou_id is missing in request."
	msgNoProfile = "Failed to get workflow profile for ou_ref_id  %d" // two spaces, as in SEI
)

// seiErrorBody is the Spring Boot error body the SEI service answers with.
type seiErrorBody struct {
	Timestamp string `json:"timestamp"`
	Status    int    `json:"status"`
	Error     string `json:"error"`
	Message   string `json:"message"`
	Path      string `json:"path"`
}

// seiList is SEI's PaginatedResponse.
type seiList struct {
	Records  []aggRecord `json:"records"`
	Count    int         `json:"count"`
	Metadata seiMeta     `json:"_metadata"`
}

type seiMeta struct {
	PageSize   int  `json:"page_size"`
	Page       int  `json:"page"`
	HasNext    bool `json:"has_next"`
	TotalCount int  `json:"total_count"`
}

// aggRecord is SEI's DbAggregationResult for one velocity stage, with
// exactly the fields recorded velocity answers carry (the class has more,
// such as min, max and band, but SEI omits null fields and these are null
// for velocity stages). Durations are seconds; the stage's limits keep the
// units an admin chose, so one answer mixes units.
type aggRecord struct {
	Key                 string      `json:"key"`
	AdditionalKey       string      `json:"additional_key,omitempty"` // the event that ends the stage
	Median              int64       `json:"median"`
	Count               int64       `json:"count"`
	Mean                Double      `json:"mean"`
	P90                 int64       `json:"p90"`
	P95                 int64       `json:"p95"`
	VelocityStageResult stageResult `json:"velocity_stage_result"`
}

type stageResult struct {
	LowerLimitValue int64  `json:"lower_limit_value"`
	LowerLimitUnit  string `json:"lower_limit_unit"`
	UpperLimitValue int64  `json:"upper_limit_value"`
	UpperLimitUnit  string `json:"upper_limit_unit"`
	Rating          string `json:"rating"` // GOOD | NEEDS_ATTENTION | SLOW
}

func (rc *reqCtx) seiError(status int, msg string) {
	rc.writeJSON(status, seiErrorBody{
		Timestamp: rc.now.UTC().Format("2006-01-02T15:04:05.000+00:00"),
		Status:    status,
		Error:     http.StatusText(status),
		Message:   msg,
		Path:      strings.TrimPrefix(rc.r.URL.Path, rc.srv.opts.SEIPrefix),
	})
}

func (s *Server) serveSEI(rc *reqCtx, sub string) {
	if sub != "/v1/dora/mean-time" {
		rc.seiError(http.StatusNotFound, "No static resource "+strings.TrimPrefix(sub, "/")+".")
		return
	}
	if rc.r.Method != http.MethodPost {
		rc.w.Header().Set("Allow", "POST")
		rc.seiError(http.StatusMethodNotAllowed, fmt.Sprintf("Request method '%s' is not supported", rc.r.Method))
		return
	}
	if !s.seiAuth(rc) {
		return
	}
	ct := rc.r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		rc.seiError(http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type '%s' is not supported", ct))
		return
	}
	req, msg := parseMeanTime(rc.body)
	if msg != "" {
		rc.seiError(http.StatusBadRequest, msg)
		return
	}
	s.mu.RLock()
	res, msg := s.meanTime(req)
	var b []byte
	if msg == "" {
		b, err = encodeJSON(res)
	}
	s.mu.RUnlock()
	if msg != "" {
		rc.seiError(http.StatusBadRequest, msg)
		return
	}
	rc.writeBytes(http.StatusOK, b, err)
}

// seiAuth accepts "Authorization: ApiKey <key>" (scheme case-insensitive, as
// SEI's docs spell it both ApiKey and APIKEY). x-api-key is not SEI auth.
func (s *Server) seiAuth(rc *reqCtx) bool {
	scheme, key, _ := strings.Cut(strings.TrimSpace(rc.r.Header.Get("Authorization")), " ")
	key = strings.TrimSpace(key)
	if !strings.EqualFold(scheme, "apikey") || key == "" ||
		subtle.ConstantTimeCompare([]byte(key), []byte(s.opts.SEIKey)) != 1 {
		rc.seiError(http.StatusUnauthorized, "Unauthorized")
		return false
	}
	return true
}

// meanTimeReq is the part of SEI's DefaultListRequest the simulator uses.
type meanTimeReq struct {
	ouID         int
	integrations []string
	gt, lt       *int64 // exclusive bounds on ResolvedAt, epoch seconds
	ratings      []string
	page         int
	pageSize     int
}

// parseMeanTime validates the body. It returns a client-facing message
// on error.
func parseMeanTime(body []byte) (meanTimeReq, string) {
	req := meanTimeReq{page: seiDefaultPage, pageSize: seiDefaultPageSize}
	if len(bytes.TrimSpace(body)) == 0 {
		return req, "Required request body is missing"
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		return req, "JSON parse error: " + err.Error()
	}
	if top == nil {
		return req, "Required request body is missing"
	}

	// ou_ids: a set of integers. Jackson coerces numeric strings, so "12"
	// passes; "<OU_ID>" does not. SEI uses the first element of the set,
	// which for small non-negative ints in a HashSet is the smallest.
	raw, present := top["ou_ids"]
	if !present || raw == nil {
		return req, msgOUMissing
	}
	list, ok := raw.([]any)
	if !ok {
		return req, "JSON parse error: ou_ids must be an array of integers"
	}
	if len(list) == 0 {
		return req, msgOUMissing
	}
	first := math.MaxInt
	for _, v := range list {
		n, ok := jsonInt(v)
		if !ok {
			return req, fmt.Sprintf("JSON parse error: Cannot deserialize value of type `java.lang.Integer` from %s: not a valid `java.lang.Integer` value", describe(v))
		}
		first = min(first, int(n))
	}
	req.ouID = first

	for _, k := range []string{"page", "page_size"} {
		if v, ok := top[k]; ok && v != nil {
			n, ok := jsonInt(v)
			if !ok || n < 0 {
				return req, fmt.Sprintf("JSON parse error: %s must be a non-negative integer", k)
			}
			if k == "page" {
				req.page = int(n)
			} else {
				req.pageSize = int(n)
			}
		}
	}

	fraw, present := top["filter"]
	if !present || fraw == nil {
		return req, "filter is missing in request."
	}
	filter, ok := fraw.(map[string]any)
	if !ok {
		return req, "JSON parse error: filter must be an object"
	}
	ids, _ := filter["integration_ids"].([]any)
	for _, v := range ids {
		switch t := v.(type) {
		case string:
			req.integrations = append(req.integrations, t)
		case json.Number:
			req.integrations = append(req.integrations, t.String())
		default:
			return req, "JSON parse error: integration_ids must be strings"
		}
	}
	if len(req.integrations) == 0 {
		return req, "integration_ids is missing in request."
	}

	// The resolution-time filter key follows the issue system, as in SEI's
	// widgets: jira_issue_resolved_at for Jira, workitem_resolved_at for
	// Azure DevOps. Unknown keys (e.g. time_range) are ignored, as SEI does.
	timeKey := "jira_issue_resolved_at"
	if filter["work_items_type"] == "azure_devops" {
		timeKey = "workitem_resolved_at"
	}
	if tr, present := filter[timeKey]; present && tr != nil {
		m, ok := tr.(map[string]any)
		if !ok {
			return req, fmt.Sprintf("invalid %s: expected {\"$gt\": ..., \"$lt\": ...}", timeKey)
		}
		for _, bound := range []string{"$gt", "$lt"} {
			v, present := m[bound]
			if !present || v == nil {
				continue
			}
			n, ok := jsonLong(v)
			if !ok {
				return req, fmt.Sprintf("invalid %s.%s: %s is not epoch seconds", timeKey, bound, describe(v))
			}
			if bound == "$gt" {
				req.gt = &n
			} else {
				req.lt = &n
			}
		}
	}
	if rs, ok := filter["ratings"].([]any); ok {
		for _, v := range rs {
			if s, ok := v.(string); ok {
				req.ratings = append(req.ratings, strings.ToUpper(s))
			}
		}
	}
	return req, ""
}

// jsonInt accepts a JSON integer or a string holding one (Jackson coercion)
// within Java Integer range.
func jsonInt(v any) (int64, bool) {
	return jsonIntBits(v, 32)
}

// jsonLong is jsonInt for Java Long values (epoch seconds).
func jsonLong(v any) (int64, bool) {
	return jsonIntBits(v, 64)
}

func jsonIntBits(v any, bits int) (int64, bool) {
	switch t := v.(type) {
	case json.Number:
		n, err := strconv.ParseInt(t.String(), 10, bits)
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(t, 10, bits)
		return n, err == nil
	}
	return 0, false
}

func describe(v any) string {
	switch t := v.(type) {
	case string:
		return strconv.Quote(t)
	case json.Number:
		return t.String()
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// meanTime aggregates the OU's incidents per stage. Callers hold s.mu.
func (s *Server) meanTime(req meanTimeReq) (seiList, string) {
	var ou *OU
	for i := range s.acct.OUs {
		if s.acct.OUs[i].RefID == req.ouID {
			ou = &s.acct.OUs[i]
			break
		}
	}
	if ou == nil || ou.Profile == nil {
		return seiList{}, fmt.Sprintf(msgNoProfile, req.ouID)
	}
	records := []aggRecord{}
	for si, st := range ou.Profile.Stages {
		var vals []int64
		for i := range ou.Incidents {
			inc := &ou.Incidents[i]
			if si >= len(inc.StageSeconds) || inc.StageSeconds[si] < 0 {
				continue
			}
			if !slices.Contains(req.integrations, inc.IntegrationID) {
				continue
			}
			if (req.gt != nil && inc.ResolvedAt <= *req.gt) || (req.lt != nil && inc.ResolvedAt >= *req.lt) {
				continue
			}
			vals = append(vals, inc.StageSeconds[si])
		}
		if len(vals) == 0 {
			continue
		}
		rec := aggregate(st, vals)
		if len(req.ratings) > 0 && !slices.Contains(req.ratings, rec.VelocityStageResult.Rating) {
			continue
		}
		records = append(records, rec)
	}
	total := len(records)
	// SEI returns the whole aggregate list; has_next is computed from the
	// request's page numbers only.
	return seiList{
		Records: records,
		Count:   total,
		Metadata: seiMeta{
			PageSize: req.pageSize, Page: req.page, TotalCount: total,
			HasNext: req.pageSize > 0 && (req.page+1)*req.pageSize < total,
		},
	}, ""
}

func aggregate(st Stage, vals []int64) aggRecord {
	slices.Sort(vals)
	var sum float64
	for _, v := range vals {
		sum += float64(v)
	}
	mean := sum / float64(len(vals))
	lower := unitSeconds(st.LowerLimitUnit) * st.LowerLimitValue
	upper := unitSeconds(st.UpperLimitUnit) * st.UpperLimitValue
	rating := "SLOW"
	switch m := int64(mean); {
	case m <= lower:
		rating = "GOOD"
	case m <= upper:
		rating = "NEEDS_ATTENTION"
	}
	return aggRecord{
		Key:           st.Name,
		AdditionalKey: st.AdditionalKey,
		Median:        percentileDisc(vals, 0.5),
		Count:         int64(len(vals)),
		Mean:          Double(mean),
		P90:           percentileDisc(vals, 0.9),
		P95:           percentileDisc(vals, 0.95),
		VelocityStageResult: stageResult{
			LowerLimitValue: st.LowerLimitValue, LowerLimitUnit: st.LowerLimitUnit,
			UpperLimitValue: st.UpperLimitValue, UpperLimitUnit: st.UpperLimitUnit,
			Rating: rating,
		},
	}
}

// percentileDisc is SQL's percentile_disc: the first value whose cumulative
// share reaches p. vals must be sorted and non-empty.
func percentileDisc(vals []int64, p float64) int64 {
	i := int(math.Ceil(p*float64(len(vals)))) - 1
	return vals[max(i, 0)]
}

func unitSeconds(unit string) int64 {
	switch unit {
	case "SECONDS":
		return 1
	case "MINUTES":
		return 60
	case "HOURS":
		return 3600
	case "DAYS":
		return 86400
	}
	return 1
}
