// Package server assembles a Spillway node: the data plane, the WebRTC
// transport on the media port, the Janus API core with its transports, the
// Streaming plugin and the demo page. cmd/spillway runs one; the end-to-end
// tests start them on ephemeral ports.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/spillway-rtc/spillway/affinity"
	"github.com/spillway-rtc/spillway/controlplane/janus"
	"github.com/spillway-rtc/spillway/controlplane/peer"
	"github.com/spillway-rtc/spillway/controlplane/plugin"
	"github.com/spillway-rtc/spillway/controlplane/webrtc"
	"github.com/spillway-rtc/spillway/dataplane"
	"github.com/spillway-rtc/spillway/internal/hugepage"
	"github.com/spillway-rtc/spillway/plugins/streaming"
	"github.com/spillway-rtc/spillway/srtpbatch"
	"github.com/spillway-rtc/spillway/web"
)

// Version is Spillway's version string.
const Version = "0.1.0"

// Server is a running node.
type Server struct {
	cfg       Config
	log       *slog.Logger
	plane     *dataplane.Plane
	transport *peer.Transport
	streaming *streaming.Plugin
	gateway   *janus.Gateway
	servers   []*http.Server
	addrs     map[string]net.Addr
	wg        sync.WaitGroup
	closeOnce sync.Once
	stop      context.CancelFunc // ends the node's background loops
}

// Start brings a node up; every listener is bound when it returns.
func Start(cfg Config) (_ *Server, err error) {
	cfg.fill()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, log: cfg.Logger, addrs: map[string]net.Addr{}, stop: stop}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if cfg.HugePages {
		// The heap grows as viewers join: advise what it grew by every
		// few seconds.
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			hugepage.Run(ctx, 2*time.Second, cfg.Logger)
		}()
	}
	if cfg.NIC != "" && len(cfg.CPUs) == 0 {
		cpus, err := affinity.Choose(cfg.Workers, nil, cfg.NIC)
		if err != nil {
			return nil, fmt.Errorf("affinity: %w", err)
		}
		cfg.CPUs = cpus
	}
	s.plane, err = dataplane.New(dataplane.Config{
		Workers: cfg.Workers, Mode: cfg.Mode, Batch: cfg.Batch, FlushInterval: cfg.FlushInterval, MaxLag: cfg.MaxLag,
		NoGSO: cfg.NoGSO, NoMMsg: cfg.NoMMsg, NoPrefetch: cfg.NoPrefetch, NoPin: cfg.NoPin, SndBuf: cfg.SndBuf, RcvBuf: cfg.RcvBuf, CallBytes: cfg.CallBytes, History: cfg.History,
		AFXDP: cfg.AFXDP, CPUs: cfg.CPUs, Logger: cfg.Logger.With("part", "dataplane"),
	})
	if err != nil {
		return nil, fmt.Errorf("data plane: %w", err)
	}
	if cfg.NIC != "" {
		if err := s.alignNIC(); err != nil {
			return nil, err
		}
	}
	ips, err := cfg.mediaIPs()
	if err != nil {
		return nil, err
	}
	s.transport, err = peer.NewTransport(peer.Config{
		Port: cfg.MediaPort, IPs: ips, Advertise: cfg.Advertise, Profiles: cfg.Profiles,
		ConsentTimeout: cfg.ConsentTimeout, Logger: cfg.Logger.With("part", "webrtc"),
	})
	if err != nil {
		return nil, fmt.Errorf("media port: %w", err)
	}
	for _, a := range s.transport.LocalAddrs() {
		if err := s.plane.Join(a); err != nil {
			return nil, fmt.Errorf("data plane join %s: %w", a, err)
		}
	}
	mounts := cfg.Mountpoints
	if mounts == nil {
		mounts = DefaultMountpoints()
	}
	s.streaming, err = streaming.New(streaming.Config{
		Plane: s.plane, AdminKey: cfg.StreamingAdminKey, RTPHost: cfg.RTPHost,
		PortRange: cfg.RTPPortRange, Mountpoints: mounts, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	s.gateway, err = janus.New(janus.Config{
		ServerName: cfg.ServerName, APISecret: cfg.APISecret, AdminSecret: cfg.AdminSecret,
		SessionTimeout: cfg.SessionTimeout, ReclaimTimeout: cfg.ReclaimTimeout, Knobs: cfg.Knobs,
		Status:  s.status,
		Plugins: []plugin.Plugin{s.streaming}, Media: webrtc.MediaFactory(s.transport),
		Logger: cfg.Logger.With("part", "janus"),
	})
	if err != nil {
		return nil, err
	}
	httpMux := http.NewServeMux()
	httpMux.Handle("/janus", s.gateway.HTTPHandler())
	httpMux.Handle("/janus/", s.gateway.HTTPHandler())
	httpMux.Handle("/", web.Handler())
	adminMux := http.NewServeMux()
	adminMux.Handle("/admin", s.gateway.AdminHTTPHandler())
	adminMux.Handle("/admin/", s.gateway.AdminHTTPHandler())
	for _, l := range []struct {
		name, addr string
		h          http.Handler
	}{
		{"http", cfg.HTTPAddr, httpMux},
		{"ws", cfg.WSAddr, s.gateway.WebSocketHandler()},
		{"admin", cfg.AdminAddr, adminMux},
		{"admin-ws", cfg.AdminWSAddr, s.gateway.AdminWebSocketHandler()},
	} {
		if l.addr == "" || l.addr == "off" {
			continue
		}
		if err := s.serve(l.name, l.addr, l.h); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// alignNIC reports the NIC's TX queues and IRQs against the workers' CPUs
// and, when asked, aligns them; otherwise it logs what it would change.
func (s *Server) alignNIC() error {
	rep, err := affinity.Report(s.cfg.NIC)
	if err != nil {
		return fmt.Errorf("affinity/nic: %w", err)
	}
	var workers affinity.CPUSet
	for _, w := range s.plane.Stats().Workers {
		if w.CPU >= 0 {
			workers = append(workers, w.CPU)
		}
	}
	s.log.Info("NIC", "report", rep.String(), "workers", workers.String())
	if len(workers) == 0 {
		return nil
	}
	changes, err := affinity.Plan(s.cfg.NIC, workers)
	if err != nil {
		return fmt.Errorf("affinity/nic: %w", err)
	}
	for _, c := range changes {
		if s.cfg.AlignNIC {
			s.log.Info("aligning NIC", "change", c.String())
		} else {
			s.log.Info("NIC not aligned (set affinity/align to apply)", "would change", c.String())
		}
	}
	if s.cfg.AlignNIC && len(changes) > 0 {
		if err := affinity.Apply(changes); err != nil {
			s.log.Warn("NIC alignment incomplete", "err", err)
		}
	}
	return nil
}

func (s *Server) serve(name, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s listener: %w", name, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	s.servers = append(s.servers, srv)
	s.addrs[name] = ln.Addr()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("listener stopped", "listener", name, "err", err)
		}
	}()
	return nil
}

// Addr is the bound address of a listener: "http", "ws", "admin" or
// "admin-ws"; nil when it is off.
func (s *Server) Addr(name string) net.Addr { return s.addrs[name] }

// MediaAddrs are the bound addresses of the media port.
func (s *Server) MediaAddrs() []netip.AddrPort { return s.transport.LocalAddrs() }

// Plane is the node's data plane (tests read its statistics).
func (s *Server) Plane() *dataplane.Plane { return s.plane }

// Close stops everything in the reverse order of Start.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.stop()
		// The gateway first: it releases the long polls, which would
		// otherwise hold Shutdown for up to 30 s.
		if s.gateway != nil {
			_ = s.gateway.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, srv := range s.servers {
			_ = srv.Shutdown(ctx)
			_ = srv.Close()
		}
		s.wg.Wait()
		if s.streaming != nil {
			_ = s.streaming.Close()
		}
		if s.transport != nil {
			_ = s.transport.Close()
		}
		if s.plane != nil {
			_ = s.plane.Close()
		}
	})
}

