package knobs

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// FlagName is the command-line flag of a knob: its path with "/" -> ".".
func FlagName(path string) string { return strings.ReplaceAll(path, "/", ".") }

// RegisterFlags defines one flag per knob, named by FlagName (-dataplane.gso=false;
// a bool knob's flag alone means true), and a repeatable -knob path=value that
// takes a path with "/" or ".". A flag's value beats the config file's whichever
// is read first. Call it before LoadFile so that -help shows the defaults.
func (t *Table) RegisterFlags(fs *flag.FlagSet) {
	for _, e := range t.sorted {
		fs.Var(&flagValue{t: t, e: e}, FlagName(e.knob.Path), flagUsage(&e.knob))
	}
	fs.Var(knobFlag{t}, "knob", "set a knob by its `path=value`, e.g. -knob dataplane/gso=false (repeatable)")
}

// flagUsage is the doc with the type; the backquoted kind becomes the argument
// name in -help ("-dataplane.batch int"), except for bools, which take none.
func flagUsage(k *Knob) string {
	typ := k.TypeText()
	if k.Kind != Bool {
		typ = "`" + string(k.Kind) + "`" + strings.TrimPrefix(typ, string(k.Kind))
	}
	u := strings.ReplaceAll(k.Doc, "`", "'") + " (" + typ
	if !k.Live {
		u += ", read at start"
	}
	return u + ")"
}

type flagValue struct {
	t *Table
	e *entry
}

func (f *flagValue) String() string {
	if f == nil || f.e == nil { // flag.PrintDefaults probes a zero value
		return ""
	}
	return f.e.cur.Load().v.text
}

// Set returns only the reason: the flag package already names the flag and value.
func (f *flagValue) Set(s string) error {
	err := f.t.set(f.e.knob.Path, s, FromFlag)
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Err
	}
	return err
}

func (f *flagValue) IsBoolFlag() bool { return f != nil && f.e != nil && f.e.knob.Kind == Bool }

type knobFlag struct{ t *Table }

func (knobFlag) String() string { return "" }

func (f knobFlag) Set(s string) error {
	path, text, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want path=value, got %q", s)
	}
	return f.t.set(strings.ReplaceAll(strings.TrimSpace(path), ".", "/"), text, FromFlag)
}
