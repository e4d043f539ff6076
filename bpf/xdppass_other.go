//go:build !linux

package bpf

// XDPPass is an XDP program that passes every frame; it exists only on
// Linux.
type XDPPass struct{}

// AttachXDPPass fails: not Linux.
func AttachXDPPass(ifindex int) (*XDPPass, error) { return nil, errNotLinux }

// Mode is empty: not Linux.
func (p *XDPPass) Mode() string { return "" }

// Fallback is nil: not Linux.
func (p *XDPPass) Fallback() error { return nil }

// Close does nothing.
func (p *XDPPass) Close() error { return nil }
