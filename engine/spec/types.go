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
	Name        Str            `yaml:"name" ferry:"required" doc:"Spec name: names the destination schema and owns Port entities."`
	Description Str            `yaml:"description" doc:"Free text."`
	Config      Map[ConfigVar] `yaml:"config" names:"config" doc:"Named inputs supplied by --set, --config FILE, environment variables or .env, in that precedence."`
	HTTP        HTTP           `yaml:"http" doc:"Defaults for every request: base URL, headers, auth, retry, rate limit, concurrency."`
	Streams     Map[Stream]    `yaml:"streams" ferry:"required" names:"stream" doc:"Endpoints to read; a stream may fan out from any other (declared before or after it) with for_each."`
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
	BaseURL     Tmpl       `yaml:"base_url" doc:"Base URL (template) that request paths are joined to; its path prefix is kept."`
	Headers     Map[Tmpl]  `yaml:"headers" doc:"Headers sent with every request (templates)."`
	Auth        *Auth      `yaml:"auth" doc:"Authentication."`
	Timeout     Duration   `yaml:"timeout" doc:"Timeout of one attempt, e.g. 30s."`
	Retry       *Retry     `yaml:"retry" doc:"Retry policy for network errors and retryable statuses."`
	RateLimit   *RateLimit `yaml:"rate_limit" doc:"Requests per second allowed to this host, shared by every stream using it."`
	Concurrency Int        `yaml:"concurrency" doc:"Requests in flight to this host at once, shared by every stream and fan-out level."`
}

// Auth is one of the supported authentication schemes, chosen by Type.
type Auth struct {
	Pos Pos `yaml:"-"`

	Type         Str   `yaml:"type" ferry:"required" enum:"none,bearer,header,query,basic,oauth2" doc:"Scheme."`
	Token        Tmpl  `yaml:"token" only:"bearer" doc:"Bearer token (template, usually ${ config.x })."`
	Header       Str   `yaml:"header" only:"header" doc:"Header carrying the API key, e.g. x-api-key."`
	Prefix       Str   `yaml:"prefix" only:"header" doc:"Text put before the key, e.g. \"ApiKey \"."`
	Param        Str   `yaml:"param" only:"query" doc:"Query parameter carrying the API key."`
	Value        Tmpl  `yaml:"value" only:"header,query" doc:"The API key (template)."`
	Username     Tmpl  `yaml:"username" only:"basic" doc:"Basic-auth user."`
	Password     Tmpl  `yaml:"password" only:"basic" doc:"Basic-auth password."`
	TokenURL     Tmpl  `yaml:"token_url" only:"oauth2" doc:"OAuth2 token endpoint (client credentials grant)."`
	ClientID     Tmpl  `yaml:"client_id" only:"oauth2" doc:"OAuth2 client id."`
	ClientSecret Tmpl  `yaml:"client_secret" only:"oauth2" doc:"OAuth2 client secret."`
	Scopes       []Str `yaml:"scopes" only:"oauth2" doc:"OAuth2 scopes."`
}

// Retry is the retry policy of a host.
type Retry struct {
	Attempts Int      `yaml:"attempts" doc:"Attempts in all, first included (default 5)."`
	On       []Int    `yaml:"on" doc:"HTTP statuses retried (default 408, 429, 500, 502, 503, 504)."`
	Initial  Duration `yaml:"initial" doc:"First backoff (default 500ms), doubled each attempt with jitter."`
	Max      Duration `yaml:"max" doc:"Backoff cap (default 30s). Retry-After and x-ratelimit-reset are honoured."`
}

// RateLimit is a token bucket shared by every request to one host.
type RateLimit struct {
	PerSecond Float `yaml:"per_second" ferry:"required" doc:"Sustained requests per second."`
	Burst     Int   `yaml:"burst" doc:"Requests allowed at once above the rate (default 1)."`
}

// Stream is one endpoint read, possibly once per record of a parent stream.
type Stream struct {
	Name string `yaml:"-"`
	Pos  Pos    `yaml:"-"`

	Description Str          `yaml:"description" doc:"Free text."`
	ForEach     Str          `yaml:"for_each" doc:"Parent stream (any stream of the spec, declared before or after this one; no cycles): one request chain per parent record. expr sees parent and parents.<name>; jq sees $parent, $parents and $<name>."`
	Batch       Str          `yaml:"batch" doc:"A stream fanned out from the same parent whose records, for that parent, are collected into a list (batch in expr, $batch in jq): one request per parent carrying the list."`
	When        Expr         `yaml:"when" doc:"expr condition evaluated per parent; false skips the request."`
	HTTP        *HTTP        `yaml:"http" doc:"Overrides of the top-level http block, e.g. another host and auth."`
	Request     Request      `yaml:"request" ferry:"required" doc:"The request."`
	Records     JQ           `yaml:"records" doc:"jq program from a response body to records (default: .[] for an array, nothing for null, else the body)."`
	Paginate    *Paginate    `yaml:"paginate" doc:"How to reach the next page."`
	Incremental *Incremental `yaml:"incremental" doc:"Read only what changed since the last run: the largest cursor seen is saved per parent, and templates see it as cursor. Not on a stream that others fan out from or batch."`
	Key         JQ           `yaml:"key" doc:"jq on a record giving what identifies it among its siblings: names the request chains of its children in checkpoints and records in errors (default: its id, identifier or uuid field, else a hash of the record)."`
	Response    *Response    `yaml:"response" doc:"How answers are read."`

	parent *Stream
	batch  *Stream
	chain  chainPos // where it sits in the fan-out forest; set by validation
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
}

