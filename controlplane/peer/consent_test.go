package peer

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestConsentExpiry: a live viewer keeps consent fresh past the timeout; a
// viewer that goes silent (no STUN, no DTLS close_notify) is Down with
// "consent expired" within the timeout plus one check period.
func TestConsentExpiry(t *testing.T) {
	leakCheck(t)
	const timeout = 3 * time.Second
	tr := newTestTransport(t, Config{ConsentTimeout: timeout})
	drop := newDropConn(t, "127.0.0.1")
	v := newViewer(t, viewerOpts{drop: drop})
	rec := newRecorder()
	p, _ := connect(t, tr, v, rec)
	v.waitConnected(t)

	select {
	case r := <-rec.down:
		t.Fatalf("down while the viewer is alive: %s", r)
	case <-time.After(timeout + 1500*time.Millisecond):
	}
	in := p.Info()
	if in.ConsentRequests < 2 || in.ConsentAge > timeout {
		t.Fatalf("consent requests %d, age %v", in.ConsentRequests, in.ConsentAge)
	}

	drop.drop.Store(true)
	silent := time.Now()
	if r := rec.waitDown(t, 2*timeout); r != "consent expired" {
		t.Fatalf("reason %q", r)
	}
	// The last request came at most one viewer keepalive (2 s) before the
	// drop, so expiry lands between timeout-2s and timeout+check period.
	if d := time.Since(silent); d < timeout-2*time.Second || d > timeout+time.Second {
		t.Errorf("consent expired %v after the viewer went silent (timeout %v)", d, timeout)
	}
}

// rfc5769Request is the sample request of RFC 5769 2.1: USERNAME
// "evtj:h6vY", password "VOkJxbRl1RmTxUk/WvJxBt".
const rfc5769Request = "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74" +
	"002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020" +
	"000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf"

func TestParseBindingRequest(t *testing.T) {
	msg, err := hex.DecodeString(rfc5769Request)
	if err != nil {
		t.Fatal(err)
	}
	user, mi, ok := parseBindingRequest(msg)
	if !ok || user != "evtj:h6vY" {
		t.Fatalf("parse: %q %d %v", user, mi, ok)
	}
	tests := []struct {
		name string
		msg  func() []byte
		pwd  string
		want bool
	}{
		{"rfc 5769 vector", func() []byte { return msg }, "VOkJxbRl1RmTxUk/WvJxBt", true},
		{"wrong password", func() []byte { return msg }, "VOkJxbRl1RmTxUk/WvJxBu", false},
		{"tampered priority", func() []byte {
			b := append([]byte(nil), msg...)
			b[45] ^= 1 // PRIORITY value, bytes 44-47
			return b
		}, "VOkJxbRl1RmTxUk/WvJxBt", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.msg()
			_, mi, ok := parseBindingRequest(b)
			if got := ok && checkIntegrity(b, mi, tc.pwd); got != tc.want {
				t.Errorf("integrity %v, want %v", got, tc.want)
			}
		})
	}

	malformed := map[string][]byte{
		"short":           msg[:19],
		"response":        append([]byte{0x01, 0x01}, msg[2:]...),
		"no cookie":       append(append([]byte(nil), msg[:4]...), append([]byte{0, 0, 0, 0}, msg[8:]...)...),
		"length past end": msg[:len(msg)-8],
		// Attributes: SOFTWARE 20-39, PRIORITY 40-47, ICE-CONTROLLED 48-59,
		// USERNAME 60-75, MESSAGE-INTEGRITY 76-99, FINGERPRINT 100-107.
		"no integrity":    append(append([]byte{0x00, 0x01, 0x00, 0x10}, msg[4:20]...), msg[60:76]...),
		"integrity first": append(append([]byte{0x00, 0x01, 0x00, 0x18}, msg[4:20]...), msg[76:100]...),
	}
	for name, b := range malformed {
		if _, _, ok := parseBindingRequest(b); ok {
			t.Errorf("%s: parsed", name)
		}
	}
}

// TestConsentConnCounts: the socket wrapper stamps only requests for a
// registered ufrag whose integrity checks out.
func TestConsentConnCounts(t *testing.T) {
	msg, _ := hex.DecodeString(rfc5769Request)
	c := &consentConn{byUfrag: map[string]*consent{}}
	good := newConsent("VOkJxbRl1RmTxUk/WvJxBt")
	from := netip.MustParseAddrPort("[::ffff:127.0.0.1]:5000")
	c.noteBinding(msg, from) // not registered yet
	c.register("evtj", good)
	c.noteBinding(msg, from)
	c.register("evtj", newConsent(strings.Repeat("x", 22)))
	c.noteBinding(msg, from) // wrong password for this peer
	if got := good.requests(); got != 1 {
		t.Fatalf("%d requests counted, want 1", got)
	}
	if good.lastFrom(netip.MustParseAddrPort("127.0.0.1:5000")).IsZero() {
		t.Error("request not stamped under the unmapped address")
	}
	for i := range maxConsentRemotes + 4 {
		good.note(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(i+1)), time.Now())
	}
	if n := len(good.last); n != maxConsentRemotes {
		t.Errorf("%d remotes remembered, want %d", n, maxConsentRemotes)
	}
}
