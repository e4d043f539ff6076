package peer

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/dtls/v3"

	"github.com/spillway-rtc/spillway/dataplane"
)

// TestUpAndMedia: offer completed, pion answers, Up carries keys that the
// viewer accepts for media sent from the shared socket; for both DTLS roles
// and each SRTP profile.
func TestUpAndMedia(t *testing.T) {
	tests := []struct {
		name     string
		passive  bool
		profile  dtls.SRTPProtectionProfile
		wantRole string
		want     dataplane.Profile
	}{
		{"active/aead-128-gcm", false, dtls.SRTP_AEAD_AES_128_GCM, "server", dataplane.ProfileAEADAES128GCM},
		{"passive/aead-128-gcm", true, dtls.SRTP_AEAD_AES_128_GCM, "client", dataplane.ProfileAEADAES128GCM},
		{"active/aes-cm-80", false, dtls.SRTP_AES128_CM_HMAC_SHA1_80, "server", dataplane.ProfileAES128CMHMACSHA1_80},
		{"passive/aes-cm-80", true, dtls.SRTP_AES128_CM_HMAC_SHA1_80, "client", dataplane.ProfileAES128CMHMACSHA1_80},
		{"active/aead-256-gcm", false, dtls.SRTP_AEAD_AES_256_GCM, "server", dataplane.ProfileAEADAES256GCM},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			tr := newTestTransport(t, Config{})
			v := newViewer(t, viewerOpts{passive: tc.passive, profiles: []dtls.SRTPProtectionProfile{tc.profile}})
			rec := newRecorder()
			p, h := connect(t, tr, v, rec)

			if h.Profile != tc.want {
				t.Errorf("profile %v, want %v", h.Profile, tc.want)
			}
			if h.Local != tr.LocalAddrs()[0] {
				t.Errorf("handoff local %v, want the transport's %v", h.Local, tr.LocalAddrs()[0])
			}
			if !h.Remote.Addr().IsLoopback() || h.Remote.Port() == 0 {
				t.Errorf("handoff remote %v", h.Remote)
			}
			if len(h.Streams) != 2 {
				t.Fatalf("streams %+v", h.Streams)
			}
			audio, video := streamBySSRC(t, h, audioSSRC), streamBySSRC(t, h, videoSSRC)
			if audio.MID != "a" || audio.PT != 111 || audio.ClockRate != 48000 ||
				video.MID != "v" || video.PT != 96 || video.ClockRate != 90000 {
				t.Errorf("streams %+v", h.Streams)
			}
			in := p.Info()
			if in.DTLSRole != tc.wantRole || in.DTLSState != "connected" || in.ICEState != "Connected" {
				t.Errorf("info role %q dtls %q ice %q", in.DTLSRole, in.DTLSState, in.ICEState)
			}

			v.waitConnected(t)
			s := newSender(t, tr, h, nil)
			for i := range 20 {
				s.send(audio, []byte(fmt.Sprintf("audio %d", i)))
				s.send(video, []byte(fmt.Sprintf("video %d", i)))
				time.Sleep(5 * time.Millisecond)
			}
			waitFor(t, 5*time.Second, "media at the viewer", func() bool {
				return containsPayload(v.received(audioSSRC), []byte("audio 19")) &&
					containsPayload(v.received(videoSSRC), []byte("video 19"))
			})

			p.Close("bye")
			if r := rec.waitDown(t, 5*time.Second); r != "bye" {
				t.Errorf("down reason %q", r)
			}
		})
	}
}

// TestIPv6: a transport on 127.0.0.1 and ::1 offers both; an IPv6-only
// viewer comes up on ::1.
func TestIPv6(t *testing.T) {
	leakCheck(t)
	tr := newTestTransport(t, Config{IPs: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}})
	addrs := tr.LocalAddrs()
	if len(addrs) != 2 || addrs[0].Port() != addrs[1].Port() {
		t.Fatalf("local addrs %v: want two sockets on one port", addrs)
	}
	p := tr.NewPeer(newRecorder().events())
	defer p.Close("test over")
	offer, err := p.CompleteOffer(bareOffer)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{" 127.0.0.1 ", " ::1 "} {
		if !strings.Contains(offer, want) {
			t.Errorf("offer lacks a candidate on%s:\n%s", want, offer)
		}
	}
	p.Close("replaced")

	v := newViewer(t, viewerOpts{ipv6: true})
	rec := newRecorder()
	_, h := connect(t, tr, v, rec)
	if !h.Local.Addr().Is6() || h.Local != addrs[1] || !h.Remote.Addr().Is6() {
		t.Fatalf("handoff path %v -> %v, want ::1", h.Local, h.Remote)
	}
	v.waitConnected(t)
	s := newSender(t, tr, h, nil)
	video := streamBySSRC(t, h, videoSSRC)
	for i := range 10 {
		s.send(video, []byte(fmt.Sprintf("v6 %d", i)))
	}
	waitFor(t, 5*time.Second, "media over IPv6", func() bool {
		return containsPayload(v.received(videoSSRC), []byte("v6 9"))
	})
}

