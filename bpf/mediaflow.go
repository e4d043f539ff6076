package bpf

import "net/netip"

// MediaFlow is one RTP stream the media sink saw: a destination and an
// SSRC.
type MediaFlow struct {
	Dst  netip.AddrPort
	SSRC uint32
}

// MediaFlowCount is what the sink counted of one flow since it first saw
// it: packets (GSO segments each) and the highest RTP sequence number,
// extended past its wraps (RFC 3550 A.1).
type MediaFlowCount struct {
	Packets uint64
	Highest uint32
}

// FlowLoss compares two readings of Flows, as a receiver compares its
// highest sequence number with what it got (RFC 3550 6.4.1): expected is
// how far the flows' sequence numbers advanced from a to z, lost how many
// of those did not come, summed over the flows present in both readings.
// A flow that got more than its numbers advanced (duplicates,
// retransmissions) counts as losing none. Packets still queued in the
// server at either reading count neither as expected nor as lost.
func FlowLoss(a, z map[MediaFlow]MediaFlowCount) (expected, lost uint64) {
	for f, end := range z {
		start, ok := a[f]
		if !ok {
			continue
		}
		adv := uint64(end.Highest - start.Highest)
		got := end.Packets - start.Packets
		expected += adv
		if got < adv {
			lost += adv - got
		}
	}
	return expected, lost
}
