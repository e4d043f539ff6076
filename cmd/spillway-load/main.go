// Command spillway-load joins viewers to a Streaming mountpoint through the
// Janus API of Spillway or of Janus, with real ICE and DTLS, and reports
// what its sample viewers receive: loss, jitter and, for a source that
// stamps its packets (bench/media), source-to-viewer latency.
//
//	spillway-load -url http://198.18.2.1:8088/janus -mountpoint 1 -viewers 500 -samples 5 -local-ip 198.18.2.2
//
// Media to the viewers that are not samples is the bench's sink's to drop
// (make bench attaches it); without a sink they receive it and drop it in
// user space, which costs this process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pion/dtls/v3"

	"github.com/spillway-rtc/spillway/bench/loadgen"
	"github.com/spillway-rtc/spillway/bench/media"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "spillway-load:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("spillway-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8088/janus", "Janus API: http://host:port/janus (long poll) or ws://host:port/")
	mp := fs.Uint64("mountpoint", 1, "Streaming mountpoint id")
	viewers := fs.Int("viewers", 10, "viewers to join")
	samples := fs.Int("samples", 2, "of which decrypt and measure")
	local := fs.String("local-ip", "127.0.0.1", "the viewers' ICE address")
	perSession := fs.Int("per-session", 200, "viewers per Janus session")
	conc := fs.Int("concurrency", 16, "joins in flight")
	profs := fs.String("profiles", "gcm,cm80", "SRTP profiles offered, by preference: gcm, cm80")
	dur := fs.Duration("duration", 10*time.Second, "how long to hold the viewers after they joined (0: until interrupted)")
	every := fs.Duration("report", 5*time.Second, "report interval")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ip, err := netip.ParseAddr(*local)
	if err != nil {
		return fmt.Errorf("-local-ip: %w", err)
	}
	profiles, err := parseProfiles(*profs)
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	l, err := loadgen.New(loadgen.Config{
		URL: *url, Mountpoint: *mp, LocalIP: ip, PerSession: *perSession, Concurrency: *conc,
		Profiles: profiles, Stamp: media.SentAt,
		Progress: func(joined, failed, target int) { progressBar(stderr, joined, failed, target) },
		Logger:   slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	defer l.Close()
	start := time.Now()
	if err := l.Add(ctx, *viewers, *samples); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "\n%d viewers joined in %v (%d failed)\n", l.Viewers(), time.Since(start).Round(time.Millisecond), l.Failed())
	end := time.Now().Add(*dur)
	t := time.NewTicker(*every)
	defer t.Stop()
	for *dur == 0 || time.Now().Before(end) {
		select {
		case <-ctx.Done():
			report(stdout, l)
			return nil
		case <-t.C:
			report(stdout, l)
		}
	}
	return nil
}

func parseProfiles(s string) ([]dtls.SRTPProtectionProfile, error) {
	var out []dtls.SRTPProtectionProfile
	for _, p := range strings.Split(s, ",") {
		switch strings.TrimSpace(p) {
		case "gcm":
			out = append(out, dtls.SRTP_AEAD_AES_128_GCM)
		case "cm80":
			out = append(out, dtls.SRTP_AES128_CM_HMAC_SHA1_80)
		default:
			return nil, fmt.Errorf("-profiles: unknown %q (gcm, cm80)", p)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-profiles: empty")
	}
	return out, nil
}

// progressBar redraws one line on stderr while viewers join.
func progressBar(w io.Writer, joined, failed, target int) {
	const width = 40
	done := joined + failed
	n := 0
	if target > 0 {
		n = min(width, done*width/target)
	}
	fmt.Fprintf(w, "\rjoining [%s%s] %d/%d, %d failed", strings.Repeat("=", n), strings.Repeat(" ", width-n), joined, target, failed)
}

func report(w io.Writer, l *loadgen.Load) {
	lat := l.Latency()
	fmt.Fprintf(w, "%s viewers %d up %d; latency p50 %v p99 %v (%d packets)\n", time.Now().Format("15:04:05"),
		l.Viewers(), l.Up(), lat.P50, lat.P99, lat.Count)
	for _, s := range l.Samples() {
		for _, st := range s.Streams {
			kind := "audio"
			if st.Video {
				kind = "video"
			}
			loss := 0.0
			if st.Expected > 0 {
				loss = float64(st.Lost()) / float64(st.Expected)
			}
			fmt.Fprintf(w, "  %s %s ssrc %08x: %d packets, loss %.3f%%, jitter %.2f ms\n", s.Local, kind, st.SSRC, st.Received, 100*loss, st.JitterMs)
		}
	}
}
