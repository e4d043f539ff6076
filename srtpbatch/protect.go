package srtpbatch

import "encoding/binary"

// Protect, per packet:
//
//	headerLen   the RTP header's length (CSRCs, extension), checked as pion/rtp does
//	guess       the packet's ROC from its sequence number; the stream advances
//	seal        AEAD: one Seal in place, the nonce built in a fixed array
//	ctr + mac   AES-CM: the whole payload's keystream in one call, then
//	            HMAC-SHA1 over header, payload and ROC from the pad states

// headerLen returns the length of the RTP header at the start of b. It
// refuses exactly what pion/rtp's Header.Unmarshal refuses, so a packet that
// pion would not protect is not protected here either, and the stream does
// not advance.
func headerLen(b []byte) (int, error) {
	if len(b) < 12 {
		return 0, ErrShortHeader
	}
	n := 12 + 4*int(b[0]&0x0f)
	if len(b) < n {
		return 0, ErrShortHeader
	}
	if b[0]&0x10 == 0 {
		return n, nil
	}
	if len(b) < n+4 {
		return 0, ErrShortHeader
	}
	profile := binary.BigEndian.Uint16(b[n:])
	end := n + 4 + 4*int(binary.BigEndian.Uint16(b[n+2:]))
	if len(b) < end {
		return 0, ErrShortHeader
	}
	// RFC 8285 elements: pion/rtp parses them and refuses one that runs
	// past the extension block.
	switch profile {
	case 0xbede: // one-byte header
		for i := n + 4; i < end; {
			if b[i] == 0 {
				i++
				continue
			}
			id, l := b[i]>>4, int(b[i]&0x0f)+1
			i++
			if id == 15 || id == 0 {
				break
			}
			if i+l > end {
				return 0, ErrBadExtension
			}
			i += l
		}
	case 0x1000: // two-byte header
		for i := n + 4; i < end; {
			if b[i] == 0 {
				i++
				continue
			}
			i++
			if i >= end {
				return 0, ErrBadExtension
			}
			l := int(b[i])
			i++
			if i+l > end {
				return 0, ErrBadExtension
			}
			i += l
		}
	}
	return end, nil
}

// Protect encrypts in place the plain RTP packet buf[:n] (header with its
// CSRCs and extension, payload, padding) and appends the auth tag:
// cap(buf) >= n+Overhead. It returns buf[:n+Overhead]. The sequence number
// comes from the header and the ROC is tracked per RFC 3711 3.3.1; a resend
// of an index already protected gives the same bytes. On error buf and the
// stream are left as they were. Not safe for concurrent use with any other
// Stream of the same Context.
func (s *Stream) Protect(buf []byte, n int) ([]byte, error) {
	c := s.c
	if n < 0 || n > cap(buf)-c.tagLen {
		return nil, ErrShortBuffer
	}
	b := buf[:n+c.tagLen]
	hl, err := headerLen(b[:n])
	if err != nil {
		return nil, err
	}
	return s.protect(b, hl, n, b[hl:n])
}

// ProtectFrom is Protect for a packet whose header is already in
// buf[:hdrLen] and whose payload (with padding) is still elsewhere: the
// cipher reads it from payload and writes the ciphertext after the header,
// which saves copying it first. payload must not overlap buf. The result is
// byte for byte what Protect gives for the same packet.
func (s *Stream) ProtectFrom(buf []byte, hdrLen int, payload []byte) ([]byte, error) {
	c := s.c
	n := hdrLen + len(payload)
	if hdrLen < 0 || n > cap(buf)-c.tagLen {
		return nil, ErrShortBuffer
	}
	b := buf[:n+c.tagLen]
	hl, err := headerLen(b[:hdrLen])
	if err != nil {
		return nil, err
	}
	if hl != hdrLen {
		return nil, ErrShortHeader
	}
	return s.protect(b, hl, n, payload)
}

// protect encrypts src (the payload) into b[hl:n] behind the header b[:hl]
// and appends the tag; src is b[hl:n] itself when protecting in place.
func (s *Stream) protect(b []byte, hl, n int, src []byte) ([]byte, error) {
	c := s.c
	ssrc := binary.BigEndian.Uint32(b[8:])
	if ssrc != s.ssrc {
		return nil, ErrSSRC
	}
	seq := binary.BigEndian.Uint16(b[2:])
	roc, diff, ovf := s.guess(seq)
	if ovf {
		return nil, ErrROCOverflow
	}
	s.advance(seq, diff)

	if c.gcm != nil || c.aead != nil {
		// RFC 7714 8.1: IV = (0^16 || SSRC || ROC || SEQ) XOR salt.
		iv := &c.nonce
		binary.BigEndian.PutUint16(iv[0:], 0)
		binary.BigEndian.PutUint32(iv[2:], ssrc)
		binary.BigEndian.PutUint32(iv[6:], roc)
		binary.BigEndian.PutUint16(iv[10:], seq)
		for i := range iv {
			iv[i] ^= c.salt[i]
		}
		if c.gcm != nil {
			c.gcm.seal(b[hl:], iv, src, b[:hl])
		} else {
			c.aead.Seal(b[hl:hl], iv[:], src, b[:hl])
		}
		return b, nil
	}

	// RFC 3711 4.1.1: IV = (salt << 16) XOR (SSRC << 64) XOR (index << 16).
	iv := &c.iv
	copy(iv[:14], c.salt[:])
	iv[14], iv[15] = 0, 0
	binary.BigEndian.PutUint32(iv[4:], binary.BigEndian.Uint32(iv[4:])^ssrc)
	binary.BigEndian.PutUint32(iv[8:], binary.BigEndian.Uint32(iv[8:])^roc)
	binary.BigEndian.PutUint16(iv[12:], binary.BigEndian.Uint16(iv[12:])^seq)
	c.ctr.xorKeyStream(iv, b[hl:n], src)

	// RFC 3711 4.2: tag = HMAC(auth key, packet || ROC), truncated.
	c.mac.Reset()
	c.mac.Write(b[:n])
	binary.BigEndian.PutUint32(c.macIn[:], roc)
	c.mac.Write(c.macIn[:])
	c.mac.Sum(c.macOut[:0])
	copy(b[n:], c.macOut[:c.tagLen])
	return b, nil
}

// ProtectBatch protects bufs[i][:lens[i]] for every i, in order, as Protect
// does: each bufs[i] becomes the protected packet and lens[i] its length.
// A packet that cannot be protected gets lens[i] = 0 and bufs[i][:0] (send
// nothing for it); the others go on, and the first error is returned.
func (s *Stream) ProtectBatch(bufs [][]byte, lens []int) error {
	if len(bufs) != len(lens) {
		return ErrBatchShape
	}
	var first error
	for i, b := range bufs {
		out, err := s.Protect(b, lens[i])
		if err != nil {
			if first == nil {
				first = err
			}
			bufs[i], lens[i] = b[:0], 0
			continue
		}
		bufs[i], lens[i] = out, len(out)
	}
	return first
}
