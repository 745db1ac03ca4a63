// Package eval compiles and runs ferry's two embedded languages.
//
// jq (github.com/itchyny/gojq) shapes data: record selectors, table rows,
// Port entities. expr (github.com/expr-lang/expr) computes control values:
// `when` conditions, stop conditions and the `${ … }` parts of templated
// strings. Every program is compiled once, when a spec is validated, and the
// compiled [JQ], [Expr] and [Template] values are immutable and safe to share
// between goroutines.
//
// API:
//
//	CompileJQ(src, vars) (*JQ, error)              (*JQ).Run / First / Source
//	CompileJQVars(src, Vars, opts...)              the variables as an index, not a list
//	CompileExpr(src, scope, kind, opts...) (*Expr, error)
//	                                               (*Expr).Eval / EvalBool / EvalInt / EvalString
//	CompileTemplate(s, scope, opts...) (*Template, error)
//	                                               (*Template).Render / RenderString / RenderEscaped / IsLiteral
//	                                               (*Template).LiteralPrefix / EmptyPart   what is known before running
//	NewEnv(scope, opts...) *Env                    one scope prepared for many programs: (*Env).CompileExpr / CompileTemplate
//	NewCache() *Cache, WithCache(c)                one compiled program per identical source meaning the same
//	WithTypes(samples), WithMembers(name, m)       declared member types; members answered by a function
//	InspectJQ(src) JQFacts                         keys of a built object, an assignment, a "${", a select or empty (for warnings)
//	MaxProgramLen, MaxNesting                      limits on one program
//	HasTemplate(s) bool
//	TitleCase(s), CleanTitle(s) string             Python str.title() and ferry's title cleaning
//	Normalize(v) any                               json.Number -> int / float64
//	FormatScalar(v) string                         a value as templates concatenate it
//	WithClock(func() time.Time) Option             expr's now() reads an injected clock (an env's ClockVar wins)
//	ClockVar                                       the env entry (a func() time.Time) a run puts its clock in, for now()
//
// Compile errors are [*Error] values carrying the byte offset of the
// offending token in the source text that was compiled, so that callers can
// map them to file:line:col.
//
// Both languages get the functions title_case, clean_title, path_escape
// (url.PathEscape) and query_escape (url.QueryEscape). In jq they are filters
// on their input (`.name | clean_title`); in expr they are calls
// (`clean_title(name)`). path_escape and query_escape also take numbers.
//
// Values: jq takes JSON-shaped values only (nil, bool, int, float64,
// *big.Int, json.Number, string, []any, map[string]any); decode JSON with
// json.Decoder.UseNumber so that large ids stay exact, and never pass Go
// structs. gojq computes with json.Number directly. expr does not know
// json.Number, so [Expr.Eval] and [Template.Render] pass their env through
// [Normalize], which copies only the parts it changes. jq's $ENV and env are
// always empty, and input/inputs are disabled.
package eval
