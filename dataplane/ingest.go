package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// Stage 0 of the fan-out: an Ingest reads one source stream's plain RTP from
// a UDP port (the Streaming plugin's rtp mountpoints), drops what is not
// RTP, detects keyframes and publishes. One goroutine per Ingest for now;
// recvmmsg later.

// Ingest is a UDP RTP receiver feeding one stream of a Source.
type Ingest struct {
	p      *Plane
	conn   *net.UDPConn
	src    *Source
	stream int
	codec  string
	done   chan struct{}

	packets  atomic.Uint64
	bytes    atomic.Uint64
	invalid  atomic.Uint64
	lastAt   atomic.Int64 // unix ns
	lastFrom atomic.Pointer[netip.AddrPort]
}

// IngestStats are an Ingest's counters.
type IngestStats struct {
	Packets     uint64 // valid RTP packets published
	Bytes       uint64 // their bytes
	Invalid     uint64 // datagrams dropped as not RTP or too large
	LastArrival time.Time
	LastFrom    netip.AddrPort
}

// ListenRTP receives RTP on addr (port 0 picks one) and publishes it on
// src's stream. codec names the payload format for keyframe detection
// ("vp8", "vp9", "h264", "av1"; anything else, such as "opus", has none).
func (p *Plane) ListenRTP(src *Source, stream int, addr netip.AddrPort, codec string) (*Ingest, error) {
	if src == nil || stream < 0 || stream >= src.streams {
		return nil, fmt.Errorf("dataplane: ingest for stream %d of a source without it", stream)
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, fmt.Errorf("dataplane: ingest listen %s: %w", addr, err)
	}
	err = control(conn, func(fd int) error {
		if err := setRcvBuf(fd, p.cfg.RcvBuf); err != nil {
			return err
		}
		return setRxTimestamps(fd)
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("dataplane: ingest %s: %w", addr, err)
	}
	in := &Ingest{p: p, conn: conn, src: src, stream: stream, codec: codec, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		conn.Close()
		return nil, errPlaneClosed
	}
	p.ingests[in] = struct{}{}
	p.mu.Unlock()
	go in.run()
	return in, nil
}

// Addr is the bound address.
func (in *Ingest) Addr() netip.AddrPort { return in.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Stats returns the Ingest's counters.
func (in *Ingest) Stats() IngestStats {
	st := IngestStats{
		Packets: in.packets.Load(),
		Bytes:   in.bytes.Load(),
		Invalid: in.invalid.Load(),
	}
	if at := in.lastAt.Load(); at != 0 {
		st.LastArrival = time.Unix(0, at)
	}
	if from := in.lastFrom.Load(); from != nil {
		st.LastFrom = *from
	}
	return st
}

// Close stops the receiver and waits for its goroutine.
func (in *Ingest) Close() error {
	err := in.conn.Close()
	<-in.done
	in.p.mu.Lock()
	delete(in.p.ingests, in)
	in.p.mu.Unlock()
	if errors.Is(err, net.ErrClosed) {
		return nil // closed already
	}
	return err
}

func (in *Ingest) run() {
	defer close(in.done)
	buf := make([]byte, maxPacket+1) // one more byte tells "too large"
	oob := make([]byte, rxTimeSpace)
	epochWall := in.p.epoch.UnixNano()
	var from netip.AddrPort
	for {
		n, oobn, _, addr, err := in.conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			in.p.cfg.Logger.Warn("dataplane: ingest read", "addr", in.Addr(), "err", err)
			time.Sleep(10 * time.Millisecond) // do not spin on a persistent error
			continue
		}
		pkt := buf[:n]
		f, ok := parseRTP(pkt)
		if !ok || n > maxPacket {
			in.invalid.Add(1)
			continue
		}
		in.packets.Add(1)
		in.bytes.Add(uint64(n))
		in.lastAt.Store(time.Now().UnixNano())
		if addr != from { // allocate only when the sender changes
			from = addr
			a := addr
			in.lastFrom.Store(&a)
		}
		// The packet arrived when the kernel got it, not when this
		// goroutine got round to it: time waiting in the socket counts
		// towards max_lag like time waiting in a worker's queue.
		at := int64(time.Since(in.p.epoch))
		if t, ok := rxTime(oob[:oobn]); ok {
			at = min(at, max(at-int64(10*time.Second), t-epochWall))
		}
		in.src.publish(in.stream, pkt, f, IsKeyframe(in.codec, pkt[f.payload:f.payload+f.octets]), at)
	}
}
