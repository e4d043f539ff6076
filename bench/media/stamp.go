package media

import (
	"encoding/binary"
	"time"
)

// The stamp, in every packet's payload (after the VP8 headers for video, at
// the start for audio), big-endian:
//
//	0  4 bytes  magic "SPWT"
//	4  8 bytes  send time, Unix nanoseconds, written right before the send
//	12 4 bytes  the stream's packet counter at the source, from 0
const (
	StampSize  = 16
	stampMagic = 0x53505754 // "SPWT"
)

// Stamp is what a viewer reads back from a packet.
type Stamp struct {
	SentAt  int64  // time.Now().UnixNano() at the source just before the send
	Counter uint32 // per stream, from 0; a gap is a packet lost on the way
}

// Sent is SentAt as a time.
func (s Stamp) Sent() time.Time { return time.Unix(0, s.SentAt) }

// putStamp writes a stamp with no send time yet.
func putStamp(b []byte, counter uint32) {
	binary.BigEndian.PutUint32(b, stampMagic)
	binary.BigEndian.PutUint64(b[4:], 0)
	binary.BigEndian.PutUint32(b[12:], counter)
}

// ParseStamp reads the stamp of an RTP payload (after SRTP decryption),
// video (VP8) or audio, and reports whether there is one.
func ParseStamp(payload []byte, video bool) (Stamp, bool) {
	i := 0
	if video {
		n, ok := vp8HeadersLen(payload)
		if !ok {
			return Stamp{}, false
		}
		i = n
	}
	b := payload[i:]
	if len(b) < StampSize || binary.BigEndian.Uint32(b) != stampMagic {
		return Stamp{}, false
	}
	return Stamp{
		SentAt:  int64(binary.BigEndian.Uint64(b[4:])),
		Counter: binary.BigEndian.Uint32(b[12:]),
	}, true
}

// SentAt is the send time (unix nanoseconds) of a stamped payload, in the
// form the load generator's samples take (loadgen.StampFunc).
func SentAt(payload []byte, video bool) (int64, bool) {
	s, ok := ParseStamp(payload, video)
	return s.SentAt, ok
}
