package e2e

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/spillway-rtc/spillway/plugins/streaming/fileloop"
)

func watchDuration(t *testing.T) time.Duration {
	if v := os.Getenv("SPILLWAY_WATCH_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err == nil {
			return time.Duration(n) * time.Second
		}
	}
	return 10 * time.Second
}

// TestWatchDemoOverHTTPAndWebSocket: one pion viewer watches mountpoint 1
// over HTTP long poll, another over WebSocket; each gets 10 s of media with
// no loss, and every VP8 frame equals the clip's.
func TestWatchDemoOverHTTPAndWebSocket(t *testing.T) {
	leakCheck(t)
	srv := startServer(t, nil)
	clip, err := fileloop.Demo()
	mustf(t, err, "demo clip")

	dur := watchDuration(t)
	var wg sync.WaitGroup
	for _, tr := range []string{"http", "ws"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *janusClient
			if tr == "http" {
				c = dialHTTP(t, httpURL(srv))
			} else {
				c = dialWS(t, wsURL(srv))
			}
			defer c.close()
			mustf(t, c.create(), "%s create", tr)
			v := newViewer(t, nil)
			defer v.close()
			watch(t, c, v, 1)
			// Keep the session alive as janus.js does, and watch.
			stop := time.After(dur)
			tick := time.NewTicker(2 * time.Second)
			defer tick.Stop()
		loop:
			for {
				select {
				case <-tick.C:
					if _, err := c.request(msg{"janus": "keepalive"}, true); err != nil {
						t.Errorf("%s keepalive: %v", tr, err)
					}
				case <-stop:
					break loop
				}
			}
			checkDemoMedia(t, tr, v, clip, dur)
		}()
	}
	wg.Wait()
}

// checkDemoMedia: no gap in either stream, and the video frames are the
// clip's frames, in order, from wherever the viewer joined.
func checkDemoMedia(t *testing.T, name string, v *viewer, clip *fileloop.Clip, dur time.Duration) {
	video, audio := v.packets("video"), v.packets("audio")
	secs := dur.Seconds()
	if got, want := float64(len(audio)), secs*50; got < want*0.9 {
		t.Errorf("%s: %d audio packets in %v, want about %.0f", name, len(audio), dur, want)
	}
	for i := 1; i < len(audio); i++ {
		if audio[i].seq != audio[i-1].seq+1 {
			t.Errorf("%s: audio gap at %d: %d -> %d", name, i, audio[i-1].seq, audio[i].seq)
			break
		}
	}
	frames, gap := vp8Frames(video)
	if gap >= 0 {
		t.Errorf("%s: video gap or bad packet at packet %d of %d", name, gap, len(video))
	}
	if len(video) == 0 {
		t.Fatalf("%s: no video", name)
	}
	// Video starts at the first keyframe after the viewer joined.
	span := video[len(video)-1].at.Sub(video[0].at)
	if got, want := float64(len(frames)), span.Seconds()*float64(clip.FPS); got < want*0.9 || span < dur-2*time.Second {
		t.Fatalf("%s: %d video frames in %v, want about %.0f", name, len(frames), span, want)
	}
	// The first frame a viewer gets is a keyframe: find it in the clip.
	start := -1
	for i, f := range clip.Video {
		if f.Keyframe && bytes.Equal(f.Data, frames[0]) {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatalf("%s: the first frame received (%d bytes) is no keyframe of the clip", name, len(frames[0]))
	}
	for k, f := range frames {
		want := clip.Video[(start+k)%len(clip.Video)].Data
		if !bytes.Equal(f, want) {
			t.Fatalf("%s: frame %d (%d bytes) differs from clip frame %d (%d bytes)", name, k, len(f), (start+k)%len(clip.Video), len(want))
		}
	}
	t.Logf("%s: %d video frames (%d packets) and %d audio packets, all equal to the source", name, len(frames), len(video), len(audio))
}
