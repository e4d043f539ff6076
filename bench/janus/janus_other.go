//go:build !linux

package janus

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/spillway-rtc/spillway/affinity"
)

var errNotLinux = errors.New("janus: the bench runs Janus on Linux only")

// Paths is where an installed Janus keeps its parts.
type Paths struct {
	Binary, PluginsDir, TransportsDir, Version string
}

// StartOptions say where and how Janus runs (Linux only).
type StartOptions struct {
	Binary       string
	Dir          string
	Netns        string
	CPUs         affinity.CPUSet
	Log          io.Writer
	NoFile       uint64
	ReadyTimeout time.Duration
}

// Process is a running Janus (Linux only).
type Process struct{}

// Install needs Linux (Debian's janus package).
func Install(context.Context, *slog.Logger) (string, error) { return "", errNotLinux }

// Locate needs Linux.
func Locate() (Paths, error) { return Paths{}, errNotLinux }

// Version needs Linux.
func Version(context.Context, string) (string, error) { return "", errNotLinux }

// Start needs Linux.
func Start(context.Context, Config, StartOptions) (*Process, error) { return nil, errNotLinux }

func (*Process) PID() int              { return 0 }
func (*Process) URL() string           { return "" }
func (*Process) Client() *http.Client  { return nil }
func (*Process) Info() ServerInfo      { return ServerInfo{} }
func (*Process) LogTail(int) string    { return "" }
func (*Process) Done() <-chan struct{} { return nil }
func (*Process) Wait() error           { return errNotLinux }
func (*Process) Stop() error           { return nil }
