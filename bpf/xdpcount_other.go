//go:build !linux

package bpf

import "errors"

var errNotLinux = errors.New("bpf: XDP needs Linux")

// XDPCounter is a count-and-drop XDP program; it exists only on Linux.
type XDPCounter struct{}

// Counts are totals over every CPU since the program was loaded.
type Counts struct {
	Packets uint64
	Bytes   uint64
	Other   uint64
}

// NewXDPCounter fails: not Linux.
func NewXDPCounter() (*XDPCounter, error) { return nil, errNotLinux }

// Attach fails: not Linux.
func (c *XDPCounter) Attach(ifindex int) error { return errNotLinux }

// AttachInNetns fails: not Linux.
func (c *XDPCounter) AttachInNetns(netns, ifname string) error { return errNotLinux }

// Read fails: not Linux.
func (c *XDPCounter) Read() (Counts, error) { return Counts{}, errNotLinux }

// Close does nothing.
func (c *XDPCounter) Close() error { return nil }
