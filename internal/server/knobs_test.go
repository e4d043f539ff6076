package server

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spillway-rtc/spillway/dataplane"
)

// docs/knobs.md is made from the table: `go run ./cmd/spillway knobs
// -markdown > docs/knobs.md`.
func TestKnobsDocIsCurrent(t *testing.T) {
	b, err := os.ReadFile("../../docs/knobs.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != NewKnobs().Markdown() {
		t.Fatal("docs/knobs.md is stale: run `go run ./cmd/spillway knobs -markdown > docs/knobs.md`")
	}
}

func TestKnobsConfig(t *testing.T) {
	k := NewKnobs()
	file := filepath.Join(t.TempDir(), "spillway.json")
	if err := os.WriteFile(file, []byte(`{
  "janus": {"http": "127.0.0.1:9000", "session_timeout": "0s"},
  "dataplane/gso": false,
  "dataplane": {"mode": "queue", "flush_us": 250},
  "webrtc": {"ips": ["127.0.0.1", "::1"], "nat_1_1": "127.0.0.1=192.0.2.1"},
  "srtp/profiles": "aes_cm_128_hmac_sha1_80",
  "affinity/cpus": "0-1",
  "mountpoints": [{"type": "clip", "id": 5}]
}`), 0o644); err != nil {
		t.Fatal(err)
	}
	mounts, err := k.LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 1 {
		t.Fatalf("mountpoints %v", mounts)
	}
	c, err := k.Config()
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case c.HTTPAddr != "127.0.0.1:9000", c.WSAddr != ":8188":
		t.Errorf("addresses %q %q", c.HTTPAddr, c.WSAddr)
	case c.SessionTimeout >= 0:
		t.Errorf("session_timeout 0 should mean never, got %v", c.SessionTimeout)
	case !c.NoGSO || c.NoMMsg || c.Mode != dataplane.ModeQueue || c.FlushInterval != 250*time.Microsecond:
		t.Errorf("data plane %+v", c)
	case len(c.MediaIPs) != 2 || c.Advertise[netip.MustParseAddr("127.0.0.1")] != netip.MustParseAddr("192.0.2.1"):
		t.Errorf("webrtc %v %v", c.MediaIPs, c.Advertise)
	case len(c.Profiles) != 1 || c.Profiles[0] != dataplane.ProfileAES128CMHMACSHA1_80:
		t.Errorf("profiles %v", c.Profiles)
	case len(c.CPUs) != 2:
		t.Errorf("cpus %v", c.CPUs)
	}

	for _, bad := range []struct{ path, value string }{
		{"srtp/profiles", "rot13"}, {"streaming/rtp_ports", "9-1"}, {"webrtc/nat_1_1", "nonsense"}, {"streaming/rtp_host", "eth0"},
	} {
		k := NewKnobs()
		if err := k.Set(bad.path, bad.value); err != nil {
			t.Fatalf("%s: %v", bad.path, err)
		}
		if _, err := k.Config(); err == nil {
			t.Errorf("%s=%q accepted", bad.path, bad.value)
		}
	}
	if err := NewKnobs().Set("dataplane/batch", "0"); err == nil {
		t.Error("dataplane/batch=0 accepted")
	}
}
