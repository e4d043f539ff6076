package dataplane

import "encoding/binary"

// IsKeyframe reports whether an RTP payload starts a video keyframe, for the
// codecs "vp8", "vp9", "h264" and "av1" (lower-case names). Any other codec,
// audio included, is never a keyframe.
func IsKeyframe(codec string, payload []byte) bool {
	switch codec {
	case "vp8":
		return vp8Keyframe(payload)
	case "vp9":
		return vp9Keyframe(payload)
	case "h264":
		return h264Keyframe(payload)
	case "av1":
		return av1Keyframe(payload)
	}
	return false
}

// vp8Keyframe: RFC 7741 payload descriptor with S=1 and PID=0, then the VP8
// payload header's P bit (inverse key frame flag) is 0.
func vp8Keyframe(b []byte) bool {
	if len(b) < 1 || b[0]&0x10 == 0 || b[0]&0x07 != 0 {
		return false
	}
	i := 1
	if b[0]&0x80 != 0 { // X: extension byte I L T K
		if len(b) < 2 {
			return false
		}
		x := b[1]
		i = 2
		if x&0x80 != 0 { // I: picture ID, 7 or 15 bits
			if len(b) <= i {
				return false
			}
			if b[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: TID/Y/KEYIDX
			i++
		}
	}
	return len(b) > i && b[i]&0x01 == 0
}

// vp9Keyframe: RFC 9628 payload descriptor with P=0 (not inter-predicted)
// and B=1 (start of a frame).
func vp9Keyframe(b []byte) bool {
	return len(b) >= 1 && b[0]&0x40 == 0 && b[0]&0x08 != 0
}

// h264Keyframe: RFC 6184 NAL unit of type IDR (5) or SPS (7), alone, inside
// a STAP-A aggregate, or at the start of an FU-A fragment.
func h264Keyframe(b []byte) bool {
	if len(b) < 1 {
		return false
	}
	switch t := b[0] & 0x1f; t {
	case 5, 7:
		return true
	case 24: // STAP-A: [size(2) NALU]...
		for i := 1; i+2 < len(b); {
			size := int(binary.BigEndian.Uint16(b[i:]))
			if size == 0 {
				return false
			}
			if nt := b[i+2] & 0x1f; nt == 5 || nt == 7 {
				return true
			}
			i += 2 + size
		}
	case 28: // FU-A: FU header S bit and the fragmented NALU's type
		if len(b) < 2 || b[1]&0x80 == 0 {
			return false
		}
		nt := b[1] & 0x1f
		return nt == 5 || nt == 7
	}
	return false
}

// av1Keyframe: the N bit of the AV1 aggregation header marks the first
// packet of a coded video sequence, which starts with a keyframe.
func av1Keyframe(b []byte) bool {
	return len(b) >= 1 && b[0]&0x08 != 0
}
