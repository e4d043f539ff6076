package peer

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/pion/dtls/v3"
	dtlsnet "github.com/pion/dtls/v3/pkg/net"
	"github.com/pion/ice/v4"
	"github.com/pion/srtp/v3"
	"github.com/pion/transport/v4/packetio"

	"github.com/spillway-rtc/spillway/dataplane"
)

// run owns the peer from the answer on: ICE, DTLS, keys, Up, then the
// sender-report and consent loop; its exit tears everything down.
func (p *Peer) run(conn *ice.Conn, a *answer) {
	defer p.wg.Done()
	ep := NewDTLSEndpoint(conn)
	var dconn *dtls.Conn
	defer func() {
		if dconn != nil {
			_ = dconn.Close() // close_notify while ICE still carries it
		}
		_ = ep.Close()
		p.finish()
	}()

	ctx, cancel := context.WithTimeout(p.ctx, p.t.cfg.ICETimeout)
	defer cancel()
	if err := p.agentRef().AwaitConnect(ctx); err != nil {
		p.shutdown(p.failure(ctx, "ice failed", err))
		return
	}
	p.readers.Add(1)
	go p.readLoop(conn, ep)

	p.setDTLSState("connecting")
	dconn, err := p.handshake(ctx, ep, a)
	if err != nil {
		p.setDTLSState("failed")
		p.shutdown(p.failure(ctx, "dtls failed", err))
		return
	}
	p.readers.Add(1)
	go p.dtlsReadLoop(dconn)

	h, enc, err := p.extractKeys(dconn, a.dtlsClient)
	if err != nil {
		p.setDTLSState("failed")
		p.shutdown(fmt.Sprintf("dtls failed: %v", err))
		return
	}
	if p.ctx.Err() != nil {
		return
	}
	if p.ev.Up != nil {
		p.ev.Up(h)
	}
	p.loop(conn, enc)
}

// failure names why the ICE/DTLS phase ended: our own timeout, or the error.
func (p *Peer) failure(ctx context.Context, what string, err error) string {
	if p.ctx.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("%s: no connection within %v", what, p.t.cfg.ICETimeout)
	}
	return fmt.Sprintf("%s: %v", what, err)
}

func (p *Peer) agentRef() *ice.Agent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.agent
}

func (p *Peer) setDTLSState(s string) {
	p.mu.Lock()
	p.dtlsState = s
	p.mu.Unlock()
}

