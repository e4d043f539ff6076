//go:build linux

package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"hash"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The limit probe: what one core can encrypt and send at all to the same
// viewers on the same veth, with no data plane around it. Per viewer its own
// key, a raw AES-GCM Seal (or AES-CTR + HMAC-SHA1-80) of 1200-byte RTP
// packets straight from the crypto package, 16 of them laid into one UDP GSO
// datagram, 32 viewers' datagrams per sendmmsg: the best row of
// reference/limits (fanout.go) with pion's SRTP replaced by the bare cipher.

const (
	probeSegs  = 16
	probeBatch = 32
	probeSize  = 1200 // RTP packet before SRTP
)

type probeViewer struct {
	sa   unix.RawSockaddrInet4
	aead cipher.AEAD // GCM
	salt [12]byte
	blk  cipher.Block // CM
	mac  hash.Hash
	ssrc uint32
}

type probe struct {
	fd      int
	gcm     bool
	viewers []probeViewer
	segLen  int
	bufs    [][]byte
	hdrs    []unix.Mmsghdr
	iovs    []unix.Iovec
	oob     []byte
	payload []byte
	next    int
	seq     uint16
	sum     []byte
	roc     [4]byte // rollover counter, always 0 here
}

func newProbe(gcm bool, local netip.Addr, remotes []netip.AddrPort, sndbuf int) (*probe, error) {
	p := &probe{gcm: gcm, payload: make([]byte, probeSize-rtpHeader), sum: make([]byte, 0, sha1.Size)}
	p.segLen = probeSize + 10
	if gcm {
		p.segLen = probeSize + 16
	}
	for i, r := range remotes {
		if !r.Addr().Is4() {
			return nil, fmt.Errorf("probe: %s is not IPv4", r)
		}
		v := probeViewer{ssrc: uint32(i + 1)}
		v.sa.Family = unix.AF_INET
		v.sa.Addr = r.Addr().As4()
		port := (*[2]byte)(unsafe.Pointer(&v.sa.Port))
		port[0], port[1] = byte(r.Port()>>8), byte(r.Port())
		key := make([]byte, 16)
		rand.Read(key)
		rand.Read(v.salt[:])
		blk, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		if gcm {
			if v.aead, err = cipher.NewGCM(blk); err != nil {
				return nil, err
			}
		} else {
			authKey := make([]byte, 20)
			rand.Read(authKey)
			v.blk, v.mac = blk, hmac.New(sha1.New, authKey)
		}
		p.viewers = append(p.viewers, v)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("probe socket: %w", err)
	}
	p.fd = fd
	if sndbuf > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sndbuf); err != nil {
			p.close()
			return nil, fmt.Errorf("probe SO_SNDBUF: %w", err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: local.As4()}); err != nil {
		p.close()
		return nil, fmt.Errorf("probe bind %s: %w", local, err)
	}
	p.oob = make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&p.oob[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(p.oob[unix.CmsgLen(0):], uint16(p.segLen))
	p.hdrs = make([]unix.Mmsghdr, probeBatch)
	p.iovs = make([]unix.Iovec, probeBatch)
	for j := range p.hdrs {
		p.bufs = append(p.bufs, make([]byte, probeSegs*p.segLen))
		m := &p.hdrs[j].Hdr
		m.Iov = &p.iovs[j]
		m.SetIovlen(1)
		m.Namelen = unix.SizeofSockaddrInet4
		m.Control = &p.oob[0]
		m.SetControllen(len(p.oob))
		p.iovs[j].Base = &p.bufs[j][0]
		p.iovs[j].SetLen(len(p.bufs[j]))
	}
	return p, nil
}

func (p *probe) close() { unix.Close(p.fd) }

// step encrypts and sends one sendmmsg worth (32 viewers x 16 packets) and
// returns the RTP packets the kernel accepted.
func (p *probe) step() (int, error) {
	for j := range p.hdrs {
		v := &p.viewers[p.next]
		buf := p.bufs[j]
		for k := range probeSegs {
			p.seal(v, buf[k*p.segLen:(k+1)*p.segLen], p.seq+uint16(k))
		}
		p.hdrs[j].Hdr.Name = (*byte)(unsafe.Pointer(&v.sa))
		p.next++
		if p.next == len(p.viewers) {
			p.next = 0
			p.seq += probeSegs // every viewer has had this run: the source moves on
		}
	}
	sent := 0
	for sent < len(p.hdrs) {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(p.fd),
			uintptr(unsafe.Pointer(&p.hdrs[sent])), uintptr(len(p.hdrs)-sent), 0, 0, 0)
		switch e {
		case 0:
			sent += int(r)
		case unix.EINTR, unix.EAGAIN, unix.ENOBUFS:
		default:
			return sent * probeSegs, fmt.Errorf("probe sendmmsg: %w", e)
		}
	}
	return sent * probeSegs, nil
}

// seal writes one SRTP packet of the viewer into out (segLen bytes).
func (p *probe) seal(v *probeViewer, out []byte, seq uint16) {
	out[0], out[1] = 0x80, 96
	binary.BigEndian.PutUint16(out[2:], seq)
	binary.BigEndian.PutUint32(out[4:], uint32(seq)*3000)
	binary.BigEndian.PutUint32(out[8:], v.ssrc)
	if p.gcm {
		// RFC 7714 IV: 00 00 || SSRC || ROC || SEQ, XOR the salt (ROC 0).
		var iv [12]byte
		binary.BigEndian.PutUint32(iv[2:], v.ssrc)
		binary.BigEndian.PutUint16(iv[10:], seq)
		for i := range iv {
			iv[i] ^= v.salt[i]
		}
		v.aead.Seal(out[rtpHeader:rtpHeader], iv[:], p.payload, out[:rtpHeader])
		return
	}
	// RFC 3711 AES-CM: IV = salt XOR (SSRC << 64) XOR (index << 16).
	var iv [16]byte
	copy(iv[:], v.salt[:])
	binary.BigEndian.PutUint32(iv[4:], binary.BigEndian.Uint32(iv[4:])^v.ssrc)
	binary.BigEndian.PutUint16(iv[12:], binary.BigEndian.Uint16(iv[12:])^seq)
	cipher.NewCTR(v.blk, iv[:]).XORKeyStream(out[rtpHeader:probeSize], p.payload)
	v.mac.Reset()
	v.mac.Write(out[:probeSize])
	v.mac.Write(p.roc[:])
	p.sum = v.mac.Sum(p.sum[:0])
	copy(out[probeSize:], p.sum[:10])
}
