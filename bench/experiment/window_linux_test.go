package experiment

import (
	"testing"
	"time"

	"github.com/spillway-rtc/spillway/bench/media"
)

// A window is whole GOPs of the source (2 s at 30 fps, a keyframe every 60
// frames), the nearest to what was asked, at least one.
func TestWindowInGOPs(t *testing.T) {
	for _, tt := range []struct {
		window time.Duration
		gops   uint64
	}{{0, 1}, {500 * time.Millisecond, 1}, {2 * time.Second, 1}, {2900 * time.Millisecond, 1}, {3 * time.Second, 2}, {4 * time.Second, 2}, {100 * time.Second, 50}} {
		m := &measurer{video: media.DefaultVideoModel(2e6)}
		if got := m.gops(tt.window); got != tt.gops {
			t.Errorf("window %v: %d GOPs, want %d", tt.window, got, tt.gops)
		}
	}
}
