package peer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/logging"

	"github.com/spillway-rtc/spillway/dataplane"
)

// Config configures a Transport. Zero values mean defaults.
type Config struct {
	Port      int                       // media port; 0 picks one (tests)
	IPs       []netip.Addr              // local addresses to bind; each gets its own SO_REUSEPORT socket
	Advertise map[netip.Addr]netip.Addr // optional 1:1 NAT: address to announce instead of a local one
	// Profiles is the SRTP profile preference; nil: AEAD_AES_128_GCM,
	// AEAD_AES_256_GCM, AES128_CM_HMAC_SHA1_80.
	Profiles       []dataplane.Profile
	ConsentTimeout time.Duration // 0: 30s (RFC 7675)
	ICETimeout     time.Duration // from answer to ICE+DTLS up; 0: 30s
	Logger         *slog.Logger
}

const (
	defaultConsentTimeout = 30 * time.Second
	defaultICETimeout     = 30 * time.Second
)

var defaultProfiles = []dataplane.Profile{
	dataplane.ProfileAEADAES128GCM,
	dataplane.ProfileAEADAES256GCM,
	dataplane.ProfileAES128CMHMACSHA1_80,
}

// Transport owns the media port: one socket per local address, an ICE
// UDPMux over all of them, and the DTLS certificate every peer presents.
type Transport struct {
	cfg         Config
	log         *slog.Logger
	pionLog     logging.LoggerFactory
	conns       []*consentConn
	mux         *ice.MultiUDPMuxDefault
	addrs       []netip.AddrPort
	cert        tls.Certificate
	fingerprint string
	profiles    []dtls.SRTPProtectionProfile
	networks    []ice.NetworkType

	mu     sync.Mutex
	peers  map[*Peer]struct{}
	closed bool
}

// NewTransport binds one SO_REUSEPORT socket per configured address on the
// same port, puts an ICE UDPMux over each and creates a self-signed ECDSA
// P-256 certificate for DTLS.
func NewTransport(cfg Config) (*Transport, error) {
	if len(cfg.IPs) == 0 {
		return nil, errors.New("peer: no local IPs configured")
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("peer: invalid port %d", cfg.Port)
	}
	if cfg.ConsentTimeout <= 0 {
		cfg.ConsentTimeout = defaultConsentTimeout
	}
	if cfg.ICETimeout <= 0 {
		cfg.ICETimeout = defaultICETimeout
	}
	if cfg.Profiles == nil {
		cfg.Profiles = defaultProfiles
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	t := &Transport{cfg: cfg, log: cfg.Logger, pionLog: newPionLoggerFactory(cfg.Logger), peers: map[*Peer]struct{}{}}
	for _, p := range cfg.Profiles {
		switch p {
		case dataplane.ProfileAES128CMHMACSHA1_80, dataplane.ProfileAES128CMHMACSHA1_32,
			dataplane.ProfileAEADAES128GCM, dataplane.ProfileAEADAES256GCM:
			t.profiles = append(t.profiles, dtls.SRTPProtectionProfile(p))
		default:
			return nil, fmt.Errorf("peer: unsupported SRTP profile %#04x", uint16(p))
		}
	}
	if len(t.profiles) == 0 {
		return nil, errors.New("peer: empty SRTP profile list")
	}

	var err error
	if t.cert, t.fingerprint, err = selfSignedCert(); err != nil {
		return nil, fmt.Errorf("peer: certificate: %w", err)
	}
	if err := t.bind(); err != nil {
		return nil, err
	}
	var v4, v6 bool
	muxes := make([]ice.UDPMux, 0, len(t.conns))
	for _, c := range t.conns {
		muxes = append(muxes, ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: c, Logger: t.pionLog.NewLogger("udpmux")}))
		if c.addr.Addr().Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	if v4 {
		t.networks = append(t.networks, ice.NetworkTypeUDP4)
	}
	if v6 {
		t.networks = append(t.networks, ice.NetworkTypeUDP6)
	}
	t.mux = ice.NewMultiUDPMuxDefault(muxes...)
	return t, nil
}

