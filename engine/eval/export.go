package eval

// FormatScalar formats a value the way templates concatenate it (see
// [Template]); callers rendering query values use it to agree with templates.
func FormatScalar(v any) string { return formatScalar(v) }
