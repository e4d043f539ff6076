package srtpbatch

import (
	"errors"
	"fmt"
)

// Profile is an SRTP protection profile, numbered as in RFC 5764 and RFC 7714
// (the numbers of pion/srtp's ProtectionProfile; dataplane.Profile is this type).
type Profile uint16

// The profiles srtpbatch can protect with.
const (
	ProfileAES128CMHMACSHA1_80 Profile = 0x0001
	ProfileAES128CMHMACSHA1_32 Profile = 0x0002
	ProfileAEADAES128GCM       Profile = 0x0007
	ProfileAEADAES256GCM       Profile = 0x0008
)

// Errors returned by Protect and friends. They are plain values so the
// per-packet error path allocates nothing either.
var (
	ErrProfile      = errors.New("srtpbatch: unsupported protection profile")
	ErrKeyLength    = errors.New("srtpbatch: master key or salt of the wrong length")
	ErrShortHeader  = errors.New("srtpbatch: RTP header longer than the packet")
	ErrBadExtension = errors.New("srtpbatch: malformed RTP header extension")
	ErrShortBuffer  = errors.New("srtpbatch: buffer has no room for the auth tag")
	ErrSSRC         = errors.New("srtpbatch: packet SSRC is not the stream's")
	ErrROCOverflow  = errors.New("srtpbatch: rollover counter exhausted (2^48 packets), rekey")
	ErrBatchShape   = errors.New("srtpbatch: bufs and lens differ in length")
)

func (p Profile) String() string {
	switch p {
	case ProfileAES128CMHMACSHA1_80:
		return "AES_CM_128_HMAC_SHA1_80"
	case ProfileAES128CMHMACSHA1_32:
		return "AES_CM_128_HMAC_SHA1_32"
	case ProfileAEADAES128GCM:
		return "AEAD_AES_128_GCM"
	case ProfileAEADAES256GCM:
		return "AEAD_AES_256_GCM"
	}
	return fmt.Sprintf("Profile(%#04x)", uint16(p))
}

// KeyLen returns the master key and master salt lengths of p.
func KeyLen(p Profile) (key, salt int, err error) {
	switch p {
	case ProfileAES128CMHMACSHA1_80, ProfileAES128CMHMACSHA1_32:
		return 16, 14, nil
	case ProfileAEADAES128GCM:
		return 16, 12, nil
	case ProfileAEADAES256GCM:
		return 32, 12, nil
	}
	return 0, 0, fmt.Errorf("%w: %v", ErrProfile, p)
}

// Overhead is the number of bytes Protect appends to a packet (the auth
// tag); 0 for an unsupported profile.
func Overhead(p Profile) int {
	switch p {
	case ProfileAES128CMHMACSHA1_80:
		return 10
	case ProfileAES128CMHMACSHA1_32:
		return 4
	case ProfileAEADAES128GCM, ProfileAEADAES256GCM:
		return 16
	}
	return 0
}

func (p Profile) aead() bool { return p == ProfileAEADAES128GCM || p == ProfileAEADAES256GCM }
