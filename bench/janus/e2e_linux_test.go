//go:build linux

package janus

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"golang.org/x/sys/unix"

	"github.com/spillway-rtc/spillway/affinity"
)

// syncBuffer is Janus's log for the test: written by exec's copier, read here.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func needJanus(t *testing.T) Paths {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root (installs janus, makes namespaces); CI runs as root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := Install(ctx, nil); err != nil {
		t.Fatal(err)
	}
	p, err := Locate()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startJanus starts Janus and stops it when the test ends, checking that
// no process is left behind.
func startJanus(t *testing.T, c Config, opt StartOptions) *Process {
	t.Helper()
	logs := &syncBuffer{}
	opt.Log = logs
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := Start(ctx, c, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pid := p.PID()
		if err := p.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
		processGone(t, pid)
		if t.Failed() {
			t.Logf("janus log:\n%s", logs.String())
		}
	})
	return p
}

// lastCPU is the CPU the tests pin Janus to.
func lastCPU() affinity.CPUSet { return affinity.CPUSet{runtime.NumCPU() - 1} }

func checkPinned(t *testing.T, pid int, cpus affinity.CPUSet) {
	t.Helper()
	threads := cpusAllowed(t, pid)
	if len(threads) < 3 {
		t.Errorf("janus has %d threads, expected its loop, HTTP and mountpoint threads at least", len(threads))
	}
	for tid, got := range threads {
		if got != cpus.String() {
			t.Errorf("thread %s runs on CPUs %s, want %s", tid, got, cpus)
		}
	}
}

func checkInfo(t *testing.T, info ServerInfo, loops int) {
	t.Helper()
	if info.Version != "1.1.2" && !strings.HasPrefix(info.Version, "1.1.") {
		t.Errorf("version %q", info.Version)
	}
	if info.EventLoops != loops || info.FullTrickle || info.ICELite || info.ICETCP || info.MDNS || info.SessionTimeout != 60 {
		t.Errorf("config not in effect: loops %d (want %d), full-trickle %v, ice-lite %v, ice-tcp %v, mdns %v, session-timeout %d",
			info.EventLoops, loops, info.FullTrickle, info.ICELite, info.ICETCP, info.MDNS, info.SessionTimeout)
	}
	if _, ok := info.Plugins["janus.plugin.streaming"]; !ok || len(info.Plugins) != 1 {
		t.Errorf("plugins %v, want only janus.plugin.streaming", keys(info.Plugins))
	}
	if _, ok := info.Transports["janus.transport.http"]; !ok || len(info.Transports) != 1 {
		t.Errorf("transports %v, want only janus.transport.http", keys(info.Transports))
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestStartLoopback runs Janus on 127.0.0.1, pinned, and drives the
// Streaming plugin over the HTTP API: list, info, and RTP that the
// mountpoint sees arrive.
func TestStartLoopback(t *testing.T) {
	paths := needJanus(t)
	leakCheck(t)
	ports := freePorts(t, "127.0.0.1", 3)
	c := Config{
		Interface:     "lo",
		HTTPIP:        "127.0.0.1",
		HTTPPort:      ports[0],
		VideoPort:     ports[1],
		AudioPort:     ports[2],
		RTPPorts:      PortRange{41000, 41999},
		MountpointID:  4242,
		HelperThreads: 1,
		LogLevel:      4, // "New video stream!" is an info line
		SRTPGCM:       true,
		PluginsDir:    paths.PluginsDir,
		TransportsDir: paths.TransportsDir,
	}
	p := startJanus(t, c, StartOptions{Binary: paths.Binary, CPUs: lastCPU()})
	started := time.Now()

	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.PID())); strings.TrimSpace(string(comm)) != "janus" {
		t.Errorf("PID %d is %q, not janus", p.PID(), comm)
	}
	checkPinned(t, p.PID(), lastCPU())
	checkInfo(t, p.Info(), 1)
	if p.URL() != "http://127.0.0.1:"+strconv.Itoa(ports[0])+"/janus" {
		t.Errorf("URL %s", p.URL())
	}
	if p.Info().LocalIP != "127.0.0.1" {
		t.Errorf("local-ip %q, want 127.0.0.1", p.Info().LocalIP)
	}
	if strings.Contains(p.LogTail(1<<14), "does not support AES-GCM") {
		t.Error("janus says it lacks AES-GCM SRTP")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	api := &apiClient{fatalf: t.Fatalf, hc: p.Client(), base: p.URL()}
	session, handle := api.session(ctx)
	defer api.destroy(ctx, session)

	var list struct {
		List []mountpoint `json:"list"`
	}
	api.request(ctx, session, handle, map[string]any{"request": "list"}, &list)
	if len(list.List) != 1 || list.List[0].ID != c.MountpointID || !list.List[0].Enabled {
		t.Fatalf("list = %+v, want mountpoint %d alone and enabled", list.List, c.MountpointID)
	}

	info := func() mountpoint {
		var r struct {
			Info mountpoint `json:"info"`
		}
		api.request(ctx, session, handle, map[string]any{"request": "info", "id": c.MountpointID}, &r)
		return r.Info
	}
	mp := info()
	if mp.ID != c.MountpointID || mp.Threads != 1 || len(mp.Media) != 2 {
		t.Fatalf("info = %+v, want id %d, threads 1, two media", mp, c.MountpointID)
	}
	media := map[string]int{} // type -> index
	for i, m := range mp.Media {
		media[m.Type] = i
	}
	v, a := mp.Media[media["video"]], mp.Media[media["audio"]]
	if v.Codec != "vp8" || v.PT != 96 || v.Port != c.VideoPort || a.Codec != "opus" || a.PT != 111 || a.Port != c.AudioPort {
		t.Errorf("media = %+v, want vp8/96 on %d and opus/111 on %d", mp.Media, c.VideoPort, c.AudioPort)
	}

	// age_ms counts from the mountpoint's creation until a packet arrives:
	// let it grow, then send video only and see that age fall.
	time.Sleep(time.Until(started.Add(800 * time.Millisecond)))
	conn, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: c.VideoPort})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const ssrc = 0x5157a11
	for i := range 10 {
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(i),
			Timestamp: uint32(i) * 3000, SSRC: ssrc, Marker: true}, Payload: []byte{0x10, 0, 0x9d, 1, 0x2a}}
		b, err := pkt.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mp = info()
	v, a = mp.Media[media["video"]], mp.Media[media["audio"]]
	if v.AgeMS == nil || a.AgeMS == nil {
		t.Fatalf("info has no age_ms: %+v", mp.Media)
	}
	if *v.AgeMS > 500 || *a.AgeMS < 700 {
		t.Errorf("after video RTP: video age %d ms (want < 500), audio age %d ms (want >= 700, none sent)", *v.AgeMS, *a.AgeMS)
	}
	if want := fmt.Sprintf("New video stream! (#%d, ssrc=%d,", media["video"], ssrc); !waitLog(p, want) {
		t.Errorf("log lacks %q", want)
	}
}

