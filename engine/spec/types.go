package spec

import (
	"encoding/json"

	"github.com/ferry-etl/ferry/engine/eval"
)

// File is one parsed spec. Field tags drive decoding, validation and the
// JSON Schema: `yaml` names the key, `ferry:"required"` marks it mandatory,
// `enum` lists allowed scalars, `only` the variants (auth or pagination
// types) a field belongs to, `names` what the keys of a mapping name, and
// `doc` documents it.
type File struct {
	Path string `yaml:"-"` // file name as given to Parse
	Dir  string `yaml:"-"` // directory relative references resolve against

	Version     Int            `yaml:"version" ferry:"required" doc:"Spec format version; must be 1."`
	Name        Str            `yaml:"name" ferry:"required" doc:"Spec name: names the destination schema, and starts the owner of its Port entities (see port.owner)."`
	Description Str            `yaml:"description" doc:"Free text."`
	Config      Map[ConfigVar] `yaml:"config" names:"config" doc:"Named inputs supplied by --set, --config FILE, environment variables or .env, in that precedence."`
	HTTP        HTTP           `yaml:"http" doc:"Defaults for every request: base URL, headers, auth, retry, rate limit, concurrency."`
	Streams     Map[Stream]    `yaml:"streams" ferry:"required" names:"stream" doc:"Endpoints to read; a stream may fan out from any other (declared before or after it) with for_each."`
	Lookups     Map[Lookup]    `yaml:"lookups" names:"lookup" doc:"Values collected from a stream, by key, for the programs of streams that run after it: $lookups.<name>[key] in jq, lookups.<name>[key] in expr."`
	Tables      Map[Table]     `yaml:"tables" names:"table" doc:"Destination tables (SQLite, PostgreSQL) mapped from streams."`
	Port        *Port          `yaml:"port" doc:"Port software-catalog entities mapped from streams."`

	config     map[string]*ConfigVar // by name, after validation
	streams    map[string]*Stream
	blueprints []json.RawMessage // bodies of port.blueprints, read once at load
	warnings   ErrorList
}

// ConfigVar is one named input of a spec.
type ConfigVar struct {
	Name string `yaml:"-"`
	Pos  Pos    `yaml:"-"`

	Required    Bool  `yaml:"required" doc:"The run stops before any request when no value is given."`
	Type        Str   `yaml:"type" enum:"string,int,number,bool,list,duration,date" doc:"What the value must be; it is checked and converted before any request (exit 2 when it does not fit): int, number, bool, list (a comma-separated string, or a YAML list), duration (30s, 1h30m; expr sees a duration), date (2024-01-31 or RFC 3339; expr sees a time). Without a type the value is taken as given."`
	Default     Value `yaml:"default" doc:"Value used when none is given (not with required); checked against type."`
	Secret      Bool  `yaml:"secret" doc:"Never printed, logged or stored; redacted from URLs and errors."`
	Env         Strs  `yaml:"env" doc:"Environment variable name, or a list of names tried in order."`
	Description Str   `yaml:"description" doc:"Shown by ferry in errors about this input."`
}

// HTTP holds request defaults. A stream's `http` block overrides any of them.
type HTTP struct {
	BaseURL          Tmpl       `yaml:"base_url" doc:"Base URL (template) that request paths are joined to; its path prefix is kept."`
	Headers          Map[Tmpl]  `yaml:"headers" doc:"Headers sent with every request (templates)."`
	Auth             *Auth      `yaml:"auth" doc:"Authentication."`
	Timeout          Duration   `yaml:"timeout" doc:"Timeout of one attempt, e.g. 30s."`
	Retry            *Retry     `yaml:"retry" doc:"Retry policy for network errors and retryable statuses."`
	RateLimit        *RateLimit `yaml:"rate_limit" doc:"A ceiling on requests per second: at the top level, to the host, shared by every stream using it; in a stream's http, on that stream's own requests only (one endpoint's limit, such as a search API's or a Slack method's tier), besides the host's. Without it ferry still slows down to what the host accepts (429 and 503 answers, Retry-After, rate-limit headers); give one only where the API documents its limit."`
	RateLimitHeaders Budgets    `yaml:"rate_limit_headers" doc:"Where the API announces its request budget under names of its own (HubSpot's X-HubSpot-RateLimit-*): read before the standard ones (x-ratelimit-remaining and -reset, X-Rate-Limit-*, the IETF RateLimit fields, which need no declaring), so no request starts while the budget is spent. A list for an API announcing several budgets on every answer (Buildkite's organization and user): each is followed on its own, and no request starts while any is spent; the first is read before the standard headers, the others only from their own. Top level only: the budget is the host's."`
	Concurrency      Int        `yaml:"concurrency" doc:"Requests in flight to this host at once, shared by every stream and fan-out level."`
	Rules            []Rule     `yaml:"rules" doc:"Response rules, tried in order before the default handling (2xx is data, retry.on statuses are retried, other statuses fail); the first that matches decides. A stream's rules are tried before the top-level ones."`
	TLS              *TLS       `yaml:"tls" doc:"TLS for a self-hosted API: a CA bundle to trust, a client certificate, the name to verify. A stream's tls replaces the top-level one whole."`
}

