package experiment

import (
	"context"
	"math"
	"strings"
	"sync"
	"time"
)

// Point is one measured window: a server, a sink model, a number of
// viewers, and what the sink and the samples saw.
type Point struct {
	Target  string  // e.g. "spillway-socket"
	Sink    string  // tc (a NIC with UDP segmentation offload) or xdp (one without)
	Rate    float64 // stream bitrate, Mbit/s
	Viewers int     // viewers held during the window
	Up      int     // of which the server had not hung up

	Expected  float64 // RTP packets the viewers should have got: source packets x viewers
	Delivered float64 // RTP packets the sink counted (samples included)
	Loss      float64 // RTP loss as the viewers' sequence numbers tell it (the sink's flows, RFC 3550 6.4.1)
	Shortfall float64 // 1 - delivered/expected, 0 when more arrived: grows while the server's queues grow
	Mpps      float64 // delivered per second
	Gbps      float64 // their SRTP bytes per second, in Gbit/s
	CPU       float64 // the server cores' mean busy share
	Softirq   float64 // of which softirq
	ProcCPU   float64 // the server process's CPU time per second (all its threads)
	RSS       int64   // server resident memory at the end of the window, bytes

	SampleLoss float64       // loss the sample viewers measured themselves (RTP sequence gaps)
	JitterMs   float64       // the samples' mean video jitter
	P50, P99   time.Duration // source-to-viewer latency of the samples' packets
	LatPackets uint64
	SourceLate uint64 // frames the source sent late during the window
	WindowSecs float64
	Pass       bool // Loss and Shortfall under their limits
}

// Label names the point's server and sink.
func (p Point) Label() string { return p.Target + "/" + p.Sink }

// Stepper changes and measures the load on one server: the search drives
// it.
type Stepper interface {
	// SetViewers joins or removes viewers to have n, settles, and measures
	// one window.
	Measure(ctx context.Context, n int) (Point, error)
}

// SearchConfig bounds a capacity search.
type SearchConfig struct {
	Start      int     // first step's viewers
	Growth     float64 // largest step factor
	Max        int     // never more viewers than this
	Resolution float64 // smallest step, as a fraction: near the limit, steps are this fine
	MaxSteps   int
	LossLimit  float64 // a step passes with loss under this
	// ShortfallLimit fails a step whose delivery falls this far behind
	// the source, lost or not: the server is queueing, not keeping up. It
	// is looser than LossLimit because what a server has in flight at
	// either end of a window counts in it (a frame's fan-out is about 1%
	// of a 3 s window).
	ShortfallLimit float64
}

// passes tells whether p is under both limits.
func (c SearchConfig) passes(p Point) bool {
	return p.Loss < c.LossLimit && (c.ShortfallLimit <= 0 || p.Shortfall < c.ShortfallLimit)
}

// nearly tells whether a failing p failed by little: it may have been one
// disturbed window.
func (c SearchConfig) nearly(p Point) bool {
	return p.Loss < marginal*c.LossLimit && (c.ShortfallLimit <= 0 || p.Shortfall < 2*c.ShortfallLimit)
}

// Capacity is what a search found: the most viewers held under the loss
// limit, and every point measured on the way.
type Capacity struct {
	Best    Point // the passing point with the most viewers; zero if none passed
	Failing int   // viewers of the step that failed; 0 if none did (Max or MaxSteps reached)
	Points  []Point
}

// Past nearCPU of the server core, a step grows by at most nearGrowth.
const (
	nearCPU    = 0.6
	nearGrowth = 0.1
)

// marginal bounds the loss, in multiples of the limit, of a failing step
// that is measured a second time.
const marginal = 4

// Search only climbs: a server pushed past its capacity may not recover
// when viewers leave (Janus keeps growing queues and its latency stays
// high), so a bisection from above would measure that, not the capacity.
// Each step grows the load by what the server core's idle share predicts
// it can take, at most Growth and at least Resolution, and the first step
// that fails ends the search (until one passes, a failing step halves).
func Search(ctx context.Context, s Stepper, c SearchConfig, logf func(format string, args ...any)) (Capacity, error) {
	var cap Capacity
	n := c.Start
	retried := false
	for step := 0; step < c.MaxSteps; step++ {
		p, err := s.Measure(ctx, n)
		if err != nil {
			return cap, err
		}
		p.Pass = c.passes(p)
		cap.Points = append(cap.Points, p)
		logf("%-22s %5d viewers: loss %7.3f%% (short %6.3f%%), %.3f Mpps, %.2f Gbit/s, CPU %3.0f%%, latency p50 %v p99 %v",
			p.Label(), p.Viewers, 100*p.Loss, 100*p.Shortfall, p.Mpps, p.Gbps, 100*p.CPU, p.P50.Round(time.Millisecond/10), p.P99.Round(time.Millisecond/10))
		if !p.Pass && c.nearly(p) && !retried {
			// A loss near the limit may be one disturbed window: measure
			// the same load once more before it ends the search.
			retried = true
			step--
			continue
		}
		retried = false
		if !p.Pass {
			if cap.Best.Viewers == 0 && n > 1 {
				n /= 2 // the first steps started too high: step down until one passes
				continue
			}
			cap.Failing = p.Viewers
			return cap, nil
		}
		if p.Viewers > cap.Best.Viewers {
			cap.Best = p
		}
		if n >= c.Max {
			return cap, nil
		}
		// Go 60% of the way to where the core would be full: the core's
		// cost per viewer is not quite linear, and overshooting ends the
		// search further from the capacity than undershooting. Past
		// nearCPU, at most nearGrowth: a server may fail before its core
		// is full (Spillway's queue mode, at 80-90%), and a step that
		// overshoots there reports the capacity a whole step low.
		f := c.Growth
		if p.CPU > 0 {
			f = min(f, max(1+c.Resolution, 1+0.6*(0.97/p.CPU-1)))
		}
		if p.CPU >= nearCPU {
			f = min(f, 1+max(nearGrowth, c.Resolution))
		}
		n = min(c.Max, max(n+1, int(math.Ceil(float64(p.Viewers)*f))))
	}
	return cap, nil
}

// tailBuffer keeps the last max bytes written: a server's log for errors.
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimRight(string(t.b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
