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
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/spillway-rtc/spillway/bench/media"
)

// The limit probe: what one core can encrypt and send at all to the same
// viewers on the same veth, with no data plane around it. Per viewer its own
// key, a raw AES-GCM Seal (or AES-CTR + HMAC-SHA1-80) straight from the
// crypto package, one UDP GSO datagram per run of packets, 32 viewers'
// datagrams per sendmmsg: the best row of reference/limits (fanout.go) with
// pion's SRTP replaced by the bare cipher.
//
// The limit probe proper sends runs of 16 packets of 1200 bytes. The shaped
// probe sends the stream's own frames instead (each one run: full packets
// and a shorter last one), so that it and a data-plane row differ only in
// what the data plane adds.

const (
	rtpHeader  = 12
	probeSegs  = 16
	probeBatch = 32
	probeSize  = 1200 // RTP packet before SRTP
	// probeMaxDgram bounds a shaped probe's datagram, as the data plane's.
	probeMaxDgram = 65507
	probeMaxSegs  = 64
)

type probeViewer struct {
	sa   unix.RawSockaddrInet4
	aead cipher.AEAD // GCM
	salt [12]byte
	blk  cipher.Block // CM
	mac  hash.Hash
	ssrc uint32
}

// sealer encrypts the probes' packets with the bare cipher.
type sealer struct {
	gcm     bool
	tag     int // SRTP bytes after the payload
	payload []byte
	sum     []byte
	roc     [4]byte // rollover counter, always 0 here
}

type probe struct {
	sealer
	fd      int
	viewers []probeViewer
	gen     *media.VideoGen // the shaped probe's frames; nil: runs of probeSegs
	full    int             // a full packet's RTP bytes
	frame   []int           // packet sizes of the frame being sent
	maxSegs int             // packets per datagram of a shaped run
	bufSize int             // bytes of one message's buffer
	bufs    [][]byte
	hdrs    []unix.Mmsghdr
	iovs    []unix.Iovec
	oob     []byte
	next    int
	seq     uint16

	sent, dgrams, calls atomic.Uint64
}