// TLS says how requests verify their hosts and prove who sends them. The
// files are PEM; a relative path is relative to the spec's directory. An
// empty path (an optional config input left unset) is no file. Each PEM
// may be given inline instead (the *_pem options), not both.
type TLS struct {
	Pos Pos `yaml:"-"`

	CAFile         Tmpl `yaml:"ca_file" doc:"PEM bundle of CA certificates trusted besides the system's (template, e.g. ${ config.ca_file }): for every host the spec's requests reach (the base URL's, the OAuth2 token URL's, export and next-page links)."`
	SystemRoots    Bool `yaml:"system_roots" doc:"Trust the system's CAs too (default true); false trusts ca_file (or ca_pem) alone, as kubectl trusts only its cluster's CA."`
	ClientCertFile Tmpl `yaml:"client_cert_file" doc:"PEM client certificate (with its chain) for mutual TLS (Kubernetes client certificates); offered to the base URL's host and the auth's token, login and exchange hosts, not to other hosts links lead to. Needs client_key_file (or client_key_pem)."`
	ClientKeyFile  Tmpl `yaml:"client_key_file" doc:"PEM private key of client_cert_file, unencrypted; its path may be logged, its content never."`
	CAPEM          Tmpl `yaml:"ca_pem" doc:"The CA bundle itself, PEM, instead of ca_file: for a CI secret or environment variable that holds the PEM (template, e.g. ${ config.ca_pem })."`
	ClientCertPEM  Tmpl `yaml:"client_cert_pem" doc:"The client certificate itself, PEM, instead of client_cert_file."`
	ClientKeyPEM   Tmpl `yaml:"client_key_pem" doc:"The client key itself, PEM, unencrypted, instead of client_key_file: from a secret config input (${ config.client_key } with secret: true), never written in the spec."`
	ServerName     Tmpl `yaml:"server_name" doc:"Name the base URL's host must have a certificate for, and the SNI sent to it, when it differs from the URL's host (a server reached by IP address or an internal alias)."`
	MinVersion     Str  `yaml:"min_version" enum:"1.2,1.3" doc:"Lowest TLS version accepted (default 1.2)."`
}

// Rule decides what a matching answer is: data, empty, skip, retry or
// failure. It matches when all of its conditions hold.
type Rule struct {
	Pos Pos `yaml:"-"`

	Status     Strs     `yaml:"status" doc:"Statuses matched: a number, a range such as 500-599, or a class such as 4xx; one or a list (default: any status)."`
	Headers    Map[Str] `yaml:"headers" doc:"Response headers that must all be present with this value (\"*\": any value)."`
	Body       JQ       `yaml:"body" doc:"jq predicate on the JSON response body (sees $config): the rule matches when it yields neither false nor null. A body that is not JSON never matches; an error fails the request."`
	Action     Str      `yaml:"action" ferry:"required" enum:"ok,empty,skip,retry,fail,restart" doc:"ok: data, whatever the status. empty: no records, the request chain is done (404 = no children); on a later page a next_url, link_header or cursor chain was sent to, or an export job's result file, the chain fails instead (the server said there was more). skip: the request is skipped and counted as skipped; its stream is not complete, so nothing fed by it is reconciled. retry: sent again after the server's wait, on any status. fail: the request chain fails with message. restart: the API refuses the chain's saved position (an expired delta token or cursor): the chain is read again from its start with the initial cursor, once; a second refusal fails it with message."`
	Message    JQ       `yaml:"message" doc:"jq on the JSON body giving the failure's message (fail), or the reason logged (skip, retry)."`
	WaitHeader Str      `yaml:"wait_header" doc:"retry: response header holding how long to wait (seconds, epoch seconds, an HTTP date or an ISO 8601 time), read before Retry-After and x-ratelimit-reset."`
	MaxWait    Duration `yaml:"max_wait" doc:"retry: the longest wait the server may ask for (default 5m, or retry.max when longer); a longer one fails the request at once."`
	Wait       Duration `yaml:"wait" doc:"retry: the wait when the answer names none (no wait_header, Retry-After or spent budget's reset), and every request to the host waits it too: an API that refuses all requests until it has had a quiet spell (Snyk's minute) needs the whole host stopped, not one request."`

	ranges []StatusRange
	path   string // e.g. http.rules[1], set at validation
}

