package janus

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeInstall makes plugin and transport folders as Debian lays them out:
// .so files with versioned siblings that Janus does not load.
func fakeInstall(t *testing.T) (plugins, transports string) {
	t.Helper()
	root := t.TempDir()
	plugins = filepath.Join(root, "plugins")
	transports = filepath.Join(root, "transports")
	files := map[string][]string{
		plugins:    {"libjanus_streaming.so", "libjanus_streaming.so.1", "libjanus_echotest.so", "libjanus_videoroom.so", "libjanus_videoroom.so.1.1.2"},
		transports: {"libjanus_http.so", "libjanus_websockets.so", "libjanus_pfunix.so.1"},
	}
	for dir, names := range files {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return plugins, transports
}

func TestWriteConfigKeys(t *testing.T) {
	plugins, transports := fakeInstall(t)
	dir := filepath.Join(t.TempDir(), "conf")
	c := Config{
		EventLoops:     2,
		SessionTimeout: 90 * time.Second,
		RTPPorts:       PortRange{30000, 30999},
		Interface:      "spbs0",
		HTTPIP:         "198.18.2.1",
		HTTPPort:       8188,
		MountpointID:   77,
		VideoPort:      6004,
		AudioPort:      6002,
		HelperThreads:  1,
		PluginsDir:     plugins,
		TransportsDir:  transports,
	}
	if err := WriteConfig(dir, c); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	abs, _ := filepath.Abs(dir)
	want := map[string][]string{
		"janus.jcfg": {
			`configs_folder = "` + abs + `"`,
			`plugins_folder = "` + plugins + `"`,
			`transports_folder = "` + transports + `"`,
			`events_folder = "` + abs + `"`,
			`loggers_folder = "` + abs + `"`,
			`interface = "spbs0"`,
			"log_to_stdout = true",
			"debug_level = 3",
			"session_timeout = 90",
			"event_loops = 2",
			`rtp_port_range = "30000-30999"`,
			"ice_lite = false",
			"full_trickle = false",
			`ice_enforce_list = "spbs0"`,
			"ignore_mdns = true",
			`disable = "libjanus_echotest.so,libjanus_videoroom.so"`,
			`disable = "libjanus_websockets.so"`,
			"broadcast = false",
		},
		"janus.transport.http.jcfg": {
			`base_path = "/janus"`,
			"http = true",
			"port = 8188",
			`ip = "198.18.2.1"`,
			"https = false",
			"admin_http = false",
			"admin_https = false",
			"mhd_connection_limit = 1020",
		},
		"janus.plugin.streaming.jcfg": {
			`type = "rtp"`,
			"id = 77",
			"videoport = 6004",
			`videoiface = "198.18.2.1"`,
			"videopt = 96",
			`videocodec = "vp8"`,
			"audioport = 6002",
			`audioiface = "198.18.2.1"`,
			"audiopt = 111",
			`audiocodec = "opus"`,
			"videobufferkf = false",
			"threads = 1",
		},
	}
	for name, lines := range want {
		text := read(name)
		for _, l := range lines {
			if !strings.Contains(text, "\t"+l+"\n") {
				t.Errorf("%s lacks %q:\n%s", name, l, text)
			}
		}
		if strings.Count(text, "{") != strings.Count(text, "}") {
			t.Errorf("%s: unbalanced braces", name)
		}
	}
	core := read("janus.jcfg")
	for _, never := range []string{"libjanus_streaming.so", "libjanus_http.so", ".so.1", "stun_server", "turn_server", "admin_secret"} {
		if strings.Contains(core, never) {
			t.Errorf("janus.jcfg mentions %q", never)
		}
	}
}

func TestWriteConfigDefaults(t *testing.T) {
	plugins, transports := fakeInstall(t)
	dir := t.TempDir()
	if err := WriteConfig(dir, Config{Interface: "lo", PluginsDir: plugins, TransportsDir: transports}); err != nil {
		t.Fatal(err)
	}
	for name, lines := range map[string][]string{
		"janus.jcfg":                  {"event_loops = 1", "session_timeout = 60", `rtp_port_range = "20000-40000"`},
		"janus.transport.http.jcfg":   {"port = 8088", `ip = "127.0.0.1"`},
		"janus.plugin.streaming.jcfg": {"id = 1", "videoport = 5004", "audioport = 5002", `videoiface = "127.0.0.1"`, "threads = 0"},
	} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			if !strings.Contains(string(b), "\t"+l+"\n") {
				t.Errorf("%s lacks %q", name, l)
			}
		}
	}
}

func TestWriteConfigRejects(t *testing.T) {
	plugins, transports := fakeInstall(t)
	empty := t.TempDir()
	ok := Config{Interface: "lo", PluginsDir: plugins, TransportsDir: transports}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no interface", func(c *Config) { c.Interface = "" }, "Interface"},
		{"interface list", func(c *Config) { c.Interface = "eth0,eth1" }, "Interface"},
		{"helper threads 2", func(c *Config) { c.HelperThreads = 2 }, "HelperThreads"},
		{"negative loops", func(c *Config) { c.EventLoops = -1 }, "EventLoops"},
		{"bad http ip", func(c *Config) { c.HTTPIP = "localhost" }, "HTTPIP"},
		{"same ports", func(c *Config) { c.VideoPort, c.AudioPort = 7000, 7000 }, "both 7000"},
		{"inverted range", func(c *Config) { c.RTPPorts = PortRange{40000, 30000} }, "RTPPorts"},
		{"no plugins dir", func(c *Config) { c.PluginsDir = "" }, "PluginsDir"},
		{"no streaming plugin", func(c *Config) { c.PluginsDir = empty }, "libjanus_streaming.so"},
		{"no http transport", func(c *Config) { c.TransportsDir = empty }, "libjanus_http.so"},
		{"log level 9", func(c *Config) { c.LogLevel = 9 }, "LogLevel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			dir := filepath.Join(t.TempDir(), "conf")
			err := WriteConfig(dir, c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("WriteConfig = %v, want an error about %q", err, tt.want)
			}
			if _, serr := os.Stat(dir); serr == nil {
				t.Error("a rejected config still made its folder")
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Janus version: 1102 (1.1.2)\nJanus commit: not-a-git-repo\n\nUnknown option --version\n", "1.1.2"},
		{"Janus version: 1204 (1.2.4)\n", "1.2.4"},
		{"janus: command not found", ""},
	}
	for _, tt := range tests {
		if got := parseVersion(tt.in); got != tt.want {
			t.Errorf("parseVersion(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
