//go:build linux

package dataplane

import (
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/pion/srtp/v3"
)

// fanoutRig is a single-worker plane with viewers whose sockets nobody
// reads (the kernel drops what overflows; sendmmsg does not care), so that
// the only work measured is the data plane's.
type fanoutRig struct {
	p    *Plane
	w    *worker
	src  *Source
	pkt  []byte
	seq  uint16
	want uint64
}

func newFanoutRig(tb testing.TB, prof Profile, viewers, payload int) *fanoutRig {
	tb.Helper()
	p, ctrl := joinedPlane(tb, Config{Workers: 1}, "127.0.0.1:0")
	r := &fanoutRig{p: p, w: p.workers[0], src: p.NewSource("bench", 2)}
	for k := 0; k < viewers; k++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { c.Close() })
		key, salt := keysFor(tb, prof)
		h := Handoff{Profile: prof, MasterKey: key, MasterSalt: salt, Local: addrOf(ctrl), Remote: addrOf(c), Streams: viewerStreams(k)}
		if _, err := p.AddViewer(h, r.src); err != nil {
			tb.Fatal(err)
		}
	}
	r.pkt = rtpPacket(7, 111, 0, 0, false, make([]byte, payload))
	return r
}

// publish sends n packets on the audio stream, never overrunning the
// worker's queue, and waits until the worker has sent them to every viewer.
func (r *fanoutRig) publish(n, viewers int) {
	for i := 0; i < n; i++ {
		for len(r.w.in) > inQueue/2 {
			runtime.Gosched()
		}
		r.seq++
		binary.BigEndian.PutUint16(r.pkt[2:], r.seq)
		binary.BigEndian.PutUint32(r.pkt[4:], uint32(r.seq)*960)
		r.src.Publish(1, r.pkt, false)
	}
	r.want += uint64(n * viewers)
	for r.w.st.packets.Load()+r.w.st.errors.Load() < r.want {
		runtime.Gosched()
	}
}

// The worker's path (rewrite, encrypt, history, counters, sendmmsg) and
// Publish allocate nothing per packet, with many viewers.
func TestFanoutAllocations(t *testing.T) {
	for _, prof := range testProfiles {
		t.Run(srtp.ProtectionProfile(prof).String(), func(t *testing.T) {
			if raceEnabled && prof == ProfileAES128CMHMACSHA1_80 {
				// pion's AES-CM keeps its keystream buffer in a sync.Pool,
				// which drops a quarter of Puts under the race detector.
				t.Skip("allocation count of pion's AES-CM is randomised under -race; run without -race")
			}
			leakCheck(t)
			const viewers = 16
			r := newFanoutRig(t, prof, viewers, 1000)
			r.publish(2*defaultHistory+64, viewers) // fill the pool, rings and histories
			allocs := testing.AllocsPerRun(50, func() { r.publish(32, viewers) })
			if allocs != 0 {
				t.Fatalf("%.1f allocations per 32 packets x %d viewers", allocs, viewers)
			}
			if e := r.w.st.errors.Load(); e != 0 {
				t.Fatalf("%d send errors", e)
			}
		})
	}
}

// BenchmarkFanout reports the cost of one published 1200-byte packet, and
// per packet per viewer, through rewrite, SRTP and sendmmsg on one worker.
func BenchmarkFanout(b *testing.B) {
	for _, prof := range testProfiles {
		for _, viewers := range []int{1, 16, 128} {
			b.Run(fmt.Sprintf("%s/viewers=%d", srtp.ProtectionProfile(prof), viewers), func(b *testing.B) {
				r := newFanoutRig(b, prof, viewers, 1200)
				r.publish(2*defaultHistory, viewers)
				calls := r.w.st.calls.Load()
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				r.publish(b.N, viewers)
				el := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(el.Nanoseconds())/float64(b.N*viewers), "ns/pkt/viewer")
				b.ReportMetric(float64(b.N*viewers)/float64(r.w.st.calls.Load()-calls), "pkts/sendmmsg")
			})
		}
	}
}
