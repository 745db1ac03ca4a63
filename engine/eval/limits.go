package eval

import "fmt"

// Limits on one embedded program. The parsers and compilers of both
// languages recurse on nesting, and their cost grows with a program's
// length: these bounds keep a program that no person would write (a
// generated one, or a mistake) from exhausting memory instead of failing.
const (
	MaxProgramLen = 64 << 10 // bytes of one jq program or template
	MaxNesting    = 256      // brackets, braces, parentheses and string interpolations open at once
)

// checkLimits reports a program over MaxProgramLen or MaxNesting, at the
// byte where it goes over. jq says whether jq's syntax (strings with \( … )
// interpolations, # comments) or expr's (three kinds of quotes) applies.
func checkLimits(lang, src string) *Error {
	if len(src) > MaxProgramLen {
		return &Error{Lang: lang, Offset: MaxProgramLen, Msg: fmt.Sprintf("program too long: %d bytes, at most %d", len(src), MaxProgramLen)}
	}
	var open []byte // what each open level closes with; '"' for a jq string
	for i := 0; i < len(src); i++ {
		c := src[i]
		inString := len(open) > 0 && open[len(open)-1] == '"' && lang == "jq"
		switch {
		case inString && c == '\\' && i+1 < len(src) && src[i+1] == '(':
			open = append(open, ')')
			i++
		case inString && c == '\\':
			i++
		case inString && c == '"':
			open = open[:len(open)-1]
		case inString:
		case lang == "jq" && c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '"' && lang == "jq":
			open = append(open, '"')
		case c == '"' || c == '\'' || c == '`':
			// An expr string: skipped whole.
			for i++; i < len(src) && src[i] != c; i++ {
				if src[i] == '\\' && c != '`' {
					i++
				}
			}
			continue
		case c == '(':
			open = append(open, ')')
		case c == '[':
			open = append(open, ']')
		case c == '{':
			open = append(open, '}')
		case c == ')' || c == ']' || c == '}':
			if len(open) > 0 && open[len(open)-1] == c {
				open = open[:len(open)-1]
			}
		default:
			continue
		}
		if len(open) > MaxNesting {
			return &Error{Lang: lang, Offset: i, Msg: fmt.Sprintf("nested too deeply: more than %d levels of brackets, parentheses and strings", MaxNesting)}
		}
	}
	return nil
}
