// Package streaming is janus.plugin.streaming: mountpoints fed by RTP (or
// the built-in demo clip), served to many WebRTC viewers. It speaks the
// Janus Streaming API, so janus.js and Janode apps work unchanged; media
// never passes through it: sources publish into the data plane, which
// encrypts and sends to every viewer.
package streaming

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/spillway-rtc/spillway/controlplane/plugin"
	"github.com/spillway-rtc/spillway/dataplane"
)

// Package is the plugin's Janus package name.
const Package = "janus.plugin.streaming"

// Config configures the plugin.
type Config struct {
	Plane *dataplane.Plane
	// AdminKey, when set, is required by create (and shows private
	// mountpoints in list).
	AdminKey string
	// RTPHost is where RTP ports listen when a stream names no iface.
	RTPHost netip.Addr
	// PortRange is where port 0 allocates from (inclusive).
	PortRange [2]uint16
	// Mountpoints are created at start, each as the body of a create request.
	Mountpoints []json.RawMessage
	Logger      *slog.Logger
}

// Plugin is the Streaming plugin.
type Plugin struct {
	cfg      Config
	log      *slog.Logger
	nextPort atomic.Uint32

	mu     sync.Mutex
	mounts map[uint64]*mountpoint
	closed bool
}

// New starts the plugin and the mountpoints of its configuration.
func New(cfg Config) (*Plugin, error) {
	if cfg.Plane == nil {
		return nil, errors.New("streaming: no data plane")
	}
	if !cfg.RTPHost.IsValid() {
		cfg.RTPHost = netip.MustParseAddr("127.0.0.1")
	}
	if cfg.PortRange == [2]uint16{} {
		cfg.PortRange = [2]uint16{20000, 40000}
	}
	if cfg.PortRange[0] == 0 || cfg.PortRange[0] > cfg.PortRange[1] {
		return nil, fmt.Errorf("streaming: invalid port range %d-%d", cfg.PortRange[0], cfg.PortRange[1])
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Plugin{cfg: cfg, log: cfg.Logger.With("plugin", Package), mounts: map[uint64]*mountpoint{}}
	p.nextPort.Store(rand.Uint32())
	for i, raw := range cfg.Mountpoints {
		a, e := parseArgs(raw)
		if e == nil {
			_, e = p.create(a, true)
		}
		if e != nil {
			_ = p.Close()
			return nil, fmt.Errorf("streaming: mountpoint %d of the configuration: %s", i, e.reason)
		}
	}
	return p, nil
}

// Info implements plugin.Plugin.
func (p *Plugin) Info() plugin.Info {
	return plugin.Info{
		Package:       Package,
		Name:          "Spillway Streaming plugin",
		Description:   "Mountpoints fed by RTP or a looped clip, served to many WebRTC viewers by Spillway's data plane.",
		Author:        "Spillway",
		Version:       1,
		VersionString: "0.0.1",
	}
}

// Close destroys every mountpoint.
func (p *Plugin) Close() error {
	p.mu.Lock()
	p.closed = true
	mounts := p.mounts
	p.mounts = map[uint64]*mountpoint{}
	p.mu.Unlock()
	for _, mp := range mounts {
		for _, s := range mp.sessions() {
			s.kick("stopped")
		}
		mp.close()
	}
	return nil
}

// NewSession implements plugin.Plugin.
func (p *Plugin) NewSession(h plugin.Handle) (plugin.Session, error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, errors.New("streaming plugin is shutting down")
	}
	return newSession(p, h), nil
}

func (p *Plugin) lookup(id uint64) (*mountpoint, *pluginError) {
	p.mu.Lock()
	defer p.mu.Unlock()
	mp, ok := p.mounts[id]
	if !ok {
		return nil, perr(errNoSuchMount, "No such mountpoint/stream %d", id)
	}
	return mp, nil
}

// syncRequest answers the requests that do not touch a PeerConnection. It
// returns nil data for a request it does not know.
func (p *Plugin) syncRequest(req string, a args) (map[string]any, *pluginError) {
	switch req {
	case "list":
		return p.list(a)
	case "info":
		return p.info(a)
	case "create":
		return p.create(a, false)
	case "edit":
		return p.edit(a)
	case "destroy":
		return p.destroy(a)
	case "enable", "disable":
		return p.setEnabled(a, req == "enable")
	case "kick_all":
		return p.kickAll(a)
	case "recording":
		if _, e := p.authorized(a); e != nil {
			return nil, e
		}
		return nil, perr(errCantRecord, "Recording is not supported by Spillway yet")
	}
	return nil, nil
}

