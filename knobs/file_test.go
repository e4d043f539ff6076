package knobs

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "spillway.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFile(t *testing.T) {
	tests := []struct {
		name string
		body string
		want map[string]string // knob -> value afterwards
	}{
		{"flat", `{"dataplane/gso": false, "dataplane/batch": 16, "dataplane/flush": "500us"}`,
			map[string]string{"dataplane/gso": "false", "dataplane/batch": "16", "dataplane/flush": "500µs"}},
		{"nested", `{"dataplane": {"gso": false, "mode": "queue"}, "janus": {"http": "[::1]:9000"}}`,
			map[string]string{"dataplane/gso": "false", "dataplane/mode": "queue", "janus/http": "[::1]:9000"}},
		{"mixed", `{"dataplane": {"batch": "8"}, "affinity/cpus": "1-2"}`,
			map[string]string{"dataplane/batch": "8", "affinity/cpus": "1-2"}},
		{"partly nested path", `{"dataplane": {}, "ice": {"ips": ["127.0.0.1", "::1"]}}`,
			map[string]string{"ice/ips": "127.0.0.1,::1"}},
		{"arrays", `{"affinity": {"cpus": [3, 1, 2]}, "ice/ips": []}`,
			map[string]string{"affinity/cpus": "1-3", "ice/ips": ""}},
		{"strings for every kind", `{"dataplane/gso": "0", "dataplane/batch": "2", "dataplane/workers": "3", "janus/name": "edge"}`,
			map[string]string{"dataplane/gso": "false", "dataplane/batch": "2", "dataplane/workers": "3", "janus/name": "edge"}},
		{"empty object", `{}`, map[string]string{"dataplane/gso": "true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, _ := newTestTable(t)
			if err := tab.LoadFile(writeConfig(t, tt.body)); err != nil {
				t.Fatal(err)
			}
			for path, want := range tt.want {
				if got, _ := tab.Get(path); got != want {
					t.Errorf("%s = %q, want %q", path, got, want)
				}
			}
			for path := range tt.want {
				if src, _ := tab.Source(path); src != FromFile && tt.name != "empty object" {
					t.Errorf("source of %s = %s", path, src)
				}
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		errs []string // substrings, all in the one error
	}{
		{"unknown path", `{"dataplane/gso": false, "dataplane/gsoo": true}`, []string{"knob dataplane/gsoo: unknown knob"}},
		{"unknown nested", `{"dataplane": {"gso": {"on": true}}}`, []string{"knob dataplane/gso/on: unknown knob"}},
		{"bool for int", `{"dataplane/batch": true}`, []string{"knob dataplane/batch: wrong type: a JSON bool for a int knob"}},
		{"number for bool", `{"dataplane": {"gso": 0}}`, []string{"wrong type: a JSON number for a bool knob"}},
		{"number for duration", `{"dataplane/flush": 1000}`, []string{"wrong type: a JSON number for a duration knob", "a string in the knob's text form"}},
		{"strings for cpulist", `{"affinity/cpus": ["1"]}`, []string{"a JSON array of strings for a cpulist knob"}},
		{"mixed array", `{"affinity/cpus": [1, "2"]}`, []string{"an array mixes numbers and strings"}},
		{"object in array", `{"ice/ips": [{}]}`, []string{"only numbers (cpulist) or only strings (ips)"}},
		{"null", `{"dataplane/gso": null}`, []string{"knob dataplane/gso: null is not a value"}},
		{"invalid value", `{"dataplane/batch": 0}`, []string{`knob dataplane/batch: cannot set "0": below the minimum 1`}},
		{"given twice", `{"dataplane/gso": false, "dataplane": {"gso": true}}`, []string{"knob dataplane/gso: given twice"}},
		{"all errors at once", `{"a/b": 1, "dataplane/batch": "x", "dataplane/mode": "afxdp"}`,
			[]string{"knob a/b: unknown knob", `"x": not a decimal integer`, `"afxdp": not one of socket, queue`}},
		{"not an object", `["dataplane/gso"]`, []string{"line 1, column 2: the file must hold one JSON object"}},
		{"syntax error line", "{\n  \"dataplane/gso\": false,\n  \"dataplane/batch\": 1 2\n}", []string{"line 3"}},
		{"trailing data", `{} {}`, []string{"data after the top-level object"}},
		{"empty file", ``, []string{"EOF"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, _ := newTestTable(t)
			before := tab.Text()
			p := writeConfig(t, tt.body)
			err := tab.LoadFile(p)
			if err == nil {
				t.Fatal("LoadFile accepted the file")
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name the file", err)
			}
			for _, s := range tt.errs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
			if after := tab.Text(); after != before {
				t.Errorf("a refused file changed values:\n%s", after)
			}
		})
	}
}

func TestLoadFileMissing(t *testing.T) {
	tab, _ := newTestTable(t)
	err := tab.LoadFile(filepath.Join(t.TempDir(), "none.json"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadFile = %v, want a not-exist error", err)
	}
}

// default < config file < flags, whichever of the file and the flags is read
// first.
func TestPrecedence(t *testing.T) {
	cfg := `{"dataplane": {"batch": 16, "gso": false, "mode": "queue"}}`
	args := []string{"-dataplane.batch=8", "-knob", "dataplane/mode=socket"}
	want := map[string]string{"dataplane/batch": "8", "dataplane/gso": "false", "dataplane/mode": "socket", "dataplane/flush": "1ms"}
	wantSrc := map[string]Source{"dataplane/batch": FromFlag, "dataplane/gso": FromFile, "dataplane/mode": FromFlag, "dataplane/flush": FromDefault}
	for _, order := range []string{"file then flags", "flags then file"} {
		t.Run(order, func(t *testing.T) {
			tab, _ := newTestTable(t)
			fset := flag.NewFlagSet("spillway", flag.ContinueOnError)
			tab.RegisterFlags(fset)
			p := writeConfig(t, cfg)
			steps := []func() error{func() error { return tab.LoadFile(p) }, func() error { return fset.Parse(args) }}
			if order == "flags then file" {
				steps[0], steps[1] = steps[1], steps[0]
			}
			for _, step := range steps {
				if err := step(); err != nil {
					t.Fatal(err)
				}
			}
			for path, v := range want {
				got, _ := tab.Get(path)
				src, _ := tab.Source(path)
				if got != v || src != wantSrc[path] {
					t.Errorf("%s = %q from %s, want %q from %s", path, got, src, v, wantSrc[path])
				}
			}
		})
	}
}

// A file read after Start is a runtime change: Apply runs for live knobs, and a
// knob that needs a restart is refused by name.
func TestLoadFileAfterStart(t *testing.T) {
	tab, rec := newTestTable(t)
	tab.Start()
	err := tab.LoadFile(writeConfig(t, `{"dataplane": {"batch": 4, "workers": 2}}`))
	if !errors.Is(err, ErrNeedsRestart) || !strings.Contains(err.Error(), "dataplane/workers") {
		t.Fatalf("LoadFile = %v", err)
	}
	if got := strings.Join(rec.seen(), " "); got != "dataplane/batch=4" {
		t.Errorf("Apply calls = %s", got)
	}
}
