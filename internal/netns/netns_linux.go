//go:build linux

package netns

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Path turns a namespace name as `ip netns` knows it into its path;
// a path is returned as is.
func Path(netns string) string {
	if strings.ContainsRune(netns, '/') {
		return netns
	}
	return filepath.Join("/run/netns", netns)
}

// Run runs f on a thread that has entered the network namespace
// netns. Sockets f opens and links it attaches stay in that namespace after
// it returns. The thread is never unlocked, so the runtime ends it with its
// goroutine instead of reusing a thread that sits in another namespace.
func Run(netns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		path := Path(netns)
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("netns: open %s: %w", path, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("netns: setns %s (needs CAP_SYS_ADMIN): %w", path, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}
