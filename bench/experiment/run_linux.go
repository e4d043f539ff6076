//go:build linux

package experiment

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pion/dtls/v3"

	"github.com/spillway-rtc/spillway/affinity"
	"github.com/spillway-rtc/spillway/bench/janus"
	"github.com/spillway-rtc/spillway/bench/loadgen"
	"github.com/spillway-rtc/spillway/bench/media"
	"github.com/spillway-rtc/spillway/bench/sysstat"
	"github.com/spillway-rtc/spillway/bpf"
)

// Targets the runner knows.
const (
	JanusT0        = "janus-t0" // Janus, the mountpoint relaying on its own thread
	JanusT1        = "janus-t1" // Janus, one helper thread
	SpillwayQueue  = "spillway-queue"
	SpillwaySocket = "spillway-socket"
)

// AllTargets in the order they print (RunOrder is the order they run).
var AllTargets = []string{JanusT0, JanusT1, SpillwayQueue, SpillwaySocket}

// Options is one run of the experiment. The runner itself runs in the
// client namespace; servers run in ServerNetns.
type Options struct {
	ServerNetns string
	ServerIf    string // the server's veth, where the tc sink goes
	ClientIf    string // the client's veth, where the XDP sink goes
	ServerIP    netip.Addr
	ClientIP    netip.Addr
	ServerCPUs  []int // the server process and all its threads
	Targets     []string
	Sinks       []string  // tc, xdp: a search each, on a fresh server
	Rates       []float64 // Mbit/s; a full search per rate
	Search      SearchConfig
	Samples     int
	Settle      time.Duration
	QoEWindow   time.Duration
	Profile     dtls.SRTPProtectionProfile // the one SRTP profile the viewers offer
	SpillwayBin string
	WorkDir     string
	ServerLog   io.Writer // servers' output; nil: kept only for errors
	Logger      *slog.Logger
	Logf        func(format string, args ...any) // progress lines
}

// Result is one target's outcome at one rate.
type Result struct {
	Target string
	Rate   float64
	ByS    map[string]Capacity // by sink
	QoE    map[string]Point    // by sink: at half its capacity
	Err    error               // the target could not be measured
}

// Run measures every target at every rate, in RunOrder, and returns the
// results in the order of o.Targets.
func Run(ctx context.Context, o Options) ([]Result, error) {
	if len(o.Targets) == 0 || len(o.Rates) == 0 || len(o.Sinks) == 0 {
		return nil, errors.New("experiment: nothing to run")
	}
	var out []Result
	for _, rate := range o.Rates {
		var done []Result
		for _, t := range RunOrder(o.Targets) {
			r := Result{Target: t, Rate: rate, ByS: map[string]Capacity{}, QoE: map[string]Point{}}
			var err error
			for _, sink := range o.Sinks {
				if err = runTarget(ctx, o, &r, sink); err != nil {
					break
				}
			}
			if err != nil {
				if ctx.Err() != nil {
					return append(out, done...), ctx.Err()
				}
				o.Logf("%s at %g Mbit/s: %v", t, rate, err)
				r.Err = err
			}
			done = append(done, r)
		}
		slices.SortStableFunc(done, func(a, b Result) int {
			return cmp.Compare(slices.Index(o.Targets, a.Target), slices.Index(o.Targets, b.Target))
		})
		out = append(out, done...)
	}
	return out, nil
}

// target is one server under test, started.
type target struct {
	name   string
	pid    int
	url    string
	mp     uint64
	video  netip.AddrPort
	audio  netip.AddrPort
	stop   func() error
	exited func() (bool, error)
	gone   <-chan struct{} // closed when the server has exited
	tail   func() string   // the end of its log
	// drops reads the server's own count of packets it dropped since
	// start; nil for a server that has none (Janus logs its discards
	// but counts none).
	drops func(context.Context) (drops, error)
}

// drops are a server's own counts of packets it did not send: late
// (older than max_lag), turned away by a full queue, refused by the
// kernel.
type drops struct{ late, queue, refused uint64 }

