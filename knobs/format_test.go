package knobs

import (
	"math"
	"testing"
	"time"
)

func TestMarkdown(t *testing.T) {
	tab, _ := newTestTable(t)
	want := "# Knobs\n\n" +
		"<!-- Generated from the knob table (knobs.Table.Markdown); do not edit by hand. -->\n\n" +
		"Every tunable of Spillway is a knob. The same knob is set, in increasing order of\n" +
		"precedence at start, by its default, the config file (`{\"dataplane\": {\"gso\": false}}`\n" +
		"or `{\"dataplane/gso\": false}`), and a flag (`-dataplane.gso=false` or\n" +
		"`-knob dataplane/gso=false`). At runtime the Admin API and the knob directory\n" +
		"(`echo false > <dir>/dataplane/gso`) change live knobs; a knob that is not live\n" +
		"takes effect at the next start. An invalid value is refused and the old one stays.\n\n" +
		"| Path | Type | Default | Live | Doc |\n" +
		"|---|---|---|---|---|\n" +
		"| `affinity/cpus` | cpulist | *(empty)* | no | CPUs for the workers; empty: chosen at start |\n" +
		"| `dataplane/batch` | int 1..1024 | `32` | yes | packets per worker batch |\n" +
		"| `dataplane/flush` | duration 10µs..1s | `1ms` | yes | longest wait before a batch goes out |\n" +
		"| `dataplane/gso` | bool | `true` | yes | send with UDP GSO |\n" +
		"| `dataplane/mode` | enum socket\\|queue | `socket` | no | egress mode |\n" +
		"| `dataplane/workers` | int 0..256 | `0` | no | workers; 0: one per chosen CPU |\n" +
		"| `ice/ips` | ips | `127.0.0.1` | no | addresses offered as host candidates |\n" +
		"| `janus/http` | addr | `127.0.0.1:8088` | no | Janus HTTP API address |\n" +
		"| `janus/name` | string | `spillway` | yes | server name \\| shown in info |\n"
	got := tab.Markdown()
	if got != want {
		t.Errorf("Markdown:\n%s\nwant:\n%s", got, want)
	}
	// It shows declarations, not current values.
	if err := tab.Set("dataplane/batch", "7"); err != nil {
		t.Fatal(err)
	}
	if tab.Markdown() != got {
		t.Error("Markdown changed with a value")
	}
}

func TestText(t *testing.T) {
	tab, _ := newTestTable(t)
	if err := tab.Set("dataplane/batch", "7"); err != nil {
		t.Fatal(err)
	}
	if err := tab.Set("janus/name", ""); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"PATH               VALUE           DEFAULT         TYPE               LIVE  FROM     DOC\n" +
		"affinity/cpus      \"\"              \"\"              cpulist            no    default  CPUs for the workers; empty: chosen at start\n" +
		"dataplane/batch    7               32              int 1..1024        yes   set      packets per worker batch\n" +
		"dataplane/flush    1ms             1ms             duration 10µs..1s  yes   default  longest wait before a batch goes out\n" +
		"dataplane/gso      true            true            bool               yes   default  send with UDP GSO\n" +
		"dataplane/mode     socket          socket          enum socket|queue  no    default  egress mode\n" +
		"dataplane/workers  0               0               int 0..256         no    default  workers; 0: one per chosen CPU\n" +
		"ice/ips            127.0.0.1       127.0.0.1       ips                no    default  addresses offered as host candidates\n" +
		"janus/http         127.0.0.1:8088  127.0.0.1:8088  addr               no    default  Janus HTTP API address\n" +
		"janus/name         \"\"              spillway        string             yes   set      server name | shown in info\n"
	if got := tab.Text(); got != want {
		t.Errorf("Text:\n%s\nwant:\n%s", got, want)
	}
	if tab.Text() != tab.Text() {
		t.Error("Text is not stable")
	}
}

func TestTypeText(t *testing.T) {
	tests := []struct {
		k    Knob
		want string
	}{
		{Knob{Kind: Bool}, "bool"},
		{Knob{Kind: Int}, "int"},
		{Knob{Kind: Int, Min: 1, Max: math.MaxInt64}, "int 1.."},
		{Knob{Kind: Int, Min: math.MinInt64, Max: -1}, "int ..-1"},
		{Knob{Kind: Duration, Max: int64(time.Second)}, "duration 0s..1s"},
		{Knob{Kind: Enum, Enum: []string{"a", "b"}}, "enum a|b"},
	}
	for _, tt := range tests {
		if got := tt.k.TypeText(); got != tt.want {
			t.Errorf("TypeText(%+v) = %q, want %q", tt.k, got, tt.want)
		}
	}
}