// Auth is one of the supported authentication schemes, chosen by Type.
type Auth struct {
	Pos Pos `yaml:"-"`

	Type            Str          `yaml:"type" ferry:"required" enum:"none,bearer,header,query,basic,oauth2,session,jwt,aws_sigv4" doc:"Scheme."`
	Token           Tmpl         `yaml:"token" only:"bearer" doc:"Bearer token (template, usually ${ config.x })."`
	Header          Str          `yaml:"header" only:"header,session,jwt" doc:"Header carrying the API key (header), or the session or JWT token (session, jwt; default Authorization with prefix \"Bearer \")."`
	Prefix          Str          `yaml:"prefix" only:"header,session,jwt" doc:"Text put before the key or token, e.g. \"ApiKey \"."`
	Param           Str          `yaml:"param" only:"query,session,jwt" doc:"Query parameter carrying the API key (query), or the session or JWT token instead of a header."`
	Value           Tmpl         `yaml:"value" only:"header,query" doc:"The API key (template)."`
	Username        Tmpl         `yaml:"username" only:"basic" doc:"Basic-auth user."`
	Password        Tmpl         `yaml:"password" only:"basic" doc:"Basic-auth password."`
	Grant           Str          `yaml:"grant" only:"oauth2" enum:"client_credentials,refresh_token" doc:"OAuth2 grant (default client_credentials)."`
	TokenURL        Tmpl         `yaml:"token_url" only:"oauth2" doc:"OAuth2 token endpoint."`
	ClientID        Tmpl         `yaml:"client_id" only:"oauth2" doc:"OAuth2 client id."`
	ClientSecret    Tmpl         `yaml:"client_secret" only:"oauth2" doc:"OAuth2 client secret."`
	Scopes          []Tmpl       `yaml:"scopes" only:"oauth2" doc:"OAuth2 scopes (templates: a national cloud's Graph asks another scope)."`
	RefreshToken    Tmpl         `yaml:"refresh_token" only:"oauth2" doc:"grant refresh_token: the refresh token. When the server rotates it, the new one is kept in ferry's state (never in logs) and later runs use it, for as long as this value stays the one it descends from."`
	BodyFormat      Str          `yaml:"body_format" only:"oauth2" enum:"form,json" doc:"Token request body: form (default, RFC 6749) or json (Port's {clientId, clientSecret}, client_credentials only)."`
	ClientAuth      Str          `yaml:"client_auth" only:"oauth2" enum:"basic,body" doc:"Where a form token request puts the client id and secret: basic (default, HTTP basic auth) or body (client_id and client_secret fields)."`
	Login           *AuthRequest `yaml:"login" only:"session" doc:"The login request; its token is sent with every request, renewed before a known expiry and once on a 401."`
	PrivateKey      Tmpl         `yaml:"private_key" only:"jwt" doc:"PEM private key (RSA or P-256; PKCS #1, PKCS #8 or SEC 1) that signs the JWT; usually ${ config.x } of a secret input."`
	Algorithm       Str          `yaml:"algorithm" only:"jwt" enum:"RS256,ES256" doc:"Signing algorithm (default: RS256 for an RSA key, ES256 for an EC key)."`
	Claims          Map[Value]   `yaml:"claims" only:"jwt" doc:"JWT claims (values may be templates), e.g. iss; iat (a minute back, for clock drift) and exp (now + ttl) are added."`
	TTL             Duration     `yaml:"ttl" only:"jwt" doc:"JWT lifetime (default 9m: under GitHub's 10-minute cap); it is signed again before it expires."`
	Exchange        *AuthRequest `yaml:"exchange" only:"jwt" doc:"A request that exchanges the JWT (sent as Authorization: Bearer, or in the body with assertion) for an access token, as GitHub's installation tokens; without it the JWT itself is sent."`
	AccessKeyID     Tmpl         `yaml:"access_key_id" only:"aws_sigv4" doc:"AWS access key id (template, e.g. ${ config.access_key_id } from AWS_ACCESS_KEY_ID)."`
	SecretAccessKey Tmpl         `yaml:"secret_access_key" only:"aws_sigv4" doc:"AWS secret access key (template; from a secret input): signs every request, never sent."`
	SessionToken    Tmpl         `yaml:"session_token" only:"aws_sigv4" doc:"Session token of temporary credentials (STS, SSO), sent as X-Amz-Security-Token; empty (an optional input left unset) sends none."`
	Region          Tmpl         `yaml:"region" only:"aws_sigv4" doc:"Region the requests are signed for, e.g. us-east-1 (global services such as Organizations and IAM sign for us-east-1)."`
	Service         Tmpl         `yaml:"service" only:"aws_sigv4" doc:"Signing name of the service, e.g. organizations, ecr, cloudtrail (the endpoint's first label, for most)."`
	Assertion       Str          `yaml:"assertion" only:"jwt" doc:"With exchange: the body field that carries the JWT instead of Authorization (RFC 7523's jwt-bearer grant: assertion, as Google service accounts and Salesforce take it); the exchange's body, if given, must be an object (form or JSON)."`
}

// AuthRequest is a request made to obtain a token: a session login, or the
// exchange of a JWT for an access token. Its templates see config only.
type AuthRequest struct {
	Pos Pos `yaml:"-"`

	Method      Str        `yaml:"method" enum:"GET,POST,PUT,PATCH" doc:"HTTP method (default POST)."`
	Path        Tmpl       `yaml:"path" doc:"Path joined to the base URL (template; values are path-escaped)."`
	URL         Tmpl       `yaml:"url" doc:"Absolute URL, instead of path."`
	Query       Map[Value] `yaml:"query" doc:"Query parameters (templates)."`
	Headers     Map[Tmpl]  `yaml:"headers" doc:"Headers (templates)."`
	Body        Value      `yaml:"body" doc:"Body as YAML; strings may hold templates."`
	BodyFormat  Str        `yaml:"body_format" enum:"json,form" doc:"json (default) or form (application/x-www-form-urlencoded)."`
	Token       JQ         `yaml:"token" doc:"jq on the JSON answer giving the token, e.g. .token."`
	TokenHeader Str        `yaml:"token_header" doc:"Response header holding the token, instead of token; Set-Cookie takes the cookies set, sent back as a Cookie header."`
	ExpiresIn   JQ         `yaml:"expires_in" doc:"jq on the JSON answer giving the token's lifetime: seconds, or an expiry time (RFC 3339), e.g. .expires_at."`
	TTL         Duration   `yaml:"ttl" doc:"The token's lifetime when the answer does not say; without either it is used until a request gets 401."`
}

// Retry is the retry policy of a host.
type Retry struct {
	Attempts Int      `yaml:"attempts" doc:"Attempts in all, first included (default 5)."`
	On       []Int    `yaml:"on" doc:"HTTP statuses retried (default 408, 429, 500, 502, 503, 504)."`
	Initial  Duration `yaml:"initial" doc:"First backoff (default 500ms), doubled each attempt with jitter."`
	Max      Duration `yaml:"max" doc:"Backoff cap (default 30s). Retry-After and x-ratelimit-reset are honoured."`
	Post     Bool     `yaml:"post" doc:"Retry POST requests too (default true: most API POSTs are read-only queries; set false where a POST creates something, so a retry cannot create it twice)."`
}

