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

// A full send buffer (EAGAIN) makes flush wait for writability through Go's
// poller, not spin, and partial sends resume where they stopped: every
// message arrives, in order, in few sendmmsg calls. A datagram socketpair
// gives real back-pressure, which loopback UDP never does.
func TestFlushWaitsOnEAGAIN(t *testing.T) {
	leakCheck(t)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	sendF, recvF := os.NewFile(uintptr(fds[0]), "send"), os.NewFile(uintptr(fds[1]), "recv")
	sendC, err := net.FileConn(sendF)
	sendF.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer sendC.Close()
	recvC, err := net.FileConn(recvF)
	recvF.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer recvC.Close()
	rc, err := sendC.(*net.UnixConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}

	st := &wstats{}
	s := &wsock{rc: rc, mmsg: true, sys: sysSendmmsg}
	s.init(maxMsgs)
	const n = 300
	bufs := make([][]byte, n)
	var none sockaddr // namelen 0: the connected peer
	for i := range bufs {
		bufs[i] = []byte{byte(i), byte(i >> 8), 0xee}
		s.add(bufs[i], &none, 0, 1)
	}

	got := make(chan int, n)
	go func() {
		time.Sleep(50 * time.Millisecond) // the queue fills up first: EAGAIN
		b := make([]byte, 16)
		for i := 0; i < n; i++ {
			if _, err := recvC.Read(b); err != nil {
				close(got)
				return
			}
			got <- int(b[0]) | int(b[1])<<8
		}
		close(got)
	}()
	start := time.Now()
	s.flush(st, slog.Default())
	if time.Since(start) < 40*time.Millisecond {
		t.Fatalf("flush returned before the reader made room: no back-pressure seen")
	}
	i := 0
	for v := range got {
		if v != i {
			t.Fatalf("message %d arrived as #%d", v, i)
		}
		i++
	}
	if i != n || st.packets.Load() != n || st.errors.Load() != 0 || st.bytes.Load() != 3*n {
		t.Fatalf("%d received; stats packets %d errors %d bytes %d", i, st.packets.Load(), st.errors.Load(), st.bytes.Load())
	}
	if c := st.calls.Load(); c < 2 || c > n/2 {
		t.Fatalf("%d sendmmsg calls for %d messages: want partial sends, and no spinning", c, n)
	}
	t.Logf("%d messages in %d sendmmsg calls", n, st.calls.Load())
}
