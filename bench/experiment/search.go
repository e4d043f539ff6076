package experiment

import (
	"context"
	"fmt"
	"math"
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
	Starved int     // viewers the sink saw no media go to in the window

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
	CatchUp    time.Duration // how long, before the window, the server took to work off what the step's joins left queued
	SourceLate uint64        // frames the source sent late during the window
	// The server's own drops in the window, where it counts them
	// (Spillway's get_status): packet copies older than max_lag,
	// packets a full worker queue turned away, and packets the kernel
	// refused.
	LateDrops, QueueDrops, Refused uint64
	DropsUnread                    bool // the server did not tell its drops in time
	WindowSecs                     float64
	Pass                           bool // loss, shortfall and latency under their limits
}

// Label names the point's server and sink.
func (p Point) Label() string { return p.Target + "/" + p.Sink }

// Stepper changes and measures the load on one server: the search drives
// it.
type Stepper interface {
	// Measure joins or removes viewers to have n, settles, and measures
	// one window of about the given length (whole GOPs of the source).
	Measure(ctx context.Context, n int, window time.Duration) (Point, error)
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
	// LatencyLimit fails a step whose samples' median source-to-viewer
	// latency is this high or more: a standing queue, not a server
	// keeping up. Without it, a server at its core's limit passes a step
	// or not by how its queue stood in that window (Janus passed at
	// 160-230 ms and collapsed at the next step; socket mode passed at
	// 200 ms, 100 ms short of max_lag). 0: no limit.
	LatencyLimit time.Duration
	// Window is a step's measured window; KneeWindow that of a step near
	// the knee (the core past kneeCPU, a step near a limit, and a failing
	// step's second window). The VM's speed wanders by a tenth over a
	// few seconds at fixed load: at the knee a 2 s window passes or fails
	// by the moment it falls on, a longer one by the load.
	Window, KneeWindow time.Duration
}

// passes tells whether p is under every limit.
func (c SearchConfig) passes(p Point) bool {
	return p.Loss < c.LossLimit && (c.ShortfallLimit <= 0 || p.Shortfall < c.ShortfallLimit) &&
		(c.LatencyLimit <= 0 || p.P50 < c.LatencyLimit)
}

// nearly tells whether a failing p failed by little. Before any step has
// passed, a narrow failure gets a second window; a clear one says the
// first step started too high.
func (c SearchConfig) nearly(p Point) bool {
	return p.Loss < marginal*c.LossLimit && (c.ShortfallLimit <= 0 || p.Shortfall < 2*c.ShortfallLimit)
}

// close tells whether a passing p came near a limit: the server is at its
// knee, whatever its core says.
func (c SearchConfig) close(p Point) bool {
	return p.Loss >= c.LossLimit/2 || (c.ShortfallLimit > 0 && p.Shortfall >= c.ShortfallLimit/2) ||
		(c.LatencyLimit > 0 && p.P50 >= c.LatencyLimit/2)
}

// Capacity is what a search found: the most viewers held under the loss
// limit, and every point measured on the way.
type Capacity struct {
	Best    Point // the passing point with the most viewers; zero if none passed
	Failing int   // viewers of the lowest step that failed; 0 if none did (Max or MaxSteps reached)
	Points  []Point
}

// Past nearCPU of the server core, a step grows by at most nearGrowth;
// past kneeCPU, it gets the knee window.
const (
	nearCPU    = 0.6
	nearGrowth = 0.1
	kneeCPU    = 0.8
)

// marginal bounds the loss, in multiples of the limit, of a failing first
// step that is measured a second time before the search steps down.
const marginal = 4

