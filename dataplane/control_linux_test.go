//go:build linux

package dataplane

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/srtp/v3"
)

const (
	vSSRC = 1000 // viewer 0's video, see viewerStreams
	aSSRC = 1001
)

func lastOf(t *testing.T, tv *testViewer, ssrc uint32) got {
	t.Helper()
	g := tv.stream(ssrc)
	if len(g) == 0 {
		t.Fatalf("nothing received on ssrc %d", ssrc)
	}
	return g[len(g)-1]
}

// quiet checks that tv received nothing more than before. Call it after a
// barrier viewer, added last on the same (single) worker, got the packet:
// its datagram was the last of the same sendmmsg.
func quiet(t *testing.T, tv *testViewer, before int) {
	t.Helper()
	time.Sleep(20 * time.Millisecond)
	if n := tv.count(); n != before {
		t.Fatalf("viewer %s got %d datagrams, want none", tv.h.Remote, n-before)
	}
}

// bothModes are the two engines: every control test runs on each.
var bothModes = []struct {
	name string
	cfg  Config
}{{"socket", Config{}}, {"queue", Config{Mode: ModeQueue}}}

// Retransmit resends stored packets byte for byte (before and after a
// sequence wrap), the viewer decrypts them, and the SR counters are right.
func TestRetransmitAndCounters(t *testing.T) {
	for _, m := range bothModes {
		for _, prof := range testProfiles {
			t.Run(m.name+"/"+srtp.ProtectionProfile(prof).String(), func(t *testing.T) {
				cfg := m.cfg
				cfg.Workers, cfg.History = 1, 1024
				testRetransmitAndCounters(t, cfg, prof)
			})
		}
	}
}

func testRetransmitAndCounters(t *testing.T, cfg Config, prof Profile) {
	leakCheck(t)
	p, ctrl := joinedPlane(t, cfg, "127.0.0.1:0")
	src := p.NewSource("s", 2)
	tv := newTestViewer(t, prof, addrOf(ctrl), "127.0.0.1:0", viewerStreams(0)...)
	v, err := p.AddViewer(tv.h, src)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	const n, seq0 = 1200, 65000 // wraps at i = 536
	octets := 0
	for i := 0; i < n; i++ {
		pay := payloadFor(0, 0, i)
		octets += len(pay)
		src.Publish(0, rtpPacket(7, 100, uint16(seq0+i), uint32(i*3000), false, pay), i == 0)
		if i%200 == 199 {
			tv.waitCount(i + 1)
		}
	}
	tv.waitCount(n)
	orig := tv.stream(vSSRC)

	want := []int{200, 900, n - 1} // retained: before and after the wrap
	evicted := []int{0}            // from a 1024-packet history
	if cfg.Mode == ModeQueue {
		// A queue-mode viewer keeps queueHistory copies of its own.
		want, evicted = []int{n - queueHistory, n - 1}, []int{0, 900, n - queueHistory - 1}
	}
	at := func(i int) uint16 { return uint16(seq0 + i) }
	var seqs []uint16
	for _, i := range want {
		seqs = append(seqs, at(i))
	}
	seqs = append(seqs, at(n+5)) // never sent
	for _, i := range evicted {
		seqs = append(seqs, at(i))
	}
	if got := v.Retransmit(vSSRC, seqs); got != len(want) {
		t.Fatalf("Retransmit found %d, want %d", got, len(want))
	}
	if got := v.Retransmit(4242, seqs); got != 0 {
		t.Fatalf("Retransmit on an unknown ssrc found %d", got)
	}
	tv.waitCount(n + len(want))
	re := tv.stream(vSSRC)[n:]
	for j, i := range want {
		if !bytes.Equal(re[j].raw, orig[i].raw) {
			t.Fatalf("retransmission of #%d is not the original ciphertext", i)
		}
		if !bytes.Equal(re[j].pay, payloadFor(0, 0, i)) {
			t.Fatalf("retransmission of #%d: payload differs", i)
		}
	}
	if tv.bad != 0 {
		t.Fatalf("%d packets failed to decrypt", tv.bad)
	}

	c, ok := v.Counters(vSSRC)
	if !ok || c.Packets != n || c.Octets != uint32(octets) || c.LastRTPTime != uint32((n-1)*3000) {
		t.Fatalf("counters %+v, want %d packets, %d octets, ts %d", c, n, octets, (n-1)*3000)
	}
	if c.LastSentAt.Before(start.Add(-time.Second)) || c.LastSentAt.After(time.Now()) {
		t.Fatalf("LastSentAt %v not within the test", c.LastSentAt)
	}
	if c, ok := v.Counters(aSSRC); !ok || c.Packets != 0 || !c.LastSentAt.IsZero() {
		t.Fatalf("audio counters %+v %v, want zero", c, ok)
	}
	if _, ok := v.Counters(4242); ok {
		t.Fatal("counters for an unknown ssrc")
	}
}