// RateLimit is a token bucket: at the top level, shared by every request
// to one host; in a stream's http, for that stream's requests.
type RateLimit struct {
	PerSecond Float `yaml:"per_second" ferry:"required" doc:"Sustained requests per second."`
	Burst     Int   `yaml:"burst" doc:"Requests allowed at once above the rate (default 1)."`
	Group     Str   `yaml:"group" doc:"In a stream's http: a name the streams whose requests count against one limit share (a search API's limit across its object types); each stream's own otherwise. Every stream of a group gives the same per_second and burst."`
}

// Budgets is rate_limit_headers: one block, or a list of them for an API
// that announces several budgets on every answer.
type Budgets struct {
	V    []RateLimitHeaders
	P    Pos
	Set  bool
	List bool // given as a list (its errors name the entry)
}

// RateLimitHeaders names the response headers of an API's budget: the
// requests left, and either when the window ends or a rolling window's
// length (and limit).
type RateLimitHeaders struct {
	Pos Pos `yaml:"-"`

	Remaining Str `yaml:"remaining" ferry:"required" doc:"Header holding the requests left, e.g. X-HubSpot-RateLimit-Remaining."`
	Reset     Str `yaml:"reset" doc:"Header holding when the window ends: seconds from the answer (milliseconds with unit ms), an epoch in seconds or milliseconds, or an ISO 8601 time."`
	Window    Str `yaml:"window" doc:"Header holding a rolling window's length, for an API that sends no reset (HubSpot's X-HubSpot-RateLimit-Interval-Milliseconds, with unit ms): what an answer counts has left the window once the answer is that old."`
	Limit     Str `yaml:"limit" doc:"With window: header holding the requests allowed in any window (X-HubSpot-RateLimit-Max); ferry's own requests are then kept to it, counted as they start."`
	Unit      Str `yaml:"unit" enum:"s,ms" doc:"Unit of window, and of a reset that is a delay: s (default) or ms."`
}

// Stream is one endpoint read, possibly once per record of a parent stream.
type Stream struct {
	Name string `yaml:"-"`
	Pos  Pos    `yaml:"-"`

	Description Str          `yaml:"description" doc:"Free text."`
	ForEach     Str          `yaml:"for_each" doc:"Parent stream (any stream of the spec, declared before or after this one; no cycles: for a stream's own records, see recurse): one request chain per parent record. expr sees parent and parents.<name>; jq sees $parent, $parents and $<name>."`
	Recurse     *Recurse     `yaml:"recurse" doc:"Fan out from the stream's own records, for trees of unknown depth (folders in folders, block children, subgroups): the request chain runs once per root parent (for_each's record, or once without for_each) and again for every record of its own for which when holds, with parent that record. Not with incremental, partitions, async or batch."`
	Batch       Str          `yaml:"batch" doc:"A stream fanned out from the same parent whose records, for that parent, are collected into a list (batch in expr, $batch in jq): one request per parent carrying the list."`
	BatchSize   Int          `yaml:"batch_size" doc:"With batch: the most items one request may carry (the API's cap). The list is split into consecutive chunks of at most this many, one request chain each with $batch the chunk; each chunk is checkpointed, failed and reported on its own (items i-j of n). Without it the whole list goes in one request. Refused on a stream another stream batches on: that stream's list would be cut per chunk."`
	When        Expr         `yaml:"when" doc:"expr condition evaluated per parent; false skips the request."`
	HTTP        *HTTP        `yaml:"http" doc:"Overrides of the top-level http block, e.g. another host and auth."`
	Request     Request      `yaml:"request" ferry:"required" unless:"partitions,async" doc:"The request (required unless partitions or async are given)."`
	Partitions  *Partitions  `yaml:"partitions" doc:"Values instead of a request: each one becomes a record {value} that children fan out from (parent.value), for accounts, regions or numbers from config or a range."`
	Async       *Async       `yaml:"async" doc:"An export job instead of a request: created once, polled until done, then its results downloaded (each a chain of pages read as response says). The job is checkpointed: a resumed run polls the same job while it is still valid."`
	Records     JQ           `yaml:"records" doc:"jq program from a response body to records (default: .[] for an array, nothing for null, else the body)."`
	Paginate    *Paginate    `yaml:"paginate" doc:"How to reach the next page."`
	Incremental *Incremental `yaml:"incremental" doc:"Read only what changed since the last run: the largest cursor seen is saved per parent (per batch chunk, with the keys of the items it answers for: a batch stream whose list changed starts from initial), and templates see it as cursor."`
	Key         JQ           `yaml:"key" doc:"jq on a record giving what identifies it among its siblings: names the request chains of its children in checkpoints, the items of the batch an incremental batch stream's cursor answers for, and records in errors (default: its id, identifier or uuid field, else a hash of the record)."`
	Response    *Response    `yaml:"response" doc:"How answers are read."`

	parent  *Stream
	batch   *Stream
	lookups bool            // the spec has lookups: $lookups is a jq variable
	stage   int             // see Stage
	reads   map[string]bool // lookups read by the stream's own programs (request, records, paging …)
	chain   chainPos        // where it sits in the fan-out forest; set by validation
}

