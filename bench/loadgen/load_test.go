package loadgen

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/dtls/v3"

	"github.com/spillway-rtc/spillway/internal/server"
)

func testServer(t *testing.T) *server.Server {
	t.Helper()
	srv, err := server.Start(server.Config{
		HTTPAddr: "127.0.0.1:0", WSAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", AdminWSAddr: "127.0.0.1:0",
		AdminSecret: "x", MediaPort: 0, MediaIPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Workers:     1,
		Mountpoints: []json.RawMessage{json.RawMessage(`{"type":"clip","id":1,"name":"demo"}`)},
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// Viewers join Spillway's demo mountpoint over HTTP long poll and over
// WebSocket, several per session; the samples decrypt both streams with
// no loss; Close leaves no goroutine behind.
func TestLoadAgainstSpillway(t *testing.T) {
	before := runtime.NumGoroutine()
	srv := testServer(t)
	for _, tc := range []struct {
		name, url string
		profiles  []dtls.SRTPProtectionProfile
		want      dtls.SRTPProtectionProfile
	}{
		{"http", "http://" + srv.Addr("http").String() + "/janus", nil, dtls.SRTP_AEAD_AES_128_GCM},
		{"ws", "ws://" + srv.Addr("ws").String() + "/", []dtls.SRTPProtectionProfile{dtls.SRTP_AES128_CM_HMAC_SHA1_80}, dtls.SRTP_AES128_CM_HMAC_SHA1_80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var progress atomic.Int64
			l, err := New(Config{
				URL: tc.url, Mountpoint: 1, LocalIP: netip.MustParseAddr("127.0.0.1"),
				PerSession: 4, Concurrency: 4, Profiles: tc.profiles,
				Progress: func(joined, failed, target int) {
					progress.Add(1)
					if failed > 0 {
						t.Errorf("a join failed (%d/%d)", joined, target)
					}
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := l.Add(ctx, 8, 2); err != nil {
				t.Fatal(err)
			}
			if err := l.Add(ctx, 2, 1); err != nil { // a second step, as a sweep does
				t.Fatal(err)
			}
			if l.Viewers() != 10 || l.Failed() != 0 || progress.Load() != 10 || len(l.sessions) != 3 {
				t.Fatalf("viewers %d, failed %d, progress %d, sessions %d", l.Viewers(), l.Failed(), progress.Load(), len(l.sessions))
			}
			time.Sleep(2 * time.Second)
			if up := l.Up(); up != 10 {
				t.Fatalf("%d viewers up, want 10", up)
			}
			samples := l.Samples()
			if len(samples) != 3 || len(l.SampleAddrs()) != 3 {
				t.Fatalf("%d samples", len(samples))
			}
			for _, s := range samples {
				if s.Profile != tc.want || !s.Local.IsValid() {
					t.Errorf("sample %v: profile %v, want %v", s.Local, s.Profile, tc.want)
				}
				var video, audio bool
				for _, st := range s.Streams {
					video = video || st.Video
					audio = audio || !st.Video
					if st.Received < 20 || st.Lost() > 0 || st.Failed > 0 {
						t.Errorf("sample %v stream %x: %+v", s.Local, st.SSRC, st)
					}
					if st.Video && (st.JitterMs <= 0 || st.JitterMs > 30) {
						t.Errorf("video jitter %.2f ms", st.JitterMs)
					}
				}
				if !video || !audio {
					t.Errorf("sample %v: video %v audio %v", s.Local, video, audio)
				}
			}
			if l.MediaPackets() == 0 {
				t.Fatal("no media counted")
			}
			// Stepping down keeps the samples.
			if n := l.Remove(ctx, 100); n != 7 || l.Viewers() != 3 || len(l.Samples()) != 3 {
				t.Fatalf("removed %d, %d viewers and %d samples left", n, l.Viewers(), len(l.Samples()))
			}
		})
	}
	srv.Close()
	waitGoroutines(t, before)
}

// A mountpoint that does not exist fails every join with the server's
// reason, and Add says so.
func TestLoadNoSuchMountpoint(t *testing.T) {
	srv := testServer(t)
	l, err := New(Config{URL: "http://" + srv.Addr("http").String() + "/janus", Mountpoint: 99, LocalIP: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = l.Add(context.Background(), 2, 0)
	if err == nil || !strings.Contains(err.Error(), "455") {
		t.Fatalf("err %v, want one with 455 (no such mountpoint)", err)
	}
	if l.Failed() != 2 || l.Viewers() != 0 {
		t.Fatalf("failed %d viewers %d", l.Failed(), l.Viewers())
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	for _, c := range []Config{{}, {URL: "http://x/janus"}, {URL: "http://x/janus", Mountpoint: 1}} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted it", c)
		}
	}
	l, _ := New(Config{URL: "ftp://x", Mountpoint: 1, LocalIP: netip.MustParseAddr("127.0.0.1")})
	if err := l.Add(context.Background(), 1, 0); err == nil || !strings.Contains(err.Error(), "URL") {
		t.Fatalf("bad URL: %v", err)
	}
}

func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines %d -> %d:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}
