// Package apitest is an in-process HTTP API simulator driven by fixtures.
// Engine tests, CLI script tests and benchmarks use it in place of the real
// source APIs, and it is meant to be as unkind as they are: it paginates,
// rate-limits, checks credentials and fails on cue.
//
// # Starting a server
//
//	s, err := apitest.Start(fixture, apitest.WithRateLimit(10, time.Second, true))
//	defer s.Close()
//	resp, err := s.Client().Get(s.URL() + "/orgs/acme/apps")
//
// [New] is [Start] without an error return (invalid routes answer 500 and
// [Server.Err] reports them). [Load] reads a YAML or JSON fixture file,
// [StartFile] loads and starts one, and [RunFromFile] serves a file until
// its context ends, for a testscript command. [Server.Handle] adds routes
// at run time. [Server.Requests], [Server.Count], [Server.InFlight] and
// [Server.PeakConcurrency] let a test assert what the client did.
//
// # Choosing a route
//
// Routes are tried in order; the first whose method (default GET), path and
// query match wins. A path is exact or has {name} segments, each matching
// one non-empty path segment, decoded: /apps/{app}/envs matches
// /apps/a%2Fb/envs with app = "a/b". Route.Query must be a subset of the
// request's query ("*" means present with any value). No match gives 404
// (405 with Allow when only the method differs). Before routing, the
// fixture latency is slept and the rate limit is applied (429). The auth
// check (401 by default) runs before the route replies, and before the 404,
// except on Public routes.
//
// # Replies
//
// A route replies, in this order of precedence, with: an echo (Echo: a JSON
// object {method, path, query: {k: [v…]}, headers: {lower-case name: value},
// body: parsed JSON or text, params}); a collection (Items, Generate,
// ItemsFunc or Paginate set); RawBody verbatim; or Body (or BodyFunc) as
// JSON. Status defaults to 200; Headers are added. In YAML fixtures, string
// values in Items, Generate.Item, Body, RawBody and Headers may use {name} for a
// path parameter, replaced per request; Generate.Item also takes {i}, the
// item index ("{i}" alone becomes a number). ItemsFunc and BodyFunc are the
// Go-side way to generate data per match (e.g. 100 parents × 20 children
// without listing 2,000 items); their values are served as they are.
//
// # Pagination
//
// Paging.Type selects the kind. The page size is PageSize (default 10),
// overridden by the request's SizeParam (query, else a path in the JSON
// body, else a header); above MaxSize the request gets 400, or MaxSize items with Clamp.
// Positions are opaque tokens (base64 with '+', '/' and '=' in them, so an
// unescaped token breaks) or numbers. A position is read from Header, else
// BodyField (dotted path in the JSON request body), else the query
// parameter Param. Every kind works with any method: for next_url and link
// the client sends the same request (body included) to the next URL.
//
//   - cursor: token from Param/BodyField/Header; the next token goes to
//     TokenPath in the envelope; on the last page it is omitted (LastToken
//     "empty" writes "", "null" writes null).
//   - next_url: the absolute next URL (the request's URL with Param, default
//     "cursor", set to the token; RelativeURL for path and query only) goes
//     to NextPath; null on the last page.
//   - link: a `Link` header in GitHub's style: rel="prev", "next", "last",
//     "first"; the last page still has prev and first. The token is in Param
//     (default "page"), other parameters (per_page) carry over. The body is
//     the bare array unless Envelope is set.
//   - page: Param (default "page") counts from Start (0 or 1); a page past
//     the end is an empty array, so stop-on-empty can be tested.
//     TotalPagesPath writes the page count. With TokenParam and TokenPath the
//     route also returns a next token and honours it (Harness projects:
//     pageIndex or pageToken).
//   - offset: Param (default "offset") and SizeParam (default "limit").
//   - none: the whole collection in one reply (for envelopes and meta).
//
// Envelope "" sends the page as a bare JSON array; otherwise the page goes at
// that dotted path of an object, built from Body when Body is an object
// (e.g. {"status": "SUCCESS"} around "data.content"). Meta writes paging
// facts at envelope paths: total_items, total_pages, page, page_size,
// item_count, has_next, offset, empty, next_page (null on the last page).
//
// RepeatToken simulates a server bug: cursor, next_url and link return the
// token of the second page on every page, forever; page and offset ignore
// the position and serve the first page every time. A client needs a repeat
// guard or a page cap to stop.
//
// Pagination is stateless (positions are encoded in the tokens), so a retry
// after a fault gets the same page.
//
// # Faults
//
// Route.Faults are consumed in order: fault i applies to the i-th request
// that reaches the route (after auth and rate limit), later requests are
// served normally. A fault's Delay is slept first, then the first set of:
// Drop (close the connection without a response), Truncate (send headers
// whose Content-Length promises the whole normal body, half of it, then
// close), NonJSON (200, or Status, with an HTML page), Status (that status,
// Headers such as Retry-After, and Body or a JSON error). A zero Fault is a
// pass. Note that Go's http.Transport silently retries an idempotent request
// whose reused keep-alive connection was dropped before any response byte,
// so a client may never see a Drop; the request count shows it.
//
// # Token issuers
//
// Fixture.Issuer is the API's own token endpoint, as unkind as real ones,
// and with it the AuthCheck accepts only live tokens it issued (after
// AuthCheck.Prefix in its Header, or in its Query): kind session (a login
// whose body, JSON or form, must hold Fields; the token goes in the body
// at TokenPath, in TokenHeader, or in a Cookie among others), oauth2
// (client credentials by basic auth, form fields or Port's JSON; the
// refresh_token grant, and with Rotate a new refresh token per use, the
// used one refused with invalid_grant) and jwt (GitHub App style: a JWT
// that must verify against PublicKey, name Iss and expire within ten
// minutes is exchanged for {token, expires_at}; with Direct the JWT is
// accepted itself). Tokens expire after TTL on the server's Clock or after
// Uses requests; Silent hides the lifetime from the answer.
// [Server.IssuerStats] counts logins and tokens.
//
// RateLimit.Style "github" answers like GitHub's primary rate limit: a 403
// with x-ratelimit-remaining 0 and x-ratelimit-reset in epoch seconds, no
// Retry-After. An error in a 200 (Slack's {"ok": false}) is a route Body,
// or a Fault with Status 200 and that Body.
//
// # Time
//
// Latency (fixture-wide and per route) and fault delays use real timers
// unless [WithClock] injects another [Clock]. [ManualClock] lets a test hold
// requests in their latency, wait for N of them ([ManualClock.WaitSleepers]),
// assert, then [ManualClock.Advance]. Close releases sleeping requests.
//
// # Fixture file
//
//	auth: {header: Authorization, value: "Bearer t0k"}
//	latency: 0s
//	rate_limit: {limit: 100, per: 1s, headers: true}
//	routes:
//	  - path: /orgs/{org}/apps
//	    items:
//	      - {id: app-1, org: "{org}"}
//	  - path: /orgs/{org}/apps/{app}/envs
//	    generate: {count: 3, item: {id: "{app}-env-{i}", n: "{i}"}}
//	  - path: /orgs/{org}/pipelines
//	    generate: {count: 120, item: {id: "pl-{i}"}}
//	    paginate: {type: link, param: page, size_param: per_page, page_size: 50, max_size: 100}
//	    faults:
//	      - {}
//	      - {status: 429, headers: {Retry-After: "1"}}
//	  - path: /ng/api/projects
//	    query: {accountIdentifier: "*"}
//	    body: {status: SUCCESS}
//	    generate: {count: 120, item: {project: {identifier: "p{i}"}}}
//	    paginate:
//	      type: page
//	      param: pageIndex
//	      size_param: pageSize
//	      max_size: 100
//	      envelope: data.content
//	      token_param: pageToken
//	      token_path: data.pageToken
//	      meta: {data.totalPages: total_pages, data.pageIndex: page}
//
// Keys are the snake_case forms of the Go field names; unknown keys are
// errors; durations are strings such as "20ms". Unquoted dates stay strings.
package apitest