// logTailBytes is how much of a server's log an error quotes.
const logTailBytes = 600

func (t *target) logTail() string {
	if t.tail == nil {
		return ""
	}
	return oneLine(t.tail())
}

const (
	httpPort   = 8088
	mediaPort  = 10000
	videoPort  = 5004
	audioPort  = 5002
	mountpoint = 1
)

func startTarget(ctx context.Context, o Options, name string) (*target, error) {
	t := &target{name: name, mp: mountpoint,
		url:   fmt.Sprintf("http://%s/janus", netip.AddrPortFrom(o.ServerIP, httpPort)),
		video: netip.AddrPortFrom(o.ServerIP, videoPort), audio: netip.AddrPortFrom(o.ServerIP, audioPort)}
	dir, err := os.MkdirTemp(o.WorkDir, name+"-")
	if err != nil {
		return nil, err
	}
	switch name {
	case SpillwayQueue, SpillwaySocket:
		p, err := StartSpillway(ctx, SpillwayConfig{
			Bin: o.SpillwayBin, Dir: dir, Netns: o.ServerNetns, CPUs: o.ServerCPUs, IP: o.ServerIP,
			HTTPPort: httpPort, MediaPort: mediaPort, VideoPort: videoPort, AudioPort: audioPort,
			Mode: strings.TrimPrefix(name, "spillway-"), Mountpoint: mountpoint, Log: o.ServerLog,
		})
		if err != nil {
			return nil, err
		}
		t.pid, t.stop, t.exited, t.gone = p.pid(), p.stop, p.exited, p.gone
		t.tail = func() string { return p.tail.String(logTailBytes) }
		admin := fmt.Sprintf("http://%s/admin", netip.AddrPortFrom(o.ServerIP, httpPort+adminPortOffset))
		t.drops = func(ctx context.Context) (drops, error) { return spillwayDrops(ctx, admin) }
	case JanusT0, JanusT1:
		threads := 0
		if name == JanusT1 {
			threads = 1
		}
		cpus := affinity.CPUSet(o.ServerCPUs)
		p, err := janus.Start(ctx, janus.Config{
			EventLoops: 1, Interface: o.ServerIP.String(), HTTPIP: o.ServerIP.String(), HTTPPort: httpPort,
			MountpointID: mountpoint, RTPIP: o.ServerIP.String(), VideoPort: videoPort, AudioPort: audioPort,
			HelperThreads: threads, SessionTimeout: 120 * time.Second,
		}, janus.StartOptions{Dir: dir, Netns: o.ServerNetns, CPUs: cpus, Log: o.ServerLog})
		if err != nil {
			return nil, err
		}
		t.pid, t.stop, t.gone = p.PID(), p.Stop, p.Done()
		t.tail = func() string { return p.LogTail(logTailBytes) }
		t.exited = func() (bool, error) {
			select {
			case <-p.Done():
				return true, p.Wait()
			default:
				return false, nil
			}
		}
	default:
		return nil, fmt.Errorf("unknown target %q (want one of %s)", name, strings.Join(AllTargets, ", "))
	}
	return t, nil
}

// runTarget searches one server's capacity with one sink, then samples QoE
// at half of it. Each gets a fresh server: one pushed past its capacity
// may not recover (Janus has kept a second of queue after half its viewers
// hung up), and the QoE point is of a server at half its load, not of one
// coming back from overload.
func runTarget(ctx context.Context, o Options, r *Result, sink string) error {
	var c Capacity
	err := withTarget(ctx, o, r, sink, func(m *measurer) error {
		var err error
		c, err = Search(ctx, m, o.Search, o.Logf)
		r.ByS[sink] = c
		return err
	})
	half := c.Best.Viewers / 2
	if err != nil || half == 0 {
		return err
	}
	return withTarget(ctx, o, r, sink, func(m *measurer) error {
		p, err := m.Measure(ctx, half, o.QoEWindow)
		if err != nil {
			return err
		}
		p.Pass = o.Search.passes(p)
		r.QoE[sink] = p
		o.Logf("%-22s %5d viewers (half capacity): loss %.3f%% (samples %.3f%%), latency p50 %v p99 %v, jitter %.2f ms",
			p.Label(), p.Viewers, 100*p.Loss, 100*p.SampleLoss, p.P50.Round(time.Millisecond/10), p.P99.Round(time.Millisecond/10), p.JitterMs)
		return nil
	})
}