// Recurse makes a stream fan out from its own records: each record for
// which When holds is the parent of one more request chain of the stream.
type Recurse struct {
	Pos Pos `yaml:"-"`

	When     JQ  `yaml:"when" ferry:"required" doc:"jq on a record of the stream (it sees the stream's variables): the record has children to read when it yields neither false nor null, e.g. .has_children or .type == \"folder\". An error fails the record."`
	MaxDepth Int `yaml:"max_depth" ferry:"required" doc:"The deepest level read, the records of a root chain being level 1: a record of that level whose when still holds fails the run, named with its ancestors, instead of leaving its children unread."`
}

// Request describes the HTTP request of a stream.
type Request struct {
	Pos Pos `yaml:"-"` // of the request key; zero when the request is absent or not a mapping

	Method  Str        `yaml:"method" enum:"GET,POST,PUT,PATCH" doc:"HTTP method (default GET)."`
	Path    Tmpl       `yaml:"path" doc:"Path joined to the base URL, which it needs (template; values are path-escaped; a part may not be always empty)."`
	URL     Tmpl       `yaml:"url" doc:"Absolute http(s) URL (template), instead of path."`
	Query   Map[Value] `yaml:"query" doc:"Query parameters; values are templates, a list sends the parameter once per item."`
	Headers Map[Tmpl]  `yaml:"headers" doc:"Extra headers (templates)."`
	Body    Value      `yaml:"body" doc:"JSON body as YAML, with method POST, PUT or PATCH; strings may hold templates."`
	BodyJQ  JQ         `yaml:"body_jq" doc:"JSON body built by a jq program (input: the parent record, or null), with method POST, PUT or PATCH."`
	// BodyFormat is how the body is encoded.
	BodyFormat Str `yaml:"body_format" enum:"json,form,text" doc:"How body or body_jq is sent: json (default), form (application/x-www-form-urlencoded, RFC 6749 style: an object of fields; a list repeats the field, null leaves it out) or text (body is one string, a template, sent as it is as text/plain: a query language such as Artifactory's AQL; paging values in: body are paging.<param> in it)."`
}

// Response says how a stream's answers are read.
type Response struct {
	Pos Pos `yaml:"-"`

	AllowEmpty  Bool `yaml:"allow_empty" doc:"An empty 2xx body means no records (default false: an empty JSON or XML body other than a 204 fails the request chain; an empty NDJSON or CSV body has no records)."`
	Format      Str  `yaml:"format" enum:"json,ndjson,csv,xml" doc:"json (default): records applies to the document, streamed when it is .[], .a.b[] or .a.b[] | f. ndjson: one JSON value per line, records applies to each (default: the line). csv: one object per row, keyed by the header (records applies to each; default: the row). xml: the document in the JSON shape (elements objects, repeated elements lists, attributes prefixed @, text #text), records applies as for JSON."`
	Compression Str  `yaml:"compression" enum:"auto,gzip,none" doc:"auto (default): gzip when Content-Encoding or Content-Type say so or the body starts with gzip's magic bytes; gzip: always; none: never."`
	CSV         *CSV `yaml:"csv" doc:"Layout of a CSV body (format csv)."`
	MaxBytes    Int  `yaml:"max_bytes" doc:"The largest body accepted, in bytes after decompression (default 32 MiB for a body decoded whole: JSON whose records do not stream, and XML; 16 GiB for one streamed: NDJSON, CSV, streamed JSON). A larger body fails the request chain; it is never cut short."`
}

// CSV is the layout of a CSV body (RFC 4180 by default).
type CSV struct {
	Pos Pos `yaml:"-"`

	Header    Bool  `yaml:"header" doc:"The first row names the fields (default true)."`
	Columns   []Str `yaml:"columns" doc:"Field names of a body without a header row (header: false); without them a row is a list of strings."`
	Delimiter Str   `yaml:"delimiter" doc:"The one character between fields (default \",\"; \"\\t\" for tab-separated values)."`
	Quote     Str   `yaml:"quote" doc:"The character that encloses a field holding delimiters, line breaks or quotes (written twice) (default \"); \"\" turns quoting off."`
}

// Async is an export job: created once, polled until it is done, then
// its results downloaded. Templates of the poll and download requests see
// job.id.
type Async struct {
	Pos Pos `yaml:"-"`

	Create   AsyncCreate   `yaml:"create" ferry:"required" doc:"The request that creates the job (side effect on the source: a dry run sends it too)."`
	Poll     AsyncPoll     `yaml:"poll" ferry:"required" doc:"The request that asks how the job stands, sent until done or failed is true."`
	Download AsyncDownload `yaml:"download" ferry:"required" doc:"Where the results are: a URL or list of URLs from the last poll answer (urls), or one path or url."`
	Expires  Duration      `yaml:"expires" doc:"How long a created job stays usable (default 24h): a resumed run polls the job it created before when it is younger, else creates a new one."`
}

// AsyncCreate is the request that creates an export job.
type AsyncCreate struct {
	Pos Pos `yaml:"-"`

	Method     Str        `yaml:"method" enum:"GET,POST,PUT,PATCH" doc:"HTTP method (default POST)."`
	Path       Tmpl       `yaml:"path" doc:"Path joined to the base URL (template)."`
	URL        Tmpl       `yaml:"url" doc:"Absolute URL, instead of path."`
	Query      Map[Value] `yaml:"query" doc:"Query parameters (templates)."`
	Headers    Map[Tmpl]  `yaml:"headers" doc:"Headers (templates)."`
	Body       Value      `yaml:"body" doc:"Body as YAML; strings may hold templates."`
	BodyJQ     JQ         `yaml:"body_jq" doc:"Body built by a jq program (input: the parent record, or null)."`
	BodyFormat Str        `yaml:"body_format" enum:"json,form" doc:"json (default) or form."`
	ID         JQ         `yaml:"id" ferry:"required" doc:"jq on the create answer giving the job's id (a string or a number): job.id in the poll and download templates."`
	// IdempotencyKey names the header that carries a key of ferry's own,
	// new for each job and the same on every retry of its create request.
	IdempotencyKey Str `yaml:"idempotency_key" doc:"Header carrying a random key, new for each job and the same on every retry of its create request (Idempotency-Key for Stripe and the APIs that honour it): a create retried after a lost answer then makes one job, not two."`
}

