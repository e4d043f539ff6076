//go:build linux

package e2e

import (
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/spillway-rtc/spillway/dataplane"
	"github.com/spillway-rtc/spillway/internal/netns"
	"github.com/spillway-rtc/spillway/internal/netns/netnstest"
	"github.com/spillway-rtc/spillway/internal/server"
)

// TestChromiumAFXDP: a node runs in one network namespace with
// dataplane/mode afxdp, headless Chromium in another, joined by a veth.
// The knob afxdp/zerocopy set to on is refused with the driver's error
// (veth has no zero-copy) and stays auto. Then Chromium opens the demo
// page over the veth, watches mountpoint 1 and decodes frames for 5 s, and
// every media packet the node sent went out as a frame through the AF_XDP
// sockets, in copy mode, by the counters and socket list get_status
// reports.
func TestChromiumAFXDP(t *testing.T) {
	requireChromium(t)
	n := netnstest.New(t, "c", netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netnstest.Options{Queues: 2})
	at := n.TX4.String() + ":0"
	cfg := server.Config{
		HTTPAddr: at, WSAddr: at, AdminAddr: "127.0.0.1:0", AdminWSAddr: "127.0.0.1:0",
		AdminSecret: "test-admin", MediaPort: 0, MediaIPs: []netip.Addr{n.TX4},
		Workers: 2, Mode: dataplane.ModeAFXDP,
		Mountpoints: testMountpoints(),
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	k := server.NewKnobs()
	cfg.Knobs = k
	// Every socket, AF_XDP socket and netlink handle of the node opens in
	// the namespace, as for a server started with `ip netns exec`.
	var srv *server.Server
	if err := netns.Run(n.TX, func() error {
		var err error
		srv, err = server.Start(cfg)
		return err
	}); err != nil {
		t.Fatalf("server in %s: %v", n.TX, err)
	}
	t.Cleanup(srv.Close)
	k.Attach(srv)

	err := k.Set("afxdp/zerocopy", "on")
	if !errors.Is(err, unix.EOPNOTSUPP) || !strings.Contains(err.Error(), n.TXIf) {
		t.Fatalf("afxdp/zerocopy=on on veth: %v", err)
	}
	if v := k.Value("afxdp/zerocopy").String(); v != "auto" {
		t.Fatalf("afxdp/zerocopy is %q after the refusal", v)
	}

	playDemoPage(t, n.RX, "http://"+srv.Addr("http").String()+"/", "demo-page-afxdp.png")

	var pk, xf uint64
	for _, w := range srv.Plane().Stats().Workers {
		pk, xf = pk+w.Packets, xf+w.XDPFrames
	}
	if pk == 0 || xf != pk {
		t.Errorf("%d media packets sent, %d of them through AF_XDP", pk, xf)
	}
	socks := srv.Plane().AFXDPSockets()
	if len(socks) != 2 {
		t.Fatalf("AF_XDP sockets %+v, want one per worker on %s", socks, n.TXIf)
	}
	for _, s := range socks {
		if s.Interface != n.TXIf || s.Mode != "copy" || s.Refused == "" {
			t.Errorf("AF_XDP socket %+v", s)
		}
	}
	t.Logf("%d packets, all through AF_XDP: %+v", pk, socks)
}
