package knobs

import (
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// TypeText describes a knob's type with its bounds or choices: "int 1..1024",
// "duration 0s..1s", "int 1..", "enum socket|queue", "bool".
func (k *Knob) TypeText() string {
	switch {
	case k.Kind == Enum:
		return "enum " + strings.Join(k.Enum, "|")
	case k.bounded():
		format := func(n int64) string { return strconv.FormatInt(n, 10) }
		if k.Kind == Duration {
			format = func(n int64) string { return time.Duration(n).String() }
		}
		lo, hi := "", ""
		if k.Min != math.MinInt64 {
			lo = format(k.Min)
		}
		if k.Max != math.MaxInt64 {
			hi = format(k.Max)
		}
		return string(k.Kind) + " " + lo + ".." + hi
	}
	return string(k.Kind)
}

// Markdown returns docs/knobs.md: every knob with its type, default, whether it is
// live, and its doc, sorted by path. The output depends only on the declarations.
func (t *Table) Markdown() string {
	var b strings.Builder
	b.WriteString(`# Knobs

<!-- Generated from the knob table (knobs.Table.Markdown); do not edit by hand. -->

Every tunable of Spillway is a knob. The same knob is set, in increasing order of
precedence at start, by its default, the config file (` + "`" + `{"dataplane": {"gso": false}}` + "`" + `
or ` + "`" + `{"dataplane/gso": false}` + "`" + `), and a flag (` + "`" + `-dataplane.gso=false` + "`" + ` or
` + "`" + `-knob dataplane/gso=false` + "`" + `). At runtime the Admin API and the knob directory
(` + "`" + `echo false > <dir>/dataplane/gso` + "`" + `) change live knobs; a knob that is not live
takes effect at the next start. An invalid value is refused and the old one stays.

| Path | Type | Default | Live | Doc |
|---|---|---|---|---|
`)
	for _, e := range t.sorted {
		k := &e.knob
		def := "*(empty)*"
		if k.Default != "" {
			def = "`" + k.Default + "`"
		}
		live := "no"
		if k.Live {
			live = "yes"
		}
		cells := []string{"`" + k.Path + "`", k.TypeText(), def, live, k.Doc}
		b.WriteString("| ")
		for i, c := range cells {
			if i > 0 {
				b.WriteString(" | ")
			}
			b.WriteString(strings.ReplaceAll(c, "|", `\|`))
		}
		b.WriteString(" |\n")
	}
	return b.String()
}

// Text returns `spillway knobs`: one aligned line per knob with its current value,
// default, type, liveness, where the value came from, and doc.
func (t *Table) Text() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	w.Write([]byte("PATH\tVALUE\tDEFAULT\tTYPE\tLIVE\tFROM\tDOC\n"))
	quote := func(s string) string {
		if s == "" {
			return `""`
		}
		return strings.ReplaceAll(s, "\t", " ")
	}
	for _, e := range t.sorted {
		k, st := &e.knob, e.cur.Load()
		live := "no"
		if k.Live {
			live = "yes"
		}
		w.Write([]byte(k.Path + "\t" + quote(st.v.text) + "\t" + quote(k.Default) + "\t" +
			k.TypeText() + "\t" + live + "\t" + string(st.src) + "\t" + k.Doc + "\n"))
	}
	w.Flush()
	return b.String()
}
