// Package port is ferry's Port destination: it keeps Port's software
// catalog in step with the entities a spec maps.
//
//	s, err := port.New(port.Config{BaseURL: u, ClientID: id, ClientSecret: secret, Owner: "humanitec/acme"})
//	err = s.EnsureBlueprints(ctx, blueprints)      // create missing, update changed, never delete
//	err = s.Write(ctx, entity)                     // validate and queue (on disk), from any goroutine
//	rep, err := s.Finish(ctx, complete)            // write what changed in relation order, then reconcile
//
// A plan says what that would do, writing nothing:
//
//	changes, err := s.PlanBlueprints(ctx, blueprints)
//	err = s.Write(ctx, entity)
//	plan, err := s.Plan(ctx, complete, "")
//
// [ValidateEntity] checks one entity against a [Blueprint] offline (dry-run
// uses it too); [ParseBlueprint] reads a blueprint body.
//
// # Requests
//
// Every request goes through a [fetch.Client] (Config.Pool, so a run can
// share one pool with its sources). One access token is fetched on first
// use, cached, refreshed a tenth of its lifetime (at most 5 minutes) before
// expiry and once on a 401 — never per entity. Entities go through POST
// /v1/blueprints/{bp}/entities/bulk with upsert=true (merge=false: the
// mapped entity replaces Port's) — or upsert=false for those no listing or
// ownership lookup showed in Port (see below) — packed by count (≤ 20) and bytes
// (≤ 1 MiB, a 413 splits the batch), Concurrency requests in flight.
// Requests follow Port's rate-limit headers (fetch's RateHeaders): they
// are spaced at x-ratelimit-limit / x-ratelimit-period, and when a
// response says remaining is 0 all are held until x-ratelimit-reset; a
// 429 holds them for its Retry-After (or, while quota is left, a second),
// never past the reset. 408, 429 and 5xx are retried (MaxAttempts); other
// 4xx are final, Port's {error, message} body becoming the [StatusError].
// Identifiers are path-escaped. Client secret and token never reach logs
// or errors.
//
// A 2xx answer that is not the documented shape wraps ErrMalformedAnswer
// and fails what depended on it, never more and never silently: a bulk
// answer its entities (the load goes on; an element without its index is
// such an answer: index is the one key Port documents as reliable), an
// ownership or relation-target lookup the entities concerned, the
// owned-entity listing the reconciliation of that blueprint (nothing of
// it deleted; Finish wraps ErrReconcileFailed), a delete answer its ids
// (DeleteErrors). Search answers are read strictly: an empty or garbled
// body, no entities list, an entity without identifier, a cursor that
// repeats.
//
// # The spool
//
// Entities wait for the end of extraction — they are sent in relation
// order, so none can go before every entity is known — in two temporary
// files (spool.go): their JSON appended to ferry-port-spool-*.data, each
// batch's followed by a run per blueprint (its entities' identifiers,
// sorted, with where their JSON is: runs.go), and the owned listing in
// ferry-port-spool-*.sqlite, and the stream and parents each entity was
// mapped from in ferry-port-spool-*.origins (origin.go), all in
// Config.SpoolDir (the OS temp dir) and unlinked as soon as they are open where the OS allows it, so they
// never outlive the process however it ends; Finish, Plan and Close
// release them. Write keeps a few hundred entities in memory and moves
// them in one write; runs are merged as they pile up and once more before
// Finish reads them back, in identifier order, a page at a time. An
// on_duplicate: merge entity is merged with the earlier one wherever that
// is. What the sink keeps on the heap grows with failures, adoptions and
// missing relation targets, by a byte an entity put (its outcome), by
// about a byte an entity for the runs' marks (every 64th identifier),
// and, from the first read in order (while extracting already, from an
// on_duplicate: merge entity's first lookup of an earlier one), by at
// most 12.5 bytes an entity put (a hash of its identifier with its place,
// so that a relation target or an earlier entity is found without reading
// the run: runs.go), not with the entities' size (BenchmarkSinkMemory).
//
// # Change-only writes
//
// The owned-entity listing of each blueprint (below) is read whole, once,
// before writing, and kept in the spool in canonical form (canon.go): the
// fields a write sets, as Port stores them — undeclared and meta
// properties left out, null and absent alike (and a null the same as the
// default Port gave an entity created without the property, but a value
// equal to the default not the same as Port's null: it is sent),
// many-relations as sorted sets, team as a sorted list,
// numbers as doubles. An entity whose canonical form, cycle relations
// included (resolved as they will be once the run's own targets exist), is
// byte-equal to what Port holds (or is once its nulls where Port holds
// the default are taken as the default) is not sent: it counts as unchanged
// (Report.Unchanged) and as written for the relations of later entities.
// An adopted entity is always written (it must be re-marked).
//
// # Order and relations
//
// Blueprints are written in layers: relation targets before sources. Where
// relations form a cycle — a self-relation such as humanitecResourceGraph →
// humanitecResourceGraph (many), or blueprints relating to each other —
// those relations are sent in the first pass only when every target of
// the relation (a key, whole) is already in Port — written or found
// unchanged by this run before the entity's page is prepared (a target
// whose bulk request is still in flight is not), or found there by an
// earlier lookup; the others are left out of the first pass and sent in a
// second pass (bulk upsert with merge=true, identifier and relations only)
// after every entity of the cycle exists. An entity with any key left for
// the second pass gets all its cycle keys sent again there, those sent
// early with the same value. This was chosen over
// create_missing_related_entities because stubs would also be created for
// targets that never appear, which the default policy must not do. (While
// a rerun is between its passes, cycle relations left for the second pass
// are briefly absent.)
//
// A relation target that this run did not write successfully is looked up
// in Port (entity search, $identifier in […]; one search does not find is
// then read by itself with GET, since Port's search is eventually
// consistent and may not show an entity written moments ago). If it is
// not there either, Config.RelationPolicy decides: drop it with a warning
// (default), let Port create a stub (create_missing_related_entities=true),
// or fail the entity.
// Per-entity failures — offline validation, policy, Port's 207 errors with
// blueprint, identifier and Port's message — are collected in the Report;
// the run continues and Finish returns an error wrapping ErrEntitiesFailed.
//
// Port's search is eventually consistent, and the owned listing, the
// ownership lookups and the target lookups all search. The ownership
// lookups are not made for a blueprint Port counts no entity of
// (GET …/entities-count, after every listing and only where the listing
// lacks an identifier the run writes): a first load into it. A target search
// does not show is read by GET before it counts as missing; the listing and
// ownership lookups are not re-read (that would cost a request per entity),
// so a run started moments after a write may take an entity that write
// changed for unchanged, or leave one it created undeleted
// (engine/sim/port's SearchLag models this). It does not take over one
// another owner just created: an entity of a blueprint whose ownership is
// checked that neither the listing nor the lookup showed is sent with
// upsert=false, and one Port refuses (or answers with created: false,
// which may mean it existed and was not written) is read by GET
// (recheck): another
// owner's is a Conflict, left as it is; the run's own (search lagging its
// last run, or a request sent again after a lost answer) or an adopted
// one is sent again as an upsert. When Port refuses a create request
// whole, those of its entities Port does not hold are sent again as a
// create without the others; a refusal about the request (401, 403, 404,
// 429) is not read back entity by entity.
//
// # Ownership and reconciliation
//
// Port's `$datasource` meta-property is how Port's own framework (Ocean)
// finds its entities, but it is not in Port's public OpenAPI document and
// how Port sets it for a non-Ocean client (from the User-Agent) is
// unconfirmed; a deletion scheme must not rest on a guess. Ownership is
// therefore explicit and visible: with Config.Owner set (ferry's engine
// gives the spec's name and owner key, e.g. "humanitec/acme", so two
// source instances of one spec are two owners), EnsureBlueprints adds a
// string property OwnerProperty ("ferryOwner") to each blueprint and every
// written entity carries ferryOwner = Owner.
//
// No takeovers: before writing, each blueprint's owned entities are listed
// (reconciliation and the change check reuse the list), and the identifiers not among them are
// looked up in Port ($identifier in […], 100 a search, with ferryOwner).
// An entity Port holds under another owner, or under none (made by hand or
// by another tool), is not written: it is a [Conflict] in the Report (and a
// failed entity). Config.AdoptOwners (former owners, e.g. after the owner
// key changed) and Config.AdoptUnowned let the run take such entities
// over. A blueprint without the ownership property gets no writes unless
// AdoptUnowned: ferry could not tell its own entities from others'.
//
// After writing, for every blueprint with complete[bp] == true (every stream
// feeding it succeeded), Finish lists the entities whose ferryOwner equals
// Owner (or an adopted owner) and deletes those this run did not produce —
// except any that an entity written in this run relates to (those are
// kept, and reported in DeleteErrors: the blueprint is not reconciled
// while they stay). An answer to
// that listing that holds an entity of anyone else is malformed. Never
// deleted: entities without the marker or with another owner (manual ones,
// other specs and source instances, stubs), anything of a blueprint whose
// streams did not all complete, anything when Owner is empty or NoDelete
// is set, and everything of a blueprint where the stale share exceeds
// DeleteThreshold (default 0.9) of its owned entities (the Report lists
// the skip, as it does each blueprint NoDelete keeps stale entities of). Entities that failed validation, were rejected by Port or
// were conflicts still count as produced. Deletion uses the bulk route
// (≤ 100 ids) with delete_dependents=false, sources before targets; a
// refused call is split to isolate entities with dependents outside the
// stale set, which are reported, not forced. An id the answer leaves out
// of deletedEntities (Port's bulk delete may succeed in part) is read
// back: reported (DeleteErrors) while Port still holds it, counted as
// deleted once Port no longer does (a retried request's answer does not
// name what its first attempt deleted).
package port
