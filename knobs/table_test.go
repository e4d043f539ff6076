package knobs

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is the Apply side of the test knobs: it records calls and refuses
// the values it is told to.
type recorder struct {
	mu     sync.Mutex
	calls  []string          // "path=value"
	refuse map[string]string // value -> reason
}

func (r *recorder) hook(path string) func(Value) error {
	return func(v Value) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if why, ok := r.refuse[v.String()]; ok {
			return errors.New(why)
		}
		r.calls = append(r.calls, path+"="+v.String())
		return nil
	}
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// testKnobs declares one knob of every kind, live and not, shaped like the
// server's own.
func testKnobs(r *recorder) []Knob {
	return []Knob{
		{Path: "dataplane/gso", Kind: Bool, Default: "true", Doc: "send with UDP GSO", Live: true, Apply: r.hook("dataplane/gso")},
		{Path: "dataplane/batch", Kind: Int, Default: "32", Min: 1, Max: 1024, Doc: "packets per worker batch", Live: true, Apply: r.hook("dataplane/batch")},
		{Path: "dataplane/flush", Kind: Duration, Default: "1ms", Min: int64(10 * time.Microsecond), Max: int64(time.Second), Doc: "longest wait before a batch goes out", Live: true, Apply: r.hook("dataplane/flush")},
		{Path: "dataplane/mode", Kind: Enum, Enum: []string{"socket", "queue"}, Default: "socket", Doc: "egress mode"},
		{Path: "dataplane/workers", Kind: Int, Default: "0", Max: 256, Doc: "workers; 0: one per chosen CPU"},
		{Path: "affinity/cpus", Kind: CPUList, Default: "", Doc: "CPUs for the workers; empty: chosen at start"},
		{Path: "janus/http", Kind: Addr, Default: "127.0.0.1:8088", Doc: "Janus HTTP API address"},
		{Path: "janus/name", Kind: String, Default: "spillway", Doc: "server name | shown in info", Live: true},
		{Path: "ice/ips", Kind: IPs, Default: "127.0.0.1", Doc: "addresses offered as host candidates"},
	}
}

func newTestTable(t *testing.T) (*Table, *recorder) {
	t.Helper()
	r := &recorder{refuse: map[string]string{}}
	tab, err := NewTable(testKnobs(r)...)
	if err != nil {
		t.Fatal(err)
	}
	return tab, r
}

func TestNewTableRejects(t *testing.T) {
	ok := Knob{Path: "a/b", Kind: Int, Default: "1", Doc: "d"}
	with := func(f func(k *Knob)) Knob { k := ok; f(&k); return k }
	tests := []struct {
		name  string
		knobs []Knob
		err   string
	}{
		{"upper case path", []Knob{with(func(k *Knob) { k.Path = "A/b" })}, "path must be"},
		{"empty segment", []Knob{with(func(k *Knob) { k.Path = "a//b" })}, "path must be"},
		{"trailing slash", []Knob{with(func(k *Knob) { k.Path = "a/" })}, "path must be"},
		{"dot in path", []Knob{with(func(k *Knob) { k.Path = "a.b" })}, "path must be"},
		{"knob flag name", []Knob{with(func(k *Knob) { k.Path = "knob" })}, "taken by the -knob flag"},
		{"duplicate", []Knob{ok, ok}, "declared twice"},
		{"knob is a directory", []Knob{ok, with(func(k *Knob) { k.Path = "a" })}, `knob "a": also a directory of knob "a/b"`},
		{"unknown kind", []Knob{with(func(k *Knob) { k.Kind = "float" })}, `unknown kind "float"`},
		{"no doc", []Knob{with(func(k *Knob) { k.Doc = "" })}, "doc must be one non-empty line"},
		{"two-line doc", []Knob{with(func(k *Knob) { k.Doc = "a\nb" })}, "doc must be one non-empty line"},
		{"bad default", []Knob{with(func(k *Knob) { k.Default = "x" })}, `default "x": not a decimal integer`},
		{"default out of bounds", []Knob{with(func(k *Knob) { k.Min, k.Max = 2, 3 })}, `default "1": below the minimum 2`},
		{"min above max", []Knob{with(func(k *Knob) { k.Min = 1 })}, "Min 1 > Max 0"},
		{"bounds on a bool", []Knob{{Path: "a", Kind: Bool, Default: "true", Doc: "d", Max: 1}}, "Min and Max apply to int and duration"},
		{"enum without list", []Knob{{Path: "a", Kind: Enum, Default: "x", Doc: "d"}}, "kind enum needs one"},
		{"list without enum", []Knob{with(func(k *Knob) { k.Enum = []string{"1"} })}, "an enum list goes with kind enum"},
		{"enum repeats", []Knob{{Path: "a", Kind: Enum, Enum: []string{"x", "x"}, Default: "x", Doc: "d"}}, `enum value "x"`},
		{"enum padded", []Knob{{Path: "a", Kind: Enum, Enum: []string{" x"}, Default: "x", Doc: "d"}}, `enum value " x"`},
		{"enum default not listed", []Knob{{Path: "a", Kind: Enum, Enum: []string{"x"}, Default: "y", Doc: "d"}}, "not one of x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := NewTable(tt.knobs...)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("NewTable = %v, %v; want an error containing %q", tab, err, tt.err)
			}
		})
	}
}