func (p *Plugin) list(a args) (map[string]any, *pluginError) {
	key, e := a.str("admin_key", false)
	if e != nil {
		return nil, e
	}
	showPrivate := p.cfg.AdminKey != "" && key == p.cfg.AdminKey
	p.mu.Lock()
	mps := make([]*mountpoint, 0, len(p.mounts))
	for _, mp := range p.mounts {
		if !mp.spec.Private || showPrivate {
			mps = append(mps, mp)
		}
	}
	p.mu.Unlock()
	sort.Slice(mps, func(i, j int) bool { return mps[i].spec.ID < mps[j].spec.ID })
	list := make([]any, 0, len(mps))
	for _, mp := range mps {
		media := make([]any, 0, len(mp.spec.Streams))
		for i, st := range mp.spec.Streams {
			m := map[string]any{"mid": st.MID, "type": st.Media, "label": st.Label, "codec": st.Codec.Name}
			if st.MSID != "" {
				m["msid"] = st.MSID
			}
			if age := mp.ageMs(i); age >= 0 {
				m["age_ms"] = age
			}
			media = append(media, m)
		}
		e := map[string]any{
			"id": mp.spec.ID, "type": "live", "description": mp.spec.Description,
			"enabled": mp.enabled.Load(), "media": media,
		}
		if mp.spec.Metadata != "" {
			e["metadata"] = mp.spec.Metadata
		}
		list = append(list, e)
	}
	return map[string]any{"streaming": "list", "list": list}, nil
}

func (p *Plugin) info(a args) (map[string]any, *pluginError) {
	mp, secret, e := p.target(a)
	if e != nil {
		return nil, e
	}
	p.mu.Lock()
	spec := mp.spec
	p.mu.Unlock()
	admin := spec.Secret == "" || secret == spec.Secret
	info := map[string]any{
		"id": spec.ID, "name": spec.Name, "description": spec.Description,
		"enabled": mp.enabled.Load(), "type": "live", "source": spec.Type,
		"viewers": mp.viewerCount(),
	}
	if spec.Metadata != "" {
		info["metadata"] = spec.Metadata
	}
	if admin && spec.Secret != "" && secret == spec.Secret {
		info["secret"] = spec.Secret
		if spec.PIN != "" {
			info["pin"] = spec.PIN
		}
	}
	if admin && spec.Private {
		info["is_private"] = true
	}
	media := make([]any, 0, len(spec.Streams))
	for i, st := range spec.Streams {
		m := map[string]any{
			"mindex": i, "mid": st.MID, "type": st.Media, "label": st.Label,
			"pt": st.Codec.PT, "codec": st.Codec.Name, "rtpmap": st.Codec.Rtpmap(),
		}
		if st.MSID != "" {
			m["msid"] = st.MSID
		}
		if st.Codec.FMTP != "" {
			m["fmtp"] = st.Codec.FMTP
		}
		if age := mp.ageMs(i); age >= 0 {
			m["age_ms"] = age
		}
		if admin && spec.Type == "rtp" {
			m["host"] = st.Host.String()
			m["port"] = st.Port
			if st.RTCPPort >= 0 {
				m["rtcpport"] = st.RTCPPort
			}
			if in := mp.ingests[i]; in != nil {
				s := in.Stats()
				m["packets"] = s.Packets
				m["bytes"] = s.Bytes
			}
		}
		media = append(media, m)
	}
	info["media"] = media
	if admin {
		info["keyframe_requests"] = mp.kfRequests.Load()
	}
	return map[string]any{"streaming": "info", "info": info}, nil
}

func (p *Plugin) create(a args, fromConfig bool) (map[string]any, *pluginError) {
	if !fromConfig && p.cfg.AdminKey != "" {
		key, e := a.str("admin_key", false)
		if e != nil {
			return nil, e
		}
		if key != p.cfg.AdminKey {
			return nil, perr(errUnauthorized, "Unauthorized (wrong admin_key)")
		}
	}
	spec, e := parseSpec(a)
	if e != nil {
		return nil, e
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, perr(errCantCreate, "The plugin is shutting down")
	}
	if spec.ID == 0 {
		for spec.ID == 0 || p.mounts[spec.ID] != nil {
			spec.ID = rand.Uint64N(maxSafeJSONInteger) + 1
		}
	}
	if _, taken := p.mounts[spec.ID]; taken {
		p.mu.Unlock()
		return nil, perr(errCantCreate, "A stream with the provided ID already exists")
	}
	for _, mp := range p.mounts {
		if spec.Name != "" && mp.spec.Name == spec.Name {
			p.mu.Unlock()
			return nil, perr(errCantCreate, "A stream with the provided name already exists")
		}
	}
	// Reserve the id while the ports are bound outside the lock.
	p.mounts[spec.ID] = nil
	p.mu.Unlock()
	if spec.Name == "" {
		spec.Name = fmt.Sprintf("mp-%d", spec.ID)
	}
	if spec.Description == "" {
		spec.Description = spec.Name
	}
	mp, err := p.open(spec)
	p.mu.Lock()
	if err != nil {
		delete(p.mounts, spec.ID)
		p.mu.Unlock()
		return nil, perr(errCantCreate, "Can't create mountpoint: %v", err)
	}
	p.mounts[spec.ID] = mp
	p.mu.Unlock()
	p.log.Info("mountpoint created", "id", spec.ID, "type", spec.Type, "description", spec.Description)

	stream := map[string]any{"id": spec.ID, "type": "live", "description": spec.Description, "is_private": spec.Private}
	if spec.Type == "rtp" {
		ports := make([]any, 0, len(mp.spec.Streams))
		for _, st := range mp.spec.Streams {
			port := map[string]any{"type": st.Media, "mid": st.MID, "port": st.Port, "host": st.Host.String()}
			if st.MSID != "" {
				port["msid"] = st.MSID
			}
			if st.RTCPPort >= 0 {
				port["rtcp_port"] = st.RTCPPort
			}
			ports = append(ports, port)
			if spec.legacy { // the old names, which Janode still reads
				stream[st.Media+"_port"] = st.Port
				if st.RTCPPort >= 0 {
					stream[st.Media+"_rtcp_port"] = st.RTCPPort
				}
			}
		}
		stream["ports"] = ports
	}
	return map[string]any{"streaming": "created", "created": spec.Name, "permanent": false, "stream": stream}, nil
}