// bind opens one socket per IP, all on the same port. With Port 0 the first
// bind picks the port and the others follow it; a clash on a later address
// retries with a fresh port a few times.
func (t *Transport) bind() error {
	ips := make([]netip.Addr, 0, len(t.cfg.IPs))
	seen := map[netip.Addr]bool{}
	for _, ip := range t.cfg.IPs {
		ip = ip.Unmap()
		if !ip.IsValid() || ip.IsUnspecified() {
			return fmt.Errorf("peer: local IP %v must be a specific address", ip)
		}
		if !seen[ip] {
			seen[ip] = true
			ips = append(ips, ip)
		}
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := uint16(t.cfg.Port)
		var conns []*consentConn
		var err error
		for _, ip := range ips {
			var c *net.UDPConn
			c, err = listenUDP(netip.AddrPortFrom(ip, port))
			if err != nil {
				break
			}
			if port == 0 {
				port = c.LocalAddr().(*net.UDPAddr).AddrPort().Port()
			}
			conns = append(conns, newConsentConn(c))
		}
		if err == nil {
			t.conns = conns
			for _, c := range conns {
				t.addrs = append(t.addrs, c.addr)
			}
			return nil
		}
		for _, c := range conns {
			_ = c.Close()
		}
		lastErr = err
		if t.cfg.Port != 0 {
			break
		}
	}
	return fmt.Errorf("peer: bind media port: %w", lastErr)
}

// LocalAddrs returns the bound addresses; the data plane joins each.
func (t *Transport) LocalAddrs() []netip.AddrPort {
	return append([]netip.AddrPort(nil), t.addrs...)
}

// Fingerprint is the sha-256 fingerprint of the DTLS certificate, upper-case
// hex with colons, as it appears in a=fingerprint.
func (t *Transport) Fingerprint() string { return t.fingerprint }

// Close closes every peer (Down "transport closed") and the sockets.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	peers := make([]*Peer, 0, len(t.peers))
	for p := range t.peers {
		peers = append(peers, p)
	}
	t.mu.Unlock()
	for _, p := range peers {
		p.Close("transport closed")
	}
	for _, p := range peers {
		p.wait()
	}
	if err := t.mux.Close(); err != nil {
		return fmt.Errorf("peer: close mux: %w", err)
	}
	return nil
}

func (t *Transport) addPeer(p *Peer) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.peers[p] = struct{}{}
	return true
}

func (t *Transport) removePeer(p *Peer) {
	t.mu.Lock()
	delete(t.peers, p)
	t.mu.Unlock()
}

// advertised maps a local address to the one announced in candidates.
func (t *Transport) advertised(ip netip.Addr) netip.Addr {
	if a, ok := t.cfg.Advertise[ip]; ok && a.IsValid() {
		return a.Unmap()
	}
	return ip
}

// registerConsent makes the sockets count authenticated Binding requests
// for this local ufrag.
func (t *Transport) registerConsent(ufrag string, c *consent) {
	for _, cc := range t.conns {
		cc.register(ufrag, c)
	}
}

func (t *Transport) unregisterConsent(ufrag string) {
	for _, cc := range t.conns {
		cc.unregister(ufrag)
	}
}

// Fingerprint is a certificate's SHA-256 as a=fingerprint writes it
// after "sha-256 ": "AB:CD:...".
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return colonHex(sum[:])
}

// colonHex writes bytes as a=fingerprint does: "AB:CD:...".
func colonHex(raw []byte) string {
	var b strings.Builder
	for i, v := range raw {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", v)
	}
	return b.String()
}

func selfSignedCert() (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "spillway"},
		NotBefore:    time.Now().Add(-24 * time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("create certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, Fingerprint(der), nil
}