// withTarget starts r's server, its source, the viewers' side (none yet)
// and the sink, runs f, and stops them all.
func withTarget(ctx context.Context, o Options, r *Result, sink string, f func(*measurer) error) error {
	t, err := startTarget(ctx, o, r.Target)
	if err != nil {
		return err
	}
	defer func() {
		if err := t.stop(); err != nil {
			o.Logf("%s: stop: %v", t.name, err)
		}
	}()
	vm := media.DefaultVideoModel(int(r.Rate * 1e6))
	src, err := media.NewSource(media.SourceConfig{
		Local: netip.AddrPortFrom(o.ClientIP, 0), Video: t.video, Audio: t.audio,
		VideoModel: vm,
		RealTime:   10, // SCHED_FIFO: the source keeps time on a saturated client core
		Logger:     o.Logger,
	})
	if err != nil {
		return err
	}
	sctx, stopSrc := context.WithCancel(ctx)
	srcDone := make(chan error, 1)
	go func() { srcDone <- src.Run(sctx) }()
	defer func() { stopSrc(); <-srcDone }()

	load, err := loadgen.New(loadgen.Config{
		URL: t.url, Mountpoint: t.mp, LocalIP: o.ClientIP, Profiles: []dtls.SRTPProtectionProfile{o.Profile},
		Stamp: media.SentAt, Logger: o.Logger, PerSession: 100, Concurrency: 16,
		// A join takes well under a second below the knee; a server past
		// it that keeps joins waiting is failing, and 30 s each only
		// makes the failing step long.
		JoinTimeout: 10 * time.Second,
	})
	if err != nil {
		return err
	}
	defer load.Close()
	m := &measurer{o: o, t: t, src: src, video: vm, load: load, rate: r.Rate}
	defer m.closeSink()
	if err := m.useSink(sink); err != nil {
		return err
	}
	if err := f(m); err != nil {
		return err
	}
	if gone, err := t.exited(); gone {
		return fmt.Errorf("the server exited during the run: %v", err)
	}
	return nil
}

// measurer is the Stepper of one target: it sets the number of viewers
// and measures a window through the sink in use.
type measurer struct {
	o     Options
	t     *target
	src   *media.Source
	video media.VideoModel
	load  *loadgen.Load
	rate  float64
	sink  *bpf.MediaSink
	name  string
}

func (m *measurer) useSink(name string) error {
	m.closeSink()
	s, err := bpf.NewMediaSink()
	if err != nil {
		return err
	}
	switch name {
	case "tc":
		err = s.AttachTC(m.o.ServerNetns, m.o.ServerIf)
	case "xdp":
		err = s.AttachXDP("", m.o.ClientIf)
	default:
		err = fmt.Errorf("unknown sink %q (tc, xdp)", name)
	}
	if err != nil {
		s.Close()
		return err
	}
	for _, a := range m.load.SampleAddrs() {
		if err := s.AddSample(a); err != nil {
			s.Close()
			return err
		}
	}
	m.sink, m.name = s, name
	return nil
}

func (m *measurer) closeSink() {
	if m.sink != nil {
		m.sink.Close()
		m.sink = nil
	}
}

type snapshot struct {
	at      time.Time
	src     media.Counters
	sink    bpf.MediaCounts
	flows   map[bpf.MediaFlow]bpf.MediaFlowCount
	cpu     sysstat.CPUs
	proc    float64
	samples []loadgen.Sample
	drops   drops // the server's own, when it counts them
	// dropsErr is why the server's drops could not be read. A server
	// at its knee may answer get_status late (queue mode's goroutines
	// crowd the API's out of the core); the window is measured anyway.
	dropsErr error
}

