//go:build linux

package janus

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// The viewer runs as a child process (this test binary, re-executed inside
// the client namespace by `ip netns exec`): a whole process in a namespace
// is simpler than steering every socket pion opens. TestMain dispatches.
const viewerEnv = "SPILLWAY_JANUS_TEST_VIEWER"

func TestMain(m *testing.M) {
	if os.Getenv(viewerEnv) != "" {
		os.Exit(viewerMain())
	}
	os.Exit(m.Run())
}

// viewerResult is what the viewer process prints, one JSON line.
type viewerResult struct {
	Profile string `json:"profile"` // the use_srtp profile in Janus's ServerHello
	Packets int    `json:"packets"` // decrypted video RTP packets
	Error   string `json:"error,omitempty"`
}

var profileNames = map[string]dtls.SRTPProtectionProfile{
	"SRTP_AEAD_AES_256_GCM":       dtls.SRTP_AEAD_AES_256_GCM,
	"SRTP_AEAD_AES_128_GCM":       dtls.SRTP_AEAD_AES_128_GCM,
	"SRTP_AES128_CM_HMAC_SHA1_80": dtls.SRTP_AES128_CM_HMAC_SHA1_80,
}

func profileName(p dtls.SRTPProtectionProfile) string {
	for n, v := range profileNames {
		if v == p {
			return n
		}
	}
	return fmt.Sprintf("0x%04x", uint16(p))
}

// helloSniffer is the viewer's UDP socket; it reads the SRTP profile Janus
// chose from its DTLS ServerHello, which pion/webrtc does not expose.
type helloSniffer struct {
	net.PacketConn // the interface only: the ICE mux must call our ReadFrom
	mu             sync.Mutex
	profile        dtls.SRTPProtectionProfile
}

func (s *helloSniffer) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := s.PacketConn.ReadFrom(b)
	if n > 0 && b[0] == 22 { // RFC 7983: DTLS handshake record
		if p, ok := serverHelloProfile(b[:n]); ok {
			s.mu.Lock()
			s.profile = p
			s.mu.Unlock()
		}
	}
	return n, addr, err
}

// serverHelloProfile walks the datagram's records for an unfragmented
// ServerHello and returns its use_srtp profile.
func serverHelloProfile(d []byte) (dtls.SRTPProtectionProfile, bool) {
	for len(d) >= 13 {
		typ, n := d[0], int(binary.BigEndian.Uint16(d[11:13]))
		if len(d) < 13+n {
			return 0, false
		}
		rec := d[13 : 13+n]
		d = d[13+n:]
		if typ != 22 || len(rec) < 12 || rec[0] != 2 { // handshake, server_hello
			continue
		}
		length := int(rec[1])<<16 | int(rec[2])<<8 | int(rec[3])
		fragOff := int(rec[6])<<16 | int(rec[7])<<8 | int(rec[8])
		if fragOff != 0 || len(rec) < 12+length {
			continue
		}
		var sh handshake.MessageServerHello
		if err := sh.Unmarshal(rec[12 : 12+length]); err != nil {
			continue
		}
		for _, e := range sh.Extensions {
			if u, ok := e.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) == 1 {
				return dtls.SRTPProtectionProfile(u.ProtectionProfiles[0]), true
			}
		}
	}
	return 0, false
}

func viewerMain() int {
	res := runViewer()
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
	if res.Error != "" {
		return 1
	}
	return 0
}

type viewerFatal string

