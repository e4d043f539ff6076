package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"
)

// Source defaults.
const (
	DefaultVideoSSRC = 0x5350574c // "SPWL"
	DefaultAudioSSRC = 0x53505741 // "SPWA"
	DefaultLateAfter = 2 * time.Millisecond
)

// SourceConfig says where a Source sends and what. Zero fields take the
// defaults named beside them.
type SourceConfig struct {
	Local      netip.AddrPort // send from; zero: the unspecified address, any port
	Video      netip.AddrPort // the server's video RTP port (required)
	Audio      netip.AddrPort // the server's audio RTP port; zero: no audio
	VideoModel VideoModel     // zero: DefaultVideoModel(DefaultBitrate)
	AudioModel AudioModel     // zero: DefaultAudioModel()
	VideoSSRC  uint32         // zero: DefaultVideoSSRC
	AudioSSRC  uint32         // zero: DefaultAudioSSRC
	Seed       uint64         // frame sizes, start values and filler follow from it
	// LateAfter is how far past its due time a frame or audio packet may
	// start going out before it counts as late. Zero: DefaultLateAfter.
	LateAfter time.Duration
	// RealTime, 1-99, runs the sending thread under SCHED_FIFO at that
	// priority (Linux, CAP_SYS_NICE), so busy cores do not delay its
	// wake-ups by a scheduler slice (measured: up to 6 ms with both cores
	// saturated). Zero: normal scheduling.
	RealTime int
	Logger   *slog.Logger // zero: slog.Default()
}

// Sent counts one stream's packets that went out, and their bytes (whole
// RTP packets, the UDP payload).
type Sent struct {
	Packets uint64
	Bytes   uint64
}

// Counters are a Source's totals so far.
type Counters struct {
	Video, Audio Sent
	Frames       uint64 // video frames sent
	Keyframes    uint64
	// Late counts frames and audio packets that started going out more than
	// LateAfter after their due time; MaxLate is the worst delay seen.
	Late       uint64
	MaxLate    time.Duration
	SendErrors uint64 // packets the socket refused (they still took a counter value)
}

// Source sends a video and an audio stream over UDP in real time: each
// frame's packets as one burst every 1/FPS (an encoder with no pacer), an
// audio packet every Ptime. Due times are counted from the start, so the
// schedule never drifts; after a stall it sends everything due at once and
// counts it late. Counters may be read while it runs.
type Source struct {
	cfg   SourceConfig
	log   *slog.Logger
	video *VideoGen
	audio *AudioGen // nil: no audio
	ran   atomic.Bool

	vPkts, vBytes, aPkts, aBytes atomic.Uint64
	frames, keys, late, errs     atomic.Uint64
	maxLate                      atomic.Int64
}

// NewSource checks the configuration and prepares the generators; Run opens
// the socket.
func NewSource(cfg SourceConfig) (*Source, error) {
	cfg.Local = netip.AddrPortFrom(cfg.Local.Addr().Unmap(), cfg.Local.Port())
	cfg.Video = netip.AddrPortFrom(cfg.Video.Addr().Unmap(), cfg.Video.Port())
	cfg.Audio = netip.AddrPortFrom(cfg.Audio.Addr().Unmap(), cfg.Audio.Port())
	if !cfg.Video.IsValid() || cfg.Video.Port() == 0 {
		return nil, fmt.Errorf("media: source needs the server's video address, got %v", cfg.Video)
	}
	v4 := cfg.Video.Addr().Is4()
	if cfg.Audio.IsValid() && (cfg.Audio.Port() == 0 || cfg.Audio.Addr().Is4() != v4) {
		return nil, fmt.Errorf("media: audio address %v does not go with video address %v", cfg.Audio, cfg.Video)
	}
	if cfg.Local.IsValid() && cfg.Local.Addr().Is4() != v4 {
		return nil, fmt.Errorf("media: local address %v cannot reach %v", cfg.Local, cfg.Video)
	}
	if cfg.VideoModel == (VideoModel{}) {
		cfg.VideoModel = DefaultVideoModel(DefaultBitrate)
	}
	if cfg.AudioModel == (AudioModel{}) {
		cfg.AudioModel = DefaultAudioModel()
	}
	if cfg.VideoSSRC == 0 {
		cfg.VideoSSRC = DefaultVideoSSRC
	}
	if cfg.AudioSSRC == 0 {
		cfg.AudioSSRC = DefaultAudioSSRC
	}
	if cfg.RealTime < 0 || cfg.RealTime > 99 {
		return nil, fmt.Errorf("media: real-time priority %d: must be 0 (off) or 1-99", cfg.RealTime)
	}
	if cfg.LateAfter <= 0 {
		cfg.LateAfter = DefaultLateAfter
	}
	s := &Source{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	var err error
	if s.video, err = NewVideoGen(cfg.VideoModel, cfg.VideoSSRC, cfg.Seed); err != nil {
		return nil, fmt.Errorf("media: source: %w", err)
	}
	if cfg.Audio.IsValid() {
		if s.audio, err = NewAudioGen(cfg.AudioModel, cfg.AudioSSRC, cfg.Seed); err != nil {
			return nil, fmt.Errorf("media: source: %w", err)
		}
	}
	return s, nil
}

// Counters returns the totals so far; safe while Run runs.
func (s *Source) Counters() Counters {
	return Counters{
		Video:      Sent{Packets: s.vPkts.Load(), Bytes: s.vBytes.Load()},
		Audio:      Sent{Packets: s.aPkts.Load(), Bytes: s.aBytes.Load()},
		Frames:     s.frames.Load(),
		Keyframes:  s.keys.Load(),
		Late:       s.late.Load(),
		MaxLate:    time.Duration(s.maxLate.Load()),
		SendErrors: s.errs.Load(),
	}
}

// Run sends until ctx is done, then returns nil. A Source runs once. It
// returns an error if the socket cannot be opened, the real-time priority
// cannot be had, or the very first packet cannot be sent (a wrong address);
// later send errors are only counted.
func (s *Source) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return errors.New("media: a source runs only once")
	}
	conn, err := listenUDP(s.cfg.Local, s.cfg.Video)
	if err != nil {
		return err
	}
	defer conn.Close()
	if s.cfg.RealTime == 0 {
		return s.loop(ctx, conn)
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked, so no other goroutine runs on this thread: it
		// exits with this goroutine (or, if it is the main thread, parks
		// for good). Its policy goes back to normal first all the same.
		runtime.LockOSThread()
		if err := setRealTime(s.cfg.RealTime); err != nil {
			errc <- err
			return
		}
		err := s.loop(ctx, conn)
		if rerr := setRealTime(0); rerr != nil {
			s.log.Warn("media source: sending thread keeps its real-time policy until it exits", "err", rerr)
		}
		errc <- err
	}()
	return <-errc
}

