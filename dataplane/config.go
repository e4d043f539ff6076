package dataplane

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spillway-rtc/spillway/dataplane/afxdp"
	"github.com/spillway-rtc/spillway/dataplane/udpframe"
)

// Mode is the egress engine (knob dataplane/mode), fixed when the plane
// starts.
type Mode string

const (
	// ModeSocket: per-core workers, batched SRTP, GSO and sendmmsg.
	ModeSocket Mode = "socket"
	// ModeQueue: the baseline, a deliberate copy of Janus's path: a copy,
	// a queue and a goroutine per viewer, one wake-up and one sendto per
	// packet. Kept so that every benchmark shows the ratio in one run.
	ModeQueue Mode = "queue"
	// ModeAFXDP: the socket workers, but each packet goes out as a frame
	// the worker builds (Ethernet, IP, UDP) through an AF_XDP socket per
	// worker and interface (xdp_linux.go). Viewers AF_XDP cannot reach
	// (on this host, or whose next hop is not resolved yet) are sent to
	// through the sockets, as in socket mode.
	ModeAFXDP Mode = "afxdp"
)

// AFXDP tunes afxdp mode.
type AFXDP struct {
	ZeroCopy afxdp.ZeroCopy // "": auto
	// Queues are the NIC queues the workers' sockets bind, one per worker
	// in worker order; nil: 0, 1, ... one per worker.
	Queues    []int
	FrameSize int           // 0: afxdp.DefaultFrameSize
	RingSize  int           // 0: afxdp.DefaultRingSize
	BusyPoll  time.Duration // 0: off
}

// Config tunes the data plane. The zero value of every field means "default".
type Config struct {
	Workers       int           // 0: len(CPUs), else one per CPU of the process's mask
	Batch         int           // max packets a worker takes before it sends; 0: 32
	FlushInterval time.Duration // 0: 1ms (a worker never holds a packet longer)
	History       int           // packets kept per outgoing stream for NACK; 0: 512 (power of two)
	Mode          Mode          // "": socket
	NoGSO         bool          // ablation: no UDP_SEGMENT
	NoMMsg        bool          // ablation: one sendto per datagram instead of sendmmsg
	NoPin         bool          // ablation: workers not pinned
	NoPrefetch    bool          // ablation: no prefetch of the next viewers' state
	SndBuf        int           // SO_SNDBUF of send sockets; 0: kernel default
	// RcvBuf is the receive buffer of RTP ingest sockets, bytes; 0:
	// DefaultRcvBuf.
	RcvBuf    int
	CallBytes int           // most bytes of datagrams one send call carries; 0: 256 KiB
	MaxLag    time.Duration // oldest a packet may be, past FlushInterval, when a worker takes it; 0: 300ms
	CPUs      []int         // CPUs for the workers, one each; nil: chosen from the process mask
	AFXDP     AFXDP         // afxdp mode only
	Logger    *slog.Logger
}

