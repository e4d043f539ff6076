package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spillway-rtc/spillway/dataplane"
	"github.com/spillway-rtc/spillway/dataplane/afxdp"
	"github.com/spillway-rtc/spillway/knobs"
)

// Knobs is the node's table of tunables: every knob of Spillway, with its
// path, type, default and doc. The configuration file, the flags, the Admin
// API and the knob directory all set these; docs/knobs.md is made from it.
type Knobs struct {
	*knobs.Table
	srv atomic.Pointer[Server] // set by Attach: live knobs reach the running node through it
}

// NewKnobs builds the table.
func NewKnobs() *Knobs {
	k := &Knobs{}
	plane := func(f func(p *dataplane.Plane, v knobs.Value) error) func(knobs.Value) error {
		return func(v knobs.Value) error {
			s := k.srv.Load()
			if s == nil {
				return errors.New("the node is not running")
			}
			return f(s.plane, v)
		}
	}
	t, err := knobs.NewTable(
		// The Janus API.
		knobs.Knob{Path: "janus/server_name", Kind: knobs.String, Default: "Spillway", Doc: "name in the info reply"},
		knobs.Knob{Path: "janus/http", Kind: knobs.Addr, Default: ":8088", Doc: "Janus HTTP API (/janus) and the demo page (/)"},
		knobs.Knob{Path: "janus/ws", Kind: knobs.Addr, Default: ":8188", Doc: "Janus WebSocket API (janus-protocol)"},
		knobs.Knob{Path: "janus/admin_http", Kind: knobs.Addr, Default: "127.0.0.1:7088", Doc: "Admin API over HTTP (/admin)"},
		knobs.Knob{Path: "janus/admin_ws", Kind: knobs.Addr, Default: "127.0.0.1:7188", Doc: "Admin API over WebSocket (janus-admin-protocol)"},
		knobs.Knob{Path: "janus/api_secret", Kind: knobs.String, Doc: "required by every Janus API request but info and ping when set"},
		knobs.Knob{Path: "janus/admin_secret", Kind: knobs.String, Default: "janusoverlord", Doc: "required by every Admin API request: change it"},
		knobs.Knob{Path: "janus/session_timeout", Kind: knobs.Duration, Default: "60s", Live: true,
			Doc: "a session with no request for this long is destroyed (0: never)",
			Apply: func(v knobs.Value) error {
				s := k.srv.Load()
				if s == nil {
					return errors.New("the node is not running")
				}
				s.gateway.SetSessionTimeout(v.Duration())
				return nil
			}},
		knobs.Knob{Path: "janus/reclaim_timeout", Kind: knobs.Duration, Default: "0s", Doc: "how long a WebSocket session outlives its socket, for claim"},

		// WebRTC.
		knobs.Knob{Path: "webrtc/port", Kind: knobs.Int, Default: "10000", Min: 0, Max: 65535, Doc: "the one UDP port of every PeerConnection (ICE-lite, DTLS, SRTP)"},
		knobs.Knob{Path: "webrtc/ips", Kind: knobs.IPs, Doc: "addresses the media port binds (empty: every interface address)"},
		knobs.Knob{Path: "webrtc/nat_1_1", Kind: knobs.String, Doc: "local=public pairs, comma separated: announce public in candidates"},
		knobs.Knob{Path: "webrtc/consent_timeout", Kind: knobs.Duration, Default: "30s", Doc: "a viewer with no STUN consent check for this long is hung up (RFC 7675)"},
		knobs.Knob{Path: "srtp/profiles", Kind: knobs.String, Default: "aead_aes_128_gcm,aead_aes_256_gcm,aes_cm_128_hmac_sha1_80",
			Doc: "SRTP profiles offered in DTLS, by preference (also aes_cm_128_hmac_sha1_32)"},

		// The Streaming plugin.
		knobs.Knob{Path: "streaming/rtp_host", Kind: knobs.String, Default: "127.0.0.1", Doc: "where RTP mountpoints listen when a stream names no iface"},
		knobs.Knob{Path: "streaming/rtp_ports", Kind: knobs.String, Default: "20000-40000", Doc: "the range port 0 allocates RTP ports from"},
		knobs.Knob{Path: "streaming/admin_key", Kind: knobs.String, Doc: "required by create when set"},

		// The data plane.
		knobs.Knob{Path: "dataplane/mode", Kind: knobs.Enum, Enum: []string{"socket", "queue", "afxdp"}, Default: "socket",
			Doc: "egress: socket (batched SRTP, sendmmsg, GSO), queue (a copy of Janus's path, the baseline) or afxdp (frames built by the workers, sent through AF_XDP)"},
		knobs.Knob{Path: "dataplane/workers", Kind: knobs.Int, Default: "0", Min: 0, Max: knobs.MaxCPU + 1, Doc: "data-plane workers, one per CPU (0: one per allowed CPU)"},
		knobs.Knob{Path: "dataplane/batch", Kind: knobs.Int, Default: "32", Min: 1, Max: 1024, Live: true,
			Doc: "packets a worker takes before it sends", Apply: plane(func(p *dataplane.Plane, v knobs.Value) error { return p.SetBatch(v.Int()) })},
		knobs.Knob{Path: "dataplane/flush_us", Kind: knobs.Int, Default: "1000", Min: 1, Max: 1000000, Live: true,
			Doc: "longest time in microseconds a worker holds a packet before it sends",
			Apply: plane(func(p *dataplane.Plane, v knobs.Value) error {
				return p.SetFlushInterval(time.Duration(v.Int()) * time.Microsecond)
			})},
		knobs.Knob{Path: "dataplane/max_lag", Kind: knobs.Duration, Default: "300ms", Live: true,
			Doc:   "oldest a packet may be, past flush_us, when a worker takes it: a worker behind its source drops older ones rather than send them late",
			Apply: plane(func(p *dataplane.Plane, v knobs.Value) error { return p.SetMaxLag(v.Duration()) })},
		knobs.Knob{Path: "dataplane/gso", Kind: knobs.Bool, Default: "true", Live: true,
			Doc:   "UDP GSO: a viewer's equal-size packets leave in one datagram",
			Apply: plane(func(p *dataplane.Plane, v knobs.Value) error { p.SetGSO(v.Bool()); return nil })},
		knobs.Knob{Path: "dataplane/mmsg", Kind: knobs.Bool, Default: "true", Live: true,
			Doc:   "sendmmsg: many viewers' datagrams in one system call (false: one sendto each)",
			Apply: plane(func(p *dataplane.Plane, v knobs.Value) error { p.SetMMsg(v.Bool()); return nil })},
		knobs.Knob{Path: "dataplane/prefetch", Kind: knobs.Bool, Default: "true", Live: true,
			Doc:   "prefetch the next viewers' state (structs, SRTP keys) while one is served",
			Apply: plane(func(p *dataplane.Plane, v knobs.Value) error { p.SetPrefetch(v.Bool()); return nil })},
		knobs.Knob{Path: "dataplane/hugepages", Kind: knobs.Bool, Default: "true",
			Doc: "back the heap with transparent huge pages (madvise): thousands of viewers' state misses the TLB less"},
		knobs.Knob{Path: "dataplane/sndbuf", Kind: knobs.Int, Default: "0", Min: 0, Max: math.MaxInt32, Live: true,
			Doc:   "SO_SNDBUF of the send sockets in bytes (0: the kernel's default)",
			Apply: plane(func(p *dataplane.Plane, v knobs.Value) error { return p.SetSndBuf(v.Int()) })},
		knobs.Knob{Path: "dataplane/rcvbuf", Kind: knobs.Int, Default: strconv.Itoa(dataplane.DefaultRcvBuf), Min: 0, Max: math.MaxInt32,
			Doc: "receive buffer of the RTP ingest sockets in bytes (0: 4 MiB): a source packet the kernel drops there is a gap for every viewer"},
		knobs.Knob{Path: "dataplane/call_kib", Kind: knobs.Int, Default: "256", Min: 64, Max: dataplane.MaxCallBytes >> 10, Live: true,
			Doc:   "KiB of datagrams a worker hands the kernel per send call: within the core's L2 cache, the kernel copies them cheaper",
			Apply: plane(func(p *dataplane.Plane, v knobs.Value) error { return p.SetCallBytes(v.Int() << 10) })},
		knobs.Knob{Path: "dataplane/history", Kind: knobs.Int, Default: "512", Min: 16, Max: 1 << 16, Doc: "packets kept per stream for NACK retransmission (a power of two)"},

		// AF_XDP (dataplane/mode afxdp).
		knobs.Knob{Path: "afxdp/zerocopy", Kind: knobs.Enum, Enum: []string{"auto", "on", "off"}, Default: "auto", Live: true,
			Doc:   "auto: zero-copy where the driver has it, else copy mode (the log and get_status say why); on: zero-copy or refuse; off: copy mode",
			Apply: plane(func(p *dataplane.Plane, v knobs.Value) error { return p.SetZeroCopy(afxdp.ZeroCopy(v.String())) })},
		knobs.Knob{Path: "afxdp/queues", Kind: knobs.CPUList,
			Doc: "NIC queues of the workers' AF_XDP sockets, one per worker in worker order, as a list like 0-3 (empty: 0, 1, ... one per worker)"},
		knobs.Knob{Path: "afxdp/frame_size", Kind: knobs.Int, Default: strconv.Itoa(afxdp.DefaultFrameSize), Min: afxdp.MinFrameSize, Max: 4096,
			Doc: "bytes of each UMEM frame (2048 or 4096)"},
		knobs.Knob{Path: "afxdp/ring_size", Kind: knobs.Int, Default: strconv.Itoa(afxdp.DefaultRingSize), Min: afxdp.MinRingSize, Max: afxdp.MaxRingSize,
			Doc: "entries of each socket's TX and completion rings, and its UMEM frames (a power of two)"},
		knobs.Knob{Path: "afxdp/busy_poll", Kind: knobs.Duration, Default: "0s",
			Doc: "above 0, a zero-copy socket's wake-up runs the driver's send loop in the worker for up to this long (SO_PREFER_BUSY_POLL) instead of softirq"},

		// CPUs.
		knobs.Knob{Path: "affinity/cpus", Kind: knobs.CPUList, Doc: "CPUs of the data-plane workers (empty: chosen from the process's mask)"},
		knobs.Knob{Path: "affinity/pin", Kind: knobs.Bool, Default: "true", Doc: "pin each worker to its CPU"},
		knobs.Knob{Path: "affinity/nic", Kind: knobs.String, Doc: "the NIC viewers are reached through: workers prefer its NUMA node; its queues and IRQs are reported at start"},
		knobs.Knob{Path: "affinity/align", Kind: knobs.Bool, Default: "false", Doc: "align the NIC's XPS masks and IRQ affinities to the workers' CPUs (false: only log what it would change)"},

		// The knob directory itself.
		knobs.Knob{Path: "knobs/dir", Kind: knobs.String, Doc: "where to mount the knob directory (empty: none); needs root and FUSE"},
	)
	if err != nil {
		panic(err) // the table is fixed at compile time: its tests catch this
	}
	k.Table = t
	return k
}

