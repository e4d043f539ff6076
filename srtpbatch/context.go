package srtpbatch

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // SRTP's HMAC-SHA1 (RFC 3711 4.2.1)
	"encoding/binary"
	"fmt"
	"hash"
	"reflect"
	"unsafe"

	"github.com/spillway-rtc/spillway/internal/prefetch"
)

// RFC 3711 4.3.2 key derivation labels (SRTP only: RTCP stays in the
// control plane).
const (
	labelEncryption = 0x00
	labelAuth       = 0x01
	labelSalt       = 0x02
)

// Context holds the session keys derived from one master key: one viewer,
// one direction. A Context and its Streams belong to one goroutine (the
// worker that owns the viewer); nothing in them is locked.
type Context struct {
	profile Profile
	tagLen  int

	// AEAD profiles: gcm where the CPU has VAES (gcm.go), else aead.
	gcm   *gcmKey
	aead  cipher.AEAD
	nonce [12]byte

	// AES-CM profiles.
	ctr    *ctrKey
	mac    hash.Hash // HMAC-SHA1; Reset restores the precomputed inner state
	iv     [16]byte
	macIn  [4]byte // the ROC, authenticated after the packet
	macOut [sha1.Size]byte

	salt    [14]byte // session salt: 12 bytes for AEAD, 14 for AES-CM
	streams map[uint32]*Stream

	keys []prefetch.Span // the cipher state Protect reads, for AppendSpans
}

// NewContext derives the SRTP session keys of profile p from a master key
// and salt (RFC 3711 4.3, RFC 7714 11), as pion/srtp does.
func NewContext(p Profile, masterKey, masterSalt []byte) (*Context, error) {
	return newContext(p, masterKey, masterSalt, useVAES)
}

// newContext is NewContext; vaes picks gcm.go's AES-GCM over crypto/cipher's
// (tests run both on a CPU that has it).
func newContext(p Profile, masterKey, masterSalt []byte, vaes bool) (*Context, error) {
	keyLen, saltLen, err := KeyLen(p)
	if err != nil {
		return nil, err
	}
	if len(masterKey) != keyLen || len(masterSalt) != saltLen {
		return nil, fmt.Errorf("%w: %v wants %d+%d bytes, got %d+%d",
			ErrKeyLength, p, keyLen, saltLen, len(masterKey), len(masterSalt))
	}
	prf, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, fmt.Errorf("srtpbatch: master key: %w", err)
	}
	sessKey := derive(prf, labelEncryption, masterSalt, keyLen)
	sessSalt := derive(prf, labelSalt, masterSalt, saltLen)
	var sessAuth []byte
	if !p.aead() {
		sessAuth = derive(prf, labelAuth, masterSalt, sha1.Size)
	}
	return newSessionContext(p, sessKey, sessSalt, sessAuth, vaes)
}

// derive is the AES-CM PRF of RFC 3711 4.3.3 with a key derivation rate of
// 0: AES_k(x) for x = (salt XOR label<<48) || block number.
func derive(prf cipher.Block, label byte, masterSalt []byte, n int) []byte {
	var in [16]byte
	copy(in[:], masterSalt)
	in[7] ^= label
	out := make([]byte, (n+15)&^15)
	for i := 0; i < n; i += 16 {
		binary.BigEndian.PutUint16(in[14:], uint16(i/16))
		prf.Encrypt(out[i:], in[:])
	}
	return out[:n]
}

// newSessionContext builds a Context from session keys (the RFC 7714 test
// vectors give those, not master keys).
func newSessionContext(p Profile, key, salt, auth []byte, vaes bool) (*Context, error) {
	c := &Context{profile: p, tagLen: Overhead(p), streams: map[uint32]*Stream{}}
	copy(c.salt[:], salt)
	if p.aead() && vaes {
		var err error
		if c.gcm, err = newGCMKey(key); err != nil {
			return nil, err
		}
		c.keys = append(c.keys, c.gcm.span())
		return c, nil
	}
	if p.aead() {
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("srtpbatch: session key: %w", err)
		}
		if c.aead, err = cipher.NewGCM(b); err != nil {
			return nil, fmt.Errorf("srtpbatch: gcm: %w", err)
		}
		// Go's GCM keeps its round keys and GHASH table in the object
		// behind the interface.
		c.keys = append(c.keys, objectSpan(c.aead))
		return c, nil
	}
	var err error
	if c.ctr, err = newCTRKey(key); err != nil {
		return nil, err
	}
	c.mac = hmac.New(sha1.New, auth)
	// The first Reset snapshots the inner and outer pad states (and
	// allocates for it); every later Reset only restores them.
	c.mac.Reset()
	c.keys = append(c.keys,
		prefetch.Span{P: unsafe.Pointer(c.ctr), N: unsafe.Offsetof(c.ctr.block)}, // rounds and round keys
		objectSpan(c.mac))
	return c, nil
}

