package knobs

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

func TestFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want map[string]string
		err  string // substring of the parse error
	}{
		{"bool false", []string{"-dataplane.gso=false"}, map[string]string{"dataplane/gso": "false"}, ""},
		{"bool alone is true", []string{"-dataplane.gso=false", "-dataplane.gso"}, map[string]string{"dataplane/gso": "true"}, ""},
		{"int and duration", []string{"-dataplane.batch", "12", "--dataplane.flush=250us"},
			map[string]string{"dataplane/batch": "12", "dataplane/flush": "250µs"}, ""},
		{"cpulist and ips", []string{"-affinity.cpus=0,2-3", "-ice.ips=::1,127.0.0.1"},
			map[string]string{"affinity/cpus": "0,2-3", "ice/ips": "::1,127.0.0.1"}, ""},
		{"knob repeatable", []string{"-knob", "dataplane/batch=3", "-knob", "janus.http=[::1]:1", "-knob=janus/name=a=b"},
			map[string]string{"dataplane/batch": "3", "janus/http": "[::1]:1", "janus/name": "a=b"}, ""},
		{"last wins", []string{"-dataplane.batch=3", "-knob", "dataplane/batch=5"}, map[string]string{"dataplane/batch": "5"}, ""},
		{"invalid value", []string{"-dataplane.batch=0"}, nil, `invalid value "0" for flag -dataplane.batch: below the minimum 1`},
		{"invalid bool", []string{"-dataplane.gso=maybe"}, nil, `invalid boolean value "maybe" for -dataplane.gso: not a bool`},
		{"knob without =", []string{"-knob", "dataplane/batch"}, nil, `want path=value, got "dataplane/batch"`},
		{"knob unknown", []string{"-knob", "dataplane/nope=1"}, nil, "knob dataplane/nope: unknown knob"},
		{"knob invalid", []string{"-knob", "dataplane/mode=afxdp"}, nil, `knob dataplane/mode: cannot set "afxdp": not one of socket, queue`},
		{"unknown flag", []string{"-dataplane.nope=1"}, nil, "flag provided but not defined: -dataplane.nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, _ := newTestTable(t)
			fs := flag.NewFlagSet("spillway", flag.ContinueOnError)
			fs.SetOutput(new(bytes.Buffer))
			tab.RegisterFlags(fs)
			err := fs.Parse(tt.args)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Parse = %v, want an error containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for path, want := range tt.want {
				if got, _ := tab.Get(path); got != want {
					t.Errorf("%s = %q, want %q", path, got, want)
				}
				if src, _ := tab.Source(path); src != FromFlag {
					t.Errorf("source of %s = %s", path, src)
				}
			}
		})
	}
}

func TestFlagUsage(t *testing.T) {
	tab, _ := newTestTable(t)
	fs := flag.NewFlagSet("spillway", flag.ContinueOnError)
	var out bytes.Buffer
	fs.SetOutput(&out)
	tab.RegisterFlags(fs)
	fs.PrintDefaults()
	for _, want := range []string{
		"-dataplane.batch int\n    \tpackets per worker batch (int 1..1024) (default 32)",
		"-dataplane.gso\n    \tsend with UDP GSO (bool) (default true)",
		"-dataplane.mode enum\n    \tegress mode (enum socket|queue, read at start) (default socket)",
		"-knob path=value\n    \tset a knob by its path=value, e.g. -knob dataplane/gso=false (repeatable)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
}
