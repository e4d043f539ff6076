//go:build !linux

package bpf

// SteerToFirst fails: not Linux.
func SteerToFirst(fd int) error { return errNotLinux }