// AsyncPoll is the request that asks how an export job stands.
type AsyncPoll struct {
	Pos Pos `yaml:"-"`

	Method  Str        `yaml:"method" enum:"GET,POST" doc:"HTTP method (default GET)."`
	Path    Tmpl       `yaml:"path" doc:"Path joined to the base URL (template; sees job.id)."`
	URL     Tmpl       `yaml:"url" doc:"Absolute URL, instead of path."`
	Query   Map[Value] `yaml:"query" doc:"Query parameters (templates)."`
	Headers Map[Tmpl]  `yaml:"headers" doc:"Headers (templates)."`
	Every   Duration   `yaml:"every" doc:"Wait between polls (default 5s); a Retry-After header on the answer overrides it."`
	Timeout Duration   `yaml:"timeout" doc:"How long to poll before the chain fails (default 1h); the job is kept, and the next run polls it again."`
	Done    JQ         `yaml:"done" ferry:"required" doc:"jq predicate on the poll answer: the job is done (its results can be downloaded)."`
	Failed  JQ         `yaml:"failed" doc:"jq predicate on the poll answer: the job failed; the chain fails with message, and the next run creates a new job."`
	Message JQ         `yaml:"message" doc:"jq on the poll answer of a failed job giving its message (default: the answer)."`
}

// AsyncDownload says where the results of a done export job are.
type AsyncDownload struct {
	Pos Pos `yaml:"-"`

	URLs    JQ        `yaml:"urls" doc:"jq on the last poll answer giving the result's URL or a list of URLs, each read as a chain of pages (relative URLs join the base URL)."`
	Path    Tmpl      `yaml:"path" doc:"The one result's path (template; sees job.id), instead of urls."`
	URL     Tmpl      `yaml:"url" doc:"The one result's absolute URL (template), instead of urls."`
	Headers Map[Tmpl] `yaml:"headers" doc:"Headers of the download requests (templates; sent to other hosts too, unlike credentials)."`
}

// Paginate is one of the pagination kinds, chosen by Type.
type Paginate struct {
	Pos Pos `yaml:"-"`

	Type        Str      `yaml:"type" ferry:"required" enum:"cursor,next_url,link_header,page,offset" doc:"Pagination kind."`
	Token       JQ       `yaml:"token" only:"cursor,page" doc:"jq on the response body giving the next token (a string or a number, which stays a number in a JSON body); null, false or empty ends (cursor). For page: an optional token sent as token_param when present."`
	Param       Str      `yaml:"param" only:"cursor,page,offset" doc:"Where the token, page number or offset goes (query name, header name, or dotted body path; inside a list, an item's index: filterGroups.0.filters.0.value)."`
	In          Str      `yaml:"in" only:"cursor,page,offset" enum:"query,header,body,path" doc:"Where param and size_param live: query (default), header, or body (a dotted path in the JSON body, where numbers stay numbers and a part inside a list is an item's index, filterGroups.0.value; the body must be a JSON object, or absent with method POST, PUT or PATCH). path (cursor only): the token is the next request's path, joined to base_url as request.path is; when it carries a query, that query replaces the spec's."`
	TokenHeader Str      `yaml:"token_header" only:"cursor" doc:"Response header holding the next token (e.g. X-Next-Page), instead of token; a missing or empty header ends."`
	ParamValue  JQ       `yaml:"param_value" only:"page,offset" doc:"jq from the position (the page number or offset, a number) to the value param carries, for an API that takes the position inside a larger value (Jenkins' tree ranges, allBuilds[number]{M,N}): a string or a number; anything else fails the chain. Default: the number itself."`
	TokenParam  Str      `yaml:"token_param" only:"page" doc:"Query parameter for the optional token of a page-number API."`
	URL         JQ       `yaml:"url" only:"next_url" doc:"jq on the response body giving the next URL; null or empty ends."`
	Start       Int      `yaml:"start" only:"page" doc:"Number of the first page (default 1)."`
	Size        Int      `yaml:"size" only:"page,offset,cursor,link_header" doc:"Page size to ask for, sent in size_param. For offset, a page shorter than size ends paging unless total or stop_when is given; leave it unset when the server may return fewer than asked and gives neither."`
	SizeParam   Str      `yaml:"size_param" only:"page,offset,cursor,link_header" doc:"Parameter carrying size, where in says (link_header: query)."`
	TotalPages  JQ       `yaml:"total_pages" only:"page" doc:"jq on the body giving the number of pages: paging stops at that page, and an empty page before it does not stop it; without it paging stops on an empty page."`
	Total       JQ       `yaml:"total" doc:"jq on the body giving the number of items the whole list holds (null: unknown). A chain that ends having listed fewer than the smallest total its pages gave fails: the server stopped early. For offset, paging also stops when the offset reaches it (or on an empty page), not on a short page."`
	TotalHeader Str      `yaml:"total_header" doc:"Response header giving the number of items the whole list holds (X-Total-Count), instead of total; missing means unknown."`
	StopParams  Map[Str] `yaml:"stop_params" only:"link_header" doc:"Parameters of the rel=\"next\" link that say it leads nowhere: a next link carrying all of them with these values (names case-insensitive) ends the chain, e.g. results: \"false\" from a server that always sends a next link. A next link without them is followed."`
	StopWhen    Expr     `yaml:"stop_when" doc:"expr stop condition, asked after each page's records are read; sees response (body), page (1-based count) and records (on this page)."`
	MaxPages    Int      `yaml:"max_pages" doc:"Cap on pages per request chain (default 10000); a chain that has more fails the stream."`
}

