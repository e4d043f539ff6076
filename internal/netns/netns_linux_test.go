//go:build linux

package netns

import "testing"

// Path leaves paths alone and puts names under /run/netns.
func TestPath(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"sink", "/run/netns/sink"},
		{"/var/run/netns/sink", "/var/run/netns/sink"},
		{"/proc/1/ns/net", "/proc/1/ns/net"},
	} {
		if got := Path(tt.in); got != tt.want {
			t.Errorf("Path(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
