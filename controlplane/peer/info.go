package peer

import (
	"net/netip"
	"time"

	"github.com/spillway-rtc/spillway/dataplane"
)

// Info is the peer's state for the Admin API's handle_info.
type Info struct {
	ICEState        string         // new, checking, connected, disconnected, failed, closed
	Local, Remote   netip.AddrPort // selected pair; zero until ICE connects
	DTLSState       string         // new, connecting, connected, failed, closed
	DTLSRole        string         // server (viewer answered active) or client (passive); "" before the answer
	SRTPProfile     string         // "" until DTLS is up
	ConsentAge      time.Duration  // since the last authenticated Binding request from Remote (or since selection)
	ConsentRequests uint64         // authenticated Binding requests, all remotes
	Streams         []StreamInfo
	RTCPIn          uint64 // compound RTCP packets decrypted
	RTCPDropped     uint64 // SRTCP that failed to decrypt or parse
	SRTPIn          uint64 // RTP from the viewer, ignored
	TWCC            uint64 // transport-cc feedback packets
	REMB            uint64 // REMB packets
	REMBBitrate     float32
	UpSince         time.Time
}

// StreamInfo is one accepted m-line and what the viewer reports about it.
type StreamInfo struct {
	MID, Kind       string
	SSRC            uint32
	PT              uint8
	ClockRate       uint32
	ReceiverReports uint64
	LastReport      time.Time
	FractionLost    uint8  // of the last RR, in 1/256
	CumulativeLost  uint32 // 24-bit, as reported
	Jitter          uint32 // RTP clock units
	RTT             time.Duration
	NACKs           uint64 // NACK messages
	NACKedPackets   uint64
	Retransmitted   uint64 // as the egress reported
	PLIs, FIRs      uint64
	SRsSent         uint64
}

// Info returns a snapshot.
func (p *Peer) Info() Info {
	p.mu.Lock()
	in := Info{
		ICEState:    p.iceState.String(),
		Local:       p.local,
		Remote:      p.remote,
		DTLSState:   p.dtlsState,
		DTLSRole:    p.dtlsRole,
		SRTPProfile: profileName(p.profile),
		RTCPIn:      p.stats.rtcpIn,
		RTCPDropped: p.stats.rtcpDropped,
		SRTPIn:      p.stats.srtpIn,
		TWCC:        p.stats.twcc,
		REMB:        p.stats.remb,
		REMBBitrate: p.stats.rembBitrate,
		UpSince:     p.upAt,
	}
	for _, s := range p.streams {
		si := s.info
		si.MID, si.Kind, si.SSRC, si.PT, si.ClockRate = s.MID, s.kind, s.SSRC, s.PT, s.ClockRate
		in.Streams = append(in.Streams, si)
	}
	st, remote, since := p.consent, p.remote, p.pairAt
	p.mu.Unlock()
	if st != nil {
		in.ConsentRequests = st.requests()
		if remote.IsValid() {
			if last := st.lastFrom(remote); last.After(since) {
				since = last
			}
			in.ConsentAge = time.Since(since)
		}
	}
	return in
}

func profileName(p dataplane.Profile) string {
	switch p {
	case 0:
		return ""
	case dataplane.ProfileAES128CMHMACSHA1_80:
		return "SRTP_AES128_CM_HMAC_SHA1_80"
	case dataplane.ProfileAES128CMHMACSHA1_32:
		return "SRTP_AES128_CM_HMAC_SHA1_32"
	case dataplane.ProfileAEADAES128GCM:
		return "SRTP_AEAD_AES_128_GCM"
	case dataplane.ProfileAEADAES256GCM:
		return "SRTP_AEAD_AES_256_GCM"
	}
	return "unknown"
}