// Attach makes live knobs act on s and ends the start phase: from here on a
// change to a knob that is not live is refused.
func (k *Knobs) Attach(s *Server) {
	k.srv.Store(s)
	k.Start()
}

// Paths lists the knobs' paths (the Admin API's get_knobs).
func (k *Knobs) Paths() []string {
	var out []string
	for _, kn := range k.Knobs() {
		out = append(out, kn.Path)
	}
	return out
}

// LoadConfig reads a configuration file: knob paths (flat or nested) and
// "mountpoints", a list of create requests for the Streaming plugin.
func (k *Knobs) LoadConfig(path string) ([]json.RawMessage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var mounts []json.RawMessage
	if raw, ok := top["mountpoints"]; ok {
		if err := json.Unmarshal(raw, &mounts); err != nil {
			return nil, fmt.Errorf("%s: mountpoints must be a list of objects: %w", path, err)
		}
		if mounts == nil {
			mounts = []json.RawMessage{}
		}
		delete(top, "mountpoints")
	}
	rest, err := json.Marshal(top)
	if err != nil {
		return nil, err
	}
	return mounts, k.LoadJSON(path, rest)
}

// Config is the node configuration the knobs describe; mountpoints and the
// logger are the caller's.
func (k *Knobs) Config() (Config, error) {
	v := k.Value
	c := Config{
		ServerName: v("janus/server_name").String(),
		HTTPAddr:   v("janus/http").String(), WSAddr: v("janus/ws").String(),
		AdminAddr: v("janus/admin_http").String(), AdminWSAddr: v("janus/admin_ws").String(),
		APISecret: v("janus/api_secret").String(), AdminSecret: v("janus/admin_secret").String(),
		SessionTimeout: v("janus/session_timeout").Duration(),
		ReclaimTimeout: v("janus/reclaim_timeout").Duration(),
		MediaPort:      v("webrtc/port").Int(),
		MediaIPs:       v("webrtc/ips").IPs(),
		ConsentTimeout: v("webrtc/consent_timeout").Duration(),
		Workers:        v("dataplane/workers").Int(),
		Mode:           dataplane.Mode(v("dataplane/mode").String()),
		Batch:          v("dataplane/batch").Int(),
		FlushInterval:  time.Duration(v("dataplane/flush_us").Int()) * time.Microsecond,
		MaxLag:         v("dataplane/max_lag").Duration(),
		NoGSO:          !v("dataplane/gso").Bool(),
		NoMMsg:         !v("dataplane/mmsg").Bool(),
		NoPrefetch:     !v("dataplane/prefetch").Bool(),
		HugePages:      v("dataplane/hugepages").Bool(),
		SndBuf:         v("dataplane/sndbuf").Int(),
		RcvBuf:         v("dataplane/rcvbuf").Int(),
		CallBytes:      v("dataplane/call_kib").Int() << 10,
		History:        v("dataplane/history").Int(),
		AFXDP: dataplane.AFXDP{
			ZeroCopy:  afxdp.ZeroCopy(v("afxdp/zerocopy").String()),
			Queues:    v("afxdp/queues").CPUs(),
			FrameSize: v("afxdp/frame_size").Int(),
			RingSize:  v("afxdp/ring_size").Int(),
			BusyPoll:  v("afxdp/busy_poll").Duration(),
		},
		CPUs:              v("affinity/cpus").CPUs(),
		NoPin:             !v("affinity/pin").Bool(),
		NIC:               v("affinity/nic").String(),
		AlignNIC:          v("affinity/align").Bool(),
		StreamingAdminKey: v("streaming/admin_key").String(),
	}
	var err error
	if c.Advertise, err = ParseNAT(v("webrtc/nat_1_1").String()); err != nil {
		return c, fmt.Errorf("knob webrtc/nat_1_1: %w", err)
	}
	if c.Profiles, err = ParseProfiles(v("srtp/profiles").String()); err != nil {
		return c, fmt.Errorf("knob srtp/profiles: %w", err)
	}
	if c.RTPHost, err = netip.ParseAddr(v("streaming/rtp_host").String()); err != nil {
		return c, fmt.Errorf("knob streaming/rtp_host: %w", err)
	}
	if c.RTPPortRange, err = parsePortRange(v("streaming/rtp_ports").String()); err != nil {
		return c, fmt.Errorf("knob streaming/rtp_ports: %w", err)
	}
	if c.ServerName == "" {
		c.ServerName = "Spillway"
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = -1 // the knob's 0 is "never"; Config's 0 is "default"
	}
	return c, nil
}

