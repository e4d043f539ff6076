package dataplane

import (
	"fmt"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// protector encrypts one outgoing stream's RTP packets in place: the n
// plaintext bytes at buf[:n] become the SRTP packet it returns, within
// cap(buf) (at least n + srtpOverhead). It carries the stream's rollover
// counter, so whoever holds it owns the stream's keystream: it moves with
// the viewer between workers and is never used by two goroutines.
type protector interface {
	Protect(buf []byte, n int) ([]byte, error)
}

// newProtectors builds one protector per outgoing SSRC of a viewer, all
// from the viewer's server write key.
func newProtectors(h Handoff) (func(ssrc uint32) protector, error) {
	ctx, err := srtp.CreateContext(h.MasterKey, h.MasterSalt, srtp.ProtectionProfile(h.Profile))
	if err != nil {
		return nil, fmt.Errorf("dataplane: srtp context: %w", err)
	}
	return func(uint32) protector {
		return &pionStream{ctx: ctx, hdr: rtp.Header{CSRC: make([]uint32, 0, 15)}}
	}, nil
}

// pionStream protects with pion's srtp.Context, which keeps the rollover
// counter per SSRC inside the context shared by the viewer's streams.
type pionStream struct {
	ctx *srtp.Context
	hdr rtp.Header // reused: EncryptRTP parses into it without allocating
}

func (s *pionStream) Protect(buf []byte, n int) ([]byte, error) {
	return s.ctx.EncryptRTP(buf[:0], buf[:n], &s.hdr)
}
