package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"
)

// Config is a node's configuration. The zero value of a field means its
// default; the JSON names are the configuration file's keys.
type Config struct {
	ServerName  string `json:"server_name"`
	HTTPAddr    string `json:"http"`     // Janus HTTP API and the demo page; default :8088
	WSAddr      string `json:"ws"`       // Janus WebSocket API; default :8188
	AdminAddr   string `json:"admin"`    // Admin API over HTTP; default 127.0.0.1:7088
	AdminWSAddr string `json:"admin_ws"` // Admin API over WebSocket; default 127.0.0.1:7188
	APISecret   string `json:"api_secret"`
	AdminSecret string `json:"admin_secret"` // default janusoverlord, as Janus's sample

	SessionTimeout Duration `json:"session_timeout"`         // default 60s
	ReclaimTimeout Duration `json:"reclaim_session_timeout"` // default 0: WebSocket sessions die with their socket

	MediaPort      int                       `json:"media_port"`      // the one UDP port of ICE-lite; default 10000
	MediaIPs       []netip.Addr              `json:"media_ips"`       // default: every address of every interface that is up
	Advertise      map[netip.Addr]netip.Addr `json:"nat_1_1"`         // candidate address to announce instead of a local one
	ConsentTimeout Duration                  `json:"consent_timeout"` // default 30s (RFC 7675)

	Workers int `json:"workers"` // data-plane workers; default one per CPU

	RTPHost           netip.Addr        `json:"rtp_host"`       // where RTP mountpoints listen; default 127.0.0.1
	RTPPortRange      [2]uint16         `json:"rtp_port_range"` // for port 0; default 20000-40000
	StreamingAdminKey string            `json:"streaming_admin_key"`
	Mountpoints       []json.RawMessage `json:"mountpoints"` // nil: the built-in demo mountpoints

	Logger *slog.Logger `json:"-"`
}

// Duration is a time.Duration that reads "30s" or a number of seconds.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	var n float64
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("a duration is a string like \"30s\" or a number of seconds")
	}
	*d = Duration(n * float64(time.Second))
	return nil
}

// LoadFile reads a JSON configuration file over c.
func (c *Config) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
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
		c.SessionTimeout = Duration(60 * time.Second)
	}
	if c.MediaPort == 0 {
		c.MediaPort = 10000
	}
	if c.ConsentTimeout == 0 {
		c.ConsentTimeout = Duration(30 * time.Second)
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
