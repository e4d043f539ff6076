package streaming

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// bareOffer writes the offer for a viewer: one sendonly m-line per offered
// stream with its codec, feedback and SSRC. ICE, DTLS, BUNDLE and the
// candidates are the core's to add.
func bareOffer(spec *mountSpec, offered []offeredStream) string {
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=- %d 1 IN IP4 0.0.0.0\r\ns=%s\r\nt=0 0\r\n", rand.Uint64N(1<<62), sdpSafe(spec.Description))
	stream := fmt.Sprintf("spillway-%d", spec.ID)
	for _, o := range offered {
		st := spec.Streams[o.index]
		c := st.Codec
		fmt.Fprintf(&b, "m=%s 9 UDP/TLS/RTP/SAVPF %d\r\nc=IN IP4 0.0.0.0\r\n", st.Media, c.PT)
		fmt.Fprintf(&b, "a=mid:%s\r\na=sendonly\r\n", o.mid)
		msidStream, track := stream, st.Label
		if st.MSID != "" {
			if s, t, ok := strings.Cut(st.MSID, " "); ok {
				msidStream, track = s, t
			} else {
				msidStream = st.MSID
			}
		}
		track = sdpToken(track)
		fmt.Fprintf(&b, "a=msid:%s %s\r\n", msidStream, track)
		fmt.Fprintf(&b, "a=rtpmap:%d %s\r\n", c.PT, c.Rtpmap())
		if c.FMTP != "" {
			fmt.Fprintf(&b, "a=fmtp:%d %s\r\n", c.PT, c.FMTP)
		}
		if st.Media == "video" {
			for _, fb := range []string{"nack", "nack pli", "ccm fir"} {
				fmt.Fprintf(&b, "a=rtcp-fb:%d %s\r\n", c.PT, fb)
			}
		}
		fmt.Fprintf(&b, "a=ssrc:%d cname:spillway\r\na=ssrc:%d msid:%s %s\r\n", o.ssrc, o.ssrc, msidStream, track)
	}
	return b.String()
}

// sdpSafe keeps a free-text field on its SDP line.
func sdpSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

// sdpToken makes a label usable as an msid track id.
func sdpToken(s string) string {
	s = strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f {
			return '-'
		}
		return r
	}, s)
	if s == "" {
		return "track"
	}
	return s
}
