package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/spillway-rtc/spillway/controlplane/janus"
	"github.com/spillway-rtc/spillway/dataplane"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// Config is a node's configuration. The zero value of a field means its
// default. cmd/spillway fills it from the knob table (knobs.go); tests fill
// it directly.
type Config struct {
	ServerName  string
	HTTPAddr    string // Janus HTTP API and the demo page; default :8088
	WSAddr      string // Janus WebSocket API; default :8188
	AdminAddr   string // Admin API over HTTP; default 127.0.0.1:7088
	AdminWSAddr string // Admin API over WebSocket; default 127.0.0.1:7188
	APISecret   string
	AdminSecret string // default janusoverlord, as Janus's sample

	SessionTimeout time.Duration // default 60s; negative: never
	ReclaimTimeout time.Duration // default 0: WebSocket sessions die with their socket

	MediaPort      int                       // the one UDP port of ICE-lite; default 10000
	MediaIPs       []netip.Addr              // default: every address of every interface that is up
	Advertise      map[netip.Addr]netip.Addr // candidate address to announce instead of a local one
	ConsentTimeout time.Duration             // default 30s (RFC 7675)
	Profiles       []dataplane.Profile       // SRTP profiles by preference; nil: GCM 128, GCM 256, CM-80

	// The data plane (see dataplane.Config).
	Workers       int // default one per CPU
	Mode          dataplane.Mode
	Batch         int
	FlushInterval time.Duration
	MaxLag        time.Duration
	NoGSO, NoMMsg bool
	NoPrefetch    bool
	HugePages     bool // advise the heap to transparent huge pages (internal/hugepage)
	SndBuf        int
	RcvBuf        int // receive buffer of RTP ingest sockets; 0: dataplane.DefaultRcvBuf
	CallBytes     int
	History       int
	AFXDP         dataplane.AFXDP
	CPUs          []int
	NoPin         bool
	NIC           string // workers prefer its NUMA node; its TX queues and IRQs are reported
	AlignNIC      bool   // write the NIC's XPS and IRQ affinity to match the workers

	RTPHost           netip.Addr        // where RTP mountpoints listen; default 127.0.0.1
	RTPPortRange      [2]uint16         // for port 0; default 20000-40000
	StreamingAdminKey string            // required by create when set
	Mountpoints       []json.RawMessage // nil: the built-in demo mountpoints

	// Knobs, when set, is served by the Admin API (get_knobs, set_knob).
	Knobs janus.Knobs

	Logger *slog.Logger
}

func (c *Config) fill() {
	if c.ServerName == "" {
		c.ServerName = "Spillway"
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = ":8088"
	}
	if c.WSAddr == "" {
		c.WSAddr = ":8188"
	}
	if c.AdminAddr == "" {
		c.AdminAddr = "127.0.0.1:7088"
	}
	if c.AdminWSAddr == "" {
		c.AdminWSAddr = "127.0.0.1:7188"
	}
	if c.AdminSecret == "" {
		c.AdminSecret = "janusoverlord"
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 60 * time.Second
	}
	if c.MediaPort == 0 {
		c.MediaPort = 10000
	}
	if c.ConsentTimeout == 0 {
		c.ConsentTimeout = 30 * time.Second
	}
	if !c.RTPHost.IsValid() {
		c.RTPHost = netip.MustParseAddr("127.0.0.1")
	}
	if c.RTPPortRange == [2]uint16{} {
		c.RTPPortRange = [2]uint16{20000, 40000}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c *Config) validate() error {
	if c.MediaPort < 0 || c.MediaPort > 65535 {
		return fmt.Errorf("media_port %d out of range", c.MediaPort)
	}
	if c.RTPPortRange[0] == 0 || c.RTPPortRange[0] > c.RTPPortRange[1] {
		return fmt.Errorf("rtp_port_range %d-%d is not a range", c.RTPPortRange[0], c.RTPPortRange[1])
	}
	if c.SessionTimeout < 0 || c.ReclaimTimeout < 0 || c.ConsentTimeout < 0 {
		return errors.New("timeouts must not be negative")
	}
	return nil
}

// mediaIPs lists the addresses the media port binds: the configured ones,
// or every address of every interface that is up (link-local ones left
// out: they need a zone and browsers do not pair with them).
func (c *Config) mediaIPs() ([]netip.Addr, error) {
	if len(c.MediaIPs) > 0 {
		return c.MediaIPs, nil
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	var out []netip.Addr
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			pfx, err := netip.ParsePrefix(a.String())
			if err != nil {
				continue
			}
			ip := pfx.Addr()
			if ip.IsLinkLocalUnicast() || ip.IsMulticast() {
				continue
			}
			out = append(out, ip)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no usable interface address for the media port: set media_ips")
	}
	return out, nil
}