const (
	defaultBatch         = 32
	defaultFlushInterval = time.Millisecond
	defaultHistory       = 512
	// defaultCallBytes keeps a call's datagrams in a core's L2 cache from
	// the moment they are encrypted to the kernel's copy of them: a call of
	// 1.7 MB made that copy four times as dear per byte.
	defaultCallBytes = 256 << 10
	// defaultMaxLag bounds the latency a worker behind its source adds:
	// what waited longer is dropped rather than sent late. A worker
	// keeping up waits at most a keyframe's fan-out, about 150 ms with
	// 3000 viewers on one core; the in-queue would hold 14 s of a 2 Mbit/s
	// stream, and a worker working through it after an overload serves
	// every viewer seconds late for as long again.
	defaultMaxLag = 300 * time.Millisecond
	// MaxMaxLag bounds MaxLag: a saturation benchmark, whose backlog is
	// deep by design, uses it to drop nothing.
	MaxMaxLag = time.Minute

	// maxBatch bounds Batch: a worker's batch array is allocated once.
	maxBatch = 1024
	// maxFlushInterval bounds FlushInterval: longer would be a stall, not a batch.
	maxFlushInterval = time.Second
	// maxSockBuf bounds SndBuf and RcvBuf (the kernel doubles the value it
	// is given).
	maxSockBuf = 1 << 30
	// DefaultRcvBuf is the receive buffer of ingest sockets and of the
	// control plane's media port. The kernel's default, 208 KiB, holds
	// about 90 full-size packets by their true size, two keyframes of a
	// 2 Mbit/s stream: a reader held up for a few hundred milliseconds,
	// as a core saturated with queue-mode viewers holds it, overflowed,
	// and one source packet lost is a gap for every viewer.
	DefaultRcvBuf = 4 << 20

	// maxPacket is the largest plain RTP packet a Source accepts: an Ethernet
	// MTU with room to spare. Larger ones are dropped and counted.
	maxPacket = 1600
	// srtpOverhead bounds what SRTP adds (16-byte GCM tag; 10 for AES-CM-80).
	srtpOverhead = 32
	maxOut       = maxPacket + srtpOverhead

	// maxMsgs is the kernel's UIO_MAXIOV: the most messages one sendmmsg takes.
	maxMsgs = 1024
	// minCallBytes and MaxCallBytes bound CallBytes: at least a GSO
	// datagram's worth, at most a worker's scratch space.
	minCallBytes = 64 << 10
	MaxCallBytes = maxMsgs * maxOut
	// inQueue is each worker's inbound packet queue; when it is full, Publish
	// drops for that worker and counts it rather than stall the ingest.
	inQueue = 4096
	// viewerQueue is a queue-mode viewer's packet queue.
	viewerQueue = 1024
)

