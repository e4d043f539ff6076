package streaming

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/rtcp"

	"github.com/spillway-rtc/spillway/dataplane"
	"github.com/spillway-rtc/spillway/plugins/streaming/fileloop"
)

// mountpoint is a live source and the viewers watching it. Its RTP reaches
// the data plane's Source directly (ingest or file loop); the plugin only
// keeps the bookkeeping.
type mountpoint struct {
	spec    mountSpec // immutable after creation, except the fields edit changes (under p.mu)
	src     *dataplane.Source
	ingests []*dataplane.Ingest // per stream; nil for a clip
	rtcp    []*rtcpPort         // per stream; nil entries where there is none
	loop    *fileloop.Loop
	stop    context.CancelFunc
	done    chan struct{}
	created time.Time

	enabled    atomic.Bool
	kfRequests atomic.Uint64
	kfLast     atomic.Int64 // unix nanos of the last request forwarded to the source

	mu      sync.Mutex
	viewers map[*session]struct{}
}

// open starts the mountpoint's source. Ports are bound here, so a port in
// use fails the create with a clear error.
func (p *Plugin) open(s *mountSpec) (*mountpoint, error) {
	mp := &mountpoint{spec: *s, viewers: map[*session]struct{}{}, created: time.Now(), done: make(chan struct{})}
	mp.spec.Streams = append([]streamSpec(nil), s.Streams...)
	mp.enabled.Store(true)
	mp.src = p.cfg.Plane.NewSource(fmt.Sprintf("mountpoint-%d", s.ID), len(s.Streams))
	ctx, cancel := context.WithCancel(context.Background())
	mp.stop = cancel
	switch s.Type {
	case "clip":
		clip, err := loadClip(s.VideoFile, s.AudioFile)
		if err != nil {
			cancel()
			mp.src.Close()
			return nil, err
		}
		mp.loop = fileloop.NewLoop(clip, fileloop.Options{VideoPT: s.Streams[0].Codec.PT, AudioPT: s.Streams[1].Codec.PT},
			func(stream int, pkt []byte, keyframe bool) {
				if mp.enabled.Load() {
					mp.src.Publish(stream, pkt, keyframe)
				}
			})
		go func() {
			defer close(mp.done)
			if err := mp.loop.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				p.log.Error("clip loop stopped", "mountpoint", s.ID, "err", err)
			}
		}()
	case "rtp":
		close(mp.done)
		mp.ingests = make([]*dataplane.Ingest, len(s.Streams))
		mp.rtcp = make([]*rtcpPort, len(s.Streams))
		for i := range mp.spec.Streams {
			st := &mp.spec.Streams[i]
			if !st.Host.IsValid() {
				st.Host = p.cfg.RTPHost
			}
			in, err := bindPort(p, st.Port, func(port int) (*dataplane.Ingest, error) {
				return p.cfg.Plane.ListenRTP(mp.src, i, netip.AddrPortFrom(st.Host, uint16(port)), st.Codec.Name)
			})
			if err != nil {
				mp.close()
				return nil, fmt.Errorf("stream %s: %w", st.MID, err)
			}
			mp.ingests[i] = in
			st.Port = int(in.Addr().Port())
			if st.RTCPPort >= 0 {
				rp, err := bindPort(p, st.RTCPPort, func(port int) (*rtcpPort, error) {
					return listenRTCP(netip.AddrPortFrom(st.Host, uint16(port)), p.log)
				})
				if err != nil {
					mp.close()
					return nil, fmt.Errorf("stream %s rtcp: %w", st.MID, err)
				}
				mp.rtcp[i] = rp
				st.RTCPPort = int(rp.addr.Port())
			}
		}
	}
	return mp, nil
}

func loadClip(video, audio string) (*fileloop.Clip, error) {
	if video == "" && audio == "" {
		return fileloop.Demo()
	}
	return fileloop.Load(video, audio)
}

