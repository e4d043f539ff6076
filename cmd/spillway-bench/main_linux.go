//go:build linux

// Command spillway-bench reproduces the Janus Streamer experiments on one
// machine, side by side with Janus: for each server (Janus with 0 and 1
// helper threads, Spillway in queue and socket mode), pinned to one core,
// the most viewers of one mountpoint it holds under a loss limit, with a
// sink that models a NIC with UDP segmentation offload (tc) and one without
// (XDP), a QoE sample at half its capacity, CSV and plots. It runs inside
// the client network namespace that scripts/bench.sh makes (make bench);
// see docs/benchmarks.md.
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
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pion/dtls/v3"

	"github.com/spillway-rtc/spillway/affinity"
	"github.com/spillway-rtc/spillway/bench/experiment"
	"github.com/spillway-rtc/spillway/bench/janus"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "spillway-bench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("spillway-bench", flag.ContinueOnError)
	var o experiment.Options
	fs.StringVar(&o.ServerNetns, "server-netns", "spwb-srv", "network namespace the servers run in")
	fs.StringVar(&o.ServerIf, "server-if", "spbs0", "the server's veth (tc sink)")
	fs.StringVar(&o.ClientIf, "client-if", "spbc0", "this namespace's veth (XDP sink)")
	serverIP := fs.String("server-ip", "198.18.2.1", "the server's address on the veth")
	clientIP := fs.String("client-ip", "198.18.2.2", "the viewers' and the source's address")
	cpus := fs.String("server-cpus", "1", "CPUs the server runs on, a cpulist (2-41,44): Spillway gets a worker on each")
	targets := fs.String("targets", strings.Join(experiment.AllTargets, ","), "servers to measure (in this order in the table; the first Janus runs first and the other last, and x Janus is over their mean)")
	sinks := fs.String("sinks", "tc", "sink models, a search each: tc (a NIC with UDP segmentation offload), xdp (one without)")
	rates := fs.String("rates", "2", "stream bitrates, Mbit/s (video; Opus audio comes on top)")
	fs.IntVar(&o.Samples, "samples", 4, "viewers that decrypt and measure loss, jitter and latency")
	fs.DurationVar(&o.Settle, "settle", 500*time.Millisecond, "wait after changing the viewers (and, after joins, after the next keyframe) before a window")
	fs.DurationVar(&o.Search.Window, "window", 2*time.Second, "measured window per step, in whole GOPs of the source (2 s each), at least one")
	fs.DurationVar(&o.Search.KneeWindow, "knee-window", 4*time.Second, "measured window of a step near the knee (core 80% busy, near a limit, or a failing step's second window), in whole GOPs")
	fs.DurationVar(&o.QoEWindow, "qoe-window", 4*time.Second, "window of the QoE sample at half capacity, in whole GOPs")
	fs.IntVar(&o.Search.Start, "start", 100, "viewers of the first step; steps land on start x (1+resolution)^k")
	fs.Float64Var(&o.Search.Growth, "growth", 4, "largest step factor (the core's idle share bounds it too)")
	fs.IntVar(&o.Search.Max, "max", 6000, "most viewers tried")
	fs.Float64Var(&o.Search.Resolution, "resolution", 0.05, "smallest step near the capacity, as a fraction: the ladder's rungs")
	fs.IntVar(&o.Search.MaxSteps, "max-steps", 24, "most steps per search (a search that reaches it has no first failing step: it found a lower bound)")
	fs.Float64Var(&o.Search.LossLimit, "loss", 0.005, "a step passes with loss under this (by the viewers' RTP sequence numbers)")
	fs.Float64Var(&o.Search.ShortfallLimit, "shortfall", 0.02, "and with delivery behind the source by less than this (a server that queues instead of keeping up)")
	fs.DurationVar(&o.Search.LatencyLimit, "latency", 100*time.Millisecond, "and with the samples' median latency under this (a standing queue is not keeping up); 0: no limit")
	profile := fs.String("profile", "gcm", "the one SRTP profile viewers offer, so that both servers use it: gcm (AES-128-GCM) or cm80")
	fs.StringVar(&o.SpillwayBin, "spillway", "bin/spillway", "the spillway binary")
	out := fs.String("out", "bin/bench", "where the table, CSV, plots and server logs go")
	verbose := fs.Bool("v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.ServerIP, err = netip.ParseAddr(*serverIP); err != nil {
		return fmt.Errorf("-server-ip: %w", err)
	}
	if o.ClientIP, err = netip.ParseAddr(*clientIP); err != nil {
		return fmt.Errorf("-client-ip: %w", err)
	}
	set, err := affinity.ParseCPUList(*cpus)
	if err != nil {
		return fmt.Errorf("-server-cpus: %w", err)
	}
	o.ServerCPUs = []int(set)
	o.Targets, o.Sinks = split(*targets), split(*sinks)
	for _, r := range split(*rates) {
		f, err := strconv.ParseFloat(r, 64)
		if err != nil || f <= 0 {
			return fmt.Errorf("-rates: %q", r)
		}
		o.Rates = append(o.Rates, f)
	}
	switch *profile {
	case "cm80":
		o.Profile = dtls.SRTP_AES128_CM_HMAC_SHA1_80
	case "gcm":
		o.Profile = dtls.SRTP_AEAD_AES_128_GCM
	default:
		return fmt.Errorf("-profile %q: cm80 or gcm", *profile)
	}
	if len(o.ServerCPUs) == 0 || len(o.Targets) == 0 || len(o.Sinks) == 0 || len(o.Rates) == 0 {
		return errors.New("nothing to run: empty -server-cpus, -targets, -sinks or -rates")
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, eBPF): run it through make bench")
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	start := time.Now()
	o.Logf = func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "%6.1fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}
	if err := os.MkdirAll(filepath.Join(*out, "logs"), 0o755); err != nil {
		return err
	}
	if o.WorkDir, err = experiment.WorkDir(filepath.Join(*out, "run")); err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	for _, t := range o.Targets {
		if strings.HasPrefix(t, "janus") {
			bin, err := janus.Install(ctx, o.Logger)
			if err != nil {
				return err
			}
			v, _ := janus.Version(ctx, bin)
			o.Logf("janus: %s %s", bin, v)
			break
		}
	}
	logf, err := os.Create(filepath.Join(*out, "logs", "servers.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	o.ServerLog = logf

	results, err := experiment.Run(ctx, o)
	if err != nil {
		return err
	}
	rows := experiment.Summarize(results, o.Sinks)
	var md strings.Builder
	fmt.Fprintf(&md, "One server core (CPU %s), %s Mbit/s stream + Opus, SRTP %s, loss limit %.1f%%, %d samples; %s in all\n\n",
		*cpus, *rates, *profile, 100*o.Search.LossLimit, o.Samples, time.Since(start).Round(time.Second))
	experiment.Markdown(&md, rows)
	fmt.Print("\n" + md.String())
	if err := os.WriteFile(filepath.Join(*out, "bench.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(*out, "bench.csv"), func(w io.Writer) error { return experiment.WriteCSV(w, results) }); err != nil {
		return err
	}
	files, err := experiment.Plots(*out, results, o.Sinks)
	if err != nil {
		return err
	}
	fmt.Printf("\nwrote %s, %s, %s\n", filepath.Join(*out, "bench.md"), filepath.Join(*out, "bench.csv"), strings.Join(files, ", "))
	for _, r := range results {
		if r.Err != nil {
			return fmt.Errorf("%s: %w", r.Target, r.Err)
		}
	}
	return nil
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func writeFile(path string, f func(io.Writer) error) error {
	w, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f(w); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}
