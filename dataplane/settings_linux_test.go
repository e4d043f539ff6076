//go:build linux

package dataplane

import (
	"strings"
	"testing"
	"time"

	"github.com/spillway-rtc/spillway/affinity"
)

// Invalid live values are refused with an error and the old value stays.
func TestSettersRefuseInvalid(t *testing.T) {
	leakCheck(t)
	p, _ := joinedPlane(t, Config{Workers: 1, Batch: 8, FlushInterval: 2 * time.Millisecond, SndBuf: 1 << 20}, "127.0.0.1:0")
	cases := []struct {
		name string
		set  func() error
		want string
	}{
		{"batch 0", func() error { return p.SetBatch(0) }, "batch"},
		{"batch too large", func() error { return p.SetBatch(maxBatch + 1) }, "batch"},
		{"flush 0", func() error { return p.SetFlushInterval(0) }, "flush interval"},
		{"flush negative", func() error { return p.SetFlushInterval(-time.Millisecond) }, "flush interval"},
		{"flush too long", func() error { return p.SetFlushInterval(2 * time.Second) }, "flush interval"},
		{"call bytes too few", func() error { return p.SetCallBytes(minCallBytes - 1) }, "call bytes"},
		{"call bytes too many", func() error { return p.SetCallBytes(MaxCallBytes + 1) }, "call bytes"},
		{"sndbuf negative", func() error { return p.SetSndBuf(-1) }, "sndbuf"},
		{"sndbuf too large", func() error { return p.SetSndBuf(maxSockBuf + 1) }, "sndbuf"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.set(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want one about %q", err, c.want)
			}
			if got := p.Config(); got.Batch != 8 || got.FlushInterval != 2*time.Millisecond || got.SndBuf != 1<<20 || got.CallBytes != defaultCallBytes {
				t.Fatalf("a refused value changed the config: %+v", got)
			}
		})
	}
}

// Each live setting changes what the workers do at their next batch.
func TestSettersApplyLive(t *testing.T) {
	leakCheck(t)
	p, tvs, f := gsoRig(t, Config{}, 2)
	delta := func(nframes int) WorkerStats { return phase(p, tvs, f, nframes, nil) }

	// Batch 1: every packet is sent on its own, so no GSO run forms and
	// each sendmmsg carries one datagram per viewer at most.
	if err := p.SetBatch(1); err != nil {
		t.Fatal(err)
	}
	d := delta(8)
	if d.Segments != 0 || d.Datagrams != d.Packets || d.Sendmmsg*2 < d.Packets {
		t.Fatalf("batch 1: %+v", d)
	}
	if err := p.SetBatch(64); err != nil {
		t.Fatal(err)
	}
	if d := delta(8); d.Segments == 0 {
		t.Fatalf("batch 64: %+v", d)
	}

	// mmsg off: one call per datagram, GSO still on.
	p.SetMMsg(false)
	if d := delta(8); d.Sendmmsg != d.Datagrams || d.Segments == 0 {
		t.Fatalf("mmsg off: %+v", d)
	}
	p.SetMMsg(true)
	if d := delta(8); d.Sendmmsg >= d.Datagrams {
		t.Fatalf("mmsg on: %+v", d)
	}

	// A long flush interval holds a lone packet; a short one does not.
	if err := p.SetBatch(1024); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		d        time.Duration
		min, max time.Duration
	}{{300 * time.Millisecond, 200 * time.Millisecond, 5 * time.Second}, {time.Millisecond, 0, 150 * time.Millisecond}} {
		if err := p.SetFlushInterval(c.d); err != nil {
			t.Fatal(err)
		}
		time.Sleep(c.d) // the worker's current wait ends
		start := time.Now()
		f.src.Publish(1, rtpPacket(9, 111, 1, 1, false, []byte{1}), false)
		tvs[0].waitCount(f.next + 1)
		if el := time.Since(start); el < c.min || el > c.max {
			t.Fatalf("flush interval %v: packet took %v", c.d, el)
		}
		f.next++ // keep waitCount's arithmetic: one more datagram each
		tvs[1].waitCount(f.next)
	}

	// Send buffers follow SetSndBuf, and 0 gives the kernel's default back.
	for _, n := range []int{1 << 20, 0} {
		if err := p.SetSndBuf(n); err != nil {
			t.Fatal(err)
		}
		want := 2 * n
		if n == 0 {
			want = p.defSnd
		}
		for _, c := range p.locals[p.workers[0].socklst[0].local] {
			if got, err := sndBuf(c); err != nil || got != want {
				t.Fatalf("SetSndBuf(%d): SO_SNDBUF %d (%v), want %d", n, got, err, want)
			}
		}
	}
}