// loop is the schedule: sleep until the next due time, send everything due.
func (s *Source) loop(ctx context.Context, conn *net.UDPConn) error {
	// A keyframe burst is tens of packets; let the socket hold several.
	_ = conn.SetWriteBuffer(1 << 20)
	s.log.Info("media source running", "local", conn.LocalAddr().String(),
		"video", s.cfg.Video, "audio", s.cfg.Audio, "bitrate", s.cfg.VideoModel.Bitrate, "fps", s.cfg.VideoModel.FPS)

	vm, ptime := s.cfg.VideoModel, s.cfg.AudioModel.Ptime
	start := time.Now()
	var vn, an int64
	vDue, aDue := start, start
	for {
		next := vDue
		if s.audio != nil && aDue.Before(next) {
			next = aDue
		}
		if err := sleepUntil(ctx, next); err != nil {
			c := s.Counters()
			s.log.Info("media source stopped", "frames", c.Frames, "video_packets", c.Video.Packets,
				"audio_packets", c.Audio.Packets, "late", c.Late, "max_late", c.MaxLate, "send_errors", c.SendErrors)
			return nil
		}
		// Everything due by now, in due order.
		now := time.Now()
		for {
			audio := s.audio != nil && !aDue.After(vDue)
			due := vDue
			if audio {
				due = aDue
			}
			if due.After(now) {
				break
			}
			s.noteDelay(time.Since(due))
			var err error
			if audio {
				err = s.sendAudio(conn)
				an++
				aDue = start.Add(time.Duration(an) * ptime)
			} else {
				err = s.sendFrame(conn)
				vn++
				vDue = start.Add(vm.frameTime(vn))
			}
			if err != nil {
				return err
			}
		}
	}
}

func listenUDP(local, dst netip.AddrPort) (*net.UDPConn, error) {
	if !local.IsValid() {
		local = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
		if dst.Addr().Is4() {
			local = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
		}
	}
	network := "udp6"
	if local.Addr().Is4() {
		network = "udp4"
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(local))
	if err != nil {
		return nil, fmt.Errorf("media: source socket on %v: %w", local, err)
	}
	return conn, nil
}

// noteDelay counts a late start and keeps the worst delay.
func (s *Source) noteDelay(d time.Duration) {
	if d > s.cfg.LateAfter {
		s.late.Add(1)
	}
	for {
		m := s.maxLate.Load()
		if int64(d) <= m || s.maxLate.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

func (s *Source) sendFrame(conn *net.UDPConn) error {
	f := s.video.Next()
	for _, p := range f.Packets {
		if err := s.send(conn, s.cfg.Video, p, &s.vPkts, &s.vBytes); err != nil {
			return err
		}
	}
	s.frames.Add(1)
	if f.Key {
		s.keys.Add(1)
	}
	return nil
}

func (s *Source) sendAudio(conn *net.UDPConn) error {
	return s.send(conn, s.cfg.Audio, s.audio.Next(), &s.aPkts, &s.aBytes)
}

// send stamps the packet with the time right before the write and sends it.
// Only a failure before anything went out is returned.
func (s *Source) send(conn *net.UDPConn, dst netip.AddrPort, p Packet, pkts, bytes *atomic.Uint64) error {
	p.SetSendTime(time.Now().UnixNano())
	n, err := conn.WriteToUDPAddrPort(p.Data, dst)
	if err != nil {
		if s.vPkts.Load()+s.aPkts.Load() == 0 {
			return fmt.Errorf("media: first send to %v: %w", dst, err)
		}
		if s.errs.Add(1) == 1 {
			s.log.Warn("media source send failed; counting further failures", "to", dst, "err", err)
		}
		return nil
	}
	pkts.Add(1)
	bytes.Add(uint64(n))
	return nil
}