// Switch and source restarts: output sequence numbers continue by one,
// timestamps move forward, and video waits for a keyframe.
func TestSwitchAndRestart(t *testing.T) {
	for _, m := range bothModes {
		t.Run(m.name, func(t *testing.T) {
			cfg := m.cfg
			cfg.Workers = 1
			testSwitchAndRestart(t, cfg)
		})
	}
}

func testSwitchAndRestart(t *testing.T, cfg Config) {
	leakCheck(t)
	p, ctrl := joinedPlane(t, cfg, "127.0.0.1:0")
	a, b := p.NewSource("a", 2), p.NewSource("b", 2)
	tv := newTestViewer(t, ProfileAEADAES128GCM, addrOf(ctrl), "127.0.0.1:0", viewerStreams(0)...)
	v, err := p.AddViewer(tv.h, a)
	if err != nil {
		t.Fatal(err)
	}
	recv := 0
	video := func(src *Source, ssrc uint32, seq uint16, ts uint32, key bool, id int) {
		src.Publish(0, rtpPacket(ssrc, 100, seq, ts, false, []byte{byte(id)}), key)
	}
	audio := func(src *Source, ssrc uint32, seq uint16, ts uint32, id int) {
		src.Publish(1, rtpPacket(ssrc, 111, seq, ts, false, []byte{byte(id)}), false)
	}
	// expect waits for the next packet of ssrc and checks it continues the
	// one the last expect of ssrc checked (seq + 1, timestamp forward) and
	// carries id. Not the last one received when expect starts: the packet
	// was published before, and may be there already.
	checked := map[uint32]got{}
	expect := func(ssrc uint32, id int, seqStep uint16) {
		t.Helper()
		prev := checked[ssrc]
		recv++
		tv.waitCount(recv)
		g := lastOf(t, tv, ssrc)
		checked[ssrc] = g
		if g.pay[0] != byte(id) {
			t.Fatalf("ssrc %d: got packet %d, want %d", ssrc, g.pay[0], id)
		}
		if g.hdr.SequenceNumber != prev.hdr.SequenceNumber+seqStep {
			t.Fatalf("ssrc %d packet %d: seq %d after %d, want +%d", ssrc, id, g.hdr.SequenceNumber, prev.hdr.SequenceNumber, seqStep)
		}
		if d := int32(g.hdr.Timestamp - prev.hdr.Timestamp); d < 1 || d > 90000*5 {
			t.Fatalf("ssrc %d packet %d: timestamp step %d", ssrc, id, d)
		}
	}

	video(a, 5, 100, 1000, false, 1) // not a keyframe: video has not started
	video(a, 5, 101, 1000, true, 2)
	audio(a, 6, 200, 5000, 3)
	recv = 2
	tv.waitCount(recv)
	if g := lastOf(t, tv, vSSRC); g.pay[0] != 2 || g.hdr.SequenceNumber != 101 || g.hdr.Timestamp != 1000 {
		t.Fatalf("first video packet %d seq %d ts %d, want the keyframe with the input's numbers", g.pay[0], g.hdr.SequenceNumber, g.hdr.Timestamp)
	}
	checked[vSSRC], checked[aSSRC] = lastOf(t, tv, vSSRC), lastOf(t, tv, aSSRC)
	video(a, 5, 102, 4000, false, 4)
	expect(vSSRC, 4, 1)
	audio(a, 6, 201, 5960, 5)
	expect(aSSRC, 5, 1)

	// Switch: audio continues at once, video after a keyframe.
	v.Switch(b)
	time.Sleep(5 * time.Millisecond) // let the timestamp step show wallclock
	audio(b, 60, 40000, 123456, 6)
	expect(aSSRC, 6, 1)
	video(b, 50, 9000, 777, false, 7)
	video(b, 50, 9001, 777, false, 8)
	video(b, 50, 9002, 3777, true, 9)
	expect(vSSRC, 9, 1)
	video(b, 50, 9003, 6777, false, 10)
	expect(vSSRC, 10, 1)
	video(a, 5, 103, 7000, false, 11) // the old source reaches the viewer no more
	audio(b, 60, 40001, 124416, 12)
	expect(aSSRC, 12, 1)

	// A small gap is loss, not a restart: it shows in the output.
	audio(b, 60, 40005, 128256, 13)
	expect(aSSRC, 13, 4)

	// Source restart: new SSRC (audio), big sequence jump (video).
	audio(b, 61, 10, 99, 14)
	expect(aSSRC, 14, 1)
	video(b, 50, 30000, 500, false, 15)
	video(b, 50, 30001, 3500, true, 16)
	expect(vSSRC, 16, 1)
	video(b, 50, 30002, 6500, false, 17)
	expect(vSSRC, 17, 1)
	if tv.bad != 0 {
		t.Fatalf("%d packets failed to decrypt", tv.bad)
	}
}