// Response says how a stream's answers are read.
type Response struct {
	AllowEmpty Bool `yaml:"allow_empty" doc:"An empty 2xx body means no records (default false: an empty body other than a 204 fails the request chain)."`
}

// Paginate is one of the pagination kinds, chosen by Type.
type Paginate struct {
	Pos Pos `yaml:"-"`

	Type       Str  `yaml:"type" ferry:"required" enum:"cursor,next_url,link_header,page,offset" doc:"Pagination kind."`
	Token      JQ   `yaml:"token" only:"cursor,page" doc:"jq on the response body giving the next token (a string or a number, which stays a number in a JSON body); null, false or empty ends (cursor). For page: an optional token sent as token_param when present."`
	Param      Str  `yaml:"param" only:"cursor,page,offset" doc:"Where the token, page number or offset goes (query name, header name, or dotted body path)."`
	In         Str  `yaml:"in" only:"cursor,page,offset" enum:"query,header,body" doc:"Where param and size_param live: query (default), header (they are header names), or body (a dotted path in the JSON body, where numbers stay numbers; the body must be a JSON object, or absent with method POST, PUT or PATCH)."`
	TokenParam Str  `yaml:"token_param" only:"page" doc:"Query parameter for the optional token of a page-number API."`
	URL        JQ   `yaml:"url" only:"next_url" doc:"jq on the response body giving the next URL; null or empty ends."`
	Start      Int  `yaml:"start" only:"page" doc:"Number of the first page (default 1)."`
	Size       Int  `yaml:"size" only:"page,offset,cursor,link_header" doc:"Page size to ask for, sent in size_param. For offset, a page shorter than size ends paging unless total is given; leave it unset when the server may return fewer than asked and gives no total."`
	SizeParam  Str  `yaml:"size_param" only:"page,offset,cursor,link_header" doc:"Parameter carrying size, where in says (link_header: query)."`
	TotalPages JQ   `yaml:"total_pages" only:"page" doc:"jq on the body giving the number of pages; without it paging stops on an empty page."`
	Total      JQ   `yaml:"total" only:"offset" doc:"jq on the body giving the number of records; paging stops when the offset reaches it (or on an empty page), not on a short page. Null means unknown."`
	StopWhen   Expr `yaml:"stop_when" doc:"expr stop condition, asked after each page's records are read; sees response (body), page (1-based count) and records (on this page)."`
	MaxPages   Int  `yaml:"max_pages" doc:"Cap on pages per request chain (default 10000); a chain that has more fails the stream."`
}

// Incremental makes a stream read only what changed since the last
// successful run of each of its request chains.
type Incremental struct {
	Cursor  JQ    `yaml:"cursor" ferry:"required" doc:"jq on a record giving its cursor value (a timestamp string or a number); the largest one is saved."`
	Initial Value `yaml:"initial" doc:"cursor value of the first run (default null)."`
}

// Table maps a stream's records to rows of one destination table.
type Table struct {
	Name string `yaml:"-"`
	Pos  Pos    `yaml:"-"`

	From       Str      `yaml:"from" ferry:"required" doc:"Stream whose records become rows."`
	Row        JQ       `yaml:"row" doc:"jq from a record to a row object (default .)."`
	PrimaryKey []Str    `yaml:"primary_key" doc:"Columns of the primary key; without one a _ferry_id hash of the row is used."`
	Columns    Map[Str] `yaml:"columns" enum:"STRING,BOOLEAN,INT,LONG,DOUBLE,DECIMAL,JSON,UTC_DATETIME,NAIVE_DATE" doc:"Declared column types; other columns are inferred."`
	Mode       Str      `yaml:"mode" enum:"upsert,append,replace" doc:"Write mode (default upsert); append takes no primary_key."`
	// OnDuplicate is what happens when two rows of one run share a primary key.
	OnDuplicate Str `yaml:"on_duplicate" enum:"warn,fail,merge" doc:"Two rows of one run with the same primary key: warn (default; the last one wins, reported), fail (the later row is a failed record, not written), or merge (later non-null columns win)."`
}

// Port lists the Port entities a spec produces.
type Port struct {
	Blueprints Str      `yaml:"blueprints" doc:"JSON file in the spec's directory (relative, no ..) with the list of blueprint bodies to create or update; checked as Port checks them, problems reported at the file's own lines."`
	Entities   []Entity `yaml:"entities" doc:"Entity mappings, in Port's mapping style."`
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
	OnDuplicate Str `yaml:"on_duplicate" enum:"warn,fail,merge" doc:"An entity whose blueprint and identifier an earlier entity of the run already had: warn (default; the last one wins, reported), fail (the later entity is a failed record, not sent), or merge (later non-null title, properties and single relations win; many-relations are the sorted union)."`
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
