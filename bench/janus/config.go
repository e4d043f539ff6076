// Package janus runs the real Janus WebRTC Server 1.1.x (Debian's janus
// package) as the bench's reference: it installs it, writes a complete
// config folder for one instance (Streaming plugin and HTTP transport only,
// one RTP mountpoint), and starts it pinned to chosen CPUs, optionally
// inside a network namespace.
//
// Facts about Janus 1.1.2 this package relies on (read in its source):
//   - janus has no --version flag and no transports-folder flag (-T is
//     ice-tcp): the version is read from the banner it always prints, and the
//     folders go into janus.jcfg (plugins_folder, transports_folder).
//   - with -F alone a config that fails to parse is replaced by defaults
//     silently; -C makes the failure fatal, so Start passes both.
//   - plugins: { disable } and transports: { disable } match whole file
//     names, so WriteConfig lists the installed folders and names every
//     other library.
//   - the DTLS-SRTP profiles are compiled in, not configured: built with
//     AES-GCM (HAVE_SRTP_AESGCM, as Debian's is) Janus lists AEAD_AES_256_GCM,
//     AEAD_AES_128_GCM, AES128_CM_SHA1_80, AES128_CM_SHA1_32 in that order;
//     as DTLS server (its offers say actpass, viewers answer active) it
//     picks the first of its list the viewer offers, whatever the viewer's
//     order (TestViewerSRTPProfiles). A viewer that offers AES-256-GCM gets
//     it; to compare like with like, offer only the profile under test.
//   - with full_trickle false Janus sends its candidates inside the offer
//     (half-trickle, a=end-of-candidates) and accepts trickled ones.
package janus

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// File names of the only plugin and transport the bench loads.
const (
	pluginFile    = "libjanus_streaming.so"
	transportFile = "libjanus_http.so"
)

// PortRange is an inclusive UDP port range.
type PortRange struct{ Min, Max int }

func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.Min, r.Max) }