// target finds the mountpoint a request names and reads its secret field.
func (p *Plugin) target(a args) (*mountpoint, string, *pluginError) {
	id, _, e := a.id(true)
	if e != nil {
		return nil, "", e
	}
	secret, e := a.str("secret", false)
	if e != nil {
		return nil, "", e
	}
	mp, e := p.lookup(id)
	return mp, secret, e
}

// authorized finds the mountpoint of a request and checks its secret.
func (p *Plugin) authorized(a args) (*mountpoint, *pluginError) {
	mp, secret, e := p.target(a)
	if e != nil {
		return nil, e
	}
	p.mu.Lock()
	want := mp.spec.Secret
	p.mu.Unlock()
	if want != "" && secret != want {
		return nil, perr(errUnauthorized, "Unauthorized (wrong secret)")
	}
	return mp, nil
}

func (p *Plugin) edit(a args) (map[string]any, *pluginError) {
	mp, e := p.authorized(a)
	if e != nil {
		return nil, e
	}
	var upd [4]string
	var set [4]bool
	for i, k := range []string{"new_description", "new_metadata", "new_secret", "new_pin"} {
		set[i] = a.has(k)
		if upd[i], e = a.str(k, false); e != nil {
			return nil, e
		}
	}
	priv, e := a.boolean("new_is_private", false)
	if e != nil {
		return nil, e
	}
	p.mu.Lock()
	if set[0] && upd[0] != "" {
		mp.spec.Description = upd[0]
	}
	if set[1] {
		mp.spec.Metadata = upd[1]
	}
	if set[2] && upd[2] != "" {
		mp.spec.Secret = upd[2]
	}
	if set[3] {
		mp.spec.PIN = upd[3] // "" removes the PIN, as in Janus
	}
	if a.has("new_is_private") {
		mp.spec.Private = priv
	}
	p.mu.Unlock()
	return map[string]any{"streaming": "edited", "id": mp.spec.ID, "permanent": false}, nil
}

func (p *Plugin) destroy(a args) (map[string]any, *pluginError) {
	mp, e := p.authorized(a)
	if e != nil {
		return nil, e
	}
	p.mu.Lock()
	if p.mounts[mp.spec.ID] != mp {
		p.mu.Unlock()
		return nil, perr(errNoSuchMount, "No such mountpoint/stream %d", mp.spec.ID)
	}
	delete(p.mounts, mp.spec.ID)
	p.mu.Unlock()
	for _, s := range mp.sessions() {
		s.kick("stopped")
	}
	mp.close()
	p.log.Info("mountpoint destroyed", "id", mp.spec.ID)
	return map[string]any{"streaming": "destroyed", "destroyed": mp.spec.ID, "id": mp.spec.ID}, nil
}

func (p *Plugin) setEnabled(a args, on bool) (map[string]any, *pluginError) {
	mp, e := p.authorized(a)
	if e != nil {
		return nil, e
	}
	mp.enabled.Store(on)
	for _, s := range mp.sessions() {
		s.applyPause()
	}
	return map[string]any{"streaming": "ok"}, nil
}

func (p *Plugin) kickAll(a args) (map[string]any, *pluginError) {
	mp, e := p.authorized(a)
	if e != nil {
		return nil, e
	}
	for _, s := range mp.sessions() {
		s.kick("kicked")
	}
	return map[string]any{"streaming": "kicked_all"}, nil
}
