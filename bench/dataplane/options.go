package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

type options struct {
	sinkNetns, sinkIf string
	local             netip.AddrPort // the server's media address on the veth
	firstViewer       netip.AddrPort // viewers take consecutive addresses and ports from here
	viewers           int
	rates             []float64 // Mbit/s
	profiles          []string
	modes             []string // modes of the first profile (gcm)
	otherModes        []string // modes of the other profiles (cm)
	warmup, window    time.Duration
	cpu, hk           int // worker CPU, housekeeping CPU
	maxOthers         float64
	tries             int
	rounds            int // runs of every row, interleaved; the median run is reported
	backlog           int // source packets the publisher may have in flight
	sndbuf            int
	csv, md           string
	budget            time.Duration
	quietWait         time.Duration // longest wait for a quiet machine before a row
	probe             bool          // run the limit probe
	deadline          time.Time
	logger            *slog.Logger
}

func parseOptions(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("spillway-bench-dataplane", flag.ContinueOnError)
	fs.StringVar(&o.sinkNetns, "sink-netns", "spw-bench-rx", "network namespace of the sink (the veth's far end)")
	fs.StringVar(&o.sinkIf, "sink-if", "spwb1", "the sink's veth, where the XDP counter goes")
	local := fs.String("local", "198.18.0.1:5000", "the server's media address (on this namespace's veth)")
	first := fs.String("viewers-from", "198.19.0.1:10000", "first viewer's address; the others follow (address+1, port+1)")
	fs.IntVar(&o.viewers, "viewers", 1000, "synthetic viewers")
	rates := fs.String("rates", "0.5,1,2,4", "stream bitrates, Mbit/s")
	profs := fs.String("profiles", "gcm,cm", "SRTP profiles: gcm (AES-128-GCM), cm (AES-CM-128-HMAC-SHA1-80)")
	modes := fs.String("modes", "socket,shaped,nogso,nommsg,batch1,queue,afxdp", "modes for the first profile (shaped: the probe sending the stream's frames; socket, nogso, nommsg, batch1, queue, afxdp; afxdp adds the AF_XDP limit probe)")
	other := fs.String("other-modes", "socket,shaped,queue,afxdp", "modes for the other profiles")
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "warm-up before each window")
	fs.DurationVar(&o.window, "window", 1500*time.Millisecond, "measured steady-state window per run")
	fs.IntVar(&o.cpu, "cpu", runtime.NumCPU()-1, "CPU of the one worker, its publisher, and the limit probe")
	fs.IntVar(&o.hk, "housekeeping-cpu", 0, "CPU of the Go runtime and the measurement")
	fs.Float64Var(&o.maxOthers, "max-others", 0.1, "cores other processes may use before a row is run again")
	fs.IntVar(&o.tries, "tries", 2, "attempts per run when other processes (or the hypervisor) disturb it")
	fs.IntVar(&o.rounds, "rounds", 3, "runs of every row, interleaved; the table shows the median run and the median ratios")
	fs.IntVar(&o.backlog, "backlog", 256, "source packets the publisher keeps in flight")
	fs.IntVar(&o.sndbuf, "sndbuf", 0, "SO_SNDBUF of the send sockets (0: kernel default)")
	fs.StringVar(&o.csv, "csv", "", "write the rows as CSV to this file")
	fs.StringVar(&o.md, "md", "", "write the Markdown table to this file too")
	fs.DurationVar(&o.budget, "budget", 3*time.Minute+30*time.Second, "after this long, stop waiting for a quiet machine and re-running noisy rows")
	fs.DurationVar(&o.quietWait, "quiet-wait", 5*time.Second, "longest wait before a row for other processes to calm down")
	fs.BoolVar(&o.probe, "probe", true, "run the limit probe (without it, no x limit column)")
	verbose := fs.Bool("v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var err error
	if o.local, err = netip.ParseAddrPort(*local); err != nil || !o.local.Addr().Is4() {
		return o, fmt.Errorf("-local %q: want IPv4 address:port", *local)
	}
	if o.firstViewer, err = netip.ParseAddrPort(*first); err != nil || !o.firstViewer.Addr().Is4() {
		return o, fmt.Errorf("-viewers-from %q: want IPv4 address:port", *first)
	}
	if o.viewers < 1 || int(o.firstViewer.Port())+o.viewers > 65536 {
		return o, fmt.Errorf("-viewers %d: out of range for ports from %d", o.viewers, o.firstViewer.Port())
	}
	for _, s := range splitList(*rates) {
		r, err := strconv.ParseFloat(s, 64)
		if err != nil || r <= 0 || r > 100 {
			return o, fmt.Errorf("-rates: %q is not a bitrate in Mbit/s", s)
		}
		o.rates = append(o.rates, r)
	}
	o.profiles = splitList(*profs)
	for _, p := range o.profiles {
		if _, ok := profiles[p]; !ok {
			return o, fmt.Errorf("-profiles: unknown profile %q", p)
		}
	}
	o.modes, o.otherModes = splitList(*modes), splitList(*other)
	for _, m := range append(slices.Clone(o.modes), o.otherModes...) {
		if isProbe(m) || !slices.Contains(modeOrder, m) {
			return o, fmt.Errorf("unknown mode %q", m)
		}
	}
	if len(o.rates) == 0 || len(o.profiles) == 0 || len(o.modes) == 0 {
		return o, errors.New("nothing to run: empty -rates, -profiles or -modes")
	}
	if o.cpu == o.hk || o.cpu < 0 || o.hk < 0 {
		return o, fmt.Errorf("-cpu %d and -housekeeping-cpu %d must be two different CPUs", o.cpu, o.hk)
	}
	if o.warmup < 0 || o.window <= 0 || o.tries < 1 || o.rounds < 1 || o.backlog < 1 {
		return o, errors.New("-warmup, -window, -tries, -rounds and -backlog must be positive")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	o.logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// viewerAddrs gives n consecutive addresses and ports from first.
func viewerAddrs(first netip.AddrPort, n int) []netip.AddrPort {
	out := make([]netip.AddrPort, n)
	a := first.Addr()
	for i := range out {
		out[i] = netip.AddrPortFrom(a, first.Port()+uint16(i))
		a = a.Next()
	}
	return out
}

// plan lists the runs of one round, in run order: per profile and rate a
// block of the limit probe, then every mode. Ratios are taken within a
// block, between runs seconds apart, so that a change in the machine's
// speed (another VM on a sibling thread) hits both sides of a ratio alike.
func (o options) plan() []result {
	var rs []result
	for i, p := range o.profiles {
		modes := o.modes
		if i > 0 {
			modes = o.otherModes
		}
		for _, rate := range o.rates {
			if o.probe {
				rs = append(rs, result{Profile: p, Mode: modeProbe, Block: rate})
				if slices.Contains(modes, "afxdp") {
					rs = append(rs, result{Profile: p, Mode: modeXDPProbe, Block: rate})
				}
			}
			for _, m := range modes {
				rs = append(rs, result{Profile: p, Mode: m, Rate: rate, Block: rate})
			}
		}
	}
	return rs
}
