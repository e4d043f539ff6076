package dataplane

import (
	"testing"
	"time"
)

// A worker behind its source drops what waited longer than MaxLag and
// sends the rest, in order, to every viewer: each published packet is sent
// to each viewer, passed over as late or dropped at the full queue. Raised
// live, the limit stops the drops. Queue mode's viewers each take their own
// copy, so they count late and dropped copies one by one.
func TestMaxLag(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
	}{{"socket", Config{Workers: 1}}, {"queue", Config{Workers: 1, Mode: ModeQueue}}} {
		t.Run(tt.name, func(t *testing.T) { testMaxLag(t, tt.cfg) })
	}
}

func testMaxLag(t *testing.T, cfg Config) {
	leakCheck(t)
	const viewers = 8
	// copies: how many viewers a late or dropped count stands for.
	copies := uint64(viewers)
	if cfg.Mode == ModeQueue {
		copies = 1
	}
	p, ctrl := joinedPlane(t, cfg, "127.0.0.1:0")
	src := p.NewSource("lag", 2)
	var tvs []*testViewer
	for k := range viewers {
		tv := newTestViewer(t, ProfileAEADAES128GCM, addrOf(ctrl), "127.0.0.1:0", viewerStreams(k)...)
		if _, err := p.AddViewer(tv.h, src); err != nil {
			t.Fatal(err)
		}
		tvs = append(tvs, tv)
	}
	seq := 0
	// burst publishes n packets at once, far more than the worker sends
	// in a millisecond, and waits until it has handled every copy.
	burst := func(n int) WorkerStats {
		before := p.Stats().Workers[0]
		for range n {
			src.Publish(0, rtpPacket(7, 96, uint16(seq), uint32(seq)*3000, false, payloadFor(0, 0, seq)), seq == 0)
			seq++
		}
		want := uint64(n) * viewers
		deadline := time.Now().Add(10 * time.Second)
		for {
			st := p.Stats().Workers[0]
			d := WorkerStats{Packets: st.Packets - before.Packets, Late: st.Late - before.Late, Drops: st.Drops - before.Drops}
			if got := d.Packets + (d.Late+d.Drops)*copies; got >= want {
				if got != want {
					t.Fatalf("%d packets published to %d viewers; sent %d, %d late, %d dropped", n, viewers, d.Packets, d.Late, d.Drops)
				}
				return d
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d packets published to %d viewers; after 10 s sent %d, %d late, %d dropped", n, viewers, d.Packets, d.Late, d.Drops)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// check waits until the viewers have total packets between them and
	// checks that each got its own in order; it returns what each got.
	check := func(total int) []int {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			sum := 0
			for _, tv := range tvs {
				sum += tv.count()
			}
			if sum == total {
				break
			}
			if sum > total || time.Now().After(deadline) {
				t.Fatalf("the viewers got %d packets, want %d", sum, total)
			}
			time.Sleep(time.Millisecond)
		}
		counts := make([]int, len(tvs))
		for k, tv := range tvs {
			got := tv.stream(uint32(1000 + 2*k))
			counts[k] = len(got)
			for i := 1; i < len(got); i++ {
				if d := got[i].hdr.SequenceNumber - got[i-1].hdr.SequenceNumber; d == 0 || d > 0x8000 {
					t.Fatalf("viewer %d: sequence %d after %d", k, got[i].hdr.SequenceNumber, got[i-1].hdr.SequenceNumber)
				}
			}
		}
		return counts
	}

	// Video starts at a keyframe: the first packet, sent within the default limit.
	if d := burst(1); d.Packets != viewers {
		t.Fatalf("keyframe: %+v", d)
	}
	check(viewers)
	if err := p.SetMaxLag(time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// Fewer than seqJump: a longer run of late packets would read as a
	// restart of the source, and video would wait for a keyframe.
	d := burst(900)
	if d.Late == 0 {
		t.Fatalf("900 packets at once with a 1 ms limit: none late (%d sent)", d.Packets)
	}
	sent := viewers + int(d.Packets)
	counts := check(sent)
	t.Logf("limit 1ms: sent %v to the viewers, %d late, %d dropped at the queue", counts, d.Late, d.Drops)

	if err := p.SetMaxLag(0); err == nil {
		t.Fatal("SetMaxLag(0) accepted")
	}
	if err := p.SetMaxLag(MaxMaxLag); err != nil {
		t.Fatal(err)
	}
	if got := p.Config().MaxLag; got != MaxMaxLag {
		t.Fatalf("Config().MaxLag = %v after SetMaxLag(%v)", got, MaxMaxLag)
	}
	// Within a queue-mode viewer's queue, so that nothing is dropped there.
	const more = viewerQueue / 2
	d = burst(more)
	if d.Late != 0 || d.Drops != 0 {
		t.Fatalf("limit %v: %d late, %d dropped, want none", MaxMaxLag, d.Late, d.Drops)
	}
	for k, n := range check(sent + more*viewers) {
		if n != counts[k]+more {
			t.Fatalf("viewer %d: %d packets after %d more, had %d", k, n, more, counts[k])
		}
	}
}