func TestNewTableDefaults(t *testing.T) {
	tab, _ := newTestTable(t)
	for _, k := range tab.Knobs() {
		v, err := k.Parse(k.Default)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tab.Get(k.Path)
		if err != nil || got != v.String() {
			t.Errorf("Get(%s) = %q, %v; want the default %q", k.Path, got, err, v.String())
		}
		if src, _ := tab.Source(k.Path); src != FromDefault {
			t.Errorf("Source(%s) = %s", k.Path, src)
		}
	}
	var paths []string
	for _, k := range tab.Knobs() {
		paths = append(paths, k.Path)
	}
	want := "affinity/cpus dataplane/batch dataplane/flush dataplane/gso dataplane/mode dataplane/workers ice/ips janus/http janus/name"
	if got := strings.Join(paths, " "); got != want {
		t.Errorf("Knobs() order = %s", got)
	}
	if v := tab.Value("dataplane/flush").Duration(); v != time.Millisecond {
		t.Errorf("Value(flush) = %v", v)
	}
}

func TestSetBeforeStart(t *testing.T) {
	tab, rec := newTestTable(t)
	// During the start phase every knob takes a valid value, live or not, and no
	// Apply runs: the server reads Value when it builds itself.
	for path, text := range map[string]string{
		"dataplane/workers": "2",
		"dataplane/gso":     "off",
		"affinity/cpus":     "1,0",
	} {
		if err := tab.Set(path, text); err != nil {
			t.Fatalf("Set(%s, %s): %v", path, text, err)
		}
	}
	if got := tab.Value("affinity/cpus").CPUs(); len(got) != 2 || got[0] != 0 {
		t.Errorf("cpus = %v", got)
	}
	if tab.Value("dataplane/gso").Bool() {
		t.Error("gso still on")
	}
	if c := rec.seen(); len(c) != 0 {
		t.Errorf("Apply ran before Start: %v", c)
	}
	if src, _ := tab.Source("dataplane/gso"); src != FromSet {
		t.Errorf("source = %s", src)
	}
}

