package peer

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// RFC 7675 consent freshness. pion's lite agent answers the viewer's
// Binding requests but never sends its own, and its idea of liveness counts
// any inbound packet. Consent must rest on authenticated Binding requests
// only, so consentConn sits below the UDPMux, recognises Binding requests
// for a registered local ufrag, checks their MESSAGE-INTEGRITY with that
// peer's password and stamps the time per remote address.

const (
	stunHeaderLen      = 20
	stunMagicCookie    = 0x2112A442
	stunBindingRequest = 0x0001
	stunAttrUsername   = 0x0006
	stunAttrIntegrity  = 0x0008
	stunIntegrityLen   = 20
	maxConsentRemotes  = 16
)

// consentConn wraps one media socket under the UDPMux. It implements
// ReadFromAddrPort/WriteToAddrPort, so the mux keeps its allocation-free
// path; everything but Binding requests passes through after a two-byte
// check.
type consentConn struct {
	*net.UDPConn
	addr netip.AddrPort

	mu      sync.RWMutex
	byUfrag map[string]*consent
}

func newConsentConn(c *net.UDPConn) *consentConn {
	a := c.LocalAddr().(*net.UDPAddr).AddrPort()
	return &consentConn{UDPConn: c, addr: netip.AddrPortFrom(a.Addr().Unmap(), a.Port()), byUfrag: map[string]*consent{}}
}

func (c *consentConn) register(ufrag string, st *consent) {
	c.mu.Lock()
	c.byUfrag[ufrag] = st
	c.mu.Unlock()
}

func (c *consentConn) unregister(ufrag string) {
	c.mu.Lock()
	delete(c.byUfrag, ufrag)
	c.mu.Unlock()
}

// ReadFromAddrPort is what the UDPMux reads with.
func (c *consentConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, from, err := c.UDPConn.ReadFromUDPAddrPort(b)
	if err == nil && n >= stunHeaderLen && b[0] == 0 && b[1] == stunBindingRequest {
		c.noteBinding(b[:n], from)
	}
	return n, from, err
}

// WriteToAddrPort is what the UDPMux writes with.
func (c *consentConn) WriteToAddrPort(b []byte, to netip.AddrPort) (int, error) {
	return c.UDPConn.WriteToUDPAddrPort(b, to)
}

// ReadFrom keeps the count on the net.PacketConn path too.
func (c *consentConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

func (c *consentConn) noteBinding(b []byte, from netip.AddrPort) {
	user, mi, ok := parseBindingRequest(b)
	if !ok {
		return
	}
	local, _, _ := strings.Cut(user, ":")
	c.mu.RLock()
	st := c.byUfrag[local]
	c.mu.RUnlock()
	if st == nil || !checkIntegrity(b, mi, st.pwd) {
		return
	}
	st.note(netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), time.Now())
}

// parseBindingRequest returns the USERNAME and the offset of the
// MESSAGE-INTEGRITY attribute of a STUN Binding request.
func parseBindingRequest(b []byte) (user string, mi int, ok bool) {
	if len(b) < stunHeaderLen || binary.BigEndian.Uint16(b[0:2]) != stunBindingRequest ||
		binary.BigEndian.Uint32(b[4:8]) != stunMagicCookie {
		return "", 0, false
	}
	end := stunHeaderLen + int(binary.BigEndian.Uint16(b[2:4]))
	if end > len(b) {
		return "", 0, false
	}
	for off := stunHeaderLen; off+4 <= end; {
		typ := binary.BigEndian.Uint16(b[off : off+2])
		l := int(binary.BigEndian.Uint16(b[off+2 : off+4]))
		if off+4+l > end {
			return "", 0, false
		}
		switch typ {
		case stunAttrUsername:
			user = string(b[off+4 : off+4+l])
		case stunAttrIntegrity:
			// Only FINGERPRINT may follow; what came before is what was signed.
			if l != stunIntegrityLen || user == "" {
				return "", 0, false
			}
			return user, off, true
		}
		off += 4 + (l+3)&^3
	}
	return "", 0, false
}

// checkIntegrity verifies the short-term credential HMAC-SHA1 (RFC 5389
// 15.4): over the message up to the attribute, with the header length
// covering the MESSAGE-INTEGRITY attribute itself.
func checkIntegrity(b []byte, mi int, pwd string) bool {
	var length [2]byte
	binary.BigEndian.PutUint16(length[:], uint16(mi-stunHeaderLen+4+stunIntegrityLen))
	mac := hmac.New(sha1.New, []byte(pwd))
	mac.Write(b[0:2])
	mac.Write(length[:])
	mac.Write(b[4:mi])
	return hmac.Equal(mac.Sum(nil), b[mi+4:mi+4+stunIntegrityLen])
}

// consent is one peer's record of authenticated Binding requests.
type consent struct {
	pwd string

	mu    sync.Mutex
	last  map[netip.AddrPort]time.Time
	total uint64
}

func newConsent(pwd string) *consent {
	return &consent{pwd: pwd, last: map[netip.AddrPort]time.Time{}}
}

func (c *consent) note(from netip.AddrPort, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total++
	if _, ok := c.last[from]; !ok && len(c.last) >= maxConsentRemotes {
		// A viewer probes a handful of candidates; forget the stalest.
		var oldest netip.AddrPort
		var at time.Time
		for a, t := range c.last {
			if at.IsZero() || t.Before(at) {
				oldest, at = a, t
			}
		}
		delete(c.last, oldest)
	}
	c.last[from] = now
}

// lastFrom is when the last authenticated request from addr arrived.
func (c *consent) lastFrom(addr netip.AddrPort) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last[addr]
}

func (c *consent) requests() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}
