// Package humanitec is an in-process simulator of the read side of the
// Humanitec Platform Orchestrator API, plus a seeded generator of
// organisations to serve. ferry's tests, its golden tests for
// specs/humanitec.yaml, its benchmarks and `ferry run --demo` use it; no
// network beyond loopback is involved.
//
// # Serving
//
// [NewServer] returns an http.Handler for one [Org]; [Start] puts it on a
// loopback listener and returns a [Running] with URL and Close. Every request
// needs `Authorization: Bearer <Options.Token>` ([DefaultToken] when unset).
// Endpoints, all GET under /orgs/{orgId}:
//
//	/apps, /apps/{appId}
//	/apps/{appId}/envs, /apps/{appId}/envs/{envId}
//	/apps/{appId}/envs/{envId}/resources          ?scheduled_deletion=
//	/apps/{appId}/envs/{envId}/resources/graphs/{graphId}
//	/apps/{appId}/envs/{envId}/values             app values merged with env overrides
//	/secretstores
//	/apps/{appId}/values
//	/apps/{appId}/value-set-versions              ?key_changed=
//	/apps/{appId}/sets, /apps/{appId}/sets/{setId} ?diff=
//	/pipelines                                    ?app=&app=&per_page=&page=&trigger=&metadata[k]=
//	/apps/{appId}/pipelines                       ?per_page=&page=&trigger=&metadata[k]=
//	/apps/{appId}/deltas                          ?archived=&env=
//	/apps/{appId}/deltas/{deltaId}
//	/users                                        ?type=user|group
//	/groups/{groupId}/users
//	/users/{userId}/groups
//
// Behaviour follows the vendor's OpenAPI document (extracted into
// testdata/openapi-schemas.json by internal/extract, which the tests
// validate every body against):
//
//   - Only the two pipeline lists paginate: per_page 1..100 (default 50,
//     anything else 400), an opaque base64 `page` token (keyset: it names the
//     last item sent; malformed tokens 400; an empty one means the first
//     page), and `Link: <absolute next URL>; rel="next"` only when more items
//     exist. Org-level pipelines are ordered by app id, then pipeline id.
//   - Errors carry HumanitecErrorResponse {error, message}, except 404 of
//     /apps/{appId}/sets, /sets/{setId} and /deltas/{deltaId}, which the spec
//     declares as a bare JSON string. Missing or wrong token: 401. Unknown
//     org, app, env, graph, set or delta: 404. Unknown path: 404. A method
//     other than GET on a known path: 405 with Allow: GET. The `error` codes
//     ("API-000" for auth, "API-<status>" otherwise) are the simulator's own:
//     the spec documents only API-000.
//   - More than Options.RateLimit requests within Options.Window (sliding)
//     get 429 with an error body and no Retry-After, since the API documents
//     none; clients must back off on their own.
//   - Options.Latency delays every answer via Options.Sleep;
//     Options.FailPath scripts a status for chosen paths; Options.Now is the
//     clock. [Server.Requests] is the request log.
//   - Lists are not paginated anywhere else: the whole collection comes back.
//   - Options.Sparse answers some records as sparsely as the vendor's own
//     OpenAPI examples (an environment {}, a set without id, values without
//     source or timestamps, resources without status, driver_type and
//     scheduled_deletion, a delta with metadata {}, a graph node with
//     resource null): outside the schemas, which a client meets anyway.
//   - Users and groups: /users lists accounts (UserRoleResponse, type user,
//     service or system) and groups (type group, with idp_id) together,
//     oldest created_at first, so the two kinds are interleaved.
//     ?type=user keeps every account that is not a group (service accounts
//     too: the spec's SubjectTypeEnum names kinds of subject, not account
//     types; an assumption), ?type=group the groups, any other value 400.
//     /groups/{groupId}/users lists a group's members (UserProfileResponse)
//     in [Group].Members order; /users/{userId}/groups lists a user's groups
//     (the Group schema: group_id is the group's name, idp_id its IdP) in
//     [Org].Groups order, consistent with the member lists. A groupId not
//     matching ^g-[a-z0-9](?:-?[a-z0-9]+)+$ or a userId not matching the
//     userId pattern is 400 (both declared); an unknown group or user is 404,
//     and so is a group id asked for as a user. None of the three paginate.
//     403, which the spec also declares, is never answered.
//   - Options.FailGroupMembers fails chosen groups' member lists (any status;
//     404 says "Group not found." like a group deleted after it was listed)
//     while the user list and the other groups answer normally, so a client
//     can be tested against one member list failing mid-sync.
//   - Deltas: without `archived` only non-archived deltas are listed,
//     archived=true lists only archived ones (the spec says "If true, return
//     archived Deltas"; the default is an assumption).
//
// # Generated data
//
// [Generate] is deterministic for a seed. [Small], [Demo] and [Large] are
// the preset sizes. Every organisation contains: app names with punctuation
// and Unicode ("Café / Ünïcode—App", "k8s-cluster", "x--y", and in bigger
// sizes "hello_world", "AppV2", "AWS-secrets", "v2beta", "__x"); an app being
// deleted; an environment never deployed (no last_deploy key), one whose
// last_deploy has no dependency_graph_id (legacy mode), deployments that
// succeeded, failed and are in progress, some with from_deploy; active
// resources "k8s-cluster", "k8s-namespace", "shared.db", "dns", workloads
// "modules.<w>" of type workload with externals "modules.<w>.externals.*",
// "modules.ghost.externals.db" whose workload does not exist, and one
// resource scheduled for deletion; dependency graphs whose nodes depend on
// each other by guresid (some with several dependencies, all inside the
// graph) plus older unreferenced graphs; secret values (value "", secret_key,
// secret_version and secret_store_id set) at app and env level, env
// overrides (source env), inherited app values (source app) and env-only
// keys; value set versions with JSON-patch changes, result_of (and a null
// one) and a restore pointing at its source version; sets whose id is the
// hash of their content, with integer version 0, an empty set and one with
// workloads; deltas with and without name/env_id, archived ones, ones with
// workloads; six secret stores covering awssm, azurekv, gcpsm, vault and
// humanitec, one primary; pipelines with and without metadata, the id
// "default" in every app, and more than 100 in the presets; users (the
// first ones are the created_by ids found elsewhere) with and without an
// invite, one in three groups, one in two, one in none, names with Unicode;
// a service account without email or invite, in no group; groups with and
// without members, on two IdPs, one with a Unicode name. [Org.User],
// [Org.Group] and [Org.GroupsOf] look them up; [Group].Members holds the
// memberships. Users and groups come from their own random stream, so
// their number changes nothing else in the organisation.
//
// Timestamps use the spec's forms: milliseconds for apps, envs,
// deployments, values, deltas and graphs; whole seconds for resources,
// pipelines and secret stores. Users and groups carry microseconds, as
// recorded real answers do (one user has whole seconds, like the spec's
// example); the spec's created_at pattern allows at most milliseconds, so
// the contract tests widen it for UserRoleResponse and UserProfileResponse
// only.
package humanitec