// newProbe makes the limit probe, or the shaped probe of the stream m when m
// is not nil.
func newProbe(gcm bool, local netip.Addr, remotes []netip.AddrPort, sndbuf int, m *media.VideoModel) (*probe, error) {
	full := probeSize
	p := &probe{}
	if m != nil {
		var err error
		if p.gen, err = media.NewVideoGen(*m, 1, 1); err != nil {
			return nil, err
		}
		full = m.MaxPacket
	}
	p.sealer = newSealer(gcm, full)
	if m != nil {
		p.maxSegs = min(probeMaxSegs, probeMaxDgram/(full+p.tag))
	}
	p.full = full
	var err error
	if p.viewers, err = probeViewers(gcm, remotes); err != nil {
		return nil, err
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
	// Every run's segments are full packets (a shorter last one is allowed),
	// and a lone packet is never longer than the segment size: one
	// UDP_SEGMENT control message serves every datagram.
	p.oob = make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&p.oob[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(p.oob[unix.CmsgLen(0):], uint16(full+p.tag))
	p.bufSize = probeSegs * (full + p.tag)
	if p.gen != nil {
		p.bufSize = p.maxSegs * (full + p.tag)
	}
	p.grow(probeBatch)
	return p, nil
}

// grow makes room for n messages (a keyframe's runs take several per viewer).
func (p *probe) grow(n int) {
	if len(p.hdrs) >= n {
		return
	}
	for len(p.hdrs) < n {
		p.hdrs = append(p.hdrs, unix.Mmsghdr{})
		p.iovs = append(p.iovs, unix.Iovec{})
		p.bufs = append(p.bufs, make([]byte, p.bufSize))
	}
	for j := range p.hdrs { // append may have moved the iovecs
		m := &p.hdrs[j].Hdr
		m.Iov = &p.iovs[j]
		m.SetIovlen(1)
		m.Namelen = unix.SizeofSockaddrInet4
		m.Control = &p.oob[0]
		m.SetControllen(len(p.oob))
		p.iovs[j].Base = &p.bufs[j][0]
	}
}

func newSealer(gcm bool, full int) sealer {
	sl := sealer{gcm: gcm, tag: 10, payload: make([]byte, full-rtpHeader), sum: make([]byte, 0, sha1.Size)}
	if gcm {
		sl.tag = 16
	}
	return sl
}

// probeViewers gives each remote its own keys and SSRC.
func probeViewers(gcm bool, remotes []netip.AddrPort) ([]probeViewer, error) {
	var vs []probeViewer
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
		vs = append(vs, v)
	}
	return vs, nil
}

func (p *probe) close() { unix.Close(p.fd) }

func (p *probe) counts() counters {
	return counters{sent: p.sent.Load(), dgrams: p.dgrams.Load(), calls: p.calls.Load()}
}

// step encrypts and sends one sendmmsg worth (32 viewers' runs) and returns
// the RTP packets the kernel accepted.
func (p *probe) step() (int, error) {
	if p.gen == nil {
		return p.stepFixed()
	}
	return p.stepShaped()
}

// stepFixed sends 32 viewers 16 packets of 1200 bytes each.
func (p *probe) stepFixed() (int, error) {
	segLen := probeSize + p.tag
	for j := range probeBatch {
		v := &p.viewers[p.next]
		buf := p.bufs[j]
		for k := range probeSegs {
			p.seal(v, buf[k*segLen:(k+1)*segLen], probeSize, p.seq+uint16(k))
		}
		p.hdrs[j].Hdr.Name = (*byte)(unsafe.Pointer(&v.sa))
		p.iovs[j].SetLen(probeSegs * segLen)
		p.next++
		if p.next == len(p.viewers) {
			p.next = 0
			p.seq += probeSegs // every viewer has had this run: the source moves on
		}
	}
	return p.send(probeBatch)
}

// stepShaped sends the current frame to the next 32 viewers, one datagram
// per run (a keyframe larger than a datagram takes several).
func (p *probe) stepShaped() (int, error) {
	if p.next == 0 {
		p.frame = p.frame[:0]
		for _, pk := range p.gen.Next().Packets {
			p.frame = append(p.frame, len(pk.Data))
		}
	}
	runs := (len(p.frame) + p.maxSegs - 1) / p.maxSegs
	n := min(probeBatch, len(p.viewers)-p.next)
	p.grow(n * runs)
	msg := 0
	for j := range n {
		v := &p.viewers[p.next+j]
		for start := 0; start < len(p.frame); start += p.maxSegs {
			run := p.frame[start:min(start+p.maxSegs, len(p.frame))]
			buf, off := p.bufs[msg], 0
			for k, size := range run {
				p.seal(v, buf[off:off+size+p.tag], size, p.seq+uint16(start+k))
				off += size + p.tag
			}
			p.hdrs[msg].Hdr.Name = (*byte)(unsafe.Pointer(&v.sa))
			p.iovs[msg].SetLen(off)
			msg++
		}
	}
	p.next += n
	if p.next == len(p.viewers) {
		p.next = 0
		p.seq += uint16(len(p.frame))
	}
	return p.send(msg)
}

// send hands the first n messages to the kernel and counts them.
func (p *probe) send(n int) (int, error) {
	sent, calls, pkts := 0, 0, 0
	var err error
	for sent < n {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(p.fd),
			uintptr(unsafe.Pointer(&p.hdrs[sent])), uintptr(n-sent), 0, 0, 0)
		calls++
		if e == 0 {
			sent += int(r)
			continue
		}
		if e != unix.EINTR && e != unix.EAGAIN && e != unix.ENOBUFS {
			err = fmt.Errorf("probe sendmmsg: %w", e)
			break
		}
	}
	for j := range sent {
		pkts += p.segments(j)
	}
	p.sent.Add(uint64(pkts))
	p.dgrams.Add(uint64(sent))
	p.calls.Add(uint64(calls))
	return pkts, err
}

// segments is the number of RTP packets in message j.
func (p *probe) segments(j int) int {
	seg := p.full + p.tag
	return (int(p.iovs[j].Len) + seg - 1) / seg
}

// seal writes one SRTP packet of the viewer into out (size+tag bytes) from
// an RTP packet of size bytes.
func (p *sealer) seal(v *probeViewer, out []byte, size int, seq uint16) {
	out[0], out[1] = 0x80, 96
	binary.BigEndian.PutUint16(out[2:], seq)
	binary.BigEndian.PutUint32(out[4:], uint32(seq)*3000)
	binary.BigEndian.PutUint32(out[8:], v.ssrc)
	payload := p.payload[:size-rtpHeader]
	if p.gcm {
		// RFC 7714 IV: 00 00 || SSRC || ROC || SEQ, XOR the salt (ROC 0).
		var iv [12]byte
		binary.BigEndian.PutUint32(iv[2:], v.ssrc)
		binary.BigEndian.PutUint16(iv[10:], seq)
		for i := range iv {
			iv[i] ^= v.salt[i]
		}
		v.aead.Seal(out[rtpHeader:rtpHeader], iv[:], payload, out[:rtpHeader])
		return
	}
	// RFC 3711 AES-CM: IV = salt XOR (SSRC << 64) XOR (index << 16).
	var iv [16]byte
	copy(iv[:], v.salt[:])
	binary.BigEndian.PutUint32(iv[4:], binary.BigEndian.Uint32(iv[4:])^v.ssrc)
	binary.BigEndian.PutUint16(iv[12:], binary.BigEndian.Uint16(iv[12:])^seq)
	cipher.NewCTR(v.blk, iv[:]).XORKeyStream(out[rtpHeader:size], payload)
	v.mac.Reset()
	v.mac.Write(out[:size])
	v.mac.Write(p.roc[:])
	p.sum = v.mac.Sum(p.sum[:0])
	copy(out[size:], p.sum[:10])
}