func (m *measurer) snap(ctx context.Context) (snapshot, error) {
	var s snapshot
	var err error
	// The source's counters and the sink's are one reading only if the
	// source sent nothing in between: a frame sent there would count as
	// delivered at one end of the window and not as expected, a frame's
	// worth of shortfall (1.3% of a 2 s window), when this goroutine is
	// held up on the busy client core.
	for range 10 {
		s.at, s.src = time.Now(), m.src.Counters()
		if s.sink, err = m.sink.Counts(); err != nil {
			return s, err
		}
		if after := m.src.Counters(); after.Video.Packets == s.src.Video.Packets && after.Audio.Packets == s.src.Audio.Packets {
			break
		}
	}
	if s.flows, err = m.sink.Flows(); err != nil {
		return s, err
	}
	if s.cpu, err = sysstat.ReadCPUs(); err != nil {
		return s, err
	}
	s.proc, _ = sysstat.ProcessCPU(m.t.pid)
	s.samples = m.load.Samples()
	if m.t.drops != nil {
		s.drops, s.dropsErr = m.t.drops(ctx)
	}
	return s, nil
}

// retrySettle is the least wait before a window at the load of the last
// one: a hundred viewers just set up cost a server more for some seconds
// than once they run. catchUp then waits for what is still queued.
const retrySettle = 2 * time.Second

// Measure sets the load to n viewers, lets it settle, and measures a
// window.
func (m *measurer) Measure(ctx context.Context, n int, window time.Duration) (Point, error) {
	p := Point{Target: m.t.name, Sink: m.name, Rate: m.rate}
	if gone, err := m.t.exited(); gone {
		return p, fmt.Errorf("the server exited: %v (%s)", err, m.t.logTail())
	}
	cur := m.load.Viewers()
	switch {
	case n > cur:
		samples := 0
		if cur == 0 {
			samples = m.o.Samples
		}
		// Joins stop when the server dies, rather than each waiting out
		// its timeout.
		actx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-m.t.gone:
				cancel()
			case <-actx.Done():
			}
		}()
		err := m.load.Add(actx, n-cur, samples)
		cancel()
		if gone, werr := m.t.exited(); gone {
			return p, fmt.Errorf("the server exited: %v (%s)", werr, m.t.logTail())
		}
		if err != nil {
			return p, err
		}
		if cur == 0 {
			for _, a := range m.load.SampleAddrs() {
				if err := m.sink.AddSample(a); err != nil {
					return p, err
				}
			}
		}
		// A new viewer gets video from the next keyframe on: wait for one,
		// and for more if the server set some up after it.
		if err := m.waitKeyframe(ctx); err != nil {
			return p, err
		}
		if err := m.waitStreams(ctx, n); err != nil {
			return p, err
		}
	case n < cur:
		m.load.Remove(ctx, cur-n)
	}
	settle := m.o.Settle
	if n == cur {
		// The same load again, after a failing window: a server that
		// fell behind in it gets time to catch up, or shows it cannot.
		settle = max(settle, retrySettle)
	}
	m.load.ResetLatency()
	if !sleepCtx(ctx, settle) {
		return p, ctx.Err()
	}
	caught, err := m.catchUp(ctx)
	if err != nil {
		return p, err
	}
	start, err := m.syncGOP(ctx, 0)
	if err != nil {
		return p, err
	}
	a, err := m.snap(ctx)
	if err != nil {
		return p, err
	}
	m.load.ResetLatency()
	if _, err := m.syncGOP(ctx, start+m.gops(window)*uint64(m.video.GOP)); err != nil {
		return p, err
	}
	z, err := m.snap(ctx)
	if err != nil {
		return p, err
	}
	lat := m.load.Latency()
	p.Viewers, p.Up = m.load.Viewers(), m.load.Up()
	dt := z.at.Sub(a.at).Seconds()
	p.WindowSecs = dt
	srcPkts := float64(z.src.Video.Packets + z.src.Audio.Packets - a.src.Video.Packets - a.src.Audio.Packets)
	p.Expected = srcPkts * float64(p.Viewers)
	p.Delivered = float64(z.sink.Packets + z.sink.Sampled - a.sink.Packets - a.sink.Sampled)
	if p.Expected > 0 {
		p.Shortfall = max(0, 1-p.Delivered/p.Expected)
	}
	if exp, lost := bpf.FlowLoss(a.flows, z.flows); exp > 0 {
		p.Loss = float64(lost) / float64(exp)
	}
	p.Starved = max(0, p.Viewers-len(fed(a.flows, z.flows)))
	p.Mpps = p.Delivered / dt / 1e6
	p.Gbps = float64(z.sink.Bytes+z.sink.SampledBytes-a.sink.Bytes-a.sink.SampledBytes) * 8 / dt / 1e9
	for _, c := range m.o.ServerCPUs { // the mean over the server's cores
		busy, soft, _ := sysstat.Util(a.cpu, z.cpu, c)
		p.CPU += busy / float64(len(m.o.ServerCPUs))
		p.Softirq += soft / float64(len(m.o.ServerCPUs))
	}
	p.ProcCPU = (z.proc - a.proc) / dt
	p.RSS, _ = sysstat.RSS(m.t.pid)
	p.P50, p.P99, p.LatPackets = lat.P50, lat.P99, lat.Count
	p.CatchUp = caught
	p.SourceLate = z.src.Late - a.src.Late
	if err := errors.Join(a.dropsErr, z.dropsErr); err != nil {
		p.DropsUnread = true
		m.o.Logf("%s: the server's drops unread at %d viewers: %v", m.t.name, p.Viewers, err)
	} else {
		p.LateDrops, p.QueueDrops = z.drops.late-a.drops.late, z.drops.queue-a.drops.queue
		p.Refused = z.drops.refused - a.drops.refused
	}
	p.SampleLoss, p.JitterMs = sampleFigures(a.samples, z.samples)
	return p, nil
}

