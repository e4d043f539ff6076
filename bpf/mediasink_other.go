//go:build !linux

package bpf

import "net/netip"

// MediaSampleMax is how many sample destinations a MediaSink holds.
const MediaSampleMax = 1024

// MediaSink counts and drops RTP to non-sample viewers; it exists only on
// Linux.
type MediaSink struct{}

// MediaCounts are totals over every CPU since the sink was loaded.
type MediaCounts struct {
	Packets      uint64
	Bytes        uint64
	Sampled      uint64
	SampledBytes uint64
	RTCP         uint64
	Other        uint64
	NotUDP       uint64
}

// NewMediaSink fails: not Linux.
func NewMediaSink() (*MediaSink, error) { return nil, errNotLinux }

// AttachTC fails: not Linux.
func (s *MediaSink) AttachTC(netns, ifname string) error { return errNotLinux }

// AttachXDP fails: not Linux.
func (s *MediaSink) AttachXDP(netns, ifname string) error { return errNotLinux }

// AddSample fails: not Linux.
func (s *MediaSink) AddSample(dst netip.AddrPort) error { return errNotLinux }

// RemoveSample fails: not Linux.
func (s *MediaSink) RemoveSample(dst netip.AddrPort) error { return errNotLinux }

// Counts fails: not Linux.
func (s *MediaSink) Counts() (MediaCounts, error) { return MediaCounts{}, errNotLinux }

// Flows fails: not Linux.
func (s *MediaSink) Flows() (map[MediaFlow]MediaFlowCount, error) { return nil, errNotLinux }

// Close does nothing.
func (s *MediaSink) Close() error { return nil }
