package media

import "encoding/binary"

// VP8 payload bytes as browsers send them (RFC 7741 4.2, RFC 6386 9.1):
//
//	descriptor, every packet:  X=1 S PID=0 | I=1 | M=1 15-bit picture ID
//	frame header, S packets:   3-byte frame tag (P bit clear on keyframes,
//	                           version 0, show_frame, first partition size)
//	                           keyframes add 9d 01 2a and width, height
const (
	vp8DescriptorLen = 4
	vp8TagLen        = 3
	vp8KeyHeaderLen  = 7
)

// frameHeaderLen is the VP8 frame header at the start of a frame's first
// packet.
func frameHeaderLen(key bool) int {
	if key {
		return vp8TagLen + vp8KeyHeaderLen
	}
	return vp8TagLen
}

// putDescriptor writes the payload descriptor and returns its length. The
// picture ID, the same in every packet of a frame, is what decoders and
// SFUs use to see a lost frame.
func putDescriptor(b []byte, start bool, pictureID uint16) int {
	b[0] = 0x80 // X
	if start {
		b[0] |= 0x10 // S, PID 0
	}
	b[1] = 0x80 // I
	binary.BigEndian.PutUint16(b[2:], 0x8000|pictureID&0x7fff)
	return vp8DescriptorLen
}

// putFrameHeader writes the VP8 frame header and returns its length.
// firstPart is the first partition's size (19 bits).
func putFrameHeader(b []byte, key bool, firstPart int) int {
	tag := uint32(1)<<4 | uint32(min(max(firstPart, 1), 0x7ffff))<<5 // show_frame, size
	if !key {
		tag |= 1 // P: inter frame
	}
	b[0], b[1], b[2] = byte(tag), byte(tag>>8), byte(tag>>16)
	if !key {
		return vp8TagLen
	}
	b[3], b[4], b[5] = 0x9d, 0x01, 0x2a
	binary.LittleEndian.PutUint16(b[6:], Width) // scale bits 0
	binary.LittleEndian.PutUint16(b[8:], Height)
	return vp8TagLen + vp8KeyHeaderLen
}

// vp8HeadersLen returns how many bytes of a VP8 RTP payload the descriptor
// and, on a frame's first packet, the frame header take, or false if the
// payload is too short to hold them.
func vp8HeadersLen(b []byte) (int, bool) {
	if len(b) < 1 {
		return 0, false
	}
	i := 1
	if b[0]&0x80 != 0 { // X: I L T K
		if len(b) < 2 {
			return 0, false
		}
		x := b[1]
		i = 2
		if x&0x80 != 0 { // I: 7 or 15-bit picture ID
			if len(b) <= i {
				return 0, false
			}
			if b[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: TID/Y/KEYIDX
			i++
		}
	}
	if b[0]&0x10 != 0 && b[0]&0x07 == 0 { // S, PID 0: the frame header follows
		if len(b) < i+vp8TagLen {
			return 0, false
		}
		i += frameHeaderLen(b[i]&0x01 == 0)
	}
	if len(b) < i {
		return 0, false
	}
	return i, true
}
