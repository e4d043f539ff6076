// Command spillway runs a Spillway node. With no arguments it listens on
// safe defaults and serves the demo mountpoints (see the README).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spillway-rtc/spillway/internal/server"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "spillway:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) > 0 && args[0] == "version" {
		fmt.Println("spillway", server.Version)
		return nil
	}
	fs := flag.NewFlagSet("spillway", flag.ContinueOnError)
	var (
		cfgPath   = fs.String("config", "", "JSON configuration file (keys as in docs/operations.md)")
		httpAddr  = fs.String("http", "", "Janus HTTP API and demo page listen address (default :8088)")
		wsAddr    = fs.String("ws", "", "Janus WebSocket API listen address (default :8188)")
		adminAddr = fs.String("admin", "", "Admin API listen address (default 127.0.0.1:7088)")
		adminWS   = fs.String("admin-ws", "", "Admin WebSocket listen address (default 127.0.0.1:7188)")
		adminSec  = fs.String("admin-secret", "", "Admin API secret (default janusoverlord)")
		apiSec    = fs.String("api-secret", "", "Janus API secret (default none)")
		mediaPort = fs.Int("media-port", 0, "the UDP port of ICE-lite and DTLS-SRTP (default 10000)")
		mediaIPs  = fs.String("media-ips", "", "comma-separated addresses the media port binds (default: all interfaces)")
		nat       = fs.String("nat-1-1", "", "comma-separated local=public pairs: announce public in candidates instead of local")
		workers   = fs.Int("workers", 0, "data-plane workers (default: one per CPU)")
		sessTO    = fs.Duration("session-timeout", 0, "Janus session timeout (default 60s)")
		debug     = fs.Bool("debug", false, "log at debug level")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	var cfg server.Config
	if *cfgPath != "" {
		if err := cfg.LoadFile(*cfgPath); err != nil {
			return err
		}
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.HTTPAddr, *httpAddr)
	set(&cfg.WSAddr, *wsAddr)
	set(&cfg.AdminAddr, *adminAddr)
	set(&cfg.AdminWSAddr, *adminWS)
	set(&cfg.AdminSecret, *adminSec)
	set(&cfg.APISecret, *apiSec)
	if *mediaPort != 0 {
		cfg.MediaPort = *mediaPort
	}
	if *mediaIPs != "" {
		ips, err := server.ParseIPs(*mediaIPs)
		if err != nil {
			return fmt.Errorf("-media-ips: %w", err)
		}
		cfg.MediaIPs = ips
	}
	if *nat != "" {
		cfg.Advertise = map[netip.Addr]netip.Addr{}
		for _, pair := range strings.Split(*nat, ",") {
			l, p, ok := strings.Cut(pair, "=")
			li, err1 := netip.ParseAddr(strings.TrimSpace(l))
			pi, err2 := netip.ParseAddr(strings.TrimSpace(p))
			if !ok || err1 != nil || err2 != nil {
				return fmt.Errorf("-nat-1-1: %q is not local=public", pair)
			}
			cfg.Advertise[li] = pi
		}
	}
	if *workers != 0 {
		cfg.Workers = *workers
	}
	if *sessTO != 0 {
		cfg.SessionTimeout = server.Duration(*sessTO)
	}
	cfg.Logger = log

	srv, err := server.Start(cfg)
	if err != nil {
		return err
	}
	log.Info("spillway started", "version", server.Version)
	srv.LogBanner()
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