// Incremental makes a stream read only what changed since the last
// successful run of each of its request chains.
type Incremental struct {
	Pos Pos `yaml:"-"`

	Cursor JQ `yaml:"cursor" doc:"jq on a record giving its cursor value (a timestamp string or a number); the largest one is saved (times compare as instants, numbers by value; a time no later than the run began, and so a number when initial is epoch seconds, milliseconds, microseconds or nanoseconds). Required unless window or token is given."`
	// Token is for APIs that hand out the next sync's starting point in
	// the body of a list's last page, not in its records.
	Token   JQ      `yaml:"token" doc:"jq on the body of the chain's last page giving a token the API hands out for the next sync (Microsoft Graph's @odata.deltaLink, Zendesk's after_cursor): saved as the cursor only when the whole chain was read and written, as a cursor is. Instead of cursor; not with window or lookback."`
	Initial Value   `yaml:"initial" doc:"cursor value of the first run (default null; with window: the start of the first window, an RFC 3339 time). A number of 10, 13, 16 or 19 digits is epoch seconds, milliseconds, microseconds or nanoseconds, and says the cursor's numbers are times in that unit (held at the run's start, lookback)."`
	Window  *Window `yaml:"window" doc:"Read in bounded time windows, one request chain each: templates see window.start and window.end (RFC 3339, UTC)."`
	// Lookback is window.lookback for a stream read by its cursor.
	Lookback Duration `yaml:"lookback" doc:"How far before the saved cursor (a time: RFC 3339, or with the offset written +hhmm or +hh, or a space for the T; or a number when initial is epoch seconds, milliseconds, microseconds or nanoseconds) a run asks again, for records that arrive late or share the cursor's time where the API filters since exclusively; the saved cursor never moves back (default 0). With a window, give window.lookback."`
}

// Window splits an incremental stream's reads into time windows.
type Window struct {
	Step     Duration `yaml:"step" ferry:"required" doc:"Length of a window, e.g. 24h."`
	End      Tmpl     `yaml:"end" doc:"End of the last window (template giving an RFC 3339 time; default: the time the run started)."`
	Lookback Duration `yaml:"lookback" doc:"How far before the saved cursor a rerun starts again, for late events (default 0; a window with neither lookback nor end is warned of: its cursor is the time the run started). 0s when the API lists every event at once."`
}

// Partitions are the values a partitions stream gives, one record each.
type Partitions struct {
	Pos Pos `yaml:"-"`

	Values Value  `yaml:"values" doc:"A YAML list, or a template giving a list (e.g. ${ split(config.regions, \",\") })."`
	Range  *Range `yaml:"range" doc:"Whole numbers from..to, inclusive."`
}

// Range is an inclusive range of whole numbers.
type Range struct {
	From Int `yaml:"from" ferry:"required" doc:"First value."`
	To   Int `yaml:"to" ferry:"required" doc:"Last value (included)."`
	Step Int `yaml:"step" doc:"Step (default 1)."`
}

// Lookup collects a value per key from every record of a stream, for the
// programs of streams that run after that stream has completed.
type Lookup struct {
	Name string `yaml:"-"`
	Pos  Pos    `yaml:"-"`

	From  Str  `yaml:"from" ferry:"required" doc:"Stream whose records fill the lookup; it completes before any program that reads the lookup runs."`
	Key   JQ   `yaml:"key" ferry:"required" doc:"jq on a record giving its key (a string or number; null: the record adds nothing)."`
	Value JQ   `yaml:"value" doc:"jq on a record giving its value (default: the record)."`
	Many  Bool `yaml:"many" doc:"Collect every value of a key as a sorted list without repeats (default: one value per key; a second one for a key is an error)."`
}

