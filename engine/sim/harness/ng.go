package harness

import (
	"cmp"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// NG/CCM limits from the Harness API docs.
const (
	defaultPageSize = 50
	maxPageSize     = 100
)

// envelope is Harness's ResponseDTO.
type envelope struct {
	Status        string `json:"status"`
	Data          any    `json:"data"`
	MetaData      any    `json:"metaData"`
	CorrelationID string `json:"correlationId"`
}

// envelope2021 is the ResponseDTO recorded from 2021 builds of the budgets
// endpoint: no status, no correlationId.
type envelope2021 struct {
	MetaData         any               `json:"metaData"`
	Data             any               `json:"data"`
	ResponseMessages []responseMessage `json:"responseMessages"`
}

// errorBody is Harness's Error model (401, 404, 429, 5xx).
type errorBody struct {
	Status           string            `json:"status"`
	Code             string            `json:"code"`
	Message          string            `json:"message"`
	CorrelationID    string            `json:"correlationId"`
	DetailedMessage  *string           `json:"detailedMessage"`
	ResponseMessages []responseMessage `json:"responseMessages"`
	Metadata         any               `json:"metadata"`
}

// failureBody is Harness's Failure model (400 validation errors).
type failureBody struct {
	Status           string            `json:"status"`
	Code             string            `json:"code"`
	Message          string            `json:"message"`
	CorrelationID    string            `json:"correlationId"`
	Errors           []fieldError      `json:"errors"`
	ResponseMessages []responseMessage `json:"responseMessages"`
}

type fieldError struct {
	FieldID string `json:"fieldId"`
	Error   string `json:"error"`
}

type responseMessage struct {
	Code         string   `json:"code"`
	Level        string   `json:"level"`
	Message      string   `json:"message"`
	Exception    any      `json:"exception"`
	FailureTypes []string `json:"failureTypes"`
}

// pageResponse is Harness's PageResponse<ProjectResponse>.
type pageResponse struct {
	TotalPages    int64              `json:"totalPages"`
	TotalItems    int64              `json:"totalItems"`
	PageItemCount int64              `json:"pageItemCount"`
	PageSize      int64              `json:"pageSize"`
	Content       []*ProjectResponse `json:"content"`
	PageIndex     int64              `json:"pageIndex"`
	Empty         bool               `json:"empty"`
	PageToken     *string            `json:"pageToken,omitempty"`
}

func (rc *reqCtx) ngError(status int, code, msg string) {
	rc.writeJSON(status, errorBody{
		Status: "ERROR", Code: code, Message: msg, CorrelationID: rc.correlationID(),
		ResponseMessages: []responseMessage{{Code: code, Level: "ERROR", Message: msg, FailureTypes: []string{}}},
	})
}

// ngFailure answers 400 with a Failure body naming the offending field.
func (rc *reqCtx) ngFailure(field, problem string) {
	msg := field + ": " + problem
	rc.writeJSON(http.StatusBadRequest, failureBody{
		Status: "FAILURE", Code: "INVALID_REQUEST", Message: msg, CorrelationID: rc.correlationID(),
		Errors:           []fieldError{{FieldID: field, Error: problem}},
		ResponseMessages: []responseMessage{{Code: "INVALID_REQUEST", Level: "ERROR", Message: msg, FailureTypes: []string{}}},
	})
}

func (s *Server) serveNG(rc *reqCtx, path string) {
	// The same services answer under the /gateway prefix the SDKs use.
	if strings.HasPrefix(path, "/gateway/") {
		path = strings.TrimPrefix(path, "/gateway")
	}
	var h func(*reqCtx)
	switch path {
	case "/ng/api/projects":
		h = s.listProjects
	case "/ng/api/connectors/catalogue":
		h = s.catalogue
	case "/ccm/api/budgets":
		h = s.budgets
	default:
		rc.ngError(http.StatusNotFound, "RESOURCE_NOT_FOUND", "HTTP 404 Not Found")
		return
	}
	if rc.r.Method != http.MethodGet {
		rc.w.Header().Set("Allow", "GET")
		rc.ngError(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "HTTP 405 Method Not Allowed")
		return
	}
	if !s.ngAuth(rc) || !s.ngAccount(rc) {
		return
	}
	h(rc)
}

// ngAuth accepts only the x-api-key header; Authorization schemes are not
// NG API-key auth and are refused like a missing key.
func (s *Server) ngAuth(rc *reqCtx) bool {
	key := rc.r.Header.Get("x-api-key")
	if key == "" {
		rc.ngError(http.StatusUnauthorized, "INVALID_CREDENTIAL", "Invalid credentials: no API key in x-api-key header")
		return false
	}
	if subtle.ConstantTimeCompare([]byte(key), []byte(s.opts.Token)) != 1 {
		rc.ngError(http.StatusUnauthorized, "INVALID_TOKEN", "Token is not valid.")
		return false
	}
	return true
}

func (s *Server) ngAccount(rc *reqCtx) bool {
	q := rc.r.URL.Query()
	acct := q.Get("accountIdentifier")
	if acct == "" {
		rc.ngFailure("accountIdentifier", "must not be null")
		return false
	}
	if acct != s.opts.AccountID {
		rc.ngFailure("accountIdentifier", "account does not match the API key")
		return false
	}
	return true
}

// Handlers encode under the read lock: the account's slices and maps may
// be changed by Update as soon as it is released.
func (s *Server) catalogue(rc *reqCtx) {
	s.mu.RLock()
	items := s.acct.Catalogue
	if items == nil {
		items = []CatalogueItem{}
	}
	b, err := encodeJSON(envelope{Status: "SUCCESS", Data: map[string]any{"catalogue": items}, CorrelationID: rc.correlationID()})
	s.mu.RUnlock()
	rc.writeBytes(http.StatusOK, b, err)
}

func (s *Server) budgets(rc *reqCtx) {
	s.mu.RLock()
	data := s.acct.Budgets
	if data == nil {
		data = []Budget{}
	}
	var body any = envelope{Status: "SUCCESS", Data: data, CorrelationID: rc.correlationID()}
	if s.acct.BudgetsEnvelope2021 {
		body = envelope2021{Data: data, ResponseMessages: []responseMessage{}}
	}
	b, err := encodeJSON(body)
	s.mu.RUnlock()
	rc.writeBytes(http.StatusOK, b, err)
}

// intParam parses an optional integer query parameter. The server's
// parameters are Java ints, so values beyond 32 bits are rejected.
func intParam(q map[string][]string, name string, def int) (int, bool) {
	v, ok := q[name]
	if !ok || len(v) == 0 || v[0] == "" {
		return def, true
	}
	n, err := strconv.ParseInt(v[0], 10, 32)
	return int(n), err == nil
}

func (s *Server) listProjects(rc *reqCtx) {
	q := rc.r.URL.Query()
	pageIndex, ok := intParam(q, "pageIndex", 0)
	if !ok || pageIndex < 0 {
		rc.ngFailure("pageIndex", "must be a non-negative integer")
		return
	}
	pageSize, ok := intParam(q, "pageSize", defaultPageSize)
	if !ok {
		rc.ngFailure("pageSize", "must be an integer")
		return
	}
	if pageSize > maxPageSize {
		rc.ngFailure("pageSize", fmt.Sprintf("must be less than or equal to %d", maxPageSize))
		return
	}
	if pageSize < 1 {
		rc.ngFailure("pageSize", "must be greater than or equal to 1")
		return
	}
	offset := pageIndex * pageSize
	if s.opts.PageTokens {
		if tok := q.Get("pageToken"); tok != "" {
			off, err := s.decodePageToken(tok)
			if err != nil {
				rc.ngFailure("pageToken", "invalid page token")
				return
			}
			offset = off
			pageIndex = off / pageSize
		}
	}

	match := projectFilter(q)
	s.mu.RLock()
	projects := s.acct.Projects
	var order []int
	for i := range projects {
		if match(&projects[i]) {
			order = append(order, i)
		}
	}
	// Default order of the real endpoint: lastModifiedAt descending. Ties
	// keep insertion order, as a database's natural order would.
	slices.SortFunc(order, func(a, b int) int {
		if c := cmp.Compare(projects[b].LastModifiedAt, projects[a].LastModifiedAt); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	total := len(order)
	content := []*ProjectResponse{}
	if offset < total {
		for _, i := range order[offset:min(offset+pageSize, total)] {
			content = append(content, &projects[i])
		}
	}
	page := pageResponse{
		TotalPages:    int64((total + pageSize - 1) / pageSize),
		TotalItems:    int64(total),
		PageItemCount: int64(len(content)),
		PageSize:      int64(pageSize),
		Content:       content,
		PageIndex:     int64(pageIndex),
		Empty:         len(content) == 0,
	}
	if s.opts.PageTokens {
		next := ""
		if end := offset + len(content); end < total && len(content) > 0 {
			next = s.encodePageToken(end)
		}
		page.PageToken = &next
	}
	b, err := encodeJSON(envelope{Status: "SUCCESS", Data: page, CorrelationID: rc.correlationID()})
	s.mu.RUnlock()
	rc.writeBytes(http.StatusOK, b, err)
}

// projectFilter implements the list filters of GET /ng/api/projects.
func projectFilter(q map[string][]string) func(*ProjectResponse) bool {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	org := get("orgIdentifier")
	var idents []string
	for _, v := range q["identifiers"] {
		for part := range strings.SplitSeq(v, ",") {
			if part != "" {
				idents = append(idents, part)
			}
		}
	}
	module := get("moduleType")
	hasModule := get("hasModule") != "false"
	search := strings.ToLower(get("searchTerm"))
	onlyFav := get("onlyFavorites") == "true"
	return func(p *ProjectResponse) bool {
		pr := &p.Project
		if org != "" && pr.OrgIdentifier != org {
			return false
		}
		if len(idents) > 0 && !slices.Contains(idents, pr.Identifier) {
			return false
		}
		if module != "" && slices.Contains(pr.Modules, module) != hasModule {
			return false
		}
		if onlyFav && !p.IsFavorite {
			return false
		}
		if search != "" && !matchesSearch(pr, search) {
			return false
		}
		return true
	}
}

func matchesSearch(p *Project, term string) bool {
	if strings.Contains(strings.ToLower(p.Name), term) || strings.Contains(strings.ToLower(p.Identifier), term) {
		return true
	}
	for k, v := range p.Tags {
		if strings.Contains(strings.ToLower(k), term) || strings.Contains(strings.ToLower(v), term) {
			return true
		}
	}
	return false
}

// Page tokens are opaque to clients: base64url of "<offset>.<check>", where
// check binds the offset to this account so edited or foreign tokens fail.
func (s *Server) encodePageToken(offset int) string {
	raw := fmt.Sprintf("%d.%s", offset, s.tokenCheck(offset))
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func (s *Server) decodePageToken(tok string) (int, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, fmt.Errorf("page token: %w", err)
	}
	num, check, ok := strings.Cut(string(raw), ".")
	if !ok {
		return 0, fmt.Errorf("page token: malformed")
	}
	off, err := strconv.Atoi(num)
	if err != nil || off < 0 {
		return 0, fmt.Errorf("page token: bad offset")
	}
	if check != s.tokenCheck(off) {
		return 0, fmt.Errorf("page token: check mismatch")
	}
	return off, nil
}

func (s *Server) tokenCheck(offset int) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%d", s.opts.AccountID, offset)
	return strconv.FormatUint(h.Sum64(), 36)
}
