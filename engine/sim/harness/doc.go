// Package harness is an in-process simulator of the Harness APIs that
// ferry's specs/harness.yaml reads, plus a seeded data generator. Tests,
// golden tests, benchmarks and `ferry run specs/harness.yaml --demo` use it;
// it never touches the network.
//
// It is meant to be as strict as the real service, not kinder:
//
//   - NG/CCM (on the base URL, and also under /gateway):
//     GET /ng/api/projects, GET /ng/api/connectors/catalogue,
//     GET /ccm/api/budgets. Auth is the x-api-key header only (401 with
//     Harness's Error body otherwise). accountIdentifier is required and must
//     match the account (400 Failure body otherwise). Responses use the
//     ResponseDTO envelope {status, data, metaData, correlationId}; budgets
//     use 2021's {metaData, data, responseMessages} when
//     [Account].BudgetsEnvelope2021 is set.
//
//   - Projects page by 0-based pageIndex (pageSize default 50, above 100 is
//     a 400), sorted by lastModifiedAt descending like the real endpoint.
//     With [Options].PageTokens the server also returns data.pageToken ("" on
//     the last page) and honours a pageToken parameter over pageIndex; an
//     edited or foreign token is a 400. Without it the field is absent and
//     the parameter ignored, like older builds. Filters: orgIdentifier,
//     identifiers, moduleType/hasModule, searchTerm, onlyFavorites.
//
//   - SEI, mounted under [Options].SEIPrefix (default /prod1/sei/api):
//     POST {prefix}/v1/dora/mean-time with "Authorization: ApiKey <SEI key>"
//     (x-api-key is refused) and a JSON body (other content types get 415):
//
//     {"ou_ids": [31000], "filter": {"integration_ids": ["4000"],
//     "jira_issue_resolved_at": {"$gt": "1717200000", "$lt": "1719791999"}},
//     "page": 0, "page_size": 100}
//
//     ou_ids must be a non-empty integer list (numeric strings are coerced as
//     Jackson does; "<OU_ID>" is a 400); the first (smallest) id selects the
//     OU, and an OU without a workflow profile is a 400. filter and
//     filter.integration_ids are required. The time window is
//     filter.jira_issue_resolved_at (workitem_resolved_at when
//     work_items_type is "azure_devops"), exclusive epoch-second bounds given
//     as strings or numbers; other keys such as time_range are ignored, as
//     SEI ignores unknown filters. filter.ratings keeps only stages with
//     those ratings. The answer is SEI's paginated list
//     {records, count, _metadata{page_size, page, has_next, total_count}},
//     one velocity record per workflow stage in exactly the recorded shape
//     {key, additional_key, median, count, mean, p90, p95,
//     velocity_stage_result{lower_limit_value, lower_limit_unit,
//     upper_limit_value, upper_limit_unit, rating}}: no band, min or max;
//     durations in seconds (mean as a Java double), limits in the units of
//     the OU's profile, rating GOOD, NEEDS_ATTENTION or SLOW. Records are
//     computed from the OU's incidents, so the same request always gives the
//     same bytes. SEI errors use the Spring Boot body {timestamp, status,
//     error, message, path}.
//
//   - Rate limiting ([Options].RateLimit per Window, fixed window on the
//     injected clock) answers 429 with no Retry-After, as Harness's edge
//     does. [Options].FailPath injects statuses; unknown paths are 404 and
//     wrong methods 405.
//
//   - Doubles are written as Jackson writes them ("1000.0", "2.5E7"), and
//     JSON is not HTML-escaped.
//
// Use [NewServer] with httptest.NewServer, or [Start] for a loopback listener
// ([Server.URL], [Server.SEIBaseURL]). [Server.Requests] is the request log;
// change served data with [Server.Update].
//
// [Generate] builds a deterministic [Account] for a seed and [Size]: projects
// in several orgs sharing identifiers (default_project in default and
// platform), names with punctuation and Unicode, null and empty
// descriptions, missing and empty tags, empty module lists, and items in
// each older recorded shape ([ProjectShape]); connector categories; budgets
// of four scope types with alert thresholds, one in the 2021 shape, and the
// 2021 budgets envelope for odd seeds; SEI OUs with incidents spread over
// 2024–2027 and profiles whose limits mix units.
package harness