// Table maps a stream's records to rows of one destination table.
type Table struct {
	Name string `yaml:"-"`
	Pos  Pos    `yaml:"-"`

	From       Strs     `yaml:"from" ferry:"required" doc:"Stream whose records become rows, or a list of streams whose records of one shape go to the same table (e.g. items listed by a search and items fetched one by one): the row program runs on each stream's records with that stream's variables."`
	Row        JQ       `yaml:"row" doc:"jq from a record to a row object (default .)."`
	PrimaryKey []Str    `yaml:"primary_key" doc:"Columns of the primary key; without one a _ferry_id hash of the row is used."`
	Columns    Map[Str] `yaml:"columns" enum:"STRING,BOOLEAN,INT,LONG,DOUBLE,DECIMAL,JSON,UTC_DATETIME,NAIVE_DATE" doc:"Declared column types; other columns are inferred."`
	Mode       Str      `yaml:"mode" enum:"upsert,append,replace" doc:"Write mode (default upsert); append takes no primary_key."`
	HardDelete Bool     `yaml:"hard_delete" doc:"replace mode: delete the rows a complete sync did not see, instead of marking them _ferry_deleted."`
	// DeleteThreshold caps the share of a replace table's rows live when
	// the sync began that one sync may mark deleted (or delete), as
	// port.delete_threshold does for a blueprint's entities.
	DeleteThreshold Float `yaml:"delete_threshold" doc:"replace mode: the largest share (0 to 1] of the table's rows live (not marked deleted) when the sync began that one sync may mark deleted (or delete, with hard_delete); above it none is, a warning and the summary say why, and the table is not reconciled (default 0.9; 1 allows all, e.g. when the source really emptied)."`
	// OnDuplicate is what happens when two rows of one run share a primary key.
	OnDuplicate Str `yaml:"on_duplicate" enum:"warn,fail,merge" doc:"Two rows of one run with the same primary key: not given, the last one wins, reported, unless the two are different records from different parents or streams (a collision: the earlier is lost, and the run fails); warn (the last one wins, reported, never fails), fail (the later row is a failed record, not written), or merge (later non-null columns win)."`

	reads map[string]bool // lookups its row program reads
	rows  map[string]*JQ  // the row program compiled per source stream, when from lists several
}

// Streams names the streams whose records become rows, in spec order.
func (t *Table) Streams() []string {
	out := make([]string, 0, len(t.From.V))
	for _, s := range t.From.V {
		out = append(out, s.V)
	}
	return out
}

// FedBy tells whether the records of stream become rows of the table.
func (t *Table) FedBy(stream string) bool {
	for _, s := range t.From.V {
		if s.V == stream {
			return true
		}
	}
	return false
}

// RowFor is the row program compiled for the records of stream (one of
// Streams): each stream has its own variables ($parent, ancestors).
func (t *Table) RowFor(stream string) *JQ {
	if q := t.rows[stream]; q != nil {
		return q
	}
	return &t.Row
}

// Port lists the Port entities a spec produces.
type Port struct {
	Blueprints Str      `yaml:"blueprints" doc:"JSON file in the spec's directory (relative, no ..) with the list of blueprint bodies to create or update; checked as Port checks them, problems reported at the file's own lines."`
	Owner      Tmpl     `yaml:"owner" doc:"Owner key (template over config, e.g. ${ config.org_id }): which source instance the entities come from. They are marked ferryOwner = <name>/<owner key>, and a run only overwrites or deletes entities of its own owner. Default: the values of the required, non-secret config inputs."`
	Entities   []Entity `yaml:"entities" doc:"Entity mappings, in Port's mapping style."`
	// MissingRelations is what happens to a relation whose target entity is
	// neither written by the run nor in Port.
	MissingRelations Str `yaml:"missing_relations" enum:"drop,stub,fail" doc:"A relation target neither written by the run nor in Port: drop it with a warning (default), let Port create an empty stub (stub), or fail the entity (fail). An entity mapping may set it per relation."`
	// DeleteThreshold caps the share of a blueprint's owned entities one run
	// may delete.
	DeleteThreshold Float `yaml:"delete_threshold" doc:"The largest share (0 to 1] of a blueprint's owned entities one run may delete as stale; above it nothing is deleted and a warning says why (default 0.9)."`
}

// Entity maps a stream's records to entities of one blueprint.
type Entity struct {
	Pos Pos `yaml:"-"`

	Blueprint  Str     `yaml:"blueprint" ferry:"required" doc:"Blueprint identifier."`
	From       Str     `yaml:"from" ferry:"required" doc:"Stream whose records become entities."`
	Selector   JQ      `yaml:"selector" doc:"jq filter; records for which it is not true are skipped (default true)."`
	Identifier JQ      `yaml:"identifier" ferry:"required" doc:"jq giving the entity identifier."`
	Title      JQ      `yaml:"title" doc:"jq giving the title."`
	Icon       JQ      `yaml:"icon" doc:"jq giving the icon."`
	Team       JQ      `yaml:"team" doc:"jq giving the team(s)."`
	Properties Map[JQ] `yaml:"properties" doc:"Property name to jq."`
	Relations  Map[JQ] `yaml:"relations" doc:"Relation name to jq (a string, a list for many, or null)."`
	// OnDuplicate is what happens when two entities of one run share a
	// blueprint and identifier (from this mapping or another).
	OnDuplicate Str `yaml:"on_duplicate" enum:"warn,fail,merge" doc:"An entity whose blueprint and identifier an earlier entity of the run already had: not given, the last one wins, reported, unless the two are different records from different parents or streams (a collision: the earlier is lost, and the run fails); warn (the last one wins, reported, never fails), fail (the later entity is a failed record, not sent), or merge (later non-null title, properties and single relations win; many-relations are the sorted union)."`
	// MissingRelations overrides port.missing_relations per relation.
	MissingRelations Map[Str] `yaml:"missing_relations" enum:"drop,stub,fail" doc:"Per relation of this blueprint: drop, stub or fail (see port.missing_relations)."`

	reads map[string]bool // lookups its programs read
}

// Warnings lists what Parse found valid but likely mistaken (a secret with
// a default in the spec, a primary-key column the row never has, …),
// sorted by file and position. They do not stop a run.
func (f *File) Warnings() ErrorList { return f.warnings }

// Blueprints returns the bodies of the port.blueprints file, in file order,
// as read when the spec was loaded (nil when parsed without a file system).
func (f *File) Blueprints() []json.RawMessage { return f.blueprints }

// Code returns the compiled program, or nil when the field was not set.
func (q *JQ) Code() *eval.JQ { return q.code }
