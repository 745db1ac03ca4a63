package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ferry-etl/ferry/engine"
)

func cmdGraph(_ context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("graph", flag.ContinueOnError)
	format := choice(fs, "format", "mermaid", "`format`: mermaid or dot", "mermaid", "dot")
	fs.Usage = usageFunc(fs, `Usage: ferry graph SPEC [--format mermaid|dot]

Prints the spec's data flow: each stream, the stream it fans out from
(for_each; recurse: from its own records, a self-edge) or takes a batch
of, and the tables and Port blueprints its
records are written to. Mermaid renders in GitHub and GitLab Markdown;
DOT renders with Graphviz. SPEC "-" reads the spec from stdin.

Examples:
  ferry graph specs/humanitec.yaml > docs/humanitec.mmd
  ferry graph specs/harness.yaml --format dot | dot -Tsvg > harness.svg
`)
	pos, err := parseArgs(fs, args, a.stdout, 1, 1, "one SPEC")
	if err != nil {
		return err
	}
	sp, err := a.readSpec(pos[0], "text")
	if err != nil {
		return err
	}
	g := sp.Graph()
	if format.value == "dot" {
		return writeDOT(a.stdout, g)
	}
	return writeMermaid(a.stdout, g)
}

// Node ids are prefixed by kind (a stream and a table may share a name)
// and kept to [A-Za-z0-9_]; labels carry the real names.
func nodeID(kind, name string) string {
	var b strings.Builder
	b.WriteString(kind + "_")
	for _, r := range name {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, "_%x_", r)
		}
	}
	return b.String()
}

// mermaidLabel quotes a label for Mermaid (which has no escape for ").
func mermaidLabel(s string) string { return `"` + strings.ReplaceAll(s, `"`, "#quot;") + `"` }

func writeMermaid(w io.Writer, g engine.Graph) error {
	var b strings.Builder
	fmt.Fprintf(&b, "---\ntitle: %s\n---\nflowchart LR\n", g.Name)
	tables, blueprints := map[string]bool{}, map[string]bool{}
	for _, s := range g.Streams {
		label := s.Name
		if s.When != "" {
			label += " (when)"
		}
		fmt.Fprintf(&b, "  %s([%s])\n", nodeID("s", s.Name), mermaidLabel(label))
	}
	for _, s := range g.Streams {
		for _, t := range s.Tables {
			if !tables[t] {
				tables[t] = true
				fmt.Fprintf(&b, "  %s[(%s)]\n", nodeID("t", t), mermaidLabel("table "+t))
			}
		}
		for _, bp := range s.Blueprints {
			if !blueprints[bp] {
				blueprints[bp] = true
				fmt.Fprintf(&b, "  %s{{%s}}\n", nodeID("b", bp), mermaidLabel("blueprint "+bp))
			}
		}
	}
	for _, s := range g.Streams {
		if s.ForEach != "" {
			fmt.Fprintf(&b, "  %s -->|for_each| %s\n", nodeID("s", s.ForEach), nodeID("s", s.Name))
		}
		if s.BatchOf != "" {
			fmt.Fprintf(&b, "  %s -->|batch| %s\n", nodeID("s", s.BatchOf), nodeID("s", s.Name))
		}
		if s.Recurse != "" {
			// A self-edge: the stream fans out from its own records.
			fmt.Fprintf(&b, "  %s -->|%s| %s\n", nodeID("s", s.Name), mermaidLabel(fmt.Sprintf("recurse, max_depth %d", s.MaxDepth)), nodeID("s", s.Name))
		}
		for _, t := range s.Tables {
			fmt.Fprintf(&b, "  %s --> %s\n", nodeID("s", s.Name), nodeID("t", t))
		}
		for _, bp := range s.Blueprints {
			fmt.Fprintf(&b, "  %s --> %s\n", nodeID("s", s.Name), nodeID("b", bp))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeDOT(w io.Writer, g engine.Graph) error {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n  rankdir=LR;\n  label=%s;\n  node [fontname=\"Helvetica\"];\n", strconv.Quote(g.Name), strconv.Quote(g.Name))
	tables, blueprints := map[string]bool{}, map[string]bool{}
	for _, s := range g.Streams {
		label := s.Name
		if s.When != "" {
			label += "\n(when " + s.When + ")"
		}
		fmt.Fprintf(&b, "  %s [label=%s, shape=box, style=rounded];\n", nodeID("s", s.Name), strconv.Quote(label))
		for _, t := range s.Tables {
			if !tables[t] {
				tables[t] = true
				fmt.Fprintf(&b, "  %s [label=%s, shape=cylinder];\n", nodeID("t", t), strconv.Quote("table "+t))
			}
		}
		for _, bp := range s.Blueprints {
			if !blueprints[bp] {
				blueprints[bp] = true
				fmt.Fprintf(&b, "  %s [label=%s, shape=hexagon];\n", nodeID("b", bp), strconv.Quote("blueprint "+bp))
			}
		}
	}
	for _, s := range g.Streams {
		if s.ForEach != "" {
			fmt.Fprintf(&b, "  %s -> %s [label=\"for_each\"];\n", nodeID("s", s.ForEach), nodeID("s", s.Name))
		}
		if s.BatchOf != "" {
			fmt.Fprintf(&b, "  %s -> %s [label=\"batch\", style=dashed];\n", nodeID("s", s.BatchOf), nodeID("s", s.Name))
		}
		if s.Recurse != "" {
			fmt.Fprintf(&b, "  %s -> %s [label=%s];\n", nodeID("s", s.Name), nodeID("s", s.Name), strconv.Quote(fmt.Sprintf("recurse when %s\n(max_depth %d)", s.Recurse, s.MaxDepth)))
		}
		for _, t := range s.Tables {
			fmt.Fprintf(&b, "  %s -> %s;\n", nodeID("s", s.Name), nodeID("t", t))
		}
		for _, bp := range s.Blueprints {
			fmt.Fprintf(&b, "  %s -> %s;\n", nodeID("s", s.Name), nodeID("b", bp))
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}
