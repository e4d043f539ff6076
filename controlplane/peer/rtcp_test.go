package peer

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
)

// TestRTCP: with a pion viewer and a fake egress, the viewer's receiver
// reports, PLI, FIR, NACK, TWCC and REMB reach the peer and do what they
// should; our sender reports reach the viewer, whose RRs echo them, so the
// RTT is measured.
func TestRTCP(t *testing.T) {
	leakCheck(t)
	tr := newTestTransport(t, Config{})
	v := newViewer(t, viewerOpts{})
	rec := newRecorder()
	p, h := connect(t, tr, v, rec)
	eg := newFakeEgress()
	p.SetEgress(eg)
	v.waitConnected(t)
	audio, video := streamBySSRC(t, h, audioSSRC), streamBySSRC(t, h, videoSSRC)

	// Media flows all along, so the viewer's report interceptor has
	// something to report on.
	s := newSender(t, tr, h, eg)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				s.send(audio, make([]byte, 80))
				s.send(video, make([]byte, 900))
			}
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()
	waitFor(t, 5*time.Second, "media at the viewer", func() bool { return len(v.received(videoSSRC)) > 5 })

	write := func(pkts ...rtcp.Packet) {
		t.Helper()
		if err := v.pc.WriteRTCP(pkts); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("pli", func(t *testing.T) {
		before := rec.keyframes.Load()
		write(&rtcp.PictureLossIndication{MediaSSRC: videoSSRC})
		waitFor(t, 3*time.Second, "keyframe request", func() bool { return rec.keyframes.Load() == before+1 })
	})

	t.Run("fir deduplicated", func(t *testing.T) {
		before := rec.keyframes.Load()
		write(&rtcp.FullIntraRequest{MediaSSRC: videoSSRC, FIR: []rtcp.FIREntry{{SSRC: videoSSRC, SequenceNumber: 1}}})
		write(&rtcp.FullIntraRequest{MediaSSRC: videoSSRC, FIR: []rtcp.FIREntry{{SSRC: videoSSRC, SequenceNumber: 1}}})
		write(&rtcp.FullIntraRequest{MediaSSRC: videoSSRC, FIR: []rtcp.FIREntry{{SSRC: videoSSRC, SequenceNumber: 2}}})
		waitFor(t, 3*time.Second, "two FIRs", func() bool { return streamInfo(p, videoSSRC).FIRs == 2 })
		time.Sleep(100 * time.Millisecond)
		if got := rec.keyframes.Load() - before; got != 2 {
			t.Errorf("%d keyframe requests for FIR seq 1, 1, 2; want 2", got)
		}
	})

	t.Run("nack", func(t *testing.T) {
		// PacketID 1000 and bitmask 0b101: 1000, 1001, 1003.
		write(&rtcp.TransportLayerNack{MediaSSRC: videoSSRC, Nacks: []rtcp.NackPair{{PacketID: 1000, LostPackets: 0b101}, {PacketID: 2000}}})
		want := []uint16{1000, 1001, 1003, 2000}
		waitFor(t, 3*time.Second, "retransmit", func() bool { return len(eg.retransmitted(videoSSRC)) >= len(want) })
		if got := eg.retransmitted(videoSSRC); !slices.Equal(got, want) {
			t.Errorf("retransmit %v, want %v", got, want)
		}
		if got := eg.retransmitted(audioSSRC); len(got) != 0 {
			t.Errorf("audio retransmit %v", got)
		}
		in := streamInfo(p, videoSSRC)
		if in.NACKs != 1 || in.NACKedPackets != 4 || in.Retransmitted != 4 {
			t.Errorf("nack stats %+v", in)
		}
	})

	t.Run("slow link", func(t *testing.T) {
		// Two bursts of 17 lost packets within a second: over the threshold once.
		write(&rtcp.TransportLayerNack{MediaSSRC: videoSSRC, Nacks: []rtcp.NackPair{{PacketID: 3000, LostPackets: 0xffff}}})
		write(&rtcp.TransportLayerNack{MediaSSRC: videoSSRC, Nacks: []rtcp.NackPair{{PacketID: 3100, LostPackets: 0xffff}}})
		waitFor(t, 3*time.Second, "slow link", func() bool {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			return len(rec.slow) > 0
		})
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if !slices.Equal(rec.slow, []string{"v"}) {
			t.Errorf("slow link on %v, want [v]", rec.slow)
		}
	})

	t.Run("twcc and remb", func(t *testing.T) {
		twcc := &rtcp.TransportLayerCC{
			MediaSSRC: videoSSRC, BaseSequenceNumber: 1, PacketStatusCount: 1, FbPktCount: 1,
			PacketChunks: []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 1}},
			RecvDeltas:   []*rtcp.RecvDelta{{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 250}},
		}
		// pion marshals the header as given: fill it as its TWCC sender does.
		twcc.Header = rtcp.Header{Count: rtcp.FormatTCC, Type: rtcp.TypeTransportSpecificFeedback, Length: twcc.Len()/4 - 1}
		write(twcc)
		write(&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: 500000, SSRCs: []uint32{videoSSRC}})
		waitFor(t, 3*time.Second, "twcc and remb counted", func() bool {
			in := p.Info()
			return in.TWCC >= 1 && in.REMB >= 1
		})
		if in := p.Info(); in.REMBBitrate != 500000 {
			t.Errorf("remb bitrate %v", in.REMBBitrate)
		}
	})

	t.Run("sender and receiver reports", func(t *testing.T) {
		waitFor(t, 8*time.Second, "RR echoing our SR on both streams", func() bool {
			return streamInfo(p, audioSSRC).RTT > 0 && streamInfo(p, videoSSRC).RTT > 0
		})
		for _, st := range []uint32{audioSSRC, videoSSRC} {
			in := streamInfo(p, st)
			if in.ReceiverReports == 0 || in.SRsSent == 0 || in.RTT > time.Second {
				t.Errorf("ssrc %d: %+v", st, in)
			}
			srs := v.senderReports(st)
			if len(srs) == 0 {
				t.Fatalf("viewer saw no SR for %d", st)
			}
			sr := srs[len(srs)-1]
			c, _ := eg.Counters(st)
			if sr.PacketCount == 0 || sr.PacketCount > c.Packets || sr.OctetCount > c.Octets {
				t.Errorf("SR counts %d/%d, egress %d/%d", sr.PacketCount, sr.OctetCount, c.Packets, c.Octets)
			}
			// NTP is the send wallclock; RTP time is the same instant on the media clock.
			ntp := time.Unix(int64(sr.NTPTime>>32)-2208988800, int64((sr.NTPTime&0xffffffff)*1e9>>32))
			if d := sr.at.Sub(ntp); d < 0 || d > 200*time.Millisecond {
				t.Errorf("SR NTP time %v is %v before arrival", ntp, d)
			}
			clock := audio.ClockRate
			if st == videoSSRC {
				clock = video.ClockRate
			}
			ahead := time.Duration(int64(int32(sr.RTPTime-c.LastRTPTime)) * int64(time.Second) / int64(clock))
			if ahead < -time.Second || ahead > 100*time.Millisecond {
				t.Errorf("SR RTP time is %v from the last sent timestamp", ahead)
			}
			if got := v.cname(st); got != "spillway" {
				t.Errorf("SDES CNAME %q", got)
			}
		}
		in := p.Info()
		if in.RTCPIn == 0 || in.RTCPDropped != 0 || in.SRTPProfile == "" {
			t.Errorf("info %+v", in)
		}
	})

	t.Run("pair change", func(t *testing.T) {
		local := mustHost(t, h.Local)
		moved := netip.AddrPortFrom(h.Remote.Addr(), h.Remote.Port()+1)
		p.onPairChange(local, mustHost(t, moved))
		eg.mu.Lock()
		paths := slices.Clone(eg.paths)
		eg.mu.Unlock()
		if len(paths) != 1 || paths[0] != [2]netip.AddrPort{h.Local, moved} {
			t.Errorf("SetPath calls %v", paths)
		}
		if in := p.Info(); in.Remote != moved {
			t.Errorf("info remote %v", in.Remote)
		}
		p.onPairChange(local, mustHost(t, h.Remote))
	})
}

func streamInfo(p *Peer, ssrc uint32) StreamInfo {
	for _, s := range p.Info().Streams {
		if s.SSRC == ssrc {
			return s
		}
	}
	return StreamInfo{}
}

func mustHost(t *testing.T, a netip.AddrPort) ice.Candidate {
	t.Helper()
	network := "udp4"
	if a.Addr().Is6() {
		network = "udp6"
	}
	c, err := ice.NewCandidateHost(&ice.CandidateHostConfig{Network: network, Address: a.Addr().String(), Port: int(a.Port()), Component: 1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
