package loadgen

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/sdp/v3"
)

// remoteOffer is what a viewer needs from the server's offer.
type remoteOffer struct {
	ufrag, pwd  string
	fingerprint string // "sha-256 AB:CD:..."
	lite        bool   // a=ice-lite: the server never checks, we control
	candidates  []ice.Candidate
	media       []offerMedia
}

type offerMedia struct {
	kind, mid string
	proto     string // "UDP/TLS/RTP/SAVPF"
	port      int
	rtpmaps   []string // "96 VP8/90000" and the like, in offer order
	fmtps     []string
	pts       []string
	clock     map[uint8]uint32
}

// parseOffer reads the transport and the media of a Janus-style offer
// (one BUNDLE transport, credentials at session or media level).
func parseOffer(raw string) (*remoteOffer, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(raw); err != nil {
		return nil, fmt.Errorf("offer: %w", err)
	}
	o := &remoteOffer{}
	read := func(attrs []sdp.Attribute) error {
		for _, a := range attrs {
			switch a.Key {
			case "ice-ufrag":
				o.ufrag = a.Value
			case "ice-pwd":
				o.pwd = a.Value
			case "ice-lite":
				o.lite = true
			case "fingerprint":
				o.fingerprint = a.Value
			case "candidate":
				c, err := ice.UnmarshalCandidate(a.Value)
				if err != nil {
					continue // mDNS, TCP and the like: not ours to use
				}
				if c.NetworkType().IsUDP() {
					o.candidates = append(o.candidates, c)
				}
			}
		}
		return nil
	}
	if err := read(sd.Attributes); err != nil {
		return nil, err
	}
	for _, md := range sd.MediaDescriptions {
		if err := read(md.Attributes); err != nil {
			return nil, err
		}
		m := offerMedia{kind: md.MediaName.Media, proto: strings.Join(md.MediaName.Protos, "/"), port: md.MediaName.Port.Value,
			pts: md.MediaName.Formats, clock: map[uint8]uint32{}}
		for _, a := range md.Attributes {
			switch a.Key {
			case "mid":
				m.mid = a.Value
			case "rtpmap":
				m.rtpmaps = append(m.rtpmaps, a.Value)
				if pt, clock, ok := parseRtpmap(a.Value); ok {
					m.clock[pt] = clock
				}
			case "fmtp":
				m.fmtps = append(m.fmtps, a.Value)
			}
		}
		o.media = append(o.media, m)
	}
	switch {
	case o.ufrag == "" || o.pwd == "":
		return nil, errors.New("offer: no ICE credentials")
	case o.fingerprint == "":
		return nil, errors.New("offer: no DTLS fingerprint")
	case len(o.candidates) == 0:
		return nil, errors.New("offer: no UDP candidate (a server that trickles its candidates is not supported)")
	case len(o.media) == 0:
		return nil, errors.New("offer: no media")
	}
	return o, nil
}

// parseRtpmap reads "96 VP8/90000[/channels]".
func parseRtpmap(v string) (uint8, uint32, bool) {
	pt, rest, ok := strings.Cut(v, " ")
	if !ok {
		return 0, 0, false
	}
	p, err := strconv.ParseUint(pt, 10, 7)
	if err != nil {
		return 0, 0, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 2 {
		return 0, 0, false
	}
	c, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil {
		return 0, 0, false
	}
	return uint8(p), uint32(c), true
}

// localAnswer is our side of the transport.
type localAnswer struct {
	ufrag, pwd  string
	fingerprint string // "sha-256 AB:..."
	candidate   ice.Candidate
}

// buildAnswer accepts every m-line the offer has (recvonly, the offered
// codecs as offered), bundled, with our credentials, one host candidate,
// and setup:active: the viewer is the DTLS client, as browsers are.
func buildAnswer(o *remoteOffer, l localAnswer) string {
	var b strings.Builder
	addr, fam := l.candidate.Address(), "IP4"
	if strings.Contains(addr, ":") {
		fam = "IP6"
	}
	fmt.Fprintf(&b, "v=0\r\no=- %d 2 IN %s %s\r\ns=-\r\nt=0 0\r\n", sessionVersion(l.ufrag), fam, addr)
	var mids []string
	for _, m := range o.media {
		if m.port != 0 && m.mid != "" {
			mids = append(mids, m.mid)
		}
	}
	if len(mids) > 0 {
		fmt.Fprintf(&b, "a=group:BUNDLE %s\r\n", strings.Join(mids, " "))
	}
	fmt.Fprintf(&b, "a=msid-semantic: WMS\r\n")
	first := true
	for _, m := range o.media {
		if m.port == 0 {
			fmt.Fprintf(&b, "m=%s 0 %s %s\r\nc=IN IP4 0.0.0.0\r\n", m.kind, m.proto, strings.Join(m.pts, " "))
			if m.mid != "" {
				fmt.Fprintf(&b, "a=mid:%s\r\n", m.mid)
			}
			b.WriteString("a=inactive\r\n")
			continue
		}
		port := 9
		if first {
			port = l.candidate.Port()
		}
		fmt.Fprintf(&b, "m=%s %d %s %s\r\nc=IN %s %s\r\n", m.kind, port, m.proto, strings.Join(m.pts, " "), fam, addr)
		fmt.Fprintf(&b, "a=mid:%s\r\na=recvonly\r\na=rtcp-mux\r\n", m.mid)
		fmt.Fprintf(&b, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=fingerprint:%s\r\na=setup:active\r\n", l.ufrag, l.pwd, l.fingerprint)
		for _, r := range m.rtpmaps {
			fmt.Fprintf(&b, "a=rtpmap:%s\r\n", r)
		}
		for _, f := range m.fmtps {
			fmt.Fprintf(&b, "a=fmtp:%s\r\n", f)
		}
		if first {
			fmt.Fprintf(&b, "a=candidate:%s\r\na=end-of-candidates\r\n", l.candidate.Marshal())
			first = false
		}
	}
	return b.String()
}

func sessionVersion(seed string) uint64 {
	var h uint64 = 1469598103934665603
	for i := 0; i < len(seed); i++ {
		h = (h ^ uint64(seed[i])) * 1099511628211
	}
	return h >> 2
}

// candidateAddr is a candidate's address and port.
func candidateAddr(c ice.Candidate) netip.AddrPort {
	a, _ := netip.ParseAddr(c.Address())
	return netip.AddrPortFrom(a.Unmap(), uint16(c.Port()))
}
