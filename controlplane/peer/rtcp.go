package peer

import (
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"

	"github.com/spillway-rtc/spillway/dataplane"
)

const (
	receiveMTU        = 8192
	srInterval        = time.Second
	srHistory         = 8  // SRs remembered per stream to match an RR's LSR
	slowLinkThreshold = 20 // NACKed packets per second on one stream
	slowLinkQuiet     = 5 * time.Second
)

type srRecord struct {
	lsr uint32 // middle 32 bits of the SR's NTP time, as an RR echoes it
	at  time.Time
}

// streamState is one accepted m-line: the Handoff's stream plus its RTCP
// state. Guarded by Peer.mu.
type streamState struct {
	dataplane.Stream
	kind, cname string

	info         StreamInfo
	firSeen      bool
	firSeq       uint8
	srs          [srHistory]srRecord
	srNext       int
	nackWinStart time.Time
	nackWinLost  int
	slowAt       time.Time
}

type peerStats struct {
	rtcpIn, rtcpDropped, srtpIn uint64
	twcc, remb                  uint64
	rembBitrate                 float32
}

// readLoop demultiplexes what ICE delivers (STUN is consumed by the agent)
// by first byte, RFC 7983: DTLS to the DTLS conn, SRTCP decrypted here.
// SRTP from the viewer is not expected from a recvonly viewer: counted,
// dropped.
func (p *Peer) readLoop(conn *ice.Conn, ep *DTLSEndpoint) {
	defer p.readers.Done()
	buf := make([]byte, receiveMTU)
	plain := make([]byte, 0, receiveMTU)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		if n == 0 {
			continue
		}
		b := buf[:n]
		switch {
		case b[0] >= 20 && b[0] <= 63:
			_ = ep.Deliver(b)
		case b[0] >= 128 && b[0] <= 191 && n >= 8 && b[1] >= 192 && b[1] <= 223:
			p.readRTCP(b, plain)
		case b[0] >= 128 && b[0] <= 191:
			p.mu.Lock()
			p.stats.srtpIn++
			p.mu.Unlock()
		}
	}
}

func (p *Peer) readRTCP(b, plain []byte) {
	dec := p.rtcpDecrypt.Load()
	var pkts []rtcp.Packet
	ok := dec != nil
	if ok {
		out, err := dec.DecryptRTCP(plain[:0], b, nil)
		if ok = err == nil; ok {
			pkts, err = rtcp.Unmarshal(out)
			ok = err == nil
		}
	}
	if !ok {
		p.mu.Lock()
		p.stats.rtcpDropped++
		p.mu.Unlock()
		return
	}
	p.handleRTCP(pkts, time.Now())
}

type nackRequest struct {
	ssrc uint32
	seqs []uint16
}

type slowLinkNote struct {
	mid, kind string
	lost      int
}

// handleRTCP updates stats under the lock and runs the resulting callbacks
// (keyframe, retransmit, slow link) after it.
func (p *Peer) handleRTCP(pkts []rtcp.Packet, now time.Time) {
	var keyframe bool
	var nacks []nackRequest
	var slow []slowLinkNote
	p.mu.Lock()
	p.stats.rtcpIn++
	for _, pkt := range pkts {
		switch pkt := pkt.(type) {
		case *rtcp.ReceiverReport:
			for _, r := range pkt.Reports {
				p.noteReportLocked(r, now)
			}
		case *rtcp.SenderReport:
			for _, r := range pkt.Reports {
				p.noteReportLocked(r, now)
			}
		case *rtcp.PictureLossIndication:
			if s := p.bySSRC[pkt.MediaSSRC]; s != nil {
				s.info.PLIs++
				keyframe = true
			}
		case *rtcp.FullIntraRequest:
			for _, e := range pkt.FIR {
				s := p.bySSRC[e.SSRC]
				if s == nil {
					continue
				}
				// A repeated sequence number is a retransmitted FIR (RFC 5104 4.3.1.1).
				if !s.firSeen || s.firSeq != e.SequenceNumber {
					s.firSeen, s.firSeq = true, e.SequenceNumber
					s.info.FIRs++
					keyframe = true
				}
			}
		case *rtcp.TransportLayerNack:
			s := p.bySSRC[pkt.MediaSSRC]
			if s == nil {
				continue
			}
			var seqs []uint16
			for _, pair := range pkt.Nacks {
				seqs = append(seqs, pair.PacketList()...)
			}
			s.info.NACKs++
			s.info.NACKedPackets += uint64(len(seqs))
			nacks = append(nacks, nackRequest{ssrc: s.SSRC, seqs: seqs})
			if now.Sub(s.nackWinStart) > time.Second {
				s.nackWinStart, s.nackWinLost = now, 0
			}
			s.nackWinLost += len(seqs)
			if s.nackWinLost >= slowLinkThreshold && now.Sub(s.slowAt) >= slowLinkQuiet {
				s.slowAt = now
				slow = append(slow, slowLinkNote{mid: s.MID, kind: s.kind, lost: s.nackWinLost})
			}
		case *rtcp.TransportLayerCC:
			p.stats.twcc++
		case *rtcp.ReceiverEstimatedMaximumBitrate:
			p.stats.remb++
			p.stats.rembBitrate = pkt.Bitrate
		}
	}
	p.mu.Unlock()

	if keyframe && p.ev.KeyframeRequest != nil {
		p.ev.KeyframeRequest()
	}
	if e := p.currentEgress(); e != nil {
		for _, n := range nacks {
			sent := e.Retransmit(n.ssrc, n.seqs)
			p.mu.Lock()
			if s := p.bySSRC[n.ssrc]; s != nil && sent > 0 {
				s.info.Retransmitted += uint64(sent)
			}
			p.mu.Unlock()
		}
	}
	if p.ev.SlowLink != nil {
		for _, s := range slow {
			p.ev.SlowLink(s.mid, s.kind, false, s.lost)
		}
	}
}

