//go:build !linux

package bpf

// NetnsPath returns netns: namespaces exist only on Linux.
func NetnsPath(netns string) string { return netns }

// RunInNetns fails: not Linux.
func RunInNetns(netns string, f func() error) error { return errNotLinux }