// Search climbs: a server pushed past its capacity may not recover when
// viewers leave (Janus keeps growing queues and its latency stays high),
// so a bisection from above would measure that, not the capacity. Each
// step grows the load by what the server core's idle share predicts it
// can take, at most Growth and at least Resolution, to the next rung of
// a fixed ladder (rung). A failing step is measured once more, and the
// second failure ends the climb (until one step passes, a failing step
// halves instead). If it skipped rungs, they are tried one by one from
// the highest that passed, up to the lowest that failed.
//
// The second window is for the machine, not the server: a VM whose speed
// changes by a quarter for seconds at a time fails whichever step it
// slows, and a search that ends at the first failure reports the slowest
// moment it met. A server truly past its capacity fails both: Janus does
// not recover from queueing, and a Spillway worker behind its source drops
// what is older than max_lag.
func Search(ctx context.Context, s Stepper, c SearchConfig, logf func(format string, args ...any)) (Capacity, error) {
	var cap Capacity
	n := c.Start
	var failed *Point // the first window at n, when it failed
	asked := 0        // the viewers that window asked for
	knee := false     // the next step is near the knee
	for step := 0; step < c.MaxSteps; step++ {
		window := c.Window
		if knee || failed != nil {
			window = max(c.Window, c.KneeWindow)
		}
		p, err := s.Measure(ctx, n, window)
		if err != nil {
			return cap, err
		}
		p.Pass = c.passes(p)
		cap.Points = append(cap.Points, p)
		starved := ""
		if p.Starved > 0 {
			starved = fmt.Sprintf(", %d starved", p.Starved)
		}
		if p.LateDrops > 0 || p.QueueDrops > 0 || p.Refused > 0 {
			starved += fmt.Sprintf(", server dropped %d late %d queue-full %d refused", p.LateDrops, p.QueueDrops, p.Refused)
		}
		if p.DropsUnread {
			starved += ", server drops unread"
		}
		logf("%-22s %5d viewers: loss %7.3f%% (short %6.3f%%%s), %.3f Mpps, %.2f Gbit/s, CPU %3.0f%%, latency p50 %v p99 %v (caught up in %.1fs)",
			p.Label(), p.Viewers, 100*p.Loss, 100*p.Shortfall, starved, p.Mpps, p.Gbps, 100*p.CPU, p.P50.Round(time.Millisecond/10), p.P99.Round(time.Millisecond/10), p.CatchUp.Seconds())
		if !p.Pass && failed == nil && (cap.Best.Viewers > 0 || c.nearly(p)) {
			first := p
			failed, asked = &first, n
			step--
			// The same load once more: the viewers it held, not those
			// asked for (a server past its capacity may refuse joins).
			if p.Viewers > 0 {
				n = p.Viewers
			}
			continue
		}
		again := failed
		failed = nil
		if !p.Pass {
			if cap.Best.Viewers == 0 && n > 1 {
				n /= 2 // the first steps started too high: step down until one passes
				continue
			}
			if cap.Failing == 0 || p.Viewers < cap.Failing {
				cap.Failing = p.Viewers
			}
			// A step of more than one rung failed: the rungs between
			// are untried, and the capacity may be on one of them.
			// They are tried one by one from below (a failing step
			// leaves a server that recovers, as Spillway's workers
			// drop what is late; one that does not, fails them too,
			// and the capacity stays where it was).
			if next := c.rung(cap.Best.Viewers, 0); next < cap.Failing {
				n, knee = next, true
				continue
			}
			return cap, nil
		}
		if p.Viewers > cap.Best.Viewers {
			cap.Best = p
		}
		if again != nil && again.Viewers < asked {
			// It held its viewers but refused more: that is its limit,
			// and asking again would go round in circles.
			cap.Failing = asked
			return cap, nil
		}
		if n >= c.Max {
			return cap, nil
		}
		// Go 60% of the way to where the core would be full: the core's
		// cost per viewer is not quite linear, and overshooting ends the
		// search further from the capacity than undershooting. Near the
		// knee, at most nearGrowth: past nearCPU, or when the step came
		// near a limit or needed its second window. A server may fail
		// before its core is full (queue mode did, at 55-90% busy, while
		// its NACK copies kept the collector busy), and a step that
		// overshoots there reports the capacity a whole step low.
		cpu := p.CPU
		if again != nil {
			cpu = max(cpu, again.CPU)
		}
		f := c.Growth
		if cpu > 0 {
			f = min(f, max(1+c.Resolution, 1+0.6*(0.97/cpu-1)))
		}
		edge := again != nil || c.close(p)
		if cpu >= nearCPU || edge {
			f = min(f, 1+max(nearGrowth, c.Resolution))
		}
		knee = cpu >= kneeCPU || edge
		if cap.Failing > 0 { // trying the rungs below a failure, one by one
			if n = c.rung(p.Viewers, 0); n >= cap.Failing {
				return cap, nil
			}
			knee = true
			continue
		}
		n = min(c.Max, c.rung(max(n, p.Viewers), int(math.Ceil(float64(p.Viewers)*f))))
	}
	return cap, nil
}

// rung is the next load after held on the ladder Start·(1+Resolution)^k:
// the least rung above held that is at least target, or within a quarter
// of a rung below it (a step of one Resolution, or of nearGrowth, from a
// rung lands on the rung it aims at, not past it, whatever the rounding).
// On a fixed ladder two runs of a search try the same loads: their
// capacities differ by whole rungs, when the noise crosses one, instead
// of by wherever each run's steps happened to fall, which alone moved a
// capacity by up to a Resolution (and a ratio of two by twice that).
func (c SearchConfig) rung(held, target int) int {
	if c.Start <= 0 || c.Resolution <= 0 {
		return max(held+1, target)
	}
	q := math.Log1p(c.Resolution)
	at := func(k float64) int { return int(math.Round(float64(c.Start) * math.Exp(k*q))) }
	k := math.Ceil(math.Log(float64(max(target, 1))/float64(c.Start))/q - 0.25)
	for at(k) <= held {
		k++
	}
	return at(k)
}
