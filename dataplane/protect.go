package dataplane

import (
	"fmt"

	"github.com/spillway-rtc/spillway/srtpbatch"
)

// protector encrypts one outgoing stream's RTP packets in place: the n
// plaintext bytes at buf[:n] become the SRTP packet it returns, within
// cap(buf) (at least n + srtpOverhead). It carries the stream's rollover
// counter, so whoever holds it owns the stream's keystream: it moves with
// the viewer between workers and is never used by two goroutines.
// *srtpbatch.Stream is one.
type protector interface {
	Protect(buf []byte, n int) ([]byte, error)
	// ProtectFrom is Protect with the header in buf[:hdrLen] and the
	// payload read from elsewhere: the same bytes, without copying it first.
	ProtectFrom(buf []byte, hdrLen int, payload []byte) ([]byte, error)
}

// newProtectors builds one protector per outgoing SSRC of a viewer, all
// from the viewer's server write key. The streams of one viewer share a
// srtpbatch.Context (and its scratch state): the viewer's worker owns them
// all.
func newProtectors(h Handoff) (func(ssrc uint32) protector, error) {
	ctx, err := srtpbatch.NewContext(srtpbatch.Profile(h.Profile), h.MasterKey, h.MasterSalt)
	if err != nil {
		return nil, fmt.Errorf("dataplane: srtp context: %w", err)
	}
	if ctx.Overhead() > srtpOverhead {
		return nil, fmt.Errorf("dataplane: profile %v adds %d bytes, more than %d", h.Profile, ctx.Overhead(), srtpOverhead)
	}
	return func(ssrc uint32) protector { return ctx.Stream(ssrc) }, nil
}