// withDefaults fills zero fields and rejects impossible values.
func (c Config) withDefaults() (Config, error) {
	if c.Workers < 0 || c.Batch < 0 || c.FlushInterval < 0 || c.History < 0 || c.SndBuf < 0 || c.CallBytes < 0 || c.MaxLag < 0 {
		return c, errors.New("dataplane: negative config value")
	}
	if c.Batch == 0 {
		c.Batch = defaultBatch
	}
	if err := checkBatch(c.Batch); err != nil {
		return c, err
	}
	if c.MaxLag == 0 {
		c.MaxLag = defaultMaxLag
	}
	if err := checkMaxLag(c.MaxLag); err != nil {
		return c, err
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = defaultFlushInterval
	}
	if err := checkFlushInterval(c.FlushInterval); err != nil {
		return c, err
	}
	if c.RcvBuf == 0 {
		c.RcvBuf = DefaultRcvBuf
	}
	if err := checkSockBuf("rcvbuf", c.RcvBuf); err != nil {
		return c, err
	}
	if err := checkSockBuf("sndbuf", c.SndBuf); err != nil {
		return c, err
	}
	if c.CallBytes == 0 {
		c.CallBytes = defaultCallBytes
	}
	if err := checkCallBytes(c.CallBytes); err != nil {
		return c, err
	}
	if c.History == 0 {
		c.History = defaultHistory
	}
	if c.History&(c.History-1) != 0 {
		return c, fmt.Errorf("dataplane: history %d is not a power of two", c.History)
	}
	switch c.Mode {
	case "":
		c.Mode = ModeSocket
	case ModeSocket, ModeQueue, ModeAFXDP:
	default:
		return c, fmt.Errorf("dataplane: unknown mode %q (want %q, %q or %q)", c.Mode, ModeSocket, ModeQueue, ModeAFXDP)
	}
	if c.AFXDP.ZeroCopy == "" {
		c.AFXDP.ZeroCopy = afxdp.ZeroCopyAuto
	}
	if c.AFXDP.FrameSize == 0 {
		c.AFXDP.FrameSize = afxdp.DefaultFrameSize
	}
	if c.AFXDP.RingSize == 0 {
		c.AFXDP.RingSize = afxdp.DefaultRingSize
	}
	if _, err := (afxdp.Config{ZeroCopy: c.AFXDP.ZeroCopy, FrameSize: c.AFXDP.FrameSize, RingSize: c.AFXDP.RingSize, BusyPoll: c.AFXDP.BusyPoll}).Check(); err != nil {
		return c, fmt.Errorf("dataplane: %w", err)
	}
	if afxdp.Headroom+udpframe.MaxLen+maxOut > c.AFXDP.FrameSize {
		return c, fmt.Errorf("dataplane: afxdp frame size %d too small", c.AFXDP.FrameSize)
	}
	c.AFXDP.Queues = append([]int(nil), c.AFXDP.Queues...)
	for _, q := range c.AFXDP.Queues {
		if q < 0 {
			return c, fmt.Errorf("dataplane: afxdp queues %v: negative queue", c.AFXDP.Queues)
		}
	}
	if c.CPUs != nil {
		if len(c.CPUs) == 0 {
			return c, errors.New("dataplane: empty CPU list")
		}
		if c.Workers != 0 && c.Workers != len(c.CPUs) {
			return c, fmt.Errorf("dataplane: %d workers on %d CPUs: one worker per CPU", c.Workers, len(c.CPUs))
		}
		c.CPUs = append([]int(nil), c.CPUs...)
		seen := map[int]bool{}
		for _, cpu := range c.CPUs {
			if cpu < 0 || seen[cpu] {
				return c, fmt.Errorf("dataplane: CPU list %v: negative or repeated CPU", c.CPUs)
			}
			seen[cpu] = true
		}
		c.Workers = len(c.CPUs)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

func checkBatch(n int) error {
	if n < 1 || n > maxBatch {
		return fmt.Errorf("dataplane: batch %d out of range [1, %d]", n, maxBatch)
	}
	return nil
}

func checkCallBytes(n int) error {
	if n < minCallBytes || n > MaxCallBytes {
		return fmt.Errorf("dataplane: call bytes %d out of range [%d, %d]", n, minCallBytes, MaxCallBytes)
	}
	return nil
}

func checkFlushInterval(d time.Duration) error {
	if d <= 0 || d > maxFlushInterval {
		return fmt.Errorf("dataplane: flush interval %v out of range (0, %v]", d, maxFlushInterval)
	}
	return nil
}

func checkMaxLag(d time.Duration) error {
	if d < time.Millisecond || d > MaxMaxLag {
		return fmt.Errorf("dataplane: max lag %v out of range [1ms, %v]", d, MaxMaxLag)
	}
	return nil
}

func checkSockBuf(name string, n int) error {
	if n < 0 || n > maxSockBuf {
		return fmt.Errorf("dataplane: %s %d out of range [0, %d]", name, n, maxSockBuf)
	}
	return nil
}

// Stats is a snapshot of the data plane's counters.
type Stats struct {
	Workers []WorkerStats
	Viewers int // in total
}

// WorkerStats are one worker's counters since the plane started. In queue
// mode each viewer's goroutine counts into the worker it was placed on.
type WorkerStats struct {
	Viewers      int
	Packets      uint64 // RTP packets the kernel accepted (each GSO segment counts)
	Bytes        uint64 // their bytes (SRTP, without UDP/IP headers)
	Sendmmsg     uint64 // send system calls (sendmmsg, or sendmsg/sendto without mmsg)
	Errors       uint64 // packets the kernel rejected, or that had nowhere to go
	Drops        uint64 // published packets dropped because the worker's queue was full
	Late         uint64 // packets dropped because they waited longer than MaxLag (queue mode: one per viewer)
	Datagrams    uint64 // messages the kernel accepted: a GSO datagram counts once
	Segments     uint64 // packets that went inside multi-segment GSO datagrams
	GSOFallbacks uint64 // sockets that turned GSO off after the kernel refused it
	XDPFrames    uint64 // packets sent as frames through AF_XDP (afxdp mode; the rest of Packets went through sockets)
	CPU          int    // the CPU the worker is pinned to; -1 when not pinned
}