// LogBanner tells the operator where everything is and how to feed the
// RTP mountpoint.
func (s *Server) LogBanner() {
	if a := s.Addr("http"); a != nil {
		s.log.Info("demo page and Janus HTTP API", "url", "http://"+hostPort(a)+"/", "api", "http://"+hostPort(a)+"/janus")
	}
	if a := s.Addr("ws"); a != nil {
		s.log.Info("Janus WebSocket API", "url", "ws://"+hostPort(a)+"/", "subprotocol", "janus-protocol")
	}
	if a := s.Addr("admin"); a != nil {
		s.log.Info("Janus Admin API", "url", "http://"+hostPort(a)+"/admin")
	}
	s.log.Info("media port (ICE-lite, DTLS-SRTP)", "addrs", fmt.Sprint(s.MediaAddrs()), "srtp", srtpbatch.Impl())
	if s.cfg.Mountpoints == nil {
		s.log.Info("mountpoint 1 plays the demo clip (VP8 + Opus) in a loop")
		s.log.Info("mountpoint 2 waits for RTP: VP8 pt 96 on 127.0.0.1:5004, Opus pt 111 on 127.0.0.1:5002; feed it with")
		s.log.Info("  ffmpeg -re -f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 " +
			"-map 0:v -c:v libvpx -deadline realtime -b:v 800k -g 60 -f rtp -payload_type 96 rtp://127.0.0.1:5004 " +
			"-map 1:a -c:a libopus -b:a 64k -f rtp -payload_type 111 rtp://127.0.0.1:5002")
		s.log.Info("  gst-launch-1.0 videotestsrc is-live=true ! vp8enc deadline=1 ! rtpvp8pay pt=96 ! udpsink host=127.0.0.1 port=5004 " +
			"audiotestsrc is-live=true ! opusenc ! rtpopuspay pt=111 ! udpsink host=127.0.0.1 port=5002")
	}
}

func hostPort(a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return a.String()
	}
	if ap.Addr().IsUnspecified() {
		return fmt.Sprintf("localhost:%d", ap.Port())
	}
	return ap.String()
}

// DefaultMountpoints is the built-in default: 1 = the demo clip on loop,
// 2 = an RTP mountpoint on fixed ports, as Janus's sample configuration has.
func DefaultMountpoints() []json.RawMessage {
	return []json.RawMessage{
		json.RawMessage(`{"type":"clip","id":1,"name":"demo","description":"Spillway demo clip (VP8 + Opus, looped)"}`),
		json.RawMessage(`{"type":"rtp","id":2,"name":"rtp-live","description":"Live RTP (VP8 + Opus) from an external source",` +
			`"media":[{"type":"video","mid":"v","label":"video","port":5004,"pt":96,"codec":"vp8"},` +
			`{"type":"audio","mid":"a","label":"audio","port":5002,"pt":111,"codec":"opus"}]}`),
	}
}