// noteReportLocked records a reception report about one of our streams;
// RTT = now - (when we sent the SR it echoes) - DLSR (RFC 3550 6.4.1).
func (p *Peer) noteReportLocked(r rtcp.ReceptionReport, now time.Time) {
	s := p.bySSRC[r.SSRC]
	if s == nil {
		return
	}
	s.info.ReceiverReports++
	s.info.LastReport = now
	s.info.FractionLost = r.FractionLost
	s.info.CumulativeLost = r.TotalLost
	s.info.Jitter = r.Jitter
	if r.LastSenderReport == 0 {
		return
	}
	for _, sr := range s.srs {
		if sr.lsr == r.LastSenderReport && !sr.at.IsZero() {
			rtt := now.Sub(sr.at) - time.Duration(uint64(r.Delay)*uint64(time.Second)/65536)
			s.info.RTT = max(rtt, 0)
			return
		}
	}
}

// loop runs once the peer is up: a sender report per stream every second
// and the consent check, on one ticker: with thousands of peers, every
// timer is a goroutine wake-up per tick on the server's cores.
func (p *Peer) loop(conn *ice.Conn, enc *srtp.Context) {
	timeout := p.t.cfg.ConsentTimeout
	every := max(min(srInterval, timeout/4), 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	var lastSR time.Time
	for {
		select {
		case <-p.ctx.Done():
			return
		case now := <-t.C:
			if p.consentExpired(now, timeout) {
				p.log.Info("consent expired", "remote", p.remoteAddr(), "timeout", timeout)
				p.shutdown("consent expired")
				return
			}
			if now.Sub(lastSR) >= srInterval-every/2 {
				lastSR = now
				p.sendReports(conn, enc, now)
			}
		}
	}
}

func (p *Peer) remoteAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.remote.String()
}

// consentExpired: no authenticated Binding request from the selected
// remote for the timeout, counted from the pair's selection at the latest.
func (p *Peer) consentExpired(now time.Time, timeout time.Duration) bool {
	p.mu.Lock()
	remote, since, st := p.remote, p.pairAt, p.consent
	p.mu.Unlock()
	if last := st.lastFrom(remote); last.After(since) {
		since = last
	}
	return now.Sub(since) > timeout
}

type srStream struct {
	ssrc, clock uint32
	cname       string
}

// sendReports builds one compound SRTCP packet: an SR per stream that has
// sent something (counters from the egress; RTP time extrapolated to now
// with the clock rate) and an SDES with each CNAME. Only this goroutine
// uses enc.
func (p *Peer) sendReports(conn *ice.Conn, enc *srtp.Context, now time.Time) {
	e := p.currentEgress()
	if e == nil {
		return
	}
	p.mu.Lock()
	streams := make([]srStream, 0, len(p.streams))
	for _, s := range p.streams {
		streams = append(streams, srStream{ssrc: s.SSRC, clock: s.ClockRate, cname: s.cname})
	}
	p.mu.Unlock()

	var pkts []rtcp.Packet
	var sdes rtcp.SourceDescription
	var sent []srRecord
	var sentSSRC []uint32
	for _, s := range streams {
		c, ok := e.Counters(s.ssrc)
		if !ok || c.Packets == 0 {
			continue
		}
		ntp := ntpTime(now)
		rtpTime := c.LastRTPTime
		if !c.LastSentAt.IsZero() {
			rtpTime += uint32(int64(now.Sub(c.LastSentAt).Seconds() * float64(s.clock)))
		}
		pkts = append(pkts, &rtcp.SenderReport{
			SSRC: s.ssrc, NTPTime: ntp, RTPTime: rtpTime, PacketCount: c.Packets, OctetCount: c.Octets,
		})
		sdes.Chunks = append(sdes.Chunks, rtcp.SourceDescriptionChunk{
			Source: s.ssrc, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: s.cname}},
		})
		sent = append(sent, srRecord{lsr: uint32(ntp >> 16), at: now})
		sentSSRC = append(sentSSRC, s.ssrc)
	}
	if len(pkts) == 0 {
		return
	}
	pkts = append(pkts, &sdes)
	raw, err := rtcp.Marshal(pkts)
	if err != nil {
		p.log.Warn("sender report", "err", err)
		return
	}
	out, err := enc.EncryptRTCP(nil, raw, nil)
	if err != nil {
		p.log.Warn("sender report encrypt", "err", err)
		return
	}
	if _, err := conn.Write(out); err != nil {
		p.log.Debug("sender report write", "err", err)
		return
	}
	p.mu.Lock()
	for i, ssrc := range sentSSRC {
		if s := p.bySSRC[ssrc]; s != nil {
			s.srs[s.srNext] = sent[i]
			s.srNext = (s.srNext + 1) % srHistory
			s.info.SRsSent++
		}
	}
	p.mu.Unlock()
}

// ntpTime is the 64-bit NTP timestamp of t (RFC 3550 4).
func ntpTime(t time.Time) uint64 {
	secs := uint64(t.Unix()) + 2208988800
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}