func waitLog(p *Process, s string) bool {
	for range 20 {
		if strings.Contains(p.LogTail(1<<14), s) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// netnsPair makes two namespaces joined by a veth (server side srvIP/24,
// client side cliIP/24), and removes them when the test ends. Nothing is
// made in the caller's namespace.
func netnsPair(t *testing.T, tag, srvIP, cliIP string) (srv, cli string) {
	t.Helper()
	srv = fmt.Sprintf("spwj-%d-%s-srv", os.Getpid(), tag)
	cli = fmt.Sprintf("spwj-%d-%s-cli", os.Getpid(), tag)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{srv, cli} {
		run("netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", ns, err, out)
			}
		})
	}
	run("-n", srv, "link", "add", "spjs0", "type", "veth", "peer", "name", "spjc0", "netns", cli)
	run("-n", srv, "addr", "add", srvIP+"/24", "dev", "spjs0")
	run("-n", cli, "addr", "add", cliIP+"/24", "dev", "spjc0")
	for _, l := range [][2]string{{srv, "spjs0"}, {srv, "lo"}, {cli, "spjc0"}, {cli, "lo"}} {
		run("-n", l[0], "link", "set", l[1], "up")
	}
	return srv, cli
}

var candidateRE = regexp.MustCompile(`(?m)^a=candidate:\S+ (\d) (\S+) \d+ (\S+) (\d+) typ (\S+)`)

