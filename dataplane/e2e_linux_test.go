//go:build linux

package dataplane

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/pion/srtp/v3"
)

var testProfiles = []Profile{ProfileAEADAES128GCM, ProfileAES128CMHMACSHA1_80}

// viewerStreams is a video (mid v, source stream 0) and an audio (mid a,
// source stream 1) outgoing stream for viewer k.
func viewerStreams(k int) []Stream {
	return []Stream{
		{MID: "v", SSRC: uint32(1000 + 2*k), PT: 96, ClockRate: 90000, Source: 0},
		{MID: "a", SSRC: uint32(1001 + 2*k), PT: 109, ClockRate: 48000, Source: 1},
	}
}

// framePayload is video as an encoder sends it: frames of framePkts
// packets, all 1000 bytes but the last, which is shorter; each payload
// recognisable by source, stream and index.
const framePkts = 6

func framePayload(src, stream, i int) []byte {
	n := 1000
	if stream != 0 {
		n = 160 // audio: one size
	} else if i%framePkts == framePkts-1 {
		n = 40 + (i*37)%900
	}
	p := payloadFor(src, stream, i)
	if len(p) >= n {
		return p[:n]
	}
	return append(p, make([]byte, n-len(p))...)
}

// Two sources, three viewers each, spread over two workers, in every mode
// and ablation; a few thousand video packets in frames (GSO runs) and audio
// across a sequence wrap. Every viewer decrypts every packet, in order,
// with its SSRC and PT and the publisher's payload, from the shared port,
// and the stats add up.
func TestEndToEnd(t *testing.T) {
	for _, m := range allModes {
		for _, prof := range testProfiles {
			t.Run(m.name+"/"+srtp.ProtectionProfile(prof).String(), func(t *testing.T) {
				leakCheck(t)
				cfg := m.cfg
				cfg.Workers = 2
				p, ctrl := joinedPlane(t, cfg, "127.0.0.1:0")
				testEndToEnd(t, p, addrOf(ctrl), prof)
			})
		}
	}
}

