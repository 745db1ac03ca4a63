// Package cassette records a run's HTTP exchanges into a directory and
// answers a later run's requests from it, as an http.RoundTripper under
// ferry's one HTTP client: nothing above it knows whether the network is
// real.
//
// A cassette is one readable JSON file per exchange: the request (method,
// URL, the headers ferry sent, the body) and the response (status, the
// headers that matter, the body; JSON bodies pretty-printed with sorted
// keys). A file is named after its method, path and a hash of the request,
// so re-recording an unchanged API rewrites the same files with the same
// bytes (headers and top-level fields that only identify one answer, such
// as dates and request ids, are left out or held as <volatile>). Requests
// are matched by method, URL (query order ignored), headers and body,
// never by position: concurrent runs ask in any order.
// A request asked several times (a retry, a page read twice) keeps the
// last answer, and replay gives that answer every time.
//
// Nothing secret is written: config secrets become <secret:NAME>, every
// other secret the client knows (fetched tokens, derived credentials)
// <secret>, and config values that are URLs <config:NAME>, so a cassette
// recorded against a simulator or a staging host replays against any
// base URL. Replay does the same to each request before matching, so a
// request carrying the real secret matches the placeholder, and puts the
// run's own values back into the answers.
package cassette