// Pause, per-media enable, path change and close, each observed against a
// barrier viewer that is added last on the same worker.
func TestPauseEnablePathClose(t *testing.T) {
	for _, m := range bothModes {
		t.Run(m.name, func(t *testing.T) {
			cfg := m.cfg
			cfg.Workers = 1
			testPauseEnablePathClose(t, cfg)
		})
	}
}

func testPauseEnablePathClose(t *testing.T, cfg Config) {
	leakCheck(t)
	p, ctrl := joinedPlane(t, cfg, "127.0.0.1:0")
	src := p.NewSource("s", 2)
	tv := newTestViewer(t, ProfileAEADAES128GCM, addrOf(ctrl), "127.0.0.1:0", viewerStreams(0)...)
	v, err := p.AddViewer(tv.h, src)
	if err != nil {
		t.Fatal(err)
	}
	bar := newTestViewer(t, ProfileAEADAES128GCM, addrOf(ctrl), "127.0.0.1:0", viewerStreams(1)...)
	if _, err := p.AddViewer(bar.h, src); err != nil {
		t.Fatal(err)
	}
	barN := 0
	vseq, aseq := uint16(0), uint16(0)
	video := func(key bool) {
		vseq++
		src.Publish(0, rtpPacket(5, 100, vseq, uint32(vseq)*3000, false, []byte{byte(vseq)}), key)
	}
	audio := func() {
		aseq++
		src.Publish(1, rtpPacket(6, 111, aseq, uint32(aseq)*960, false, []byte{byte(aseq)}), false)
	}
	sync := func(n int) { // the barrier got n more packets
		t.Helper()
		barN += n
		bar.waitCount(barN)
	}

	video(true)
	audio()
	sync(2)
	tv.waitCount(2)

	v.SetPaused(true)
	video(false)
	audio()
	sync(2)
	quiet(t, tv, 2)

	v.SetPaused(false)
	audio()
	video(false) // video waits for a keyframe after resume
	sync(2)
	tv.waitCount(3)
	quiet(t, tv, 3)
	if g := lastOf(t, tv, aSSRC); g.hdr.SequenceNumber != 2 {
		t.Fatalf("audio after resume: seq %d, want 2 (continuous)", g.hdr.SequenceNumber)
	}
	video(true)
	sync(1)
	tv.waitCount(4)
	if g := lastOf(t, tv, vSSRC); g.hdr.SequenceNumber != 2 {
		t.Fatalf("video after resume: seq %d, want 2 (continuous)", g.hdr.SequenceNumber)
	}

	v.SetStreamEnabled("v", false)
	video(true)
	audio()
	sync(2)
	tv.waitCount(5)
	quiet(t, tv, 5)
	if g := lastOf(t, tv, aSSRC); g.hdr.SequenceNumber != 3 {
		t.Fatalf("audio with video off: seq %d", g.hdr.SequenceNumber)
	}
	v.SetStreamEnabled("v", true)
	video(false)
	video(true)
	sync(2)
	tv.waitCount(6)
	quiet(t, tv, 6)

	// Path change: the same SRTP stream moves to another socket.
	moved := listenViewer(t, tv.h, "127.0.0.1:0")
	v.SetPath(tv.h.Local, moved.h.Remote)
	audio()
	sync(1)
	moved.waitCount(1)
	quiet(t, tv, 6)
	if g := lastOf(t, moved, aSSRC); g.hdr.SequenceNumber != 4 {
		t.Fatalf("audio after SetPath: seq %d", g.hdr.SequenceNumber)
	}

	// Close: nothing reaches the viewer after it returns.
	v.Close()
	v.Close() // idempotent
	if st := p.Stats(); st.Viewers != 1 {
		t.Fatalf("viewers after close: %d", st.Viewers)
	}
	video(true)
	audio()
	sync(2)
	quiet(t, moved, 1)
	v.SetPaused(false) // no effect on a closed viewer, and no hang
	if n := v.Retransmit(aSSRC, []uint16{4}); n != 0 {
		t.Fatalf("retransmit on a closed viewer: %d", n)
	}
}

