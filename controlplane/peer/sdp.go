package peer

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/spillway-rtc/spillway/dataplane"
)

// The server offers (as Janus's Streaming plugin does); the plugin writes
// a bare offer and CompleteOffer adds the transport: ICE-lite credentials,
// DTLS fingerprint and role, BUNDLE, rtcp-mux, candidates.

// Attributes the peer owns; a plugin's own copies are dropped so they never
// contradict ours.
var ownedAttrs = map[string]bool{
	"ice-ufrag": true, "ice-pwd": true, "ice-options": true, "ice-lite": true,
	"fingerprint": true, "setup": true, "candidate": true, "end-of-candidates": true,
	"rtcp-mux": true, "rtcp-rsize": true, "group": true, "msid-semantic": true,
}

// offeredMedia is one m-line of the completed offer.
type offeredMedia struct {
	mid, kind string
	rejected  bool // port 0 in the plugin's offer
	ssrc      uint32
	cname     string
	clock     map[uint8]uint32 // offered PT -> clock rate
}

// offer is what CompleteOffer recorded for ApplyAnswer.
type offer struct {
	media []offeredMedia
}

// staticClock is RFC 3551's clock for static payload types a plugin may
// offer without an rtpmap.
var staticClock = map[uint8]uint32{0: 8000, 3: 8000, 4: 8000, 8: 8000, 9: 8000, 18: 8000, 26: 90000, 31: 90000, 32: 90000, 34: 90000}

type completion struct {
	ufrag, pwd  string
	fingerprint string
	candidates  []candidateLine
}

type candidateLine struct {
	value string // "foundation 1 udp prio ip port typ host"
	addr  netip.Addr
	port  int
}

// completeOffer parses the plugin's SDP and returns it with the transport
// attributes added, and the streams it offers.
func completeOffer(bare string, c completion) (string, *offer, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(bare); err != nil {
		return "", nil, fmt.Errorf("offer: %w", err)
	}
	if len(sd.MediaDescriptions) == 0 {
		return "", nil, errors.New("offer: no m-lines")
	}
	if len(c.candidates) == 0 {
		return "", nil, errors.New("offer: no local candidates")
	}
	o := &offer{}
	var bundle, streamIDs []string
	mids := map[string]bool{}
	for i, md := range sd.MediaDescriptions {
		m := offeredMedia{kind: md.MediaName.Media, rejected: md.MediaName.Port.Value == 0, clock: map[uint8]uint32{}}
		m.mid, _ = md.Attribute("mid")
		if m.mid == "" {
			m.mid = strconv.Itoa(i)
			md.WithValueAttribute("mid", m.mid)
		}
		if mids[m.mid] {
			return "", nil, fmt.Errorf("offer: duplicate mid %q", m.mid)
		}
		mids[m.mid] = true
		if m.rejected {
			o.media = append(o.media, m)
			continue
		}
		if err := readCodecs(md, &m); err != nil {
			return "", nil, fmt.Errorf("offer: m-line %d: %w", i, err)
		}
		readSSRC(md, &m)
		if m.ssrc == 0 {
			// The plugin left the SSRC to us; the Handoff carries it back.
			m.ssrc = rand.Uint32() | 1
			m.cname = "spillway"
			md.WithValueAttribute("ssrc", fmt.Sprintf("%d cname:%s", m.ssrc, m.cname))
		}
		if v, ok := md.Attribute("msid"); ok {
			if id, _, _ := strings.Cut(v, " "); id != "" && id != "-" {
				streamIDs = appendUniq(streamIDs, id)
			}
		}
		md.Attributes = dropOwned(md.Attributes)
		first := c.candidates[0]
		md.MediaName.Port = sdp.RangedPort{Value: first.port}
		md.ConnectionInformation = connInfo(first.addr)
		md.WithICECredentials(c.ufrag, c.pwd).
			WithValueAttribute("ice-options", "trickle").
			WithFingerprint("sha-256", c.fingerprint).
			WithValueAttribute("setup", "actpass").
			WithPropertyAttribute("rtcp-mux").
			WithPropertyAttribute("rtcp-rsize")
		for _, cand := range c.candidates {
			md.WithValueAttribute("candidate", cand.value)
		}
		md.WithPropertyAttribute("end-of-candidates")
		bundle = append(bundle, m.mid)
		o.media = append(o.media, m)
	}
	if len(bundle) == 0 {
		return "", nil, errors.New("offer: every m-line is rejected")
	}
	sd.Attributes = dropOwned(sd.Attributes)
	wms := "*"
	if len(streamIDs) > 0 {
		wms = strings.Join(streamIDs, " ")
	}
	// Session attributes first, in the order browsers write them.
	head := []sdp.Attribute{
		{Key: "group", Value: "BUNDLE " + strings.Join(bundle, " ")},
		{Key: "ice-lite"},
		{Key: "msid-semantic", Value: " WMS " + wms},
	}
	sd.Attributes = append(head, sd.Attributes...)
	if sd.ConnectionInformation != nil {
		sd.ConnectionInformation = connInfo(c.candidates[0].addr)
	}
	out, err := sd.Marshal()
	if err != nil {
		return "", nil, fmt.Errorf("offer: marshal: %w", err)
	}
	return string(out), o, nil
}

