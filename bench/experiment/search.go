package experiment

import (
	"context"
	"fmt"
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
	Loss      float64 // 1 - delivered/expected, 0 when more arrived
	Mpps      float64 // delivered per second
	Gbps      float64 // their SRTP bytes per second, in Gbit/s
	CPU       float64 // server core's busy share
	Softirq   float64 // of which softirq
	ProcCPU   float64 // the server process's CPU time per second (all its threads)
	RSS       int64   // server resident memory at the end of the window, bytes

	SampleLoss  float64       // loss the sample viewers measured themselves (RTP sequence gaps)
	JitterMs    float64       // the samples' mean video jitter
	P50, P99    time.Duration // source-to-viewer latency of the samples' packets
	LatPackets  uint64
	SourceLate  uint64 // frames the source sent late during the window
	WindowSecs  float64
	Pass        bool // Loss under the limit
	Description string
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
	Growth     float64 // step factor while every step passes
	Max        int     // never more viewers than this
	Resolution float64 // stop when the bracket is this narrow (fraction of the lower end)
	MaxSteps   int
	LossLimit  float64 // a step passes with loss under this
}

// Capacity is what a search found: the most viewers held under the loss
// limit, and every point measured on the way.
type Capacity struct {
	Best    Point // the passing point with the most viewers; zero if none passed
	Failing int   // the fewest viewers that failed; 0 if none did (Max reached)
	Points  []Point
}

// Search grows the load geometrically until a step fails, then bisects
// between the last passing and the first failing step.
func Search(ctx context.Context, s Stepper, c SearchConfig, logf func(format string, args ...any)) (Capacity, error) {
	var cap Capacity
	lo, hi := 0, 0 // largest passing, smallest failing (0: none yet)
	n := c.Start
	for step := 0; step < c.MaxSteps; step++ {
		p, err := s.Measure(ctx, n)
		if err != nil {
			return cap, err
		}
		p.Pass = p.Loss < c.LossLimit
		cap.Points = append(cap.Points, p)
		logf("%-22s %5d viewers: loss %7.3f%%, %.3f Mpps, %.2f Gbit/s, CPU %3.0f%%, latency p50 %v p99 %v",
			p.Label(), p.Viewers, 100*p.Loss, p.Mpps, p.Gbps, 100*p.CPU, p.P50.Round(time.Millisecond/10), p.P99.Round(time.Millisecond/10))
		if p.Pass {
			if p.Viewers > cap.Best.Viewers {
				cap.Best = p
			}
			lo = max(lo, p.Viewers)
		} else if hi == 0 || p.Viewers < hi {
			hi = p.Viewers
		}
		switch {
		case hi == 0 && lo >= c.Max:
			return cap, nil
		case hi == 0:
			n = min(c.Max, int(math.Ceil(float64(lo)*c.Growth)))
		case lo == 0 && hi <= 1:
			cap.Failing = hi
			return cap, nil
		default:
			if float64(hi-lo) <= math.Max(c.Resolution*float64(lo), 1) {
				cap.Failing = hi
				return cap, nil
			}
			n = (lo + hi) / 2
		}
	}
	cap.Failing = hi
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

// errorf wraps with the target's name.
func errorf(target string, format string, args ...any) error {
	return fmt.Errorf(target+": "+format, args...)
}