// Config describes one Janus instance. Zero fields take the defaults that
// withDefaults documents; PluginsDir and TransportsDir come from Locate.
type Config struct {
	// Core (janus.jcfg).
	EventLoops     int           // general.event_loops: static loop threads shared by all handles (default 1)
	SessionTimeout time.Duration // general.session_timeout, whole seconds (default 60 s)
	LogLevel       int           // general.debug_level, 1 fatal .. 7 huge (default 3, warnings)
	RTPPorts       PortRange     // media.rtp_port_range of the viewers' ICE sockets (default 20000-40000)
	Interface      string        // nat.ice_enforce_list: the veth's name or IP, the only place libnice gathers
	// SRTPGCM asks for a Janus built with AES-GCM SRTP. Janus 1.1.x has no
	// run-time switch for the profiles: Start fails when this is set and the
	// binary says it lacks AES-GCM; when false, nothing in Janus forbids GCM,
	// so viewers that want AES-CM must offer only AES-CM.
	SRTPGCM bool

	// HTTP transport (janus.transport.http.jcfg).
	HTTPIP        string // ip to bind the Janus API to (default 127.0.0.1)
	HTTPPort      int    // default 8088
	HTTPConnLimit int    // mhd_connection_limit: one long poll per viewer (default 1020, as Janus)

	// Streaming plugin (janus.plugin.streaming.jcfg): one RTP mountpoint.
	MountpointID  uint64 // default 1
	RTPIP         string // videoiface/audioiface: where the source's RTP arrives (default HTTPIP)
	VideoPort     int    // VP8, PT 96 (default 5004)
	AudioPort     int    // Opus, PT 111 (default 5002)
	HelperThreads int    // per-mountpoint "threads": 0 relays on the mountpoint's own thread, 1 hands off to one helper

	// Where the installed libraries are (Paths from Locate); every other
	// .so found there is disabled by name.
	PluginsDir    string
	TransportsDir string
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.EventLoops == 0 {
		c.EventLoops = 1
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 60 * time.Second
	}
	if c.LogLevel == 0 {
		c.LogLevel = 3
	}
	if c.RTPPorts == (PortRange{}) {
		c.RTPPorts = PortRange{20000, 40000}
	}
	if c.HTTPIP == "" {
		c.HTTPIP = "127.0.0.1"
	}
	if c.HTTPPort == 0 {
		c.HTTPPort = 8088
	}
	if c.HTTPConnLimit == 0 {
		c.HTTPConnLimit = 1020
	}
	if c.MountpointID == 0 {
		c.MountpointID = 1
	}
	if c.RTPIP == "" {
		c.RTPIP = c.HTTPIP
	}
	if c.VideoPort == 0 {
		c.VideoPort = 5004
	}
	if c.AudioPort == 0 {
		c.AudioPort = 5002
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.EventLoops < 1 {
		bad("EventLoops %d: want at least 1", c.EventLoops)
	}
	if c.SessionTimeout < time.Second {
		bad("SessionTimeout %v: want at least 1s", c.SessionTimeout)
	}
	if c.LogLevel < 1 || c.LogLevel > 7 {
		bad("LogLevel %d: want 1..7", c.LogLevel)
	}
	if c.RTPPorts.Min < 1024 || c.RTPPorts.Max > 65535 || c.RTPPorts.Min > c.RTPPorts.Max {
		bad("RTPPorts %v: want 1024 <= min <= max <= 65535", c.RTPPorts)
	}
	if c.Interface == "" || strings.ContainsAny(c.Interface, "\",\n") {
		bad("Interface %q: want one interface name or IP (libnice would gather everywhere otherwise)", c.Interface)
	}
	if _, err := netip.ParseAddr(c.HTTPIP); err != nil {
		bad("HTTPIP: %w", err)
	}
	if _, err := netip.ParseAddr(c.RTPIP); err != nil {
		bad("RTPIP: %w", err)
	}
	for _, p := range []int{c.HTTPPort, c.VideoPort, c.AudioPort} {
		if p < 1 || p > 65535 {
			bad("port %d: out of range", p)
		}
	}
	if c.VideoPort == c.AudioPort {
		bad("VideoPort and AudioPort are both %d", c.VideoPort)
	}
	if c.HTTPConnLimit < 1 {
		bad("HTTPConnLimit %d: want at least 1", c.HTTPConnLimit)
	}
	if c.HelperThreads != 0 && c.HelperThreads != 1 {
		bad("HelperThreads %d: want 0 or 1", c.HelperThreads)
	}
	if c.PluginsDir == "" || c.TransportsDir == "" {
		bad("PluginsDir and TransportsDir are required (take them from Locate)")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("janus: config: %w", err)
	}
	return nil
}

// WriteConfig writes a complete config folder for one Janus instance into
// dir (created if missing): janus.jcfg, janus.transport.http.jcfg and
// janus.plugin.streaming.jcfg. Existing files of those names are replaced.
func WriteConfig(dir string, c Config) error {
	c = c.withDefaults()
	if err := c.validate(); err != nil {
		return err
	}
	plugins, err := othersIn(c.PluginsDir, pluginFile)
	if err != nil {
		return err
	}
	transports, err := othersIn(c.TransportsDir, transportFile)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("janus: config folder: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("janus: config folder: %w", err)
	}
	files := map[string]string{
		"janus.jcfg":                  coreConfig(abs, c, plugins, transports),
		"janus.transport.http.jcfg":   httpConfig(c),
		"janus.plugin.streaming.jcfg": streamingConfig(c),
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return fmt.Errorf("janus: write %s: %w", name, err)
		}
	}
	return nil
}

// othersIn lists the shared libraries in dir other than keep, and fails when
// keep itself is missing.
func othersIn(dir, keep string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("janus: list %s: %w", dir, err)
	}
	var others []string
	found := false
	for _, e := range ents {
		n := e.Name()
		switch {
		case n == keep:
			found = true
		case strings.HasSuffix(n, ".so"):
			others = append(others, n)
		}
	}
	if !found {
		return nil, fmt.Errorf("janus: %s has no %s", dir, keep)
	}
	slices.Sort(others)
	return others, nil
}

