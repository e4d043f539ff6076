package main

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseOptions(t *testing.T) {
	o, err := parseOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.viewers != 1000 || !slices.Equal(o.rates, []float64{0.5, 1, 2, 4}) || !slices.Equal(o.profiles, []string{"gcm", "cm"}) ||
		!slices.Equal(o.modes, []string{"socket", "shaped", "nogso", "nommsg", "batch1", "queue", "afxdp"}) || o.local != netip.MustParseAddrPort("198.18.0.1:5000") {
		t.Fatalf("defaults: %+v", o)
	}
	for _, tt := range []struct {
		args []string
		err  string // "" when valid
	}{
		{[]string{"-rates", "2", "-profiles", "gcm", "-modes", "socket,queue"}, ""},
		{[]string{"-rates", "0"}, "bitrate"},
		{[]string{"-rates", "x"}, "bitrate"},
		{[]string{"-profiles", "gcm,aes"}, "unknown profile"},
		{[]string{"-modes", "socket,fast"}, "unknown mode"},
		{[]string{"-modes", "limit probe"}, "unknown mode"},
		{[]string{"-modes", "afxdp limit"}, "unknown mode"},
		{[]string{"-other-modes", "nopin"}, "unknown mode"},
		{[]string{"-modes", ""}, "nothing to run"},
		{[]string{"-cpu", "0", "-housekeeping-cpu", "0"}, "two different CPUs"},
		{[]string{"-local", "[::1]:5000"}, "IPv4"},
		{[]string{"-viewers-from", "198.19.0.1:65000"}, "out of range"},
		{[]string{"-viewers", "0"}, "out of range"},
		{[]string{"-window", "0s"}, "positive"},
		{[]string{"-tries", "0"}, "positive"},
		{[]string{"-rounds", "0"}, "positive"},
	} {
		_, err := parseOptions(tt.args)
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("parseOptions(%q) = %v, want error containing %q", tt.args, err, tt.err)
		}
	}
}

func TestViewerAddrs(t *testing.T) {
	got := viewerAddrs(netip.MustParseAddrPort("198.19.0.254:10000"), 3)
	want := []netip.AddrPort{
		netip.MustParseAddrPort("198.19.0.254:10000"),
		netip.MustParseAddrPort("198.19.0.255:10001"),
		netip.MustParseAddrPort("198.19.1.0:10002"),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%v", got)
	}
}

// The plan runs each profile's probe first (and the AF_XDP probe where
// afxdp mode runs), every mode at every rate for the first profile, the
// other modes for the others.
func TestPlan(t *testing.T) {
	o, err := parseOptions([]string{"-rates", "1,2", "-modes", "socket,queue,batch1", "-other-modes", "queue,afxdp"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range o.plan() {
		got = append(got, r.label())
	}
	want := []string{
		"gcm limit probe", "gcm socket 1 Mbit/s", "gcm queue 1 Mbit/s", "gcm batch1 1 Mbit/s",
		"gcm limit probe", "gcm socket 2 Mbit/s", "gcm queue 2 Mbit/s", "gcm batch1 2 Mbit/s",
		"cm limit probe", "cm afxdp limit", "cm queue 1 Mbit/s", "cm afxdp 1 Mbit/s",
		"cm limit probe", "cm afxdp limit", "cm queue 2 Mbit/s", "cm afxdp 2 Mbit/s",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
