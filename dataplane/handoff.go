package dataplane

import (
	"net/netip"
	"time"

	"github.com/spillway-rtc/spillway/srtpbatch"
)

// Profile is an SRTP protection profile, numbered as in RFC 5764 / RFC 7714
// (the same numbers as pion/srtp's ProtectionProfile): srtpbatch's, which
// does the encryption.
type Profile = srtpbatch.Profile

// Profiles the data plane can encrypt with.
const (
	ProfileAES128CMHMACSHA1_80 = srtpbatch.ProfileAES128CMHMACSHA1_80
	ProfileAES128CMHMACSHA1_32 = srtpbatch.ProfileAES128CMHMACSHA1_32
	ProfileAEADAES128GCM       = srtpbatch.ProfileAEADAES128GCM
	ProfileAEADAES256GCM       = srtpbatch.ProfileAEADAES256GCM
)

// Handoff is everything the data plane needs to send SRTP to one viewer.
// It crosses the control plane / data plane boundary once, when the
// viewer's PeerConnection is up; later changes go through Viewer methods.
// Only the server's write key is here: the client's stays in the control
// plane to decrypt RTCP.
type Handoff struct {
	Profile    Profile
	MasterKey  []byte // server write master key (RFC 5764 4.2)
	MasterSalt []byte
	Local      netip.AddrPort // selected local candidate: the shared media port
	Remote     netip.AddrPort // the viewer's address of the selected pair
	Streams    []Stream
}

// Stream is one outgoing RTP stream of a viewer.
type Stream struct {
	MID       string
	SSRC      uint32 // the SSRC the viewer was offered
	PT        uint8  // the payload type the viewer accepted
	ClockRate uint32
	// Source is the index of the source stream (in the Source this viewer
	// subscribes to) that feeds this stream.
	Source int
}

// StreamCounters are what the control plane builds sender reports from.
type StreamCounters struct {
	Packets     uint32
	Octets      uint32 // payload octets, as RFC 3550 counts them
	LastRTPTime uint32
	LastSentAt  time.Time // wallclock at which LastRTPTime was sent
}
