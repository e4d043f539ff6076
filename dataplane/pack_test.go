package dataplane

import (
	"slices"
	"testing"
)

// rep is n copies of size.
func rep(size, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = size
	}
	return s
}

func TestPackRuns(t *testing.T) {
	type run struct{ size, segs int } // offsets follow from the sizes
	cases := []struct {
		name  string
		sizes []int
		gso   bool
		want  []run
	}{
		{"nothing", nil, true, nil},
		{"one packet", []int{1200}, true, []run{{1200, 1}}},
		{"equal run", rep(1200, 5), true, []run{{1200, 5}}},
		{"short last segment ends the run", []int{1200, 1200, 700, 1200}, true, []run{{1200, 3}, {1200, 1}}},
		{"longer packet starts a new run", []int{700, 700, 1200, 1200}, true, []run{{700, 2}, {1200, 2}}},
		{"short then equal: not after a short one", []int{1200, 800, 800}, true, []run{{1200, 2}, {800, 1}}},
		{"size changes every packet", []int{100, 200, 300}, true, []run{{100, 1}, {200, 1}, {300, 1}}},
		{"decreasing sizes", []int{300, 200, 100}, true, []run{{300, 2}, {100, 1}}},
		{"64 segments at most", rep(100, 130), true, []run{{100, 64}, {100, 64}, {100, 2}}},
		{"64 KiB at most", rep(1500, 50), true, []run{{1500, 43}, {1500, 7}}},
		{"bytes limit exactly", rep(maxGSOBytes/64+1, 64), true, []run{{maxGSOBytes/64 + 1, 63}, {maxGSOBytes/64 + 1, 1}}},
		{"gso off: one per datagram", rep(1200, 3), false, []run{{1200, 1}, {1200, 1}, {1200, 1}}},
		{"audio between video", []int{1000, 1000, 160, 1000, 1000}, true, []run{{1000, 3}, {1000, 2}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runs := packRuns(c.sizes, c.gso)
			var got []run
			off, i := 0, 0
			for _, r := range runs {
				got = append(got, run{r.size, r.segs})
				if r.off != off {
					t.Fatalf("run at %d, want %d: runs must be contiguous and in order", r.off, off)
				}
				sum := 0
				for k := 0; k < r.segs; k++ {
					n := c.sizes[i+k]
					if n > r.size || (n < r.size && k != r.segs-1) {
						t.Fatalf("run %+v: packet %d of %d bytes", r, i+k, n)
					}
					sum += n
				}
				if sum != r.bytes || r.bytes > maxGSOBytes || r.segs > maxGSOSegs {
					t.Fatalf("run %+v: %d bytes of packets", r, sum)
				}
				if (r.segs > 1) != (r.gsoSize() != 0) || (r.segs > 1 && r.gsoSize() != r.size) {
					t.Fatalf("run %+v: gso size %d", r, r.gsoSize())
				}
				off += r.bytes
				i += r.segs
			}
			if i != len(c.sizes) {
				t.Fatalf("runs hold %d packets of %d", i, len(c.sizes))
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("runs %v, want %v", got, c.want)
			}
		})
	}
}

// A gap in the scratch space (a flush came between two packets) ends a run.
func TestPackRunNotContiguous(t *testing.T) {
	var r gsoRun
	r.start(0, 1000)
	if r.extend(2000, 1000) {
		t.Fatal("extended across a gap")
	}
	if !r.extend(1000, 1000) || r.segs != 2 || r.bytes != 2000 {
		t.Fatalf("contiguous packet refused: %+v", r)
	}
}

// finishFrame takes, past a full batch, only packets already queued, up to
// the next frame end and at most another batch; batch 1 takes nothing more.
func TestFinishFrame(t *testing.T) {
	pkt := func(marker bool) *packet { return &packet{f: rtpFields{marker: marker}} }
	frame := func(n int) []*packet { // n packets, the marker on the last
		var out []*packet
		for i := range n {
			out = append(out, pkt(i == n-1))
		}
		return out
	}
	cases := []struct {
		name          string
		max           int
		batch, queued []*packet
		want          int // batch length after
	}{
		{"frame ends in the batch", 8, append(frame(2), frame(6)...), frame(4), 8},
		{"frame cut: finished from the queue", 8, append(frame(6), frame(6)[:2]...), frame(6)[2:], 12},
		{"cut frame, rest not queued yet", 8, append(frame(6), frame(6)[:2]...), nil, 8},
		{"cut frame longer than another batch", 8, frame(8 + 20)[:8], frame(28)[8:], 16},
		{"batch 1", 1, []*packet{pkt(false)}, frame(3), 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := &worker{in: make(chan *packet, 64), batch: make([]*packet, 0, maxBatch)}
			w.batch = append(w.batch, c.batch...)
			for _, pk := range c.queued {
				w.in <- pk
			}
			w.finishFrame(c.max)
			if len(w.batch) != c.want || len(w.batch)+len(w.in) != len(c.batch)+len(c.queued) {
				t.Fatalf("batch %d, queue %d; want batch %d", len(w.batch), len(w.in), c.want)
			}
		})
	}
}
