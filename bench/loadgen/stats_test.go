package loadgen

import (
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
)

func TestStreamStateLossAcrossWrap(t *testing.T) {
	cases := []struct {
		name           string
		seqs           []uint16
		recv, expected uint64
	}{
		{"in order", []uint16{10, 11, 12, 13}, 4, 4},
		{"a gap", []uint16{10, 11, 14, 15}, 4, 6},
		{"across the wrap", []uint16{65534, 65535, 0, 1, 3}, 5, 6},
		{"reordered", []uint16{100, 102, 101, 103}, 4, 4},
		{"late packet from before the wrap", []uint16{65535, 0, 1, 65534}, 4, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &streamState{clock: 90000}
			at := time.Unix(1000, 0)
			for i, q := range c.seqs {
				s.add(q, uint32(i)*3000, at.Add(time.Duration(i)*33*time.Millisecond))
			}
			if s.Received != c.recv || s.Expected != c.expected {
				t.Fatalf("received %d expected %d, want %d %d", s.Received, s.Expected, c.recv, c.expected)
			}
		})
	}
}

// Packets that arrive exactly on their RTP clock have no jitter; a packet
// 16 ms late makes about 1 ms of it (RFC 3550's 1/16 gain).
func TestStreamStateJitter(t *testing.T) {
	s := &streamState{clock: 90000}
	at := time.Unix(1000, 0)
	for i := range 10 {
		s.add(uint16(i), uint32(i)*3000, at.Add(time.Duration(i)*time.Second/30))
	}
	if s.JitterMs > 0.01 {
		t.Fatalf("jitter %.3f ms on a perfect clock", s.JitterMs)
	}
	s.add(10, 10*3000, at.Add(10*time.Second/30+16*time.Millisecond))
	if s.JitterMs < 0.9 || s.JitterMs > 1.1 {
		t.Fatalf("jitter %.3f ms, want ~1", s.JitterMs)
	}
}

func TestLatencyPercentiles(t *testing.T) {
	l := &latencies{max: 1000}
	for i := 1; i <= 100000; i++ {
		l.add(int64(i%100+1) * int64(time.Millisecond))
	}
	p := l.percentiles()
	if p.Count != 100000 || p.P50 < 45*time.Millisecond || p.P50 > 55*time.Millisecond || p.P99 < 95*time.Millisecond || p.Max != 100*time.Millisecond {
		t.Fatalf("%+v", p)
	}
	l.reset()
	if p := l.percentiles(); p.Count != 0 {
		t.Fatalf("after reset %+v", p)
	}
}

const janusLikeOffer = "v=0\r\no=- 1 1 IN IP4 198.18.2.1\r\ns=Mountpoint 1\r\nt=0 0\r\n" +
	"a=group:BUNDLE v a\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef012345\r\na=ice-options:trickle\r\n" +
	"a=fingerprint:sha-256 AA:BB\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 198.18.2.1\r\na=mid:v\r\na=sendonly\r\na=rtcp-mux\r\n" +
	"a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=setup:actpass\r\n" +
	"a=candidate:1 1 udp 2015363327 198.18.2.1 40000 typ host\r\na=candidate:2 1 tcp 1015363327 198.18.2.1 9 typ host tcptype active\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 198.18.2.1\r\na=mid:a\r\na=sendonly\r\na=rtcp-mux\r\n" +
	"a=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1\r\n" +
	"m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:d\r\n"

func TestParseOfferAndAnswer(t *testing.T) {
	o, err := parseOffer(janusLikeOffer)
	if err != nil {
		t.Fatal(err)
	}
	if o.ufrag != "abcd" || o.lite || o.fingerprint != "sha-256 AA:BB" || len(o.candidates) != 1 || len(o.media) != 3 {
		t.Fatalf("%+v", o)
	}
	if o.media[0].clock[96] != 90000 || o.media[1].clock[111] != 48000 {
		t.Fatalf("clocks %v %v", o.media[0].clock, o.media[1].clock)
	}
	c, err := ice.NewCandidateHost(&ice.CandidateHostConfig{Network: "udp", Address: "198.18.2.2", Port: 50000, Component: 1})
	if err != nil {
		t.Fatal(err)
	}
	a := buildAnswer(o, localAnswer{ufrag: "wxyz", pwd: "p", fingerprint: "sha-256 CC:DD", candidate: c})
	for _, want := range []string{
		"a=group:BUNDLE v a\r\n", "m=video 50000 UDP/TLS/RTP/SAVPF 96\r\n", "a=setup:active\r\n", "a=recvonly\r\n",
		"a=rtpmap:111 opus/48000/2\r\n", "a=fmtp:111 useinbandfec=1\r\n", "a=candidate:", "198.18.2.2 50000 typ host",
		"m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n",
	} {
		if !strings.Contains(a, want) {
			t.Errorf("answer lacks %q:\n%s", want, a)
		}
	}
	for _, bad := range []string{strings.Replace(janusLikeOffer, "a=ice-pwd", "a=x-pwd", 1), strings.Replace(janusLikeOffer, "a=fingerprint", "a=x", 1),
		strings.ReplaceAll(strings.ReplaceAll(janusLikeOffer, "a=candidate:1 ", "a=x:"), "a=candidate:2", "a=y"), "garbage"} {
		if _, err := parseOffer(bad); err == nil {
			t.Errorf("accepted a broken offer")
		}
	}
}
