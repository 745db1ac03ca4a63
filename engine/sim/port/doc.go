// Package port (engine/sim/port) is an in-process Port API (api.port.io /v1) that enforces
// the contract the real one enforces, so sink tests can trust a pass.
//
// Start one per test with [New] (httptest on 127.0.0.1) or, for demos, with
// [Start]; point a client at [Server.URL]:
//
//	srv := portsim.New(portsim.Options{RateLimit: 50, Window: 3 * time.Second})
//	defer srv.Close()
//
// Routes served (facts from Port's OpenAPI document, copied into
// testdata/port-schemas.json):
//
//   - POST /v1/auth/access_token {clientId, clientSecret} → {ok, accessToken,
//     expiresIn, tokenType:"Bearer"}. One live token per credential pair: asking
//     again before expiry returns the same token. Bad credentials → 401; a
//     missing, unknown or expired bearer token on any other route → 401.
//     Token lifetime and every timestamp use Options.Now.
//   - Blueprints: POST /v1/blueprints (409 if it exists), GET/PUT/PATCH/DELETE
//     /v1/blueprints/{id}, GET /v1/blueprints. Identifier patterns and lengths,
//     title/description lengths, property types/formats/specs, the closed
//     `schema` object, relation definitions (closed keys, target must exist or
//     be the blueprint itself), mirror paths and calculation shapes are
//     checked. A property's type and a relation's `many` cannot change. PATCH
//     replaces each top-level key it sends. DELETE fails while entities of the
//     blueprint, or relations from other blueprints to it, exist.
//   - Entities: POST …/entities (upsert, merge, create_missing_related_entities,
//     validation_only), POST …/entities/bulk (1..20 entities; the
//     route's JSON schema — identifier and relation-target patterns,
//     title/icon strings, properties and relations objects — is checked on
//     the whole body first, and one entity outside it fails the request
//     with a 422; then 200 when all succeed, 207 with per-index errors
//     otherwise), GET single and list, GET …/entities-count (every
//     entity of the blueprint, whoever made it, counted at once as GET
//     sees them: whether Port's count lags as its search does is not
//     documented),
//     PUT (replace) and PATCH (merge) single, DELETE single (404 if gone),
//     POST …/bulk/entities/delete (1..100 ids) and POST …/entities/search
//     (limit 1..1000, default 200; `next` → `from`; results in no
//     particular order, as Port's; a full page carries `next` even when
//     nothing follows, and the page after it is empty; the last page has
//     next null after a `from`, no next otherwise; the answer is
//     gzip-compressed when the client accepts it, as Port may). Entity identifiers: Unicode
//     letters, digits and @ _ . + : \ / = -, not "." or "..", at most 1000
//     characters. Properties must be declared and type-correct (string,
//     number, boolean, object, array; formats date-time, url, email, ipv4,
//     ipv6 checked; enum, min/max length, pattern, minimum/maximum, array
//     items). Numbers are kept as Port keeps them, as doubles: an integer
//     a double cannot hold (9007199254740993) is answered as the nearest
//     one (9007199254740992), at any depth. Required properties and
//     relations must be present. Relations
//     must be declared, a string (or null) unless `many`, a list of strings
//     if `many`, and their targets must exist unless
//     create_missing_related_entities=true, which creates empty stubs.
//     upsert=true replaces the whole entity; with merge=true it updates only
//     the supplied fields (properties and relations key by key). A
//     property's `default` is given to an entity created without it (null
//     or absent), on creation only, as Port's docs word it: an update that
//     leaves it out or null makes it null. SeedEntity stores as given.
//   - Deletion and dependents: an entity is a dependent of another when one of
//     its relations names it. DELETE and bulk delete fail (422 has_dependents;
//     for bulk, nothing is deleted) when an entity outside the deletion set
//     depends on one inside it, unless delete_dependents=true, which deletes
//     dependents transitively.
//   - Search is eventually consistent with Options.SearchLag (on the Now
//     clock): until it has passed, search sees an entity just created,
//     changed or deleted as it was before; GET and writes see it at once.
//     SeedEntity brings search up to date. The default, 0, is current.
//   - Every request body is limited to Options.MaxBodyBytes (1 MiB): 413.
//   - Rate limit: fixed windows of Options.Window aligned to the Unix epoch,
//     Options.RateLimit authenticated requests each; the auth route is
//     counted apart, Options.AuthRateLimit (100, Port's unauthenticated
//     limit) per window. Every response carries x-ratelimit-period (seconds),
//     x-ratelimit-limit, x-ratelimit-remaining and x-ratelimit-reset (seconds
//     until the window ends, rounded up; or its epoch second with
//     Options.ResetEpoch). Over the limit → 429. Options.Latency is added to
//     every admitted request.
//
// Errors are Port's shape {ok:false, error, message}. Error codes the Port simulator
// chooses where Port's are not documented: invalid_request (422),
// not_found (404; also a missing related entity, as Port's own framework
// expects), conflict (409), has_dependents (422), rate_limit_exceeded (429),
// request_too_large (413), unauthorized/token_expired (401).
//
// Not modelled (a test that needs them fails loudly rather than passing):
// search-query identifiers and relations (422), query rules other than
// property rules with the operators listed in search.go, calculation,
// mirror and aggregation evaluation, teams and ownership, actions, scorecards,
// pages. Port's `$datasource` meta-property is not modelled either: the
// public OpenAPI document does not define it, and how Port derives it for a
// non-Ocean client is unconfirmed, so the ferry sink marks ownership with a
// declared property instead (see engine/sink/port).
//
// For assertions: [Server.Requests] (the request log with bodies),
// [Server.CountRequests], [Server.PeakInFlight], [Server.Catalog] (a
// deterministic snapshot for golden files), [Server.Entity]. To arrange
// state: [Server.SeedBlueprint], [Server.SeedEntity] (also entities made by
// hand or by another tool: any owner property, or none), [Server.ExpireTokens],
// [Server.RejectEntity] (per-entity fault injection), [Server.RefuseDelete]
// (a bulk delete that succeeds in part), [Server.InjectFault]
// (answers that make no sense: a 2xx whose body is garbled, empty or of the
// wrong shape while the request is applied; a 429 that still reports quota
// left, with or without Retry-After).
package port