func TestSetAfterStart(t *testing.T) {
	tab, rec := newTestTable(t)
	rec.refuse["777"] = "the plane says no"
	tab.Start()
	tests := []struct {
		path, text string
		want       string   // value afterwards
		err        []string // substrings of the error; nil: accepted
		is         error
	}{
		{"dataplane/gso", "false", "false", nil, nil},
		{"dataplane/gso", "maybe", "false", []string{"knob dataplane/gso", `"maybe"`, "not a bool"}, ErrInvalid},
		{"dataplane/batch", "0", "32", []string{"knob dataplane/batch", `"0"`, "below the minimum 1"}, ErrInvalid},
		{"dataplane/batch", "777", "32", []string{"knob dataplane/batch", `"777"`, "the plane says no"}, nil},
		{"dataplane/batch", "64", "64", nil, nil},
		{"dataplane/flush", "2ms", "2ms", nil, nil},
		{"dataplane/workers", "4", "0", []string{"knob dataplane/workers", `"4"`, "needs a restart"}, ErrNeedsRestart},
		{"dataplane/workers", "0", "0", nil, nil}, // the current value: nothing to restart
		{"dataplane/mode", "queue", "socket", []string{"needs a restart"}, ErrNeedsRestart},
		{"janus/name", "edge-1", "edge-1", nil, nil}, // live, no Apply
		{"no/such", "1", "", []string{"knob no/such: unknown knob"}, ErrUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.path+"="+tt.text, func(t *testing.T) {
			err := tab.Set(tt.path, tt.text)
			if tt.err == nil {
				if err != nil {
					t.Fatalf("Set: %v", err)
				}
			} else {
				var ke *Error
				if !errors.As(err, &ke) || ke.Path != tt.path {
					t.Fatalf("Set = %v, want an *Error for %s", err, tt.path)
				}
				for _, s := range tt.err {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("error %q is not %v", err, tt.is)
				}
			}
			if got, _ := tab.Get(tt.path); got != tt.want {
				t.Errorf("value = %q, want %q", got, tt.want)
			}
		})
	}
	want := "dataplane/gso=false dataplane/batch=64 dataplane/flush=2ms"
	if got := strings.Join(rec.seen(), " "); got != want {
		t.Errorf("Apply calls = %s, want %s", got, want)
	}
	// Setting the current value again is accepted without an Apply.
	if err := tab.Set("dataplane/batch", "64"); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.seen()); n != 3 {
		t.Errorf("Apply ran for an unchanged value: %v", rec.seen())
	}
}

func TestGetUnknownAndValuePanics(t *testing.T) {
	tab, _ := newTestTable(t)
	if _, err := tab.Get("dataplane/nope"); !errors.Is(err, ErrUnknown) {
		t.Errorf("Get unknown = %v", err)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "dataplane/nope") {
			t.Errorf("Value of an unknown knob: recover() = %v", r)
		}
	}()
	tab.Value("dataplane/nope")
}

// Concurrent Sets on one knob never run its Apply twice at once, and readers
// always see a whole value.
func TestApplyNeverOverlaps(t *testing.T) {
	var inFlight, overlaps, calls atomic.Int32
	tab, err := NewTable(Knob{Path: "x/n", Kind: Int, Default: "0", Min: 0, Max: math.MaxInt64, Doc: "d", Live: true,
		Apply: func(v Value) error {
			if inFlight.Add(1) > 1 {
				overlaps.Add(1)
			}
			calls.Add(1)
			time.Sleep(50 * time.Microsecond)
			inFlight.Add(-1)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	tab.Start()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if err := tab.Set("x/n", fmt.Sprint(g*1000+i+1)); err != nil {
					t.Error(err)
				}
				if s, _ := tab.Get("x/n"); s == "" {
					t.Error("empty read")
				}
			}
		})
	}
	wg.Wait()
	if overlaps.Load() != 0 {
		t.Errorf("%d overlapping Apply calls", overlaps.Load())
	}
	if calls.Load() != 400 {
		t.Errorf("%d Apply calls, want 400", calls.Load())
	}
}

func TestList(t *testing.T) {
	tab, _ := newTestTable(t)
	if err := tab.Set("dataplane/batch", "8"); err != nil {
		t.Fatal(err)
	}
	l := tab.List()
	if len(l) != 9 || l[1].Path != "dataplane/batch" {
		t.Fatalf("List = %+v", l)
	}
	want := Setting{Path: "dataplane/batch", Kind: Int, Value: "8", Default: "32", Source: FromSet, Live: true, Min: 1, Max: 1024, Doc: "packets per worker batch"}
	if fmt.Sprint(l[1]) != fmt.Sprint(want) {
		t.Errorf("List[1] = %+v, want %+v", l[1], want)
	}
}
