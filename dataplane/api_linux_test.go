//go:build linux

package dataplane

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"zero is default", Config{}, ""},
		{"history not a power of two", Config{History: 500}, "power of two"},
		{"negative", Config{Batch: -1}, "negative"},
		{"negative sndbuf", Config{SndBuf: -1}, "negative"},
		{"batch too large", Config{Batch: maxBatch + 1}, "batch"},
		{"flush interval too long", Config{FlushInterval: 2 * time.Second}, "flush interval"},
		{"unknown mode", Config{Mode: "afxdp-typo"}, "unknown mode"},
		{"workers differ from CPUs", Config{Workers: 3, CPUs: []int{0, 1}}, "one worker per CPU"},
		{"repeated CPU", Config{CPUs: []int{0, 0}}, "repeated"},
		{"empty CPU list", Config{CPUs: []int{}}, "empty CPU list"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.cfg.withDefaults()
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || got.Workers != 0 || got.Batch != defaultBatch || got.FlushInterval != defaultFlushInterval ||
				got.History != defaultHistory || got.Mode != ModeSocket || got.Logger == nil {
				t.Fatalf("%+v, %v", got, err)
			}
		})
	}
}

func TestAddViewerErrors(t *testing.T) {
	leakCheck(t)
	p, ctrl := joinedPlane(t, Config{Workers: 1}, "127.0.0.1:0")
	src := p.NewSource("s", 2)
	key, salt := keysFor(t, ProfileAEADAES128GCM)
	good := Handoff{Profile: ProfileAEADAES128GCM, MasterKey: key, MasterSalt: salt, Local: addrOf(ctrl),
		Remote: netip.MustParseAddrPort("127.0.0.1:9"), Streams: viewerStreams(0)}
	other, err := New(Config{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	cases := []struct {
		name string
		edit func(h *Handoff)
		src  *Source
	}{
		{"no streams", func(h *Handoff) { h.Streams = nil }, src},
		{"bad key", func(h *Handoff) { h.MasterKey = key[:3] }, src},
		{"unknown profile", func(h *Handoff) { h.Profile = 0x99 }, src},
		{"source index out of range", func(h *Handoff) { h.Streams = []Stream{{SSRC: 1, Source: 2}} }, src},
		{"duplicate ssrc", func(h *Handoff) { h.Streams = []Stream{{SSRC: 1}, {SSRC: 1, Source: 1}} }, src},
		{"local not joined", func(h *Handoff) { h.Local = netip.MustParseAddrPort("127.0.0.1:1") }, src},
		{"source of another plane", func(h *Handoff) {}, other.NewSource("x", 2)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := good
			c.edit(&h)
			if v, err := p.AddViewer(h, c.src); err == nil || v != nil {
				t.Fatalf("AddViewer accepted it")
			}
		})
	}
	if st := p.Stats(); st.Viewers != 0 {
		t.Fatalf("viewers %d after refusals", st.Viewers)
	}
	if err := p.Join(addrOf(ctrl)); err == nil {
		t.Fatal("joined the same address twice")
	}
}

// A closed source publishes nothing; its viewers stay and may switch away.
// After Plane.Close every call returns without hanging.
func TestSourceAndPlaneClose(t *testing.T) {
	leakCheck(t)
	p, ctrl := joinedPlane(t, Config{Workers: 2}, "127.0.0.1:0")
	a, b := p.NewSource("a", 2), p.NewSource("b", 2)
	tv := newTestViewer(t, ProfileAEADAES128GCM, addrOf(ctrl), "127.0.0.1:0", viewerStreams(0)...)
	v, err := p.AddViewer(tv.h, a)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	a.Publish(1, rtpPacket(1, 111, 1, 1, false, []byte{1}), false)
	v.Switch(b)
	b.Publish(1, rtpPacket(2, 111, 1, 1, false, []byte{2}), false)
	tv.waitCount(1)
	if g := tv.stream(aSSRC); len(g) != 1 || g[0].pay[0] != 2 {
		t.Fatalf("got %+v, want only the packet from b", g)
	}

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		v.SetPaused(true)
		v.Switch(a)
		v.Retransmit(aSSRC, []uint16{1})
		v.Close()
		b.Publish(1, rtpPacket(2, 111, 2, 2, false, []byte{3}), false)
		if _, err := p.AddViewer(tv.h, b); err == nil {
			t.Error("AddViewer on a closed plane")
		}
		if err := p.Join(netip.MustParseAddrPort("127.0.0.1:9")); err == nil {
			t.Error("Join on a closed plane")
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("calls on a closed plane hang")
	}
}