func readCodecs(md *sdp.MediaDescription, m *offeredMedia) error {
	for _, f := range md.MediaName.Formats {
		pt, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			return fmt.Errorf("format %q is not an RTP payload type", f)
		}
		m.clock[uint8(pt)] = staticClock[uint8(pt)]
	}
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		ptStr, enc, _ := strings.Cut(a.Value, " ")
		pt, err := strconv.ParseUint(ptStr, 10, 7)
		if err != nil {
			return fmt.Errorf("rtpmap %q: %w", a.Value, err)
		}
		if _, ok := m.clock[uint8(pt)]; !ok {
			continue
		}
		parts := strings.Split(enc, "/")
		if len(parts) < 2 {
			return fmt.Errorf("rtpmap %q has no clock rate", a.Value)
		}
		clock, err := strconv.ParseUint(parts[1], 10, 32)
		if err != nil || clock == 0 {
			return fmt.Errorf("rtpmap %q: bad clock rate", a.Value)
		}
		m.clock[uint8(pt)] = uint32(clock)
	}
	for pt, clock := range m.clock {
		if clock == 0 {
			return fmt.Errorf("payload type %d has no rtpmap", pt)
		}
	}
	return nil
}

// readSSRC takes the m-line's first a=ssrc (the primary of any group) and
// its cname.
func readSSRC(md *sdp.MediaDescription, m *offeredMedia) {
	for _, a := range md.Attributes {
		if a.Key != "ssrc" {
			continue
		}
		idStr, rest, _ := strings.Cut(a.Value, " ")
		id, err := strconv.ParseUint(idStr, 10, 32)
		if err != nil {
			continue
		}
		if m.ssrc == 0 {
			m.ssrc = uint32(id)
		}
		if uint32(id) == m.ssrc && strings.HasPrefix(rest, "cname:") && m.cname == "" {
			m.cname = strings.TrimPrefix(rest, "cname:")
		}
	}
	if m.ssrc != 0 && m.cname == "" {
		m.cname = "spillway"
		md.WithValueAttribute("ssrc", fmt.Sprintf("%d cname:%s", m.ssrc, m.cname))
	}
}

func dropOwned(attrs []sdp.Attribute) []sdp.Attribute {
	out := attrs[:0]
	for _, a := range attrs {
		if !ownedAttrs[a.Key] {
			out = append(out, a)
		}
	}
	return out
}

func connInfo(ip netip.Addr) *sdp.ConnectionInformation {
	typ := "IP4"
	if ip.Is6() {
		typ = "IP6"
	}
	return &sdp.ConnectionInformation{NetworkType: "IN", AddressType: typ, Address: &sdp.Address{Address: ip.String()}}
}