// SetCallBytes bounds what one sendmmsg carries: a batch of about 180 KB
// leaves in one call with the most, in three or more with 64 KiB.
func TestCallBytesLive(t *testing.T) {
	leakCheck(t)
	// Batches of exactly 24 packets (phase publishes 4 frames of 6 at a
	// time) to 8 viewers: 20 of 1028 bytes and 4 shorter each.
	p, tvs, f := gsoRig(t, Config{Batch: 24, FlushInterval: time.Second}, 8)
	for _, c := range []struct {
		bytes          int
		minMsg, maxMsg uint64 // sendmmsg calls for 2 batches
	}{{MaxCallBytes, 2, 2}, {minCallBytes, 6, 16}, {defaultCallBytes, 2, 2}} {
		if err := p.SetCallBytes(c.bytes); err != nil {
			t.Fatal(err)
		}
		if got := p.Config().CallBytes; got != c.bytes {
			t.Fatalf("Config().CallBytes %d after SetCallBytes(%d)", got, c.bytes)
		}
		if d := phase(p, tvs, f, 8, nil); d.Sendmmsg < c.minMsg || d.Sendmmsg > c.maxMsg || d.Packets != 8*8*framePkts {
			t.Fatalf("call bytes %d: %d sendmmsg calls for %d packets, want %d-%d", c.bytes, d.Sendmmsg, d.Packets, c.minMsg, c.maxMsg)
		}
	}
	for k, tv := range tvs {
		checkVideo(t, tv, k, f.next)
	}
}

// Workers sit on the CPUs asked for, pinned unless NoPin; impossible CPU
// requests are refused.
func TestWorkerCPUs(t *testing.T) {
	allowed, err := affinity.Allowed()
	if err != nil {
		t.Fatal(err)
	}
	last := allowed[len(allowed)-1]
	cases := []struct {
		name string
		cfg  Config
		want []int // CPU per worker in Stats; nil: New fails
	}{
		{"given CPU", Config{CPUs: []int{last}}, []int{last}},
		{"default: one per CPU", Config{}, allowed},
		{"not pinned", Config{CPUs: []int{last}, NoPin: true}, []int{-1}},
		{"CPU outside the mask", Config{CPUs: []int{4095}}, nil},
		{"more workers than CPUs", Config{Workers: len(allowed) + 1}, nil},
		{"more workers than CPUs, unpinned", Config{Workers: len(allowed) + 1, NoPin: true}, make([]int, len(allowed)+1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			leakCheck(t)
			p, err := New(c.cfg)
			if c.want == nil {
				if err == nil {
					p.Close()
					t.Fatal("New accepted it")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			// Pinning happens as each worker starts: ask each where it runs.
			var got []int
			for _, w := range p.workers {
				at, _ := p.do(w, &op{kind: opWhere})
				cpu := p.Stats().Workers[w.id].CPU
				if cpu >= 0 && at != cpu {
					t.Fatalf("worker %d pinned to CPU %d runs on %d", w.id, cpu, at)
				}
				got = append(got, cpu)
			}
			for i := range c.want {
				if c.cfg.NoPin {
					c.want[i] = -1
				}
			}
			if len(got) != len(c.want) || !equalInts(got, c.want) {
				t.Fatalf("worker CPUs %v, want %v", got, c.want)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