// objectSpan is the span of the struct an interface's pointer refers to,
// at most 1 KiB of it; nothing when it holds no pointer.
func objectSpan(x any) prefetch.Span {
	v := reflect.ValueOf(x)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return prefetch.Span{}
	}
	return prefetch.Span{P: v.UnsafePointer(), N: min(v.Type().Elem().Size(), 1024)}
}

// Profile returns the Context's protection profile.
func (c *Context) Profile() Profile { return c.profile }

// Overhead is Overhead(c.Profile()).
func (c *Context) Overhead() int { return c.tagLen }

// Stream returns the rollover state of one SSRC, creating it on first use.
// Resolve it once per viewer stream, not per packet. Asking twice for one
// SSRC gives the same Stream.
func (c *Context) Stream(ssrc uint32) *Stream {
	if s, ok := c.streams[ssrc]; ok {
		return s
	}
	s := &Stream{c: c, ssrc: ssrc}
	c.streams[ssrc] = s
	return s
}

// Stream is one SSRC of a Context: its rollover counter and highest
// sequence number, tracked as RFC 3711 3.3.1 and pion/srtp do.
type Stream struct {
	c       *Context
	ssrc    uint32
	index   uint64 // ROC<<16 | highest sequence number seen
	started bool   // false until the first packet after creation or SetROC
}

// SSRC returns the stream's SSRC.
func (s *Stream) SSRC() uint32 { return s.ssrc }

// ROC returns the rollover counter.
func (s *Stream) ROC() uint32 { return uint32(s.index >> 16) }

// SetROC sets the rollover counter; the next packet's sequence number is
// taken as the highest seen (pion's SetROC does the same). To move a stream
// between owners exactly, carry Index and SetIndex instead.
func (s *Stream) SetROC(roc uint32) {
	s.index = uint64(roc) << 16
	s.started = false
}

// Index returns ROC<<16 | highest sequence number, and whether a packet
// has been protected since the stream began or SetROC.
func (s *Stream) Index() (index uint64, ok bool) { return s.index, s.started }

// SetIndex restores a state read with Index (ok true) on another Stream.
func (s *Stream) SetIndex(index uint64) {
	s.index = index & (1<<48 - 1)
	s.started = true
}

// guess returns the ROC for sequence number seq and how far seq moves the
// highest index (RFC 3711 3.3.1, in pion/srtp's exact form: no wrap is
// guessed while the index is at most 2^15). ovf reports a ROC that would
// wrap past 2^32-1.
func (s *Stream) guess(seq uint16) (roc uint32, diff int32, ovf bool) {
	const median, span = 1 << 15, 1 << 16
	localROC := uint32(s.index >> 16)
	localSeq := int32(s.index & (span - 1))
	sq := int32(seq)
	roc = localROC
	if s.started {
		switch {
		case s.index <= median:
			diff = sq - localSeq
		case localSeq < median && sq-localSeq > median:
			roc, diff = localROC-1, sq-localSeq-span
		case localSeq >= median && localSeq-median > sq:
			roc, diff = localROC+1, sq-localSeq+span
		default:
			diff = sq - localSeq
		}
	}
	return roc, diff, roc == 0 && localROC == 1<<32-1
}

// advance records seq after guess.
func (s *Stream) advance(seq uint16, diff int32) {
	switch {
	case !s.started:
		s.index |= uint64(seq)
		s.started = true
	case diff > 0:
		s.index += uint64(diff)
	}
}

// AppendSpans appends to dst the memory that protecting a packet of s
// reads and writes besides the packet itself: the stream, its Context and
// the cipher's keys. A caller that serves many streams in turn prefetches
// it a few streams ahead (internal/prefetch), so that the keys are in cache
// when the packet is encrypted.
func (s *Stream) AppendSpans(dst []prefetch.Span) []prefetch.Span {
	dst = append(dst, prefetch.Of(s), prefetch.Of(s.c))
	return append(dst, s.c.keys...)
}