func testEndToEnd(t *testing.T, p *Plane, local netip.AddrPort, prof Profile) {
	srcs := []*Source{p.NewSource("a", 2), p.NewSource("b", 2)}
	type sub struct {
		tv  *testViewer
		src int
	}
	var subs []sub
	for s := range srcs {
		for k := 0; k < 3; k++ {
			tv := newTestViewer(t, prof, local, "127.0.0.1:0", viewerStreams(len(subs))...)
			if _, err := p.AddViewer(tv.h, srcs[s]); err != nil {
				t.Fatal(err)
			}
			subs = append(subs, sub{tv, s})
		}
	}
	st := p.Stats()
	if st.Viewers != 6 || st.Workers[0].Viewers != 3 || st.Workers[1].Viewers != 3 {
		t.Fatalf("placement: %+v", st)
	}

	const n = 1800                    // video packets; audio: one per frame
	const vseq0, aseq0 = 64600, 65500 // both wrap: the ROC moves
	na := 0
	for i := 0; i < n; i++ {
		for s, src := range srcs {
			src.Publish(0, rtpPacket(uint32(0xA0+s), 100, uint16(vseq0+i), uint32(i/framePkts*3000), i%framePkts == framePkts-1, framePayload(s, 0, i)), i == 0)
		}
		if i%framePkts == framePkts-1 {
			for s, src := range srcs {
				src.Publish(1, rtpPacket(uint32(0xB0+s), 111, uint16(aseq0+na), uint32(na*960), false, framePayload(s, 1, na)), false)
			}
			na++
		}
		if i%120 == 119 || i == n-1 { // pace: let the readers keep up
			for _, sb := range subs {
				sb.tv.waitCount(i + 1 + na)
			}
		}
	}

	var rcvd uint64
	for k, sb := range subs {
		if sb.tv.bad != 0 {
			t.Fatalf("viewer %d: %d packets failed to decrypt", k, sb.tv.bad)
		}
		for _, vs := range viewerStreams(k) {
			pk := sb.tv.stream(vs.SSRC)
			want := n
			if vs.MID == "a" {
				want = na
			}
			if len(pk) != want {
				t.Fatalf("viewer %d %s: %d packets, want %d", k, vs.MID, len(pk), want)
			}
			for i, g := range pk {
				seq0, ts := uint16(vseq0), uint32(i/framePkts*3000)
				if vs.MID == "a" {
					seq0, ts = aseq0, uint32(i*960)
				}
				switch {
				case g.hdr.SequenceNumber != seq0+uint16(i):
					t.Fatalf("viewer %d %s #%d: seq %d, want %d", k, vs.MID, i, g.hdr.SequenceNumber, seq0+uint16(i))
				case g.hdr.Timestamp != ts:
					t.Fatalf("viewer %d %s #%d: ts %d, want %d", k, vs.MID, i, g.hdr.Timestamp, ts)
				case g.hdr.PayloadType != vs.PT || g.hdr.Extension:
					t.Fatalf("viewer %d %s #%d: header %+v", k, vs.MID, i, g.hdr)
				case !bytes.Equal(g.pay, framePayload(sb.src, vs.Source, i)):
					t.Fatalf("viewer %d %s #%d: payload differs", k, vs.MID, i)
				case g.from != local:
					t.Fatalf("viewer %d: from %s, want the shared port %s", k, g.from, local)
				}
				rcvd += uint64(len(g.raw))
			}
		}
	}
	st = p.Stats()
	var tot WorkerStats
	for _, w := range st.Workers {
		tot.Packets += w.Packets
		tot.Sendmmsg += w.Sendmmsg
		tot.Bytes += w.Bytes
		tot.Datagrams += w.Datagrams
		tot.Segments += w.Segments
		tot.GSOFallbacks += w.GSOFallbacks
		if w.Errors != 0 || w.Drops != 0 {
			t.Errorf("worker stats: %+v", w)
		}
		wantCPU := w.CPU >= 0
		if p.cfg.NoPin || p.cfg.Mode == ModeQueue {
			wantCPU = w.CPU == -1
		}
		if !wantCPU {
			t.Errorf("worker CPU %d (pinning %v)", w.CPU, !p.cfg.NoPin)
		}
	}
	if tot.Bytes != rcvd {
		t.Errorf("stats say %d bytes sent, viewers received %d", tot.Bytes, rcvd)
	}
	if want := uint64(6 * (n + na)); tot.Packets != want {
		t.Errorf("sent %d packets, want %d", tot.Packets, want)
	}
	gso := !p.cfg.NoGSO && p.cfg.Mode != ModeQueue && p.cfg.Batch != 1
	switch {
	case tot.GSOFallbacks != 0:
		t.Errorf("%d GSO fallbacks on loopback", tot.GSOFallbacks)
	case gso && (tot.Segments == 0 || tot.Datagrams >= tot.Packets):
		t.Errorf("GSO on: %d datagrams, %d segments for %d packets", tot.Datagrams, tot.Segments, tot.Packets)
	case !gso && (tot.Segments != 0 || tot.Datagrams != tot.Packets):
		t.Errorf("GSO off: %d datagrams, %d segments for %d packets", tot.Datagrams, tot.Segments, tot.Packets)
	case p.cfg.Mode == ModeQueue || p.cfg.NoMMsg:
		if tot.Sendmmsg != tot.Datagrams {
			t.Errorf("one call per datagram expected: %d calls, %d datagrams", tot.Sendmmsg, tot.Datagrams)
		}
	case tot.Sendmmsg >= tot.Datagrams/2 && p.cfg.Batch != 1:
		t.Errorf("%d sendmmsg calls for %d datagrams: not batching", tot.Sendmmsg, tot.Datagrams)
	}
	t.Logf("%d packets in %d datagrams (%d GSO segments), %d send calls", tot.Packets, tot.Datagrams, tot.Segments, tot.Sendmmsg)
}
