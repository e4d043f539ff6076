package peer

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
)

func parseSDP(t *testing.T, s string) *sdp.SessionDescription {
	t.Helper()
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(s); err != nil {
		t.Fatalf("%v\n%s", err, s)
	}
	return &sd
}

func values(attrs []sdp.Attribute, key string) []string {
	var out []string
	for _, a := range attrs {
		if a.Key == key {
			out = append(out, a.Value)
		}
	}
	return out
}

// TestCompleteOffer: the plugin's SDP comes back with every transport
// attribute a browser needs, the plugin's own lines kept, candidates on the
// advertised address.
func TestCompleteOffer(t *testing.T) {
	leakCheck(t)
	adv := netip.MustParseAddr("127.0.0.2")
	tr := newTestTransport(t, Config{Advertise: map[netip.Addr]netip.Addr{netip.MustParseAddr("127.0.0.1"): adv}})
	port := tr.LocalAddrs()[0].Port()
	p := tr.NewPeer(Events{})
	defer p.Close("test over")
	out, err := p.CompleteOffer(bareOffer)
	if err != nil {
		t.Fatal(err)
	}
	sd := parseSDP(t, out)
	if got := values(sd.Attributes, "group"); !slices.Equal(got, []string{"BUNDLE a v"}) {
		t.Errorf("group %v", got)
	}
	if _, ok := sd.Attribute("ice-lite"); !ok {
		t.Error("no a=ice-lite")
	}
	if got := values(sd.Attributes, "msid-semantic"); len(got) != 1 || !strings.Contains(got[0], "WMS spillway") {
		t.Errorf("msid-semantic %v", got)
	}
	var ufrag string
	for i, md := range sd.MediaDescriptions {
		one := func(key, want string) {
			t.Helper()
			got := values(md.Attributes, key)
			if len(got) != 1 || (want != "*" && got[0] != want) {
				t.Errorf("m-line %d: a=%s %v, want [%s]", i, key, got, want)
			}
		}
		one("ice-pwd", "*")
		one("ice-ufrag", "*")
		if u := values(md.Attributes, "ice-ufrag"); len(u) == 1 {
			if ufrag != "" && u[0] != ufrag {
				t.Errorf("ufrag differs between m-lines")
			}
			ufrag = u[0]
		}
		one("fingerprint", "sha-256 "+tr.Fingerprint())
		one("setup", "actpass")
		one("rtcp-mux", "")
		one("rtcp-rsize", "")
		one("end-of-candidates", "")
		one("sendonly", "")
		cands := values(md.Attributes, "candidate")
		if len(cands) != 1 || !strings.HasSuffix(cands[0], fmt.Sprintf(" udp 2130706431 %s %d typ host", adv, port)) {
			t.Errorf("m-line %d: candidates %v", i, cands)
		}
		if md.MediaName.Port.Value != int(port) || md.ConnectionInformation.Address.Address != adv.String() {
			t.Errorf("m-line %d: port %d c=%s", i, md.MediaName.Port.Value, md.ConnectionInformation.Address.Address)
		}
	}
	// The plugin's lines survive.
	for _, l := range []string{"a=rtcp-fb:96 ccm fir", "a=fmtp:111 useinbandfec=1", "a=ssrc:2222 msid:spillway spillwayv", "a=msid:spillway spillwaya", "s=Mountpoint 1"} {
		if !strings.Contains(out, l+"\r\n") {
			t.Errorf("lost %q", l)
		}
	}
	// A second completion keeps the credentials.
	again, err := p.CompleteOffer(bareOffer)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(again, "a=ice-ufrag:"+ufrag+"\r\n") {
		t.Error("credentials changed on a second CompleteOffer")
	}
}