// q quotes a string for a jcfg (libconfig) file.
func q(s string) string { return strconv.Quote(s) }

func coreConfig(dir string, c Config, plugins, transports []string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# Written by spillway bench/janus: one Janus for the bench, nothing else loaded.")
	w("general: {")
	w("\tconfigs_folder = %s", q(dir))
	w("\tplugins_folder = %s", q(c.PluginsDir))
	w("\ttransports_folder = %s", q(c.TransportsDir))
	// No .so lives in the config folder: no event handler or external logger loads.
	w("\tevents_folder = %s", q(dir))
	w("\tloggers_folder = %s", q(dir))
	w("\tlog_to_stdout = true")
	w("\tdebug_level = %d", c.LogLevel)
	w("\tdebug_timestamps = true")
	w("\tdebug_colors = false")
	// The address Janus writes in its SDP (o= and c= lines); without it, it
	// guesses and may pick 127.0.0.1 inside a namespace.
	w("\tinterface = %s", q(c.Interface))
	w("\tsession_timeout = %d", int(c.SessionTimeout/time.Second))
	// All handles share these loop threads, as a pinned single-core server should.
	w("\tevent_loops = %d", c.EventLoops)
	w("\thide_dependencies = false")
	w("}")
	w("certificates: {")
	w("}")
	w("media: {")
	w("\tipv6 = false")
	w("\trtp_port_range = %s", q(c.RTPPorts.String()))
	w("}")
	w("nat: {")
	w("\tice_lite = false")
	w("\tice_tcp = false")
	w("\tfull_trickle = false")
	w("\tice_enforce_list = %s", q(c.Interface))
	w("\tignore_mdns = true")
	w("}")
	w("plugins: {")
	if len(plugins) > 0 {
		w("\tdisable = %s", q(strings.Join(plugins, ",")))
	}
	w("}")
	w("transports: {")
	if len(transports) > 0 {
		w("\tdisable = %s", q(strings.Join(transports, ",")))
	}
	w("}")
	w("loggers: {")
	w("}")
	w("events: {")
	w("\tbroadcast = false")
	w("}")
	return b.String()
}

func httpConfig(c Config) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("general: {")
	w("\tjson = \"plain\"")
	w("\tbase_path = \"/janus\"")
	w("\thttp = true")
	w("\tport = %d", c.HTTPPort)
	w("\tip = %s", q(c.HTTPIP))
	w("\thttps = false")
	w("\tmhd_connection_limit = %d", c.HTTPConnLimit)
	w("\tevents = false")
	w("}")
	w("admin: {")
	w("\tadmin_http = false")
	w("\tadmin_https = false")
	w("}")
	w("cors: {")
	w("}")
	w("certificates: {")
	w("}")
	return b.String()
}

func streamingConfig(c Config) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("general: {")
	w("\tevents = false")
	w("}")
	w("bench: {")
	w("\ttype = \"rtp\"")
	w("\tid = %d", c.MountpointID)
	w("\tdescription = \"spillway bench: VP8 + Opus\"")
	w("\taudio = true")
	w("\taudioport = %d", c.AudioPort)
	w("\taudioiface = %s", q(c.RTPIP))
	w("\taudiopt = 111")
	w("\taudiocodec = \"opus\"")
	w("\tvideo = true")
	w("\tvideoport = %d", c.VideoPort)
	w("\tvideoiface = %s", q(c.RTPIP))
	w("\tvideopt = 96")
	w("\tvideocodec = \"vp8\"")
	// A new viewer waits for the source's next keyframe, as with Spillway.
	w("\tvideobufferkf = false")
	w("\tthreads = %d", c.HelperThreads)
	w("}")
	return b.String()
}