// ParseNAT parses "local=public,local=public".
func ParseNAT(s string) (map[netip.Addr]netip.Addr, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[netip.Addr]netip.Addr{}
	for _, pair := range strings.Split(s, ",") {
		l, p, ok := strings.Cut(pair, "=")
		li, err1 := netip.ParseAddr(strings.TrimSpace(l))
		pi, err2 := netip.ParseAddr(strings.TrimSpace(p))
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%q is not local=public", pair)
		}
		out[li] = pi
	}
	return out, nil
}

var profileNames = map[string]dataplane.Profile{
	"aead_aes_128_gcm":        dataplane.ProfileAEADAES128GCM,
	"aead_aes_256_gcm":        dataplane.ProfileAEADAES256GCM,
	"aes_cm_128_hmac_sha1_80": dataplane.ProfileAES128CMHMACSHA1_80,
	"aes_cm_128_hmac_sha1_32": dataplane.ProfileAES128CMHMACSHA1_32,
}

// ParseProfiles parses a comma-separated list of SRTP profile names.
func ParseProfiles(s string) ([]dataplane.Profile, error) {
	var out []dataplane.Profile
	for _, name := range strings.Split(s, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		p, ok := profileNames[name]
		if !ok {
			return nil, fmt.Errorf("unknown SRTP profile %q", name)
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, errors.New("no SRTP profile")
	}
	return out, nil
}

func parsePortRange(s string) ([2]uint16, error) {
	lo, hi, ok := strings.Cut(s, "-")
	a, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	b, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
	if !ok || err1 != nil || err2 != nil || a == 0 || a > b {
		return [2]uint16{}, fmt.Errorf("%q is not a port range like 20000-40000", s)
	}
	return [2]uint16{uint16(a), uint16(b)}, nil
}