// TestDown: Down fires exactly once, with the first reason, for every way
// a peer ends before it is up.
func TestDown(t *testing.T) {
	t.Run("close before offer", func(t *testing.T) {
		leakCheck(t)
		tr := newTestTransport(t, Config{})
		rec := newRecorder()
		p := tr.NewPeer(rec.events())
		p.Close("hangup")
		p.Close("again")
		if r := rec.waitDown(t, 2*time.Second); r != "hangup" {
			t.Errorf("reason %q", r)
		}
		if _, err := p.CompleteOffer(bareOffer); err == nil {
			t.Error("offer on a closed peer succeeded")
		}
		time.Sleep(50 * time.Millisecond)
		if n := rec.downs.Load(); n != 1 {
			t.Errorf("%d Down calls", n)
		}
	})
	t.Run("close after offer", func(t *testing.T) {
		leakCheck(t)
		tr := newTestTransport(t, Config{})
		rec := newRecorder()
		p := tr.NewPeer(rec.events())
		if _, err := p.CompleteOffer(bareOffer); err != nil {
			t.Fatal(err)
		}
		p.Close("hangup")
		if r := rec.waitDown(t, 2*time.Second); r != "hangup" {
			t.Errorf("reason %q", r)
		}
		if err := p.ApplyAnswer("v=0"); err == nil {
			t.Error("answer on a closed peer succeeded")
		}
	})
	t.Run("ice timeout", func(t *testing.T) {
		leakCheck(t)
		tr := newTestTransport(t, Config{ICETimeout: 500 * time.Millisecond})
		rec := newRecorder()
		p := tr.NewPeer(rec.events())
		defer p.Close("test over")
		offer, err := p.CompleteOffer(bareOffer)
		if err != nil {
			t.Fatal(err)
		}
		// The viewer answers but never gets our answer... nor sends checks.
		v := newViewer(t, viewerOpts{})
		ans := v.answer(t, offer)
		_ = v.pc.Close()
		if err := p.ApplyAnswer(ans); err != nil {
			t.Fatal(err)
		}
		if r := rec.waitDown(t, 5*time.Second); r != "ice failed: no connection within 500ms" {
			t.Errorf("reason %q", r)
		}
	})
	t.Run("fingerprint mismatch", func(t *testing.T) {
		leakCheck(t)
		tr := newTestTransport(t, Config{})
		rec := newRecorder()
		p := tr.NewPeer(rec.events())
		defer p.Close("test over")
		offer, err := p.CompleteOffer(bareOffer)
		if err != nil {
			t.Fatal(err)
		}
		v := newViewer(t, viewerOpts{})
		ans := v.answer(t, offer)
		// Another certificate's fingerprint: DTLS must refuse the viewer.
		_, other, err := selfSignedCert()
		if err != nil {
			t.Fatal(err)
		}
		ans = replaceFingerprint(ans, other)
		if err := p.ApplyAnswer(ans); err != nil {
			t.Fatal(err)
		}
		if r := rec.waitDown(t, 10*time.Second); !strings.HasPrefix(r, "dtls failed") || !strings.Contains(r, "does not match") {
			t.Errorf("reason %q", r)
		}
		if in := p.Info(); in.DTLSState != "failed" {
			t.Errorf("dtls state %q", in.DTLSState)
		}
	})
	t.Run("viewer closes", func(t *testing.T) {
		leakCheck(t)
		tr := newTestTransport(t, Config{})
		v := newViewer(t, viewerOpts{})
		rec := newRecorder()
		connect(t, tr, v, rec)
		v.waitConnected(t)
		_ = v.pc.Close() // DTLS close_notify
		if r := rec.waitDown(t, 5*time.Second); r != "dtls closed by the viewer" {
			t.Errorf("reason %q", r)
		}
	})
	t.Run("transport close", func(t *testing.T) {
		leakCheck(t)
		tr, err := NewTransport(Config{IPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		v := newViewer(t, viewerOpts{})
		rec := newRecorder()
		p := tr.NewPeer(rec.events())
		offer, err := p.CompleteOffer(bareOffer)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.ApplyAnswer(v.answer(t, offer)); err != nil {
			t.Fatal(err)
		}
		rec.waitUp(t)
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
		if r := rec.waitDown(t, time.Second); r != "transport closed" {
			t.Errorf("reason %q", r)
		}
		late := newRecorder()
		tr.NewPeer(late.events())
		if r := late.waitDown(t, time.Second); r != "transport closed" {
			t.Errorf("late peer reason %q", r)
		}
	})
}

func replaceFingerprint(sdpText, fp string) string {
	var out []string
	for _, l := range strings.Split(sdpText, "\r\n") {
		if strings.HasPrefix(l, "a=fingerprint:sha-256 ") {
			l = "a=fingerprint:sha-256 " + fp
		}
		out = append(out, l)
	}
	return strings.Join(out, "\r\n")
}
