//go:build linux

package bpf

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// NetnsPath turns a namespace name as `ip netns` knows it into its path;
// a path is returned as is.
func NetnsPath(netns string) string {
	if strings.ContainsRune(netns, '/') {
		return netns
	}
	return filepath.Join("/run/netns", netns)
}

// RunInNetns runs f on a thread that has entered the network namespace
// netns. Sockets f opens and links it attaches stay in that namespace after
// it returns. The thread is never unlocked, so the runtime ends it with its
// goroutine instead of reusing a thread that sits in another namespace.
func RunInNetns(netns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		path := NetnsPath(netns)
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("bpf: open netns %s: %w", path, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("bpf: setns %s (needs CAP_SYS_ADMIN): %w", path, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}