func TestCompleteOfferVariants(t *testing.T) {
	leakCheck(t)
	tr := newTestTransport(t, Config{})
	rejected := strings.Replace(bareOffer, "m=audio 9 ", "m=audio 0 ", 1)
	noSSRC := strings.NewReplacer("a=ssrc:2222 cname:spillway\r\n", "", "a=ssrc:2222 msid:spillway spillwayv\r\n", "").Replace(bareOffer)
	stale := strings.Replace(bareOffer, "a=mid:v\r\n", "a=mid:v\r\na=ice-ufrag:stale\r\na=setup:passive\r\na=candidate:1 1 udp 1 10.0.0.1 1 typ host\r\n", 1)
	static := strings.NewReplacer("SAVPF 111", "SAVPF 0", "a=rtpmap:111 opus/48000/2\r\n", "", "a=fmtp:111 useinbandfec=1\r\n", "").Replace(bareOffer)
	tests := []struct {
		name  string
		bare  string
		check func(t *testing.T, out string, o *offer)
	}{
		{"rejected m-line left out of BUNDLE", rejected, func(t *testing.T, out string, o *offer) {
			sd := parseSDP(t, out)
			if got := values(sd.Attributes, "group"); !slices.Equal(got, []string{"BUNDLE v"}) {
				t.Errorf("group %v", got)
			}
			if a := sd.MediaDescriptions[0]; a.MediaName.Port.Value != 0 || len(values(a.Attributes, "ice-ufrag")) != 0 {
				t.Errorf("rejected m-line completed: %+v", a)
			}
			if !o.media[0].rejected || o.media[1].rejected {
				t.Errorf("rejected flags %+v", o.media)
			}
		}},
		{"ssrc added when the plugin has none", noSSRC, func(t *testing.T, out string, o *offer) {
			v := o.media[1]
			if v.ssrc == 0 || !strings.Contains(out, fmt.Sprintf("a=ssrc:%d cname:spillway\r\n", v.ssrc)) {
				t.Errorf("ssrc %d not in offer", v.ssrc)
			}
		}},
		{"plugin's transport lines replaced", stale, func(t *testing.T, out string, _ *offer) {
			for _, bad := range []string{"stale", "setup:passive", "10.0.0.1"} {
				if strings.Contains(out, bad) {
					t.Errorf("offer still has %q", bad)
				}
			}
		}},
		{"static payload type clock", static, func(t *testing.T, _ string, o *offer) {
			if c := o.media[0].clock[0]; c != 8000 {
				t.Errorf("PCMU clock %d", c)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tr.NewPeer(Events{})
			defer p.Close("test over")
			out, err := p.CompleteOffer(tc.bare)
			if err != nil {
				t.Fatal(err)
			}
			p.mu.Lock()
			o := p.offer
			p.mu.Unlock()
			tc.check(t, out, o)
		})
	}

	invalid := map[string]string{
		"garbage":          "hello",
		"no m-line":        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
		"all rejected":     strings.ReplaceAll(strings.Replace(bareOffer, "m=audio 9 ", "m=audio 0 ", 1), "m=video 9 ", "m=video 0 "),
		"no rtpmap":        strings.Replace(bareOffer, "a=rtpmap:96 VP8/90000\r\n", "", 1),
		"duplicate mid":    strings.Replace(bareOffer, "a=mid:v", "a=mid:a", 1),
		"non-numeric fmt":  strings.Replace(bareOffer, "SAVPF 96", "SAVPF webrtc-datachannel", 1),
		"rtpmap w/o clock": strings.Replace(bareOffer, "VP8/90000", "VP8", 1),
	}
	for name, bare := range invalid {
		p := tr.NewPeer(Events{})
		if _, err := p.CompleteOffer(bare); err == nil {
			t.Errorf("%s: accepted", name)
		}
		p.Close("test over")
	}
}

// edit rewrites an SDP line by line; f returns the new line and whether to
// keep it.
func edit(s string, f func(string) (string, bool)) string {
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(s, "\r\n"), "\r\n") {
		if nl, keep := f(l); keep {
			out = append(out, nl)
		}
	}
	return strings.Join(out, "\r\n") + "\r\n"
}

func dropPrefix(prefix string) func(string) (string, bool) {
	return func(l string) (string, bool) { return l, !strings.HasPrefix(l, prefix) }
}