// A server whose core is nearly full works off slowly what the joins of a
// step left queued (ICE and DTLS for a hundred viewers take it a good part
// of a second): at 95% busy, a second of backlog takes twenty to drain. A
// window that starts while it drains measures the joins, not the load, and
// whether it passes is luck. catchUp waits until the samples' median
// latency is under caughtUp (first over the settle, which is enough below
// the knee, then caughtUpTick at a time), or stops falling by a twentieth
// per tick (a server that cannot catch up: the window shows it), or for at
// most maxCatchUp.
const (
	caughtUp     = 50 * time.Millisecond
	caughtUpTick = 500 * time.Millisecond
	maxCatchUp   = 10 * time.Second
)

// catchUp returns how long it waited past the settle, whose latencies it
// reads first.
func (m *measurer) catchUp(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	prev := time.Duration(math.MaxInt64)
	for {
		// Nothing reaching the samples (Count 0) is a server that has
		// stopped serving them, not one catching up.
		lat := m.load.Latency()
		if lat.Count == 0 || lat.P50 < caughtUp || lat.P50 > prev-prev/20 || time.Since(start) >= maxCatchUp {
			return time.Since(start), nil
		}
		prev = lat.P50
		m.load.ResetLatency()
		if !sleepCtx(ctx, caughtUpTick) {
			return 0, ctx.Err()
		}
	}
}

// gops is the window in whole GOPs of the source, at least one.
func (m *measurer) gops(window time.Duration) uint64 {
	gop := time.Duration(m.video.GOP) * time.Second / time.Duration(m.video.FPS)
	return uint64(max(1, math.Round(float64(window)/float64(gop))))
}

