//go:build linux

package dataplane

import (
	"bytes"
	"github.com/pion/srtp/v3"
	"testing"
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

// Two sources, three viewers each, spread over two workers; a few thousand
// packets per stream across a sequence wrap. Every viewer decrypts every
// packet, in order, with its SSRC and PT and the publisher's payload.
func TestEndToEnd(t *testing.T) {
	for _, prof := range testProfiles {
		t.Run(srtp.ProtectionProfile(prof).String(), func(t *testing.T) {
			leakCheck(t)
			p, ctrl := joinedPlane(t, Config{Workers: 2}, "127.0.0.1:0")
			local := addrOf(ctrl)
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

			const n = 3000
			const vseq0, aseq0 = 64000, 65000 // both wrap: the ROC moves
			for i := 0; i < n; i++ {
				for s, src := range srcs {
					src.Publish(0, rtpPacket(uint32(0xA0+s), 100, uint16(vseq0+i), uint32(i/3*3000), i%3 == 2, payloadFor(s, 0, i)), i == 0)
					src.Publish(1, rtpPacket(uint32(0xB0+s), 111, uint16(aseq0+i), uint32(i*960), false, payloadFor(s, 1, i)), false)
				}
				if i%100 == 99 || i == n-1 { // pace: let the readers keep up
					for _, sb := range subs {
						sb.tv.waitCount(2 * (i + 1))
					}
				}
			}

			for k, sb := range subs {
				if sb.tv.bad != 0 {
					t.Fatalf("viewer %d: %d packets failed to decrypt", k, sb.tv.bad)
				}
				for _, vs := range viewerStreams(k) {
					pk := sb.tv.stream(vs.SSRC)
					if len(pk) != n {
						t.Fatalf("viewer %d %s: %d packets, want %d", k, vs.MID, len(pk), n)
					}
					for i, g := range pk {
						seq0, ts := uint16(vseq0), uint32(i/3*3000)
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
						case !bytes.Equal(g.pay, payloadFor(sb.src, vs.Source, i)):
							t.Fatalf("viewer %d %s #%d: payload differs", k, vs.MID, i)
						case g.from != local:
							t.Fatalf("viewer %d: from %s, want the shared port %s", k, g.from, local)
						}
					}
				}
			}
			var rcvd uint64
			for k, sb := range subs {
				for _, vs := range viewerStreams(k) {
					for _, g := range sb.tv.stream(vs.SSRC) {
						rcvd += uint64(len(g.raw))
					}
				}
			}
			st = p.Stats()
			var sent, calls, nbytes uint64
			for _, w := range st.Workers {
				sent += w.Packets
				calls += w.Sendmmsg
				nbytes += w.Bytes
				if w.Errors != 0 || w.Drops != 0 {
					t.Errorf("worker stats: %+v", w)
				}
			}
			if nbytes != rcvd {
				t.Errorf("stats say %d bytes sent, viewers received %d", nbytes, rcvd)
			}
			if sent != 6*2*n {
				t.Errorf("sent %d datagrams, want %d", sent, 6*2*n)
			}
			if calls >= sent/2 {
				t.Errorf("%d sendmmsg calls for %d datagrams: not batching", calls, sent)
			}
			t.Logf("%d datagrams in %d sendmmsg calls", sent, calls)
		})
	}
}