// Destinations the kernel rejects (port 0; an IPv6 address on an IPv4
// socket) are counted and skipped; the viewers batched with them get
// everything.
func TestRejectedDestinationDoesNotHurtOthers(t *testing.T) {
	for _, m := range bothModes {
		t.Run(m.name, func(t *testing.T) {
			cfg := m.cfg
			cfg.Workers = 1
			testRejectedDestinationDoesNotHurtOthers(t, cfg)
		})
	}
}

func testRejectedDestinationDoesNotHurtOthers(t *testing.T, cfg Config) {
	leakCheck(t)
	p, ctrl := joinedPlane(t, cfg, "127.0.0.1:0")
	src := p.NewSource("s", 2)
	good1 := newTestViewer(t, ProfileAEADAES128GCM, addrOf(ctrl), "127.0.0.1:0", viewerStreams(0)...)
	port0 := newTestViewer(t, ProfileAEADAES128GCM, addrOf(ctrl), "127.0.0.1:0", viewerStreams(1)...)
	port0.h.Remote = netip.MustParseAddrPort("127.0.0.1:0")
	v6 := newTestViewer(t, ProfileAEADAES128GCM, addrOf(ctrl), "[::1]:0", viewerStreams(2)...)
	good2 := newTestViewer(t, ProfileAES128CMHMACSHA1_80, addrOf(ctrl), "127.0.0.1:0", viewerStreams(3)...)
	for _, tv := range []*testViewer{good1, port0, v6, good2} {
		if _, err := p.AddViewer(tv.h, src); err != nil {
			t.Fatal(err)
		}
	}
	// Equal sizes in bursts: the rejected viewers' packets form GSO
	// datagrams too, which must not be taken for a kernel without GSO.
	const n = 50
	for i := 0; i < n; i++ {
		src.Publish(1, rtpPacket(6, 111, uint16(i), uint32(i*960), false, framePayload(0, 1, i)), false)
	}
	good1.waitCount(n)
	good2.waitCount(n)
	var st WorkerStats
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if st = p.Stats().Workers[0]; st.Errors+st.Packets >= 4*n {
			break // queue mode: the rejected viewers' goroutines are done
		}
	}
	if st.Errors != 2*n || st.Packets != 2*n || st.GSOFallbacks != 0 {
		t.Fatalf("stats %+v, want %d errors, %d packets, no GSO fallback", st, 2*n, 2*n)
	}
	if cfg.Mode != ModeQueue && st.Segments == 0 {
		t.Fatalf("no GSO datagram at all: %+v", st)
	}
	if v6.count() != 0 || port0.count() != 0 {
		t.Fatal("a rejected viewer received something")
	}
}