func runViewer() (res viewerResult) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(viewerFatal)
			if !ok {
				panic(r)
			}
			res.Error = string(f)
		}
	}()
	fatalf := func(format string, args ...any) { panic(viewerFatal(fmt.Sprintf(format, args...))) }
	base, ip := os.Getenv("JANUS_URL"), os.Getenv("VIEWER_IP")
	mpID, _ := strconv.ParseUint(os.Getenv("MOUNTPOINT"), 10, 64)
	var profiles []dtls.SRTPProtectionProfile
	for _, n := range strings.Split(os.Getenv("PROFILES"), ",") {
		p, ok := profileNames[n]
		if !ok {
			fatalf("unknown profile %q", n)
		}
		profiles = append(profiles, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		fatalf("listen: %v", err)
	}
	sniff := &helloSniffer{PacketConn: udp}
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: sniff})
	defer mux.Close()
	var se webrtc.SettingEngine
	se.SetICEUDPMux(mux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetSRTPProtectionProfiles(profiles...)
	var me webrtc.MediaEngine
	if err := me.RegisterDefaultCodecs(); err != nil {
		fatalf("codecs: %v", err)
	}
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(&me))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		fatalf("peer connection: %v", err)
	}
	defer pc.Close()
	got := make(chan int, 1)
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeVideo {
			return
		}
		n := 0
		for n < 5 {
			if _, _, err := tr.ReadRTP(); err != nil {
				break
			}
			n++
		}
		got <- n
	})

	jc := &apiClient{fatalf: fatalf, hc: &http.Client{Timeout: 10 * time.Second}, base: base}
	session, handle := jc.session(ctx)
	defer jc.destroy(context.Background(), session)
	r := jc.do(ctx, http.MethodPost, fmt.Sprintf("/%d/%d", session, handle),
		map[string]any{"janus": "message", "body": map[string]any{"request": "watch", "id": mpID}})
	if r.JSEP == nil {
		r = jc.jsepEvent(ctx, session)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: r.JSEP.SDP}); err != nil {
		fatalf("offer: %v", err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		fatalf("answer: %v", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		fatalf("local description: %v", err)
	}
	<-gathered
	jc.do(ctx, http.MethodPost, fmt.Sprintf("/%d/%d", session, handle), map[string]any{
		"janus": "message", "body": map[string]any{"request": "start"},
		"jsep": map[string]any{"type": "answer", "sdp": pc.LocalDescription().SDP},
	})
	select {
	case res.Packets = <-got:
	case <-ctx.Done():
		fatalf("no video within 15 s (ICE %s, DTLS %s)", pc.ICEConnectionState(), pc.SCTP().Transport().State())
	}
	sniff.mu.Lock()
	res.Profile = profileName(sniff.profile)
	sniff.mu.Unlock()
	return res
}

// TestViewerSRTPProfiles joins real WebRTC viewers (pion, in their own
// namespace, through the HTTP API, with ICE and DTLS) to a Janus in the
// server namespace, and reads which SRTP profile Janus picks as DTLS server
// for a given offer: its own order of preference, whatever the viewer's.
func TestViewerSRTPProfiles(t *testing.T) {
	paths := needJanus(t)
	leakCheck(t)
	const srvIP, cliIP = "198.18.78.1", "198.18.78.2"
	srv, cli := netnsPair(t, "srtp", srvIP, cliIP)
	c := Config{
		Interface:     "spjs0",
		HTTPIP:        srvIP,
		RTPPorts:      PortRange{43000, 43099},
		PluginsDir:    paths.PluginsDir,
		TransportsDir: paths.TransportsDir,
		SRTPGCM:       true,
	}
	p := startJanus(t, c, StartOptions{Binary: paths.Binary, Netns: srv, CPUs: lastCPU()})

	// The source: VP8-shaped RTP into the mountpoint, sent from inside the
	// server namespace.
	ctx, cancel := context.WithCancel(context.Background())
	src, err := netnsDialer(srv)(ctx, "udp", net.JoinHostPort(srvIP, "5004"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(0); ; seq++ {
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq,
				Timestamp: uint32(seq) * 1800, SSRC: 0xbe7c4, Marker: true},
				Payload: []byte{0x10, 0, 0, 0, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}}
			b, _ := pkt.Marshal()
			_, _ = src.Write(b)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { cancel(); wg.Wait(); src.Close() }()

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		offer []string
		want  string
	}{
		// pion's default order, like browsers with GCM on.
		{[]string{"SRTP_AEAD_AES_256_GCM", "SRTP_AEAD_AES_128_GCM", "SRTP_AES128_CM_HMAC_SHA1_80"}, "SRTP_AEAD_AES_256_GCM"},
		// The viewer prefers AES-CM; Janus (OpenSSL, server order) still picks GCM.
		{[]string{"SRTP_AES128_CM_HMAC_SHA1_80", "SRTP_AEAD_AES_128_GCM"}, "SRTP_AEAD_AES_128_GCM"},
		{[]string{"SRTP_AES128_CM_HMAC_SHA1_80"}, "SRTP_AES128_CM_HMAC_SHA1_80"},
	}
	for _, tt := range tests {
		offer := strings.Join(tt.offer, ",")
		cmd := exec.Command("ip", "netns", "exec", cli, exe)
		cmd.Env = append(os.Environ(), viewerEnv+"=1", "JANUS_URL="+p.URL(), "VIEWER_IP="+cliIP,
			"MOUNTPOINT=1", "PROFILES="+offer)
		out, err := cmd.Output()
		var res viewerResult
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), &res); jerr != nil {
			t.Errorf("offer %s: viewer said %q (%v)", offer, out, err)
			continue
		}
		if res.Error != "" || err != nil {
			t.Errorf("offer %s: %s (%v)", offer, res.Error, err)
			continue
		}
		if res.Profile != tt.want || res.Packets < 5 {
			t.Errorf("offer %s: Janus chose %s and %d packets arrived; want %s and 5", offer, res.Profile, res.Packets, tt.want)
		}
		t.Logf("viewer offers %s: Janus picks %s", offer, res.Profile)
	}
}
