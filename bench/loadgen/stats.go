package loadgen

import (
	"slices"
	"sync"
	"time"
)

// StampFunc reads the send time a source stamped into an RTP payload (unix
// nanoseconds); ok is false for a payload without one.
type StampFunc func(payload []byte, video bool) (sentNs int64, ok bool)

// StreamStats are one received stream's cumulative figures, as a sample
// viewer measured them after decryption.
type StreamStats struct {
	SSRC     uint32
	Video    bool
	Received uint64  // packets decrypted
	Expected uint64  // extended highest sequence number - first + 1
	Failed   uint64  // packets that did not decrypt
	Early    uint64  // packets that came before this side's DTLS handshake ended
	JitterMs float64 // RFC 3550 interarrival jitter, milliseconds
}

// Lost is Expected - Received, 0 when duplicates make it negative.
func (s StreamStats) Lost() uint64 {
	if s.Received >= s.Expected {
		return 0
	}
	return s.Expected - s.Received
}

// streamState tracks one SSRC (RFC 3550 A.1 and A.8).
type streamState struct {
	StreamStats
	clock    float64 // RTP units per second
	started  bool
	baseSeq  uint32
	maxSeq   uint32 // extended
	transit  float64
	jitter   float64 // RTP units
	haveJit  bool
	prevSeen time.Time
}

func (s *streamState) add(seq uint16, ts uint32, at time.Time) {
	s.Received++
	if !s.started {
		s.started = true
		s.baseSeq = uint32(seq)
		s.maxSeq = uint32(seq)
	} else {
		// Extend against the highest so far: forward within half the space.
		cycles := s.maxSeq &^ 0xffff
		ext := cycles | uint32(seq)
		if d := int32(ext - s.maxSeq); d < -0x8000 {
			ext += 1 << 16
		} else if d > 0x8000 {
			ext -= 1 << 16
		}
		if int32(ext-s.maxSeq) > 0 {
			s.maxSeq = ext
		}
	}
	s.Expected = uint64(s.maxSeq-s.baseSeq) + 1
	if s.clock > 0 {
		arrival := float64(at.UnixNano()) / 1e9 * s.clock
		transit := arrival - float64(ts)
		if s.haveJit {
			d := transit - s.transit
			if d < 0 {
				d = -d
			}
			s.jitter += (d - s.jitter) / 16
		}
		s.transit, s.haveJit = transit, true
		s.JitterMs = s.jitter / s.clock * 1000
	}
}

// latencies keeps source-to-viewer delays, bounded: past max it keeps a
// uniform sample (reservoir), enough for p50 and p99.
type latencies struct {
	mu   sync.Mutex
	ns   []int64
	seen uint64
	max  int
	rnd  uint64
}

func (l *latencies) add(d int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen++
	if len(l.ns) < l.max {
		l.ns = append(l.ns, d)
		return
	}
	l.rnd = l.rnd*6364136223846793005 + 1442695040888963407
	if i := (l.rnd >> 33) % l.seen; i < uint64(l.max) {
		l.ns[i] = d
	}
}

// reset drops what was kept, for a new measurement window.
func (l *latencies) reset() {
	l.mu.Lock()
	l.ns, l.seen = l.ns[:0], 0
	l.mu.Unlock()
}

// Percentiles is what a window's latencies came to.
type Percentiles struct {
	Count         uint64
	P50, P99, Max time.Duration
}

func (l *latencies) percentiles() Percentiles {
	l.mu.Lock()
	xs := slices.Clone(l.ns)
	seen := l.seen
	l.mu.Unlock()
	if len(xs) == 0 {
		return Percentiles{}
	}
	slices.Sort(xs)
	at := func(q float64) time.Duration { return time.Duration(xs[int(q*float64(len(xs)-1))]) }
	return Percentiles{Count: seen, P50: at(0.5), P99: at(0.99), Max: time.Duration(xs[len(xs)-1])}
}
