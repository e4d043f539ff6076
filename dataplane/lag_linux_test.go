package dataplane

import (
	"testing"
	"time"
)

// A worker behind its source drops what waited longer than MaxLag and
// sends the rest, in order, to every viewer: each published packet is sent
// to all of them, passed over as late or dropped at the full queue. Raised
// live, the limit stops the drops.
func TestMaxLag(t *testing.T) {
	leakCheck(t)
	const viewers = 8
	p, ctrl := joinedPlane(t, Config{Workers: 1}, "127.0.0.1:0")
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
	// in a millisecond, and waits until it has handled every one.
	burst := func(n int) WorkerStats {
		before := p.Stats().Workers[0]
		for range n {
			src.Publish(0, rtpPacket(7, 96, uint16(seq), uint32(seq)*3000, false, payloadFor(0, 0, seq)), seq == 0)
			seq++
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			st := p.Stats().Workers[0]
			d := WorkerStats{Packets: st.Packets - before.Packets, Late: st.Late - before.Late, Drops: st.Drops - before.Drops}
			if d.Packets/viewers+d.Late+d.Drops >= uint64(n) {
				if d.Packets%viewers != 0 || d.Packets/viewers+d.Late+d.Drops != uint64(n) {
					t.Fatalf("%d packets published; sent %d to %d viewers, %d late, %d dropped", n, d.Packets, viewers, d.Late, d.Drops)
				}
				return d
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d packets published; after 10 s sent %d to %d viewers, %d late, %d dropped", n, d.Packets, viewers, d.Late, d.Drops)
			}
			time.Sleep(time.Millisecond)
		}
	}
	check := func(want int) {
		t.Helper()
		for k, tv := range tvs {
			tv.waitCount(want)
			got := tv.stream(uint32(1000 + 2*k))
			if len(got) != want {
				t.Fatalf("viewer %d: %d packets, want %d", k, len(got), want)
			}
			for i := 1; i < len(got); i++ {
				if d := got[i].hdr.SequenceNumber - got[i-1].hdr.SequenceNumber; d == 0 || d > 0x8000 {
					t.Fatalf("viewer %d: sequence %d after %d", k, got[i].hdr.SequenceNumber, got[i-1].hdr.SequenceNumber)
				}
			}
		}
	}

	// Video starts at a keyframe: the first packet, sent within the default limit.
	if d := burst(1); d.Packets != viewers {
		t.Fatalf("keyframe: %+v", d)
	}
	check(1)
	if err := p.SetMaxLag(time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// Fewer than seqJump: a longer run of late packets would read as a
	// restart of the source, and video would wait for a keyframe.
	d := burst(900)
	if d.Late == 0 {
		t.Fatalf("900 packets at once with a 1 ms limit: none late (%d sent to each viewer)", d.Packets/viewers)
	}
	sent := 1 + int(d.Packets/viewers)
	check(sent)
	t.Logf("limit 1ms: %d sent to each viewer, %d late, %d dropped at the queue", sent, d.Late, d.Drops)

	if err := p.SetMaxLag(0); err == nil {
		t.Fatal("SetMaxLag(0) accepted")
	}
	if err := p.SetMaxLag(MaxMaxLag); err != nil {
		t.Fatal(err)
	}
	if got := p.Config().MaxLag; got != MaxMaxLag {
		t.Fatalf("Config().MaxLag = %v after SetMaxLag(%v)", got, MaxMaxLag)
	}
	d = burst(2000)
	if d.Late != 0 || d.Drops != 0 {
		t.Fatalf("limit %v: %d late, %d dropped, want none", MaxMaxLag, d.Late, d.Drops)
	}
	check(sent + 2000)
}
