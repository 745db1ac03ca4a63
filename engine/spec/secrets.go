package spec

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// jqConfigRE finds $config in jq: read by name ($config.name,
// $config["name"]) or whole (any other use).
var jqConfigRE = regexp.MustCompile(`\$config\b\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*"([^"\\]*)"\s*\])?`)

// checkSecretOutputs warns of a program whose output is written (a
// stream's records, a table's row, an entity's fields) and that reads a
// secret input: its value would be written to the table or to Port, where
// ferry redacts nothing (rows are the data). A selector only decides.
func (p *parser) checkSecretOutputs(f *File) {
	var secrets []string
	for _, it := range f.Config.Items {
		if it.Value.Secret.V {
			secrets = append(secrets, it.Key)
		}
	}
	if len(secrets) == 0 {
		return
	}
	check := func(src Str, path, where string) {
		for _, rd := range memberReads(jqConfigRE, src.V) {
			switch {
			case rd.name == "":
				p.warnAt(p.progPos(src, rd.offset), path, "reads $config whole, secret inputs included (%s): their values would be written %s", strings.Join(secrets, ", "), where)
			case slices.Contains(secrets, rd.name):
				p.warnAt(p.progPos(src, rd.offset), path, "reads the secret input %s: its value would be written %s", rd.name, where)
			}
		}
	}
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		check(s.Records.Str, "streams."+s.Name+".records", "with the records")
	}
	for i := range f.Tables.Items {
		t := &f.Tables.Items[i].Value
		check(t.Row.Str, "tables."+t.Name+".row", "to the table")
	}
	if f.Port == nil {
		return
	}
	for i := range f.Port.Entities {
		e := &f.Port.Entities[i]
		path := fmt.Sprintf("port.entities[%d]", i)
		for _, x := range []struct {
			name string
			q    *JQ
		}{{"identifier", &e.Identifier}, {"title", &e.Title}, {"icon", &e.Icon}, {"team", &e.Team}} {
			check(x.q.Str, path+"."+x.name, "to Port")
		}
		for _, it := range e.Properties.Items {
			check(it.Value.Str, path+".properties."+it.Key, "to Port")
		}
		for _, it := range e.Relations.Items {
			check(it.Value.Str, path+".relations."+it.Key, "to Port")
		}
	}
}
