// Package fetch is ferry's HTTP layer, built on resty: authentication,
// retries, per-host rate and concurrency limits, and redaction of secrets.
//
// One [Pool] serves a whole run. [Pool.Client] turns a [HostConfig] (a
// spec's http block) into a [Client]; every client whose BaseURL has the
// same scheme and host shares one concurrency gate, one rate limiter
// (golang.org/x/time/rate) and one pooled transport, however many streams
// and fan-out levels use it. When configs for a host disagree the
// strictest limits win (lowest concurrency, rate and burst).
//
//	pool := fetch.NewPool(fetch.Options{Logger: log})
//	c, err := pool.Client(fetch.HostConfig{
//		BaseURL: "https://app.harness.io/gateway",
//		Auth:    fetch.Auth{Type: fetch.AuthHeader, Header: "x-api-key", Token: key},
//		RatePerSecond: 10, Concurrency: 8,
//	})
//	resp, err := c.Do(ctx, &fetch.Request{URL: "/ng/api/projects", Query: q})
//
// [Client.Do] retries network errors, bodies cut short, timed-out
// attempts and the configured statuses (408, 429 and 5xx by default) with
// capped exponential backoff and full jitter, honouring Retry-After
// (seconds or HTTP date) and, on a rate limit, x-ratelimit-reset (epoch
// seconds when above 1e9, an ISO 8601 time as Jira sends, else seconds to
// wait) or the IETF RateLimit reset. A rate limit is a 429, or a 403 with
// Retry-After or x-ratelimit-remaining 0 (GitHub), retried when 429 is.
// Every x-ratelimit-* field is also read in its other spelling,
// X-Rate-Limit-*, when absent.
// Stripe-Should-Retry: false stops a retry, true asks for one whatever
// the status, within the method rules below. A server hint longer than
// Retry.Max is honoured up to [MaxServerWait] (5 minutes). POSTs are
// retried too unless HostConfig.RetryPOST is false, because ferry's POSTs
// are read-only queries. A request that still fails with a non-2xx status
// returns a [*StatusError] alongside the last [Response]. A response body
// over HostConfig.MaxBodyBytes (32 MiB by default) fails the request with
// [ErrBodyTooLarge], never truncated and not retried.
//
// Every other host has adaptive rate control: it starts unpaced, at its
// concurrency, and follows what the host answers. A rate limit or 503 cuts the
// host's rate multiplicatively (once per round) and its Retry-After holds
// every request to the host; while the rate holds requests back it
// recovers additively; an announced budget (x-ratelimit-remaining and
// -reset, or the IETF RateLimit fields) holds requests while spent, until
// its reset. HostConfig.RatePerSecond stays a ceiling (see adapt.go).
// HostConfig.Budget names a budget's headers where an API gives them names
// of its own (HubSpot's X-HubSpot-RateLimit-*), read before the standard
// ones: the requests left and a reset, or a rolling window's length (the
// budget then holds until the answer is that old) and limit (the host's
// own requests are kept to the limit in any window, counted as they start).
//
// HostConfig.RateHeaders throttles a host by its own x-ratelimit-* headers
// (Port sends them on every answer): requests are paced to
// x-ratelimit-limit per x-ratelimit-period, and after a rate limit or
// x-ratelimit-remaining 0 none starts before x-ratelimit-reset.
//
// HostConfig.Rules decide, before that default handling, what an answer
// is ([Rule]): data whatever its status, empty (Do returns the Response
// with a *RuleError that is ErrEmpty), skipped (ErrSkipped), retried on
// any status after the server's wait (a named header, Retry-After or
// x-ratelimit-reset, epoch or seconds, unless x-ratelimit-remaining says
// budget is left; a wait beyond MaxWait fails at once), or a failure with a message read from the body by jq. Rules match
// on status ranges, header values and a predicate on the JSON body, so
// GitHub's 403 rate limit and Slack's {"ok": false} in a 200 are plain
// configuration. Request.BodyFormat "form" sends a body form encoded.
//
// Auth kinds: bearer, an API key in a header (with an optional value
// prefix) or a query parameter, basic, OAuth2 (client credentials or a
// refresh token; the token request form-posted with basic or body
// credentials, or Port-style JSON), a session (a login request whose
// token, read by jq or from a header or cookies, goes in a header or a
// query parameter) and a JWT (RS256 or ES256, signed with the standard
// library, sent as is or exchanged for an access token, as GitHub Apps
// do), and AWS Signature Version 4 (the AWS SDK's signer: each attempt
// signed as it goes out, after its waits, since the signature holds its
// time; a 4xx that says the clock is over 5 minutes off AWS's fails
// naming the clock). Fetched credentials are cached until a tenth of their lifetime, at
// most 5 minutes, before a known expiry, one fetch shared by concurrent
// callers and by every client with the same Auth, and renewed once on a
// 401. A refresh token the server rotates is kept in Options.Credentials
// before the access token that came with it is used, so the next run can
// authenticate. Credentials are only sent to BaseURL's own scheme and
// host: an absolute URL elsewhere (a next-page link, a redirect) goes
// without them.
//
// Secrets never reach logs or errors: every token, key, password, client
// secret, refresh token, private key, AWS secret key and session token,
// fetched token or session, JWT and Options.Secrets value is replaced by
// REDACTED in URLs, error messages and log lines ([Pool.Redact]). Logs go
// to the injected slog.Logger: Debug per attempt, Warn per retry.
//
// Tests inject Options.Sleep, Now and Rand, so waits (backoff, server
// hints, the rate limiter) can be asserted without real time passing.
package fetch
