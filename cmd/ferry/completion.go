package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ferry-etl/ferry/engine"
)

// cmdStreams prints the stream names of a spec, one a line, for the
// completion of --streams (a hidden command: quiet on any problem).
func cmdStreams(a *app, args []string) error {
	if len(args) != 1 {
		return printed{usageErr("__streams SPEC")}
	}
	sp, err := engine.Load(args[0])
	if err != nil {
		return printed{usageErr("spec: %w", err)}
	}
	for _, s := range sp.Streams() {
		fmt.Fprintln(a.stdout, s)
	}
	return nil
}

func cmdCompletion(_ context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("completion", flag.ContinueOnError)
	fs.Usage = usageFunc(fs, `Usage: ferry completion bash|zsh|fish

Prints a completion script for the shell: commands, flags and their
values, spec files, and the stream names of --streams (read from the spec
on the command line).

Examples:
  source <(ferry completion bash)                  # bash, this shell
  ferry completion bash > /etc/bash_completion.d/ferry
  ferry completion zsh > "${fpath[1]}/_ferry"        # zsh
  ferry completion fish > ~/.config/fish/completions/ferry.fish
`)
	pos, err := parseArgs(fs, args, a.stdout, 1, 1, "one shell: bash, zsh or fish")
	if err != nil {
		return err
	}
	words := completionWords()
	switch pos[0] {
	case "bash":
		_, err = fmt.Fprint(a.stdout, bashCompletion(words))
	case "zsh":
		_, err = fmt.Fprint(a.stdout, "#compdef ferry\nautoload -U +X bashcompinit && bashcompinit\n"+bashCompletion(words))
	case "fish":
		_, err = fmt.Fprint(a.stdout, fishCompletion(words))
	default:
		return usageErr("ferry completion: want bash, zsh or fish, got %q", pos[0])
	}
	return err
}

// completion lists what the scripts complete: commands, each command's
// flags, and the values of flags that take a fixed set.
type completion struct {
	commands []string
	flags    map[string][]string // command -> flags (with --)
	values   map[string][]string // flag -> values
}

func completionWords() completion {
	c := completion{commands: commandNames(), flags: map[string][]string{}, values: map[string][]string{
		"--log-level":  {"debug", "info", "warn", "error"},
		"--log-format": {"text", "json"}, "--progress": {"auto", "live", "log", "none"},
		"--format": {"text", "github", "mermaid", "dot", "json"},
	}}
	rf := flag.NewFlagSet("run", flag.ContinueOnError)
	defineRunFlags(rf)
	rf.VisitAll(func(f *flag.Flag) { c.flags["run"] = append(c.flags["run"], "--"+f.Name) })
	pf := flag.NewFlagSet("plan", flag.ContinueOnError)
	definePlanFlags(pf)
	pf.VisitAll(func(f *flag.Flag) { c.flags["plan"] = append(c.flags["plan"], "--"+f.Name) })
	cf := flag.NewFlagSet("check", flag.ContinueOnError)
	defineCheckFlags(cf)
	cf.VisitAll(func(f *flag.Flag) { c.flags["check"] = append(c.flags["check"], "--"+f.Name) })
	c.flags["validate"] = []string{"--format"}
	c.flags["graph"] = []string{"--format"}
	return c
}

func bashCompletion(c completion) string {
	var cases strings.Builder
	for _, cmd := range slices.Sorted(maps.Keys(c.flags)) {
		fmt.Fprintf(&cases, "    %s) flags=%q ;;\n", cmd, strings.Join(c.flags[cmd], " "))
	}
	var values strings.Builder
	for _, fl := range slices.Sorted(maps.Keys(c.values)) {
		fmt.Fprintf(&values, "    %s) COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;\n", fl, strings.Join(c.values[fl], " "))
	}
	return fmt.Sprintf(`# bash completion for ferry (ferry completion bash)
_ferry() {
  local cur prev cmd spec i flags
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD-1]}"
  if [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=($(compgen -W %q -- "$cur"))
    return
  fi
  cmd="${COMP_WORDS[1]}"
  case "$prev" in
%s    --streams)
      for ((i=2; i<COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in *.yaml|*.yml) spec="${COMP_WORDS[i]}"; break ;; esac
      done
      [[ -n $spec ]] && COMPREPLY=($(compgen -W "$(ferry __streams "$spec" 2>/dev/null)" -- "${cur##*,}"))
      return ;;
    --config|--report|--dest) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  case "$cmd" in
%s    help) COMPREPLY=($(compgen -W %q -- "$cur")); return ;;
    completion) COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")); return ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$flags --help" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -X '!*.@(yaml|yml|json)' -- "$cur") $(compgen -d -- "$cur"))
  fi
}
complete -o filenames -F _ferry ferry
`, strings.Join(c.commands, " "), values.String(), cases.String(), strings.Join(c.commands, " "))
}

func fishCompletion(c completion) string {
	var b strings.Builder
	b.WriteString("# fish completion for ferry (ferry completion fish)\ncomplete -c ferry -f\n")
	for _, cmd := range commands() {
		fmt.Fprintf(&b, "complete -c ferry -n __fish_use_subcommand -a %s -d %q\n", cmd.name, cmd.summary)
	}
	for _, cmd := range slices.Sorted(maps.Keys(c.flags)) {
		for _, f := range c.flags[cmd] {
			name := strings.TrimPrefix(f, "--")
			line := fmt.Sprintf("complete -c ferry -n '__fish_seen_subcommand_from %s' -l %s", cmd, name)
			if vs, ok := c.values[f]; ok {
				line += fmt.Sprintf(" -x -a %q", strings.Join(vs, " "))
			}
			b.WriteString(line + "\n")
		}
		fmt.Fprintf(&b, "complete -c ferry -n '__fish_seen_subcommand_from %s' -F -a '(__fish_complete_suffix .yaml)'\n", cmd)
	}
	b.WriteString("complete -c ferry -n '__fish_seen_subcommand_from run' -l streams -x -a '(ferry __streams (commandline -opc | string match -r \".*\\\\.ya?ml\\$\")[1] 2>/dev/null)'\n")
	fmt.Fprintf(&b, "complete -c ferry -n '__fish_seen_subcommand_from help' -a %q\n", strings.Join(c.commands, " "))
	b.WriteString("complete -c ferry -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'\n")
	return b.String()
}
