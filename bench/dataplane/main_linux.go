//go:build linux

// Command spillway-bench-dataplane measures one data-plane worker on one
// core against the limit of the machine: see docs/benchmarks.md. It runs
// inside the server's network namespace (make bench-dataplane sets it up);
// the sink namespace's veth gets a count-and-drop XDP program.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/spillway-rtc/spillway/bpf"
)

var stderr = os.Stderr

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "spillway-bench-dataplane:", err)
		os.Exit(1)
	}
}

func run() error {
	opt, err := parseOptions(os.Args[1:])
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errNotRoot
	}
	if opt.cpu >= runtime.NumCPU() || opt.hk >= runtime.NumCPU() {
		return fmt.Errorf("-cpu %d / -housekeeping-cpu %d: this machine has %d CPUs", opt.cpu, opt.hk, runtime.NumCPU())
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	opt.deadline = time.Now().Add(opt.budget)

	// The program is attached through a bpf link: it goes with the process,
	// even if the process dies before Close.
	xdp, err := bpf.NewXDPCounter()
	if err != nil {
		return err
	}
	defer xdp.Close()
	if err := xdp.AttachInNetns(opt.sinkNetns, opt.sinkIf); err != nil {
		return fmt.Errorf("sink (did the script set up the namespaces?): %w", err)
	}

	b := &bench{opt: opt, xdp: xdp, remotes: viewerAddrs(opt.firstViewer, opt.viewers)}
	for c := range runtime.NumCPU() {
		b.all = append(b.all, c)
	}
	if b.pub, err = startThread(opt.cpu); err != nil {
		return err
	}
	defer b.pub.stop()

	start := time.Now()
	var runs []result
	for round := 1; round <= opt.rounds; round++ {
		for _, spec := range opt.plan() {
			opt.logger.Info("row", "run", spec.label(), "round", round)
			spec.Round = round
			r, err := b.runRow(ctx, spec)
			if err != nil {
				return fmt.Errorf("%s: %w", spec.label(), err)
			}
			opt.logger.Info("done", "row", r.label(), "mpps", fmt.Sprintf("%.3f", r.Mpps),
				"cpu", pct(r.CPU), "loss", fmt.Sprintf("%.4f", r.Loss), "others", fmt.Sprintf("%.2f", r.Others))
			runs = append(runs, r)
		}
	}
	ratios(runs)
	rows := medians(runs)
	sortRows(rows, opt.profiles)

	fmt.Printf("\n%d viewers, one worker on CPU %d, median run and median ratios of %d rounds of %s warm-up + %s window, %s in all\n\n",
		opt.viewers, opt.cpu, opt.rounds, opt.warmup, opt.window, time.Since(start).Round(time.Second))
	markdown(os.Stdout, rows, opt.maxOthers)
	if opt.md != "" {
		f, err := os.Create(opt.md)
		if err != nil {
			return err
		}
		markdown(f, rows, opt.maxOthers)
		if err := f.Close(); err != nil {
			return err
		}
	}
	if opt.csv != "" {
		f, err := os.Create(opt.csv)
		if err != nil {
			return err
		}
		if err := writeCSV(f, rows); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	return nil
}
