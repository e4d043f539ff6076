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

func newFanoutRig(tb testing.TB, cfg Config, prof Profile, viewers, payload int) *fanoutRig {
	tb.Helper()
	cfg.Workers = 1
	cfg.MaxLag = MaxMaxLag // the publisher keeps the queue half full: a throughput test, not a real-time one
	p, ctrl := joinedPlane(tb, cfg, "127.0.0.1:0")
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

// publish sends n packets on the audio stream, never overrunning a queue,
// and waits until the plane has sent them to every viewer.
func (r *fanoutRig) publish(n, viewers int) {
	for i := 0; i < n; i++ {
		for len(r.w.in) > inQueue/2 {
			runtime.Gosched()
		}
		r.seq++
		binary.BigEndian.PutUint16(r.pkt[2:], r.seq)
		binary.BigEndian.PutUint32(r.pkt[4:], uint32(r.seq)*960)
		r.src.Publish(1, r.pkt, false)
		if r.p.cfg.Mode == ModeQueue && i%(viewerQueue/2) == viewerQueue/2-1 {
			r.wait(uint64(i+1) * uint64(viewers)) // the viewers' queues are shorter
		}
	}
	r.want += uint64(n * viewers)
	r.wait(0)
}

func (r *fanoutRig) wait(extra uint64) {
	target := r.want + extra
	for r.w.st.packets.Load()+r.w.st.errors.Load() < target {
		runtime.Gosched()
	}
}

// The ablations and modes the tests and benchmarks run over.
var socketModes = []struct {
	name string
	cfg  Config
}{
	{"socket", Config{}},
	{"socket-nogso", Config{NoGSO: true}},
	{"socket-nommsg", Config{NoMMsg: true}},
	{"socket-nopin", Config{NoPin: true}},
	{"socket-batch1", Config{Batch: 1}},
}

var allModes = append(append([]struct {
	name string
	cfg  Config
}(nil), socketModes...), struct {
	name string
	cfg  Config
}{"queue", Config{Mode: ModeQueue}})

// The worker's path (rewrite, encrypt, pack, history, counters, sendmmsg)
// and Publish allocate nothing per packet in socket mode, with many
// viewers, for both profile families and every ablation.
func TestFanoutAllocations(t *testing.T) {
	for _, m := range socketModes {
		for _, prof := range testProfiles {
			t.Run(m.name+"/"+srtp.ProtectionProfile(prof).String(), func(t *testing.T) {
				leakCheck(t)
				const viewers = 64
				r := newFanoutRig(t, m.cfg, prof, viewers, 1000)
				r.publish(2*defaultHistory+64, viewers) // fill the pool, rings and histories
				allocs := testing.AllocsPerRun(20, func() { r.publish(32, viewers) })
				if allocs != 0 {
					t.Fatalf("%.1f allocations per 32 packets x %d viewers", allocs, viewers)
				}
				if e := r.w.st.errors.Load(); e != 0 {
					t.Fatalf("%d send errors", e)
				}
				if m.cfg.NoGSO || m.cfg.Batch == 1 {
					return
				}
				if s := r.w.st.segments.Load(); s == 0 {
					t.Fatalf("equal packets in batches, yet no GSO segments: %+v", r.p.Stats().Workers[0])
				}
			})
		}
	}
}

// BenchmarkFanout reports the cost of one published 1200-byte packet per
// viewer, through rewrite, SRTP, packing and sending on one worker, in
// every mode, and how many datagrams (sendmmsg messages) each packet took.
// Loopback delivers in the sender's context, so these are not the
// figures of `make bench-dataplane` (veth and an XDP sink).
func BenchmarkFanout(b *testing.B) {
	for _, m := range allModes {
		for _, prof := range testProfiles {
			for _, viewers := range []int{1, 16, 128} {
				name := fmt.Sprintf("%s/%s/viewers=%d", m.name, srtp.ProtectionProfile(prof), viewers)
				b.Run(name, func(b *testing.B) {
					r := newFanoutRig(b, m.cfg, prof, viewers, 1200)
					r.publish(2*defaultHistory, viewers)
					st0 := r.p.Stats().Workers[0]
					b.ReportAllocs()
					b.ResetTimer()
					start := time.Now()
					r.publish(b.N, viewers)
					el := time.Since(start)
					b.StopTimer()
					st := r.p.Stats().Workers[0]
					pkts := float64(st.Packets - st0.Packets)
					b.ReportMetric(float64(el.Nanoseconds())/float64(b.N*viewers), "ns/pkt/viewer")
					b.ReportMetric(float64(st.Datagrams-st0.Datagrams)/pkts, "dgrams/pkt")
					b.ReportMetric(pkts/float64(st.Sendmmsg-st0.Sendmmsg), "pkts/call")
				})
			}
		}
	}
}