// bindPort binds a fixed port, or for port 0 the first free one of the
// plugin's range, starting at a rotating offset.
func bindPort[T any](p *Plugin, port int, bind func(int) (T, error)) (T, error) {
	if port != 0 {
		v, err := bind(port)
		if err != nil && errors.Is(err, syscall.EADDRINUSE) {
			return v, fmt.Errorf("port %d is in use", port)
		}
		return v, err
	}
	lo, hi := int(p.cfg.PortRange[0]), int(p.cfg.PortRange[1])
	n := hi - lo + 1
	start := int(p.nextPort.Add(1)) % n
	var zero T
	for i := 0; i < n; i++ {
		v, err := bind(lo + (start+i)%n)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return zero, err
		}
	}
	return zero, fmt.Errorf("no free port in %d-%d", lo, hi)
}

// close stops the source; viewers must have been removed by the caller.
func (mp *mountpoint) close() {
	mp.stop()
	<-mp.done
	for _, in := range mp.ingests {
		if in != nil {
			_ = in.Close()
		}
	}
	for _, r := range mp.rtcp {
		if r != nil {
			r.close()
		}
	}
	mp.src.Close()
}

// requestKeyframe forwards a viewer's PLI/FIR towards the source, at most
// every 200 ms per mountpoint (a burst of viewers asking at once gets one
// request upstream).
func (mp *mountpoint) requestKeyframe() {
	mp.kfRequests.Add(1)
	now := time.Now().UnixNano()
	last := mp.kfLast.Load()
	if now-last < int64(200*time.Millisecond) || !mp.kfLast.CompareAndSwap(last, now) {
		return
	}
	if mp.loop != nil {
		mp.loop.RequestKeyframe()
	}
	for i, r := range mp.rtcp {
		if r == nil || mp.spec.Streams[i].Media != "video" {
			continue
		}
		r.sendPLI(mp.ingests[i].Stats())
	}
}

func (mp *mountpoint) viewerCount() int {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	return len(mp.viewers)
}

func (mp *mountpoint) sessions() []*session {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	out := make([]*session, 0, len(mp.viewers))
	for s := range mp.viewers {
		out = append(out, s)
	}
	return out
}

// ageMs is how long ago media last arrived on stream i, or -1 if never.
func (mp *mountpoint) ageMs(i int) int64 {
	if mp.loop != nil {
		return 0
	}
	if mp.ingests == nil || mp.ingests[i] == nil {
		return -1
	}
	st := mp.ingests[i].Stats()
	if st.LastArrival.IsZero() {
		return -1
	}
	return time.Since(st.LastArrival).Milliseconds()
}

// rtcpPort is a stream's RTCP port: it learns where the source sends its
// RTCP from, and sends keyframe requests (PLI) back there.
type rtcpPort struct {
	conn *net.UDPConn
	addr netip.AddrPort
	peer atomic.Pointer[netip.AddrPort]
	ssrc atomic.Uint32 // the source's SSRC, from its sender reports
	sent atomic.Uint64
	done chan struct{}
	log  *slog.Logger
}

func listenRTCP(addr netip.AddrPort, log *slog.Logger) (*rtcpPort, error) {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	r := &rtcpPort{conn: conn, addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(), done: make(chan struct{}), log: log}
	go r.read()
	return r, nil
}

func (r *rtcpPort) read() {
	defer close(r.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		r.peer.Store(&from)
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok {
				r.ssrc.Store(sr.SSRC)
			}
		}
	}
}

// sendPLI asks the source for a keyframe. Without RTCP from the source yet,
// it aims at the port after the one the source sends RTP from, as RTP/RTCP
// port pairs usually go.
func (r *rtcpPort) sendPLI(in dataplane.IngestStats) {
	var to netip.AddrPort
	if p := r.peer.Load(); p != nil {
		to = *p
	} else if in.LastFrom.IsValid() {
		to = netip.AddrPortFrom(in.LastFrom.Addr(), in.LastFrom.Port()+1)
	} else {
		return
	}
	media := r.ssrc.Load()
	b, err := rtcp.Marshal([]rtcp.Packet{&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: media}})
	if err != nil {
		return
	}
	if _, err := r.conn.WriteToUDPAddrPort(b, to); err != nil {
		r.log.Debug("PLI to source failed", "to", to, "err", err)
		return
	}
	r.sent.Add(1)
}

func (r *rtcpPort) close() {
	_ = r.conn.Close()
	<-r.done
}
