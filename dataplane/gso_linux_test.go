//go:build linux

package dataplane

import (
	"bytes"
	"sync/atomic"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// frames publishes video (source stream 0) in frames of framePkts packets,
// back to back as an encoder's burst, so a worker's batch holds runs of
// equal-size packets for each viewer.
type frames struct {
	src  *Source
	next int // index of the next packet
}

func (f *frames) publish(nframes int) {
	for k := 0; k < nframes; k++ {
		for j := 0; j < framePkts; j++ {
			i := f.next
			f.src.Publish(0, rtpPacket(0xA0, 100, uint16(65000+i), uint32(i/framePkts*3000), j == framePkts-1, framePayload(0, 0, i)), i == 0)
			f.next++
		}
	}
}

// checkVideo checks that tv got exactly the first n video packets, in
// order, decrypted, with consecutive sequence numbers across the wrap.
func checkVideo(t *testing.T, tv *testViewer, k, n int) {
	t.Helper()
	if tv.bad != 0 {
		t.Fatalf("viewer %d: %d packets failed to decrypt", k, tv.bad)
	}
	pk := tv.stream(viewerStreams(k)[0].SSRC)
	if len(pk) != n {
		t.Fatalf("viewer %d: %d video packets, want %d", k, len(pk), n)
	}
	for i, g := range pk {
		if g.hdr.SequenceNumber != uint16(65000+i) || !bytes.Equal(g.pay, framePayload(0, 0, i)) {
			t.Fatalf("viewer %d #%d: seq %d (want %d) or payload differs", k, i, g.hdr.SequenceNumber, uint16(65000+i))
		}
	}
}

// gsoRig is one worker, viewers on one source, and video in frames.
func gsoRig(t *testing.T, cfg Config, viewers int) (*Plane, []*testViewer, *frames) {
	t.Helper()
	cfg.Workers = 1
	p, ctrl := joinedPlane(t, cfg, "127.0.0.1:0")
	src := p.NewSource("s", 2)
	var tvs []*testViewer
	for k := 0; k < viewers; k++ {
		tv := newTestViewer(t, ProfileAEADAES128GCM, addrOf(ctrl), "127.0.0.1:0", viewerStreams(k)...)
		if _, err := p.AddViewer(tv.h, src); err != nil {
			t.Fatal(err)
		}
		tvs = append(tvs, tv)
	}
	return p, tvs, &frames{src: src}
}

// phase publishes nframes in steps the readers keep up with, and waits
// until every viewer has everything so far. It returns the worker's stats
// added during the phase.
func phase(p *Plane, tvs []*testViewer, f *frames, nframes int, mid func()) WorkerStats {
	before := p.Stats().Workers[0]
	for k := 0; k < nframes; k += 4 {
		f.publish(2)
		if k == nframes/2 && mid != nil {
			mid() // among packets in flight
		}
		f.publish(2)
		for _, tv := range tvs {
			tv.waitCount(f.next)
		}
	}
	after := p.Stats().Workers[0]
	return WorkerStats{
		Packets:      after.Packets - before.Packets,
		Datagrams:    after.Datagrams - before.Datagrams,
		Segments:     after.Segments - before.Segments,
		Sendmmsg:     after.Sendmmsg - before.Sendmmsg,
		GSOFallbacks: after.GSOFallbacks - before.GSOFallbacks,
		Errors:       after.Errors - before.Errors,
	}
}

// GSO turned off and on again at runtime, while packets are in flight:
// datagrams per packet go from well under one to exactly one and back, and
// no viewer loses or misorders a packet.
func TestSetGSOLive(t *testing.T) {
	leakCheck(t)
	p, tvs, f := gsoRig(t, Config{}, 4)
	on := phase(p, tvs, f, 40, nil)
	if on.Datagrams*2 > on.Packets || on.Segments == 0 {
		t.Fatalf("GSO on: %+v", on)
	}
	phase(p, tvs, f, 40, func() { p.SetGSO(false) })
	off := phase(p, tvs, f, 40, nil)
	if off.Datagrams != off.Packets || off.Segments != 0 {
		t.Fatalf("GSO off: %+v", off)
	}
	phase(p, tvs, f, 40, func() { p.SetGSO(true) })
	again := phase(p, tvs, f, 40, nil)
	if again.Datagrams*2 > again.Packets {
		t.Fatalf("GSO on again: %+v", again)
	}
	for k, tv := range tvs {
		checkVideo(t, tv, k, f.next)
	}
	if c := p.Config(); c.NoGSO {
		t.Fatalf("Config says GSO off: %+v", c)
	}
	t.Logf("datagrams per packet: on %.3f, off %.3f, on again %.3f",
		float64(on.Datagrams)/float64(on.Packets), float64(off.Datagrams)/float64(off.Packets),
		float64(again.Datagrams)/float64(again.Packets))
}

// refuseGSO makes sendmmsg fail with errno on any message that carries
// UDP_SEGMENT, as a kernel or device without GSO would, and counts those
// refusals; the other messages go to the kernel.
func refuseGSO(t *testing.T, errno syscall.Errno) *atomic.Int64 {
	var hits atomic.Int64
	testSendmmsg = func(fd uintptr, hdrs *unix.Mmsghdr, n int) (int, syscall.Errno) {
		msgs := unsafe.Slice(hdrs, n)
		for i := range msgs {
			if msgs[i].Hdr.Controllen != 0 {
				if i == 0 {
					hits.Add(1)
					return 0, errno
				}
				n = i
				break
			}
		}
		return sysSendmmsg(fd, hdrs, n)
	}
	t.Cleanup(func() { testSendmmsg = nil })
	return &hits
}

// When the kernel refuses GSO (EIO or EINVAL) the refused datagrams are
// resent one packet per message, GSO goes off for that socket only, once,
// and nothing is lost.
func TestGSOFallback(t *testing.T) {
	for _, errno := range []syscall.Errno{unix.EIO, unix.EINVAL} {
		t.Run(errno.Error(), func(t *testing.T) {
			leakCheck(t)
			hits := refuseGSO(t, errno)
			p, tvs, f := gsoRig(t, Config{}, 3)
			first := phase(p, tvs, f, 8, nil)
			if hits.Load() == 0 || first.GSOFallbacks != 1 || first.Segments != 0 {
				t.Fatalf("refusals %d, stats %+v: want one fallback and no GSO datagram", hits.Load(), first)
			}
			h := hits.Load()
			later := phase(p, tvs, f, 40, nil)
			if hits.Load() != h || later.GSOFallbacks != 0 || later.Datagrams != later.Packets {
				t.Fatalf("after the fallback: %d more refusals, stats %+v", hits.Load()-h, later)
			}
			if first.Errors+later.Errors != 0 {
				t.Fatalf("errors: %+v %+v", first, later)
			}
			for k, tv := range tvs {
				checkVideo(t, tv, k, f.next)
			}
		})
	}
}

// EMSGSIZE on a GSO datagram (segments larger than the path MTU) resends
// its packets one by one but keeps GSO on.
func TestGSOMsgSizeKeepsGSO(t *testing.T) {
	leakCheck(t)
	hits := refuseGSO(t, unix.EMSGSIZE)
	p, tvs, f := gsoRig(t, Config{}, 2)
	st := phase(p, tvs, f, 16, nil)
	if hits.Load() < 2 || st.GSOFallbacks != 0 || st.Datagrams != st.Packets {
		t.Fatalf("refusals %d, stats %+v: want GSO tried on every batch, no fallback", hits.Load(), st)
	}
	for k, tv := range tvs {
		checkVideo(t, tv, k, f.next)
	}
}