// TestStartNetns runs Janus inside a namespace with a veth, as the bench
// does, and asks the Streaming plugin to watch the mountpoint: the offer
// must carry Janus's candidates (half-trickle), on the veth only.
func TestStartNetns(t *testing.T) {
	paths := needJanus(t)
	leakCheck(t)
	const srvIP, cliIP = "198.18.77.1", "198.18.77.2"
	srv, _ := netnsPair(t, "sdp", srvIP, cliIP)
	c := Config{
		Interface:     "spjs0",
		HTTPIP:        srvIP,
		HTTPPort:      8088,
		RTPPorts:      PortRange{42000, 42099},
		EventLoops:    2,
		PluginsDir:    paths.PluginsDir,
		TransportsDir: paths.TransportsDir,
	}
	p := startJanus(t, c, StartOptions{Binary: paths.Binary, Netns: srv, CPUs: lastCPU()})

	var own, janus unix.Stat_t
	if err := unix.Stat("/run/netns/"+srv, &own); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", p.PID()), &janus); err != nil {
		t.Fatal(err)
	}
	if own.Ino != janus.Ino || own.Dev != janus.Dev {
		t.Errorf("janus is not in namespace %s", srv)
	}
	checkPinned(t, p.PID(), lastCPU())
	checkInfo(t, p.Info(), 2)
	if p.Info().LocalIP != srvIP {
		t.Errorf("local-ip %q, want %s", p.Info().LocalIP, srvIP)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	api := &apiClient{fatalf: t.Fatalf, hc: p.Client(), base: p.URL()}
	session, handle := api.session(ctx)
	defer api.destroy(ctx, session)
	r := api.do(ctx, "POST", fmt.Sprintf("/%d/%d", session, handle),
		map[string]any{"janus": "message", "body": map[string]any{"request": "watch", "id": 1}})
	if r.Janus != "ack" && r.JSEP == nil {
		t.Fatalf("watch: %+v", r)
	}
	if r.JSEP == nil {
		r = api.jsepEvent(ctx, session)
	}
	sdp := r.JSEP.SDP
	if r.JSEP.Type != "offer" {
		t.Fatalf("jsep type %q", r.JSEP.Type)
	}
	cands := candidateRE.FindAllStringSubmatch(sdp, -1)
	if len(cands) == 0 {
		t.Fatalf("offer has no candidates (half-trickle expected):\n%s", sdp)
	}
	for _, m := range cands {
		port, _ := strconv.Atoi(m[4])
		if m[2] != "udp" && m[2] != "UDP" || m[3] != srvIP || m[5] != "host" || port < 42000 || port > 42099 {
			t.Errorf("candidate %q: want a udp host candidate on %s within 42000-42099", m[0], srvIP)
		}
	}
	for _, want := range []string{"a=setup:actpass", "a=fingerprint:sha-256", "a=group:BUNDLE", "a=rtcp-mux", "VP8/90000", "opus/48000/2"} {
		if !strings.Contains(sdp, want) {
			t.Errorf("offer lacks %q", want)
		}
	}
	if strings.Contains(sdp, "a=ice-lite") {
		t.Error("offer says ice-lite")
	}
	if !strings.Contains(sdp, "c=IN IP4 "+srvIP) {
		t.Errorf("offer's c= line is not %s", srvIP)
	}
	t.Logf("offer candidates: %q; end-of-candidates: %v; ice-options: %q",
		candidateRE.FindAllString(sdp, -1), strings.Contains(sdp, "a=end-of-candidates"), regexp.MustCompile(`a=ice-options:\S+`).FindString(sdp))
}

// TestStartFailsClearly: a missing binary is named, and a port already
// taken makes Janus exit at start, which Start reports in Janus's words.
func TestStartFailsClearly(t *testing.T) {
	paths := needJanus(t)
	leakCheck(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ports := freePorts(t, "127.0.0.1", 2)
	c := Config{
		Interface:     "lo",
		HTTPPort:      l.Addr().(*net.TCPAddr).Port,
		VideoPort:     ports[0],
		AudioPort:     ports[1],
		PluginsDir:    paths.PluginsDir,
		TransportsDir: paths.TransportsDir,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := Start(ctx, c, StartOptions{Binary: "/nonexistent/janus"}); err == nil || !strings.Contains(err.Error(), "/nonexistent/janus") {
		t.Errorf("Start with a missing binary: %v", err)
	}
	p, err := Start(ctx, c, StartOptions{Binary: paths.Binary, ReadyTimeout: 5 * time.Second})
	if err == nil {
		p.Stop()
		t.Fatal("Start succeeded on a taken HTTP port")
	}
	msg := err.Error()
	if !strings.Contains(msg, "exited during start") || !strings.Contains(msg, "Janus version: ") {
		t.Errorf("want an early exit reported with Janus's log: %v", err)
	}
	// Janus 1.1.2 logs from a thread and sometimes segfaults in exit(1)
	// (a plugin thread outlives the libraries), losing its last lines; only
	// a clean exit must show the reason.
	if !strings.Contains(msg, "signal: segmentation fault") && !strings.Contains(msg, "Couldn't start webserver on port") {
		t.Errorf("error without Janus's own reason: %v", err)
	}
	t.Logf("Start: %v", err)
}
