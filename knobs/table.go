package knobs

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Source says where a knob's current value came from.
type Source string

// The sources of a value. Flags beat the config file whatever the order in which
// the two are read.
const (
	FromDefault Source = "default"
	FromFile    Source = "file"
	FromFlag    Source = "flag"
	FromSet     Source = "set" // Set: the Admin API, the knob directory or code
)

// ErrUnknown matches an error about a path that names no knob.
var ErrUnknown = errors.New("unknown knob")

// ErrNeedsRestart matches an error about a change, after Start, to a knob that is
// not Live.
var ErrNeedsRestart = errors.New("needs a restart (the knob is not live)")

// Error is the error of a refused value: it names the knob, the value and why.
type Error struct {
	Path  string
	Value string
	Err   error // wraps ErrUnknown, ErrInvalid, ErrNeedsRestart or Apply's error
}

func (e *Error) Error() string {
	if errors.Is(e.Err, ErrUnknown) {
		return fmt.Sprintf("knob %s: unknown knob", e.Path)
	}
	return fmt.Sprintf("knob %s: cannot set %q: %v", e.Path, e.Value, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Table holds the knobs and their current values. All methods are safe for
// concurrent use.
type Table struct {
	byPath  map[string]*entry
	sorted  []*entry
	started atomic.Bool
}

type entry struct {
	knob Knob
	mu   sync.Mutex // serialises changes, so Apply calls never overlap
	cur  atomic.Pointer[state]
}

type state struct {
	v   Value
	src Source
	at  time.Time
}

var pathRE = regexp.MustCompile(`^[a-z0-9_]+(/[a-z0-9_]+)*$`)

// NewTable checks the knobs and returns a table holding their defaults. It
// refuses a bad path, a duplicate, a path that is also another knob's directory,
// an unknown kind, a default that does not parse, bounds or an enum list on the
// wrong kind, and a doc that is empty or longer than one line.
func NewTable(knobs ...Knob) (*Table, error) {
	t := &Table{byPath: make(map[string]*entry, len(knobs))}
	var errs []error
	bad := func(k Knob, format string, args ...any) {
		errs = append(errs, fmt.Errorf("knob %q: %s", k.Path, fmt.Sprintf(format, args...)))
	}
	for _, k := range knobs {
		if !pathRE.MatchString(k.Path) {
			bad(k, "path must be [a-z0-9_] segments joined by /")
			continue
		}
		if k.Path == "knob" {
			bad(k, "path is taken by the -knob flag")
			continue
		}
		if _, dup := t.byPath[k.Path]; dup {
			bad(k, "declared twice")
			continue
		}
		if !slices.Contains(kinds, k.Kind) {
			bad(k, "unknown kind %q", k.Kind)
			continue
		}
		if k.Doc == "" || strings.ContainsAny(k.Doc, "\r\n") {
			bad(k, "doc must be one non-empty line")
		}
		if (k.Kind == Enum) != (len(k.Enum) > 0) {
			bad(k, "an enum list goes with kind enum, and kind enum needs one")
		}
		for i, s := range k.Enum {
			if s == "" || strings.TrimSpace(s) != s || strings.Contains(s, ",") || slices.Contains(k.Enum[:i], s) {
				bad(k, "enum value %q is empty, padded, has a comma or repeats", s)
			}
		}
		if k.bounded() && k.Kind != Int && k.Kind != Duration {
			bad(k, "Min and Max apply to int and duration knobs only")
		}
		if k.Min > k.Max {
			bad(k, "Min %d > Max %d (use math.MaxInt64 for no upper bound)", k.Min, k.Max)
		}
		v, err := k.Parse(k.Default)
		if err != nil {
			bad(k, "default %q: %v", k.Default, err)
		}
		k.Enum = slices.Clone(k.Enum)
		e := &entry{knob: k}
		e.cur.Store(&state{v: v, src: FromDefault, at: time.Now()})
		t.byPath[k.Path] = e
		t.sorted = append(t.sorted, e)
	}
	for p := range t.byPath {
		for dir := p; ; {
			i := strings.LastIndexByte(dir, '/')
			if i < 0 {
				break
			}
			dir = dir[:i]
			if _, clash := t.byPath[dir]; clash {
				errs = append(errs, fmt.Errorf("knob %q: also a directory of knob %q", dir, p))
			}
		}
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return nil, fmt.Errorf("knobs: bad table: %w", errors.Join(errs...))
	}
	slices.SortFunc(t.sorted, func(a, b *entry) int { return strings.Compare(a.knob.Path, b.knob.Path) })
	return t, nil
}

// Start ends the start phase. From now on Set calls Apply for live knobs and
// refuses changes to the others. Call it once the server has read its values.
func (t *Table) Start() { t.started.Store(true) }

// Started reports whether Start was called.
func (t *Table) Started() bool { return t.started.Load() }

// Knobs returns the knobs sorted by path.
func (t *Table) Knobs() []Knob {
	out := make([]Knob, len(t.sorted))
	for i, e := range t.sorted {
		out[i] = e.knob
		out[i].Enum = slices.Clone(e.knob.Enum)
	}
	return out
}

// Get returns the current value of a knob in its canonical text form.
func (t *Table) Get(path string) (string, error) {
	e, ok := t.byPath[path]
	if !ok {
		return "", &Error{Path: path, Err: ErrUnknown}
	}
	return e.cur.Load().v.text, nil
}

// Value returns the current parsed value of a knob. It panics on an unknown path:
// paths in code are constants, and the first test that runs the code catches a
// typo.
func (t *Table) Value(path string) Value {
	e, ok := t.byPath[path]
	if !ok {
		panic(fmt.Sprintf("knobs: Value of unknown knob %q", path))
	}
	return e.cur.Load().v
}

// Set parses text and makes it the knob's value. After Start it refuses knobs
// that are not live and calls Apply; any error is an *Error and leaves the old
// value. Setting the current value again succeeds without calling Apply.
func (t *Table) Set(path, text string) error { return t.set(path, text, FromSet) }

func (t *Table) set(path, text string, src Source) error {
	e, ok := t.byPath[path]
	if !ok {
		return &Error{Path: path, Value: text, Err: ErrUnknown}
	}
	v, err := e.knob.Parse(text)
	if err != nil {
		return &Error{Path: path, Value: text, Err: err}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if cur := e.cur.Load(); cur.v.text != v.text && t.started.Load() {
		if !e.knob.Live {
			return &Error{Path: path, Value: text, Err: ErrNeedsRestart}
		}
		if e.knob.Apply != nil {
			if err := e.knob.Apply(v); err != nil {
				return &Error{Path: path, Value: text, Err: err}
			}
		}
	}
	e.cur.Store(&state{v: v, src: src, at: time.Now()})
	return nil
}

// Setting is one knob with its current value, as the Admin API lists it.
type Setting struct {
	Path    string   `json:"path"`
	Kind    Kind     `json:"type"`
	Value   string   `json:"value"`
	Default string   `json:"default"`
	Source  Source   `json:"source"`
	Live    bool     `json:"live"`
	Enum    []string `json:"enum,omitempty"`
	Min     int64    `json:"min,omitempty"`
	Max     int64    `json:"max,omitempty"`
	Doc     string   `json:"doc"`
}

// List returns every knob with its current value, sorted by path.
func (t *Table) List() []Setting {
	out := make([]Setting, len(t.sorted))
	for i, e := range t.sorted {
		k, st := &e.knob, e.cur.Load()
		out[i] = Setting{Path: k.Path, Kind: k.Kind, Value: st.v.text, Default: k.Default,
			Source: st.src, Live: k.Live, Enum: slices.Clone(k.Enum), Min: k.Min, Max: k.Max, Doc: k.Doc}
	}
	return out
}

// Source returns where a knob's current value came from.
func (t *Table) Source(path string) (Source, error) {
	e, ok := t.byPath[path]
	if !ok {
		return "", &Error{Path: path, Err: ErrUnknown}
	}
	return e.cur.Load().src, nil
}