func appendUniq(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// answer is what ApplyAnswer takes from the client's SDP.
type answer struct {
	ufrag, pwd  string
	fingerprint string // upper-case hex with colons
	dtlsClient  bool   // a=setup:passive: we initiate the handshake
	streams     []streamState
	candidates  []string
}

// parseAnswer checks the client's answer against our offer.
func parseAnswer(raw string, o *offer) (*answer, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(raw); err != nil {
		return nil, fmt.Errorf("answer: %w", err)
	}
	if len(sd.MediaDescriptions) != len(o.media) {
		return nil, fmt.Errorf("answer: %d m-lines for %d offered", len(sd.MediaDescriptions), len(o.media))
	}
	a := &answer{}
	var firstAccepted *sdp.MediaDescription
	for i, md := range sd.MediaDescriptions {
		om := o.media[i]
		mid, _ := md.Attribute("mid")
		if mid == "" {
			return nil, fmt.Errorf("answer: m-line %d has no mid", i)
		}
		if mid != om.mid {
			return nil, fmt.Errorf("answer: unknown mid %q at m-line %d (offered %q)", mid, i, om.mid)
		}
		if md.MediaName.Media != om.kind {
			return nil, fmt.Errorf("answer: mid %q is %s, offered %s", mid, md.MediaName.Media, om.kind)
		}
		if om.rejected || md.MediaName.Port.Value == 0 {
			continue
		}
		if len(md.MediaName.Formats) == 0 {
			return nil, fmt.Errorf("answer: mid %q has no payload type", mid)
		}
		for _, f := range md.MediaName.Formats {
			pt, err := strconv.ParseUint(f, 10, 7)
			if _, ok := om.clock[uint8(pt)]; err != nil || !ok {
				return nil, fmt.Errorf("answer: mid %q: payload type %q was not offered", mid, f)
			}
		}
		pt, _ := strconv.ParseUint(md.MediaName.Formats[0], 10, 7)
		a.streams = append(a.streams, streamState{
			Stream: dataplane.Stream{MID: mid, SSRC: om.ssrc, PT: uint8(pt), ClockRate: om.clock[uint8(pt)], Source: i},
			kind:   om.kind, cname: om.cname,
		})
		if firstAccepted == nil {
			firstAccepted = md
		}
		for _, at := range md.Attributes {
			if at.Key == "candidate" {
				a.candidates = appendUniq(a.candidates, at.Value)
			}
		}
	}
	if firstAccepted == nil {
		return nil, errors.New("answer: every m-line is rejected")
	}
	get := func(key string) string {
		if v, ok := firstAccepted.Attribute(key); ok {
			return v
		}
		v, _ := sd.Attribute(key)
		return v
	}
	a.ufrag, a.pwd = get("ice-ufrag"), get("ice-pwd")
	if a.ufrag == "" || a.pwd == "" {
		return nil, errors.New("answer: missing ice-ufrag or ice-pwd")
	}
	fp, err := answerFingerprint(firstAccepted, &sd)
	if err != nil {
		return nil, err
	}
	a.fingerprint = fp
	switch setup := get("setup"); setup {
	case "active":
	case "passive":
		a.dtlsClient = true
	case "":
		return nil, errors.New("answer: missing a=setup")
	default:
		return nil, fmt.Errorf("answer: a=setup:%s (an answer must be active or passive)", setup)
	}
	return a, nil
}

// answerFingerprint returns the sha-256 fingerprint, media level first.
func answerFingerprint(md *sdp.MediaDescription, sd *sdp.SessionDescription) (string, error) {
	var seen []string
	for _, attrs := range [][]sdp.Attribute{md.Attributes, sd.Attributes} {
		for _, at := range attrs {
			if at.Key != "fingerprint" {
				continue
			}
			alg, val, _ := strings.Cut(strings.TrimSpace(at.Value), " ")
			seen = append(seen, alg)
			if !strings.EqualFold(alg, "sha-256") {
				continue
			}
			val = strings.TrimSpace(val)
			raw, err := hex.DecodeString(strings.ReplaceAll(val, ":", ""))
			if err != nil || len(raw) != 32 {
				return "", fmt.Errorf("answer: malformed sha-256 fingerprint %q", val)
			}
			return colonHex(raw), nil
		}
	}
	if len(seen) == 0 {
		return "", errors.New("answer: missing a=fingerprint")
	}
	return "", fmt.Errorf("answer: no sha-256 fingerprint (got %s)", strings.Join(seen, ", "))
}