// syncGOP returns just after the source has sent the delta frame halfway
// through a GOP, the first at or after frame count from, and returns the
// frame count. Both ends of a window are taken so, whole GOPs apart: a
// frame's packets are counted as expected as soon as the source sends them,
// and delivered only once the server has sent them to every viewer, which
// at the knee takes a good part of a second for a keyframe. Halfway between
// two keyframes, what is in flight is the same few delta frames at both
// ends, and cancels, and every window holds the same media. (An end just
// after a keyframe was worth a few percent of shortfall to a server that
// fans out slowly.)
func (m *measurer) syncGOP(ctx context.Context, from uint64) (uint64, error) {
	gop := uint64(m.video.GOP)
	frame := time.Second / time.Duration(m.video.FPS)
	c := m.src.Counters().Frames
	from = max(from, c)
	// The count right after frame gop/2 of a GOP went out (frame 0 is a
	// keyframe).
	target := from - from%gop + gop/2 + 1
	if target < from {
		target += gop
	}
	wait := time.Duration(target-c) * frame
	if !sleepCtx(ctx, wait-2*frame) {
		return 0, ctx.Err()
	}
	for deadline := time.Now().Add(2*frame + 5*time.Second); ; {
		if c = m.src.Counters().Frames; c >= target {
			return c, nil
		}
		if time.Now().After(deadline) {
			return 0, errors.New("the source stopped sending frames")
		}
		if !sleepCtx(ctx, 500*time.Microsecond) {
			return 0, ctx.Err()
		}
	}
}

// waitKeyframe waits until the source has sent a keyframe, and a little
// longer for the server to relay it.
func (m *measurer) waitKeyframe(ctx context.Context) error {
	k := m.src.Counters().Keyframes
	for deadline := time.Now().Add(10 * time.Second); m.src.Counters().Keyframes == k; {
		if time.Now().After(deadline) {
			return errors.New("the source sent no keyframe in 10 s")
		}
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return ctx.Err()
		}
	}
	if !sleepCtx(ctx, 300*time.Millisecond) {
		return ctx.Err()
	}
	return nil
}

// waitStreams waits, a keyframe at a time and at most three, until the
// sink sees every stream of as many destinations as there are viewers. On
// a saturated core the server may set up the last viewers to join only
// after the keyframe that followed their joins; their video starts at the
// next one, and a window before it would count them as falling short.
func (m *measurer) waitStreams(ctx context.Context, viewers int) error {
	streams := 1
	if m.src.Counters().Audio.Packets > 0 {
		streams = 2
	}
	for range 3 {
		flows, err := m.sink.Flows()
		if err != nil {
			return err
		}
		per := map[netip.AddrPort]int{}
		for f, c := range flows {
			if c.Packets > 0 {
				per[f.Dst]++
			}
		}
		full := 0
		for _, k := range per {
			if k >= streams {
				full++
			}
		}
		if full >= viewers {
			return nil
		}
		if err := m.waitKeyframe(ctx); err != nil {
			return err
		}
	}
	return nil
}

// fed is the destinations that got packets between two readings of the
// sink's flows. Viewers that got none fall short without a sequence gap.
func fed(a, z map[bpf.MediaFlow]bpf.MediaFlowCount) map[netip.AddrPort]bool {
	out := map[netip.AddrPort]bool{}
	for f, end := range z {
		if end.Packets > a[f].Packets {
			out[f.Dst] = true
		}
	}
	return out
}

// sampleFigures is the samples' own loss over the window (sequence gaps)
// and their mean video jitter at its end.
func sampleFigures(a, z []loadgen.Sample) (loss, jitterMs float64) {
	before := map[netip.AddrPort]map[uint32]loadgen.StreamStats{}
	for _, s := range a {
		m := map[uint32]loadgen.StreamStats{}
		for _, st := range s.Streams {
			m[st.SSRC] = st
		}
		before[s.Local] = m
	}
	var exp, lost float64
	var jit float64
	var nj int
	for _, s := range z {
		for _, st := range s.Streams {
			b := before[s.Local][st.SSRC]
			exp += float64(st.Expected - b.Expected)
			lost += float64(st.Lost()) - float64(b.Lost())
			if st.Video {
				jit += st.JitterMs
				nj++
			}
		}
	}
	if exp > 0 {
		loss = max(0, lost/exp)
	}
	if nj > 0 {
		jitterMs = jit / float64(nj)
	}
	return loss, jitterMs
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// WorkDir makes the run's scratch folder.
func WorkDir(base string) (string, error) {
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	return os.MkdirTemp(base, "run-")
}
