//go:build linux

package dataplane

import (
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A full send buffer blocks flush in the kernel (SO_SNDTIMEO bounds each
// wait), not spin, and partial sends resume where they stopped: every
// datagram arrives, in order, in few calls. A datagram socketpair gives real
// back-pressure, which loopback UDP never does. The same holds without
// sendmmsg (one call per datagram), and for GSO datagrams resent one packet
// per message after the kernel refused GSO.
func TestFlushWaitsOnEAGAIN(t *testing.T) {
	const n = 300 // datagrams that must arrive
	cases := []struct {
		name     string
		mmsg     bool
		segs     int // packets per queued message
		refuse   bool
		min, max uint64 // send calls
	}{
		{"sendmmsg", true, 1, false, 1, n / 2}, // one blocking call may carry them all
		{"one call per datagram", false, 1, false, n, n + n/2},
		{"GSO refused, resent per packet", true, 3, true, 2, n / 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			leakCheck(t)
			sendC, recvC := socketpair(t)
			st := &wstats{}
			s := &wsock{sock: sendC, mmsg: c.mmsg, gsoOK: true, sys: sysSendmmsg}
			if c.refuse {
				hits := refuseGSO(t, unix.EIO)
				s.sys = testSendmmsg
				defer func() {
					if hits.Load() == 0 {
						t.Error("GSO never refused")
					}
				}()
			}
			s.init(maxMsgs)
			buf := make([]byte, 0, 3*n)
			for k := 0; k < n; k++ {
				buf = append(buf, byte(k), byte(k>>8), 0xee)
			}
			var none sockaddr // namelen 0: the connected peer
			for off := 0; off < len(buf); off += 3 * c.segs {
				gso := 0
				if c.segs > 1 {
					gso = 3
				}
				s.add(buf[off:off+3*c.segs], &none, gso, c.segs)
			}

			got := make(chan int, n)
			go func() {
				defer close(got)
				time.Sleep(50 * time.Millisecond) // the queue fills up first: EAGAIN
				b := make([]byte, 16)
				for i := 0; i < n; i++ {
					m, err := recvC.Read(b)
					if err != nil || m != 3 {
						return
					}
					got <- int(b[0]) | int(b[1])<<8
				}
			}()
			start := time.Now()
			s.flush(st, slog.Default())
			if time.Since(start) < 40*time.Millisecond {
				t.Fatalf("flush returned before the reader made room: no back-pressure seen")
			}
			i := 0
			for v := range got {
				if v != i {
					t.Fatalf("datagram %d arrived as #%d", v, i)
				}
				i++
			}
			if i != n || st.packets.Load() != n || st.errors.Load() != 0 || st.bytes.Load() != 3*n {
				t.Fatalf("%d received; stats packets %d errors %d bytes %d", i, st.packets.Load(), st.errors.Load(), st.bytes.Load())
			}
			if calls := st.calls.Load(); calls < c.min || calls > c.max {
				t.Fatalf("%d send calls for %d datagrams, want [%d, %d]: partial sends, and no spinning", calls, n, c.min, c.max)
			}
			t.Logf("%d datagrams in %d send calls", n, st.calls.Load())
		})
	}
}

// socketpair returns a datagram socketpair: the sending end as the data
// plane opens its sockets (blocking, SO_SNDTIMEO), the other for reading.
func socketpair(t *testing.T) (*sendSock, *net.UnixConn) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	tv := unix.NsecToTimeval(sendTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fds[0], unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	send := &sendSock{fd: fds[0]}
	t.Cleanup(func() { send.Close() })
	if err := unix.SetNonblock(fds[1], true); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[1]), "socketpair")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return send, c.(*net.UnixConn)
}
