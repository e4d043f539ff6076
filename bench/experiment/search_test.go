package experiment

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeServer loses packets past its capacity, in proportion; its CPU is
// proportional to its load.
type fakeServer struct {
	capacity int
	steps    []int
	windows  []time.Duration
	fail     error
}

func (f *fakeServer) Measure(_ context.Context, n int, window time.Duration) (Point, error) {
	f.steps = append(f.steps, n)
	f.windows = append(f.windows, window)
	if f.fail != nil {
		return Point{}, f.fail
	}
	p := Point{Target: "fake", Sink: "tc", Viewers: n, Gbps: float64(min(n, f.capacity)) * 0.002, CPU: min(1, float64(n)/float64(f.capacity))}
	if n > f.capacity {
		p.Loss = 1 - float64(f.capacity)/float64(n)
	}
	return p, nil
}

func TestSearchFindsCapacity(t *testing.T) {
	cfg := SearchConfig{Start: 50, Growth: 1.6, Max: 100000, Resolution: 0.05, MaxSteps: 30, LossLimit: 0.005}
	for _, capacity := range []int{1, 49, 50, 333, 2400, 9000} {
		f := &fakeServer{capacity: capacity}
		c, err := Search(context.Background(), f, cfg, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		got := c.Best.Viewers
		// Within a step below the true capacity; above it only by the loss
		// the limit allows.
		if float64(got) > float64(capacity)/(1-cfg.LossLimit)+1 || float64(capacity-got) > 0.05*float64(capacity)+1 {
			t.Errorf("capacity %d: found %d (steps %v)", capacity, got, f.steps)
		}
		// Never past the first failure.
		if c.Failing != 0 && (c.Failing <= got || c.Failing != f.steps[len(f.steps)-1]) {
			t.Errorf("capacity %d: failing %d, best %d, steps %v", capacity, c.Failing, got, f.steps)
		}
		for i := 1; i < len(f.steps); i++ {
			if f.steps[i] <= f.steps[i-1] && f.steps[i-1] > capacity {
				continue // stepping down from a first step above the capacity
			}
			if f.steps[i] <= f.steps[i-1] {
				t.Errorf("capacity %d: steps go down: %v", capacity, f.steps)
			}
		}
		if len(c.Points) != len(f.steps) || len(f.steps) > 20 {
			t.Errorf("capacity %d: %d points, %d steps %v", capacity, len(c.Points), len(f.steps), f.steps)
		}
	}
}

// flaky fails one window, once, by loss.
type flaky struct {
	fakeServer
	at      int
	loss    float64
	tripped bool
}

func (f *flaky) Measure(ctx context.Context, n int, window time.Duration) (Point, error) {
	p, err := f.fakeServer.Measure(ctx, n, window)
	if n == f.at && !f.tripped {
		f.tripped = true
		p.Loss = f.loss
	}
	return p, err
}

// A failing step is measured again, by a little or by far: passing the
// second time lets the search go on, more finely. The first failure of a
// server past its capacity does not end the search; the second does.
func TestSearchRetriesFailure(t *testing.T) {
	cfg := SearchConfig{Start: 100, Growth: 1.6, Max: 100000, Resolution: 0.05, MaxSteps: 30, LossLimit: 0.005}
	for _, loss := range []float64{0.008, 0.5} {
		f := &flaky{fakeServer: fakeServer{capacity: 1000}, at: 163, loss: loss}
		c, err := Search(context.Background(), f, cfg, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		if c.Best.Viewers < 950 || f.steps[1] != 163 || f.steps[2] != 163 {
			t.Fatalf("loss %.3f: best %d, steps %v", loss, c.Best.Viewers, f.steps)
		}
		// After the retried step, at most nearGrowth: the CPU alone (16%)
		// would predict a step of Growth.
		if float64(f.steps[3]) > 163*(1+nearGrowth)+1 {
			t.Errorf("loss %.3f: after a second window, step %d (steps %v)", loss, f.steps[3], f.steps)
		}
	}
	g := &fakeServer{capacity: 1000}
	c, _ := Search(context.Background(), g, cfg, t.Logf)
	k := len(g.steps)
	if k < 3 || c.Failing != g.steps[k-1] || g.steps[k-2] != g.steps[k-1] || !c.Points[k-3].Pass || c.Points[k-2].Pass {
		t.Fatalf("failing %d, steps %v", c.Failing, g.steps)
	}
}

// refuser is a fakeServer that lets no more than limit viewers join.
type refuser struct {
	fakeServer
	limit int
}

func (r *refuser) Measure(ctx context.Context, n int, window time.Duration) (Point, error) {
	p, err := r.fakeServer.Measure(ctx, n, window)
	if n > r.limit {
		p, err = r.fakeServer.Measure(ctx, r.limit, window)
		r.steps[len(r.steps)-2] = n // what was asked
		r.steps = r.steps[:len(r.steps)-1]
		p.Loss = 0.5
	}
	return p, err
}

// The second window of a failing step is at the viewers it held: asking
// again for the ones a server refused would be another step. If they pass,
// the refusal is the limit.
func TestSearchRetriesTheViewersHeld(t *testing.T) {
	cfg := SearchConfig{Start: 100, Growth: 1.6, Max: 100000, Resolution: 0.05, MaxSteps: 30, LossLimit: 0.005}
	r := &refuser{fakeServer: fakeServer{capacity: 1000}, limit: 300}
	c, err := Search(context.Background(), r, cfg, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	k := len(r.steps)
	if r.steps[k-1] != 300 || r.steps[k-2] != 432 || c.Best.Viewers != 300 || c.Failing != 432 {
		t.Fatalf("failing %d, steps %v", c.Failing, r.steps)
	}
}

// A passing step near a limit is the knee, though the core be idle: the
// next step is at most nearGrowth.
func TestSearchSlowsNearALimit(t *testing.T) {
	cfg := SearchConfig{Start: 100, Growth: 1.6, Max: 100000, Resolution: 0.05, MaxSteps: 3, LossLimit: 0.005, ShortfallLimit: 0.02}
	for _, tt := range []struct {
		short    float64
		min, max int // of the second step
	}{{0.005, 163, 163}, {0.012, 105, 111}} {
		s := &shortOnce{fakeServer: &fakeServer{capacity: 10000}, short: tt.short}
		if _, err := Search(context.Background(), s, cfg, t.Logf); err != nil {
			t.Fatal(err)
		}
		if s.steps[1] < tt.min || s.steps[1] > tt.max {
			t.Errorf("shortfall %.3f: steps %v, want %d-%d second", tt.short, s.steps, tt.min, tt.max)
		}
	}
}

func TestSearchStopsAtMaxAndOnError(t *testing.T) {
	f := &fakeServer{capacity: 1 << 30}
	c, err := Search(context.Background(), f, SearchConfig{Start: 10, Growth: 2, Max: 100, Resolution: 0.05, MaxSteps: 30, LossLimit: 0.005}, t.Logf)
	if err != nil || c.Best.Viewers != 100 || c.Failing != 0 {
		t.Fatalf("best %d failing %d err %v (steps %v)", c.Best.Viewers, c.Failing, err, f.steps)
	}
	boom := errors.New("boom")
	if _, err := Search(context.Background(), &fakeServer{fail: boom}, SearchConfig{Start: 10, Growth: 2, Max: 100, MaxSteps: 5}, t.Logf); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
}

func sampleResults() []Result {
	pt := func(target, sink string, n int, gbps float64) Point {
		return Point{Target: target, Sink: sink, Rate: 2, Viewers: n, Gbps: gbps, Mpps: gbps / 0.01, CPU: 1, Pass: true}
	}
	return []Result{
		{Target: JanusT0, Rate: 2, ByS: map[string]Capacity{
			"tc":  {Best: pt(JanusT0, "tc", 300, 0.6), Failing: 320, Points: []Point{pt(JanusT0, "tc", 100, 0.2), pt(JanusT0, "tc", 300, 0.6)}},
			"xdp": {Best: pt(JanusT0, "xdp", 250, 0.5), Failing: 260, Points: []Point{pt(JanusT0, "xdp", 250, 0.5)}}},
			QoE: map[string]Point{"tc": pt(JanusT0, "tc", 150, 0.3)}},
		{Target: JanusT1, Rate: 2, ByS: map[string]Capacity{"tc": {Best: pt(JanusT1, "tc", 200, 0.4)}, "xdp": {Best: pt(JanusT1, "xdp", 200, 0.4)}}},
		{Target: SpillwaySocket, Rate: 2, ByS: map[string]Capacity{
			"tc":  {Best: pt(SpillwaySocket, "tc", 2400, 4.8), Points: []Point{pt(SpillwaySocket, "tc", 2400, 4.8)}},
			"xdp": {Best: pt(SpillwaySocket, "xdp", 1000, 2)}}},
		{Target: SpillwayQueue, Rate: 2, Err: errors.New("spillway: exited\nwith a long log")},
	}
}

func TestSummaryTableAndCSV(t *testing.T) {
	rs := sampleResults()
	rows := Summarize(rs, []string{"xdp", "tc"})
	if len(rows) != 8 {
		t.Fatalf("%d rows", len(rows))
	}
	// Over the mean of the Janus rows: 250 with tc, 225 with xdp.
	want := map[string]float64{"janus-t0/tc": 1.2, "janus-t1/tc": 0.8, "spillway-socket/tc": 9.6, "spillway-socket/xdp": 1000.0 / 225, "spillway-queue/tc": 0}
	for _, r := range rows {
		if w, ok := want[r.Target+"/"+r.Sink]; ok && (r.XJanus < w-1e-9 || r.XJanus > w+1e-9) {
			t.Errorf("%s/%s: x Janus %.3f, want %.3f", r.Target, r.Sink, r.XJanus, w)
		}
	}
	var md bytes.Buffer
	Markdown(&md, rows)
	lines := strings.Split(strings.TrimSpace(md.String()), "\n")
	if len(lines) != 2+len(rows) {
		t.Fatalf("%d lines:\n%s", len(lines), md.String())
	}
	cells := strings.Count(lines[0], "|")
	for _, l := range lines[1:] {
		if strings.Count(l, "|") != cells {
			t.Fatalf("ragged row %q", l)
		}
	}
	if !strings.Contains(md.String(), "| spillway-socket | tc | 2 | 2400 | 4.80 |") || !strings.Contains(md.String(), "failed: spillway: exited with") {
		t.Fatalf("table:\n%s", md.String())
	}
	var b bytes.Buffer
	if err := WriteCSV(&b, rs); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+5 || len(recs[0]) != len(csvHeader) || recs[len(recs)-1][3] != "step" || recs[4][3] != "qoe" {
		t.Fatalf("csv %v", recs)
	}
}

// The Janus targets run at either end, the rest between them as given.
func TestRunOrder(t *testing.T) {
	for _, tt := range []struct{ in, want []string }{
		{AllTargets, []string{JanusT0, SpillwayQueue, SpillwaySocket, JanusT1}},
		{[]string{SpillwaySocket, JanusT1, SpillwayQueue, JanusT0}, []string{JanusT1, SpillwaySocket, SpillwayQueue, JanusT0}},
		{[]string{SpillwaySocket, JanusT0}, []string{JanusT0, SpillwaySocket}},
		{[]string{SpillwayQueue, SpillwaySocket}, []string{SpillwayQueue, SpillwaySocket}},
	} {
		if got := RunOrder(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("RunOrder(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestPlotsWritePNGs(t *testing.T) {
	dir := t.TempDir()
	rs := sampleResults()
	more := sampleResults()
	for i := range more {
		more[i].Rate = 4
	}
	files, err := Plots(dir, append(rs, more...), []string{"xdp", "tc"})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("files %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || len(b) < 1000 || string(b[1:4]) != "PNG" {
			t.Fatalf("%s: %d bytes, %v", filepath.Base(f), len(b), err)
		}
	}
}

// queueing loses nothing past its capacity: it queues, so it falls behind
// the source, as Janus does.
type queueing struct{ fakeServer }

func (q *queueing) Measure(ctx context.Context, n int, window time.Duration) (Point, error) {
	p, err := q.fakeServer.Measure(ctx, n, window)
	p.Shortfall, p.Loss = p.Loss, 0
	return p, err
}

func TestSearchShortfall(t *testing.T) {
	cfg := SearchConfig{Start: 50, Growth: 1.6, Max: 100000, Resolution: 0.05, MaxSteps: 30, LossLimit: 0.005, ShortfallLimit: 0.02}
	tests := []struct {
		name     string
		limit    float64
		max, min int
	}{
		// A server 2% behind is not holding its viewers, lost or not.
		{"limited", 0.02, 1021, 950},
		// Without the limit only MaxSteps ends it, far past the capacity.
		{"unlimited", 0, 100000, 2000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			c.ShortfallLimit = tt.limit
			q := &queueing{fakeServer{capacity: 1000}}
			got, err := Search(context.Background(), q, c, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			if got.Best.Viewers > tt.max || got.Best.Viewers < tt.min {
				t.Fatalf("found %d, want %d-%d (steps %v)", got.Best.Viewers, tt.min, tt.max, q.steps)
			}
		})
	}
	// Just over the limit is measured twice; far over it, once.
	for _, sf := range []struct {
		short float64
		steps int
	}{{0.03, 2}, {0.2, 1}} {
		f := &fakeServer{capacity: 1 << 30}
		s := &shortOnce{fakeServer: f, short: sf.short}
		c := cfg
		c.Start, c.MaxSteps = 100, 1
		if _, err := Search(context.Background(), s, c, t.Logf); err != nil {
			t.Fatal(err)
		}
		if len(f.steps) != sf.steps {
			t.Errorf("shortfall %.2f: %d windows, want %d", sf.short, len(f.steps), sf.steps)
		}
	}
}

// shortOnce falls behind by short in every window.
type shortOnce struct {
	*fakeServer
	short float64
}

func (s *shortOnce) Measure(ctx context.Context, n int, window time.Duration) (Point, error) {
	p, err := s.fakeServer.Measure(ctx, n, window)
	p.Shortfall = s.short
	return p, err
}

// A server that fails before its core is full: past nearCPU the steps are
// fine enough that the capacity found is within nearGrowth of the true one,
// where the CPU's prediction alone would overshoot by a third.
func TestSearchFineNearTheKnee(t *testing.T) {
	cfg := SearchConfig{Start: 100, Growth: 1.6, Max: 100000, Resolution: 0.05, MaxSteps: 30, LossLimit: 0.005}
	for _, capacity := range []int{300, 450, 2000} {
		f := &earlyFailer{fakeServer{capacity: capacity}, 0.8}
		c, err := Search(context.Background(), f, cfg, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		// Above the capacity only by the loss the limit allows.
		if got := c.Best.Viewers; float64(got) > float64(capacity)/(1-cfg.LossLimit)+1 || float64(got) < float64(capacity)/(1+nearGrowth)-1 {
			t.Errorf("capacity %d (core %.0f%% busy there): found %d (steps %v)", capacity, 100*f.busyAt, got, f.steps)
		}
	}
}

// earlyFailer is a fakeServer whose core is only busyAt busy at its
// capacity.
type earlyFailer struct {
	fakeServer
	busyAt float64
}

func (f *earlyFailer) Measure(ctx context.Context, n int, window time.Duration) (Point, error) {
	p, err := f.fakeServer.Measure(ctx, n, window)
	p.CPU = min(1, f.busyAt*float64(n)/float64(f.capacity))
	return p, err
}

// Steps near the knee, and a failing step's second window, get the longer
// window; the climb below it the short one.
func TestSearchKneeWindow(t *testing.T) {
	const short, long = 2 * time.Second, 4 * time.Second
	cfg := SearchConfig{Start: 50, Growth: 4, Max: 100000, Resolution: 0.05, MaxSteps: 30, LossLimit: 0.005, Window: short, KneeWindow: long}
	f := &fakeServer{capacity: 1000}
	c, err := Search(context.Background(), f, cfg, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if c.Failing == 0 || len(f.windows) < 4 {
		t.Fatalf("no knee reached: steps %v", f.steps)
	}
	for i, w := range f.windows {
		want := short
		if i > 0 && (c.Points[i-1].CPU >= kneeCPU || f.steps[i] == f.steps[i-1]) {
			want = long
		}
		if w != want {
			t.Errorf("step %d (%d viewers, after CPU %.2f): window %v, want %v (steps %v)", i, f.steps[i], c.Points[max(i-1, 0)].CPU, w, want, f.steps)
		}
	}
	if f.windows[len(f.windows)-1] != long || f.steps[len(f.steps)-1] != f.steps[len(f.steps)-2] {
		t.Errorf("the failing step's second window: steps %v, windows %v", f.steps, f.windows)
	}
}

// queueLatency keeps up to its capacity, then queues: its median latency
// grows with the load, with no loss and no shortfall.
type queueLatency struct{ fakeServer }

func (q *queueLatency) Measure(ctx context.Context, n int, window time.Duration) (Point, error) {
	p, err := q.fakeServer.Measure(ctx, n, window)
	p.Loss, p.P50 = 0, 5*time.Millisecond
	if n > q.capacity {
		p.P50 = time.Duration(n-q.capacity) * time.Millisecond
	}
	return p, err
}

func TestSearchLatencyLimit(t *testing.T) {
	for _, limit := range []time.Duration{0, 100 * time.Millisecond} {
		cfg := SearchConfig{Start: 100, Growth: 2, Max: 1500, Resolution: 0.05, MaxSteps: 40, LossLimit: 0.005, LatencyLimit: limit}
		q := &queueLatency{fakeServer{capacity: 1000}}
		c, err := Search(context.Background(), q, cfg, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case limit == 0 && c.Best.Viewers != cfg.Max:
			t.Errorf("no limit: best %d, want %d (steps %v)", c.Best.Viewers, cfg.Max, q.steps)
		case limit > 0 && (c.Best.P50 >= limit || c.Failing == 0 || c.Best.Viewers < 1000):
			t.Errorf("limit %v: best %d at p50 %v, failing %d (steps %v)", limit, c.Best.Viewers, c.Best.P50, c.Failing, q.steps)
		}
	}
}

// Searches that take different paths to the same capacity try the same
// loads near it, so they find the same one: the rungs of
// Start·(1+Resolution)^k.
func TestSearchLadder(t *testing.T) {
	rungs := map[int]bool{}
	for k := 0.0; k < 120; k++ {
		rungs[int(math.Round(100*math.Pow(1.05, k)))] = true
	}
	for _, capacity := range []int{450, 740, 3450} {
		found := map[int]bool{}
		for _, growth := range []float64{1.6, 2.5, 4} {
			for _, busyAt := range []float64{1, 0.9} {
				cfg := SearchConfig{Start: 100, Growth: growth, Max: 100000, Resolution: 0.05, MaxSteps: 40, LossLimit: 0.005}
				f := &earlyFailer{fakeServer{capacity: capacity}, busyAt}
				c, err := Search(context.Background(), f, cfg, t.Logf)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range f.steps {
					if !rungs[n] {
						t.Errorf("capacity %d, growth %g, core %.0f%% busy there: step %d is off the ladder (steps %v)", capacity, growth, 100*busyAt, n, f.steps)
					}
				}
				found[c.Best.Viewers] = true
			}
		}
		if len(found) != 1 {
			t.Errorf("capacity %d: found %v", capacity, found)
		}
	}
}
