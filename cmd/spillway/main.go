// Command spillway runs a Spillway node. With no arguments it listens on
// safe defaults and serves the demo mountpoints (see the README).
//
//	spillway [-config file.json] [-<knob>=value ...] [-knob path=value ...]
//	spillway knobs [-markdown]   the knob table, with current values
//	spillway version
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spillway-rtc/spillway/internal/server"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "spillway:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	cmd := ""
	if len(args) > 0 && (args[0] == "version" || args[0] == "knobs") {
		cmd, args = args[0], args[1:]
	}
	if cmd == "version" {
		fmt.Fprintln(stdout, "spillway", server.Version)
		return nil
	}
	k := server.NewKnobs()
	fs := flag.NewFlagSet("spillway", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "JSON configuration file: knob paths and \"mountpoints\" (docs/operations.md)")
	debug := fs.Bool("debug", false, "log at debug level")
	markdown := fs.Bool("markdown", false, "with knobs: print the table as docs/knobs.md has it")
	k.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	var mounts []json.RawMessage
	if *cfgPath != "" {
		m, err := k.LoadConfig(*cfgPath)
		if err != nil {
			return err
		}
		mounts = m
	}
	if cmd == "knobs" {
		if *markdown {
			fmt.Fprint(stdout, k.Markdown())
		} else {
			fmt.Fprint(stdout, k.Text())
		}
		return nil
	}

	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	cfg, err := k.Config()
	if err != nil {
		return err
	}
	cfg.Mountpoints, cfg.Knobs, cfg.Logger = mounts, k, log

	srv, err := server.Start(cfg)
	if err != nil {
		return err
	}
	k.Attach(srv)
	log.Info("spillway started", "version", server.Version)
	srv.LogBanner()
	if dir := k.Value("knobs/dir").String(); dir != "" {
		closer, err := k.Mount(dir, log)
		if err != nil {
			srv.Close()
			return fmt.Errorf("knob directory: %w", err)
		}
		defer closer.Close()
		log.Info("knob directory mounted", "dir", dir)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	log.Info("shutting down")
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("shutdown took longer than 10s")
	}
	return nil
}