func replaceLine(old, new string) func(string) (string, bool) {
	return func(l string) (string, bool) {
		if strings.HasPrefix(l, old) {
			return new, true
		}
		return l, true
	}
}

// TestApplyAnswerInvalid: each broken answer is refused with an error and
// leaves the peer usable; the real answer then brings it up.
func TestApplyAnswerInvalid(t *testing.T) {
	leakCheck(t)
	tr := newTestTransport(t, Config{})
	rec := newRecorder()
	p := tr.NewPeer(rec.events())
	defer p.Close("test over")
	if err := p.AddCandidate("candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host"); err == nil {
		t.Error("candidate before offer accepted")
	}
	if err := p.ApplyAnswer("v=0"); err == nil {
		t.Error("answer before offer accepted")
	}
	offer, err := p.CompleteOffer(bareOffer)
	if err != nil {
		t.Fatal(err)
	}
	v := newViewer(t, viewerOpts{})
	good := v.answer(t, offer)
	secondMedia := strings.Index(good, "m=video")

	tests := []struct {
		name, answer, want string
	}{
		{"garbage", "hello", "answer:"},
		{"no fingerprint", edit(good, dropPrefix("a=fingerprint:")), "missing a=fingerprint"},
		{"sha-1 fingerprint", edit(good, replaceLine("a=fingerprint:", "a=fingerprint:sha-1 AB:CD")), "no sha-256 fingerprint"},
		{"malformed fingerprint", edit(good, replaceLine("a=fingerprint:", "a=fingerprint:sha-256 AB:CD")), "malformed"},
		{"setup actpass", edit(good, replaceLine("a=setup:", "a=setup:actpass")), "actpass"},
		{"setup holdconn", edit(good, replaceLine("a=setup:", "a=setup:holdconn")), "holdconn"},
		{"no setup", edit(good, dropPrefix("a=setup:")), "missing a=setup"},
		{"unknown PT", edit(good, replaceLine("m=video 9 UDP/TLS/RTP/SAVPF 96", "m=video 9 UDP/TLS/RTP/SAVPF 100")), "payload type \"100\" was not offered"},
		{"unknown mid", edit(good, replaceLine("a=mid:v", "a=mid:x")), "unknown mid \"x\""},
		{"no mid", edit(good, dropPrefix("a=mid:")), "no mid"},
		{"no ice-ufrag", edit(good, dropPrefix("a=ice-ufrag:")), "ice-ufrag"},
		{"missing m-line", good[:secondMedia], "1 m-lines for 2 offered"},
		{"all rejected", edit(good, func(l string) (string, bool) {
			return strings.Replace(strings.Replace(l, "m=audio 9 ", "m=audio 0 ", 1), "m=video 9 ", "m=video 0 ", 1), true
		}), "every m-line is rejected"},
		{"kind swapped", edit(good, replaceLine("m=video 9 UDP/TLS/RTP/SAVPF 96", "m=audio 9 UDP/TLS/RTP/SAVPF 96")), "offered video"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := p.ApplyAnswer(tc.answer)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}

	for _, c := range []string{"", "a=end-of-candidates", "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host",
		"a=candidate:2 1 udp 2130706431 127.0.0.1 5001 typ host", "candidate:3 1 udp 1 abc.local 5000 typ host"} {
		if err := p.AddCandidate(c); err != nil {
			t.Errorf("AddCandidate(%q): %v", c, err)
		}
	}
	if err := p.AddCandidate("candidate:garbage"); err == nil {
		t.Error("garbage candidate accepted")
	}

	if err := p.ApplyAnswer(good); err != nil {
		t.Fatal(err)
	}
	rec.waitUp(t)
	if err := p.ApplyAnswer(good); err == nil || !strings.Contains(err.Error(), "already applied") {
		t.Errorf("second answer: %v", err)
	}
	if _, err := p.CompleteOffer(bareOffer); err == nil {
		t.Error("re-offer after the answer accepted")
	}
}