// handshake runs DTLS as the answer decided: server for a=setup:active,
// client for a=setup:passive. Either way the peer's certificate must match
// the answer's fingerprint, and extended master secret is required.
func (p *Peer) handshake(ctx context.Context, ep *DTLSEndpoint, a *answer) (*dtls.Conn, error) {
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("no certificate from the viewer")
		}
		if got := Fingerprint(raw[0]); !strings.EqualFold(got, a.fingerprint) {
			return fmt.Errorf("certificate fingerprint %s does not match the answer's %s", got, a.fingerprint)
		}
		return nil
	}
	pc := dtlsnet.PacketConnFromConn(ep)
	common := []dtls.Option{
		dtls.WithCertificates(p.t.cert),
		dtls.WithSRTPProtectionProfiles(p.t.profiles...),
		dtls.WithExtendedMasterSecret(dtls.RequireExtendedMasterSecret),
		dtls.WithInsecureSkipVerify(true), // self-signed: the SDP fingerprint is the trust anchor
		dtls.WithVerifyPeerCertificate(verify),
		dtls.WithLoggerFactory(p.t.pionLog),
	}
	var dconn *dtls.Conn
	var err error
	if a.dtlsClient {
		opts := make([]dtls.ClientOption, 0, len(common))
		for _, o := range common {
			opts = append(opts, o)
		}
		dconn, err = dtls.ClientWithOptions(pc, ep.RemoteAddr(), opts...)
	} else {
		opts := make([]dtls.ServerOption, 0, len(common)+1)
		for _, o := range common {
			opts = append(opts, o)
		}
		opts = append(opts, dtls.WithClientAuth(dtls.RequireAnyClientCert))
		dconn, err = dtls.ServerWithOptions(pc, ep.RemoteAddr(), opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("dtls setup: %w", err)
	}
	if err := dconn.HandshakeContext(ctx); err != nil {
		_ = dconn.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	return dconn, nil
}

// extractKeys exports the SRTP keys (RFC 5764 4.2). Our write key goes to
// the data plane in the Handoff and into our own SRTCP context for sender
// reports; the viewer's write key decrypts its RTCP here and goes nowhere
// else.
func (p *Peer) extractKeys(dconn *dtls.Conn, isClient bool) (dataplane.Handoff, *srtp.Context, error) {
	prof, ok := dconn.SelectedSRTPProtectionProfile()
	if !ok {
		return dataplane.Handoff{}, nil, errors.New("no SRTP profile negotiated (use_srtp missing)")
	}
	state, ok := dconn.ConnectionState()
	if !ok {
		return dataplane.Handoff{}, nil, errors.New("no DTLS connection state")
	}
	cfg := srtp.Config{Profile: srtp.ProtectionProfile(prof)}
	if err := cfg.ExtractSessionKeysFromDTLS(&state, isClient); err != nil {
		return dataplane.Handoff{}, nil, fmt.Errorf("export keys: %w", err)
	}
	dec, err := srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, cfg.Profile,
		srtp.SRTCPReplayProtection(256))
	if err != nil {
		return dataplane.Handoff{}, nil, fmt.Errorf("srtcp decrypt context: %w", err)
	}
	enc, err := srtp.CreateContext(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, cfg.Profile)
	if err != nil {
		return dataplane.Handoff{}, nil, fmt.Errorf("srtcp encrypt context: %w", err)
	}
	pair, err := p.agentRef().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		return dataplane.Handoff{}, nil, fmt.Errorf("no selected candidate pair: %v", err)
	}
	p.rtcpDecrypt.Store(dec)

	p.mu.Lock()
	defer p.mu.Unlock()
	// The pair-change callback runs on the agent's own goroutine and may
	// not have landed yet: take the pair from the agent.
	p.local, p.remote = candidateAddr(pair.Local), candidateAddr(pair.Remote)
	if p.pairAt.IsZero() {
		p.pairAt = time.Now()
	}
	h := dataplane.Handoff{
		Profile:    dataplane.Profile(prof),
		MasterKey:  append([]byte(nil), cfg.Keys.LocalMasterKey...),
		MasterSalt: append([]byte(nil), cfg.Keys.LocalMasterSalt...),
		Local:      p.local,
		Remote:     p.remote,
	}
	for _, s := range p.streams {
		h.Streams = append(h.Streams, s.Stream)
	}
	p.profile = h.Profile
	p.dtlsState = "connected"
	p.up = true
	p.upAt = time.Now()
	p.handoffPath = [2]netip.AddrPort{h.Local, h.Remote}
	return h, enc, nil
}

// dtlsReadLoop lets pion/dtls process records after the handshake, so a
// close_notify or fatal alert from the viewer ends the peer.
func (p *Peer) dtlsReadLoop(dconn *dtls.Conn) {
	defer p.readers.Done()
	b := make([]byte, 1500)
	for {
		if _, err := dconn.Read(b); err != nil {
			if p.ctx.Err() != nil {
				return
			}
			if errors.Is(err, io.EOF) {
				p.shutdown("dtls closed by the viewer")
			} else {
				p.shutdown(fmt.Sprintf("dtls alert: %v", err))
			}
			return
		}
	}
}

// DTLSEndpoint is the DTLS conn's view of ICE: reads come from the
// reader that demultiplexes ICE's packets (RFC 7983) and hands DTLS
// records to Deliver, writes go straight to ICE. Wrap it with
// dtlsnet.PacketConnFromConn for pion/dtls.
type DTLSEndpoint struct {
	conn *ice.Conn
	in   *packetio.Buffer
}

// NewDTLSEndpoint makes the endpoint of conn.
func NewDTLSEndpoint(conn *ice.Conn) *DTLSEndpoint {
	return &DTLSEndpoint{conn: conn, in: packetio.NewBuffer()}
}

// Deliver queues a DTLS record read from ICE for the DTLS conn.
func (e *DTLSEndpoint) Deliver(b []byte) error {
	_, err := e.in.Write(b)
	return err
}

func (e *DTLSEndpoint) Read(b []byte) (int, error)         { return e.in.Read(b) }
func (e *DTLSEndpoint) Write(b []byte) (int, error)        { return e.conn.Write(b) }
func (e *DTLSEndpoint) Close() error                       { return e.in.Close() }
func (e *DTLSEndpoint) LocalAddr() net.Addr                { return e.conn.LocalAddr() }
func (e *DTLSEndpoint) RemoteAddr() net.Addr               { return e.conn.RemoteAddr() }
func (e *DTLSEndpoint) SetDeadline(t time.Time) error      { return e.in.SetReadDeadline(t) }
func (e *DTLSEndpoint) SetReadDeadline(t time.Time) error  { return e.in.SetReadDeadline(t) }
func (e *DTLSEndpoint) SetWriteDeadline(_ time.Time) error { return nil }
