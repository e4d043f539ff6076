package afxdp

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// ZeroCopy is the knob afxdp/zerocopy.
type ZeroCopy string

const (
	ZeroCopyAuto ZeroCopy = "auto" // zero-copy where the driver has it, else copy mode
	ZeroCopyOn   ZeroCopy = "on"   // zero-copy or fail
	ZeroCopyOff  ZeroCopy = "off"  // copy mode
)

// ParseZeroCopy checks a knob value.
func ParseZeroCopy(s string) (ZeroCopy, error) {
	switch z := ZeroCopy(s); z {
	case ZeroCopyAuto, ZeroCopyOn, ZeroCopyOff:
		return z, nil
	}
	return "", fmt.Errorf("afxdp: zerocopy %q: want auto, on or off", s)
}

// Config is one socket's.
type Config struct {
	Ifindex  int
	Queue    int
	ZeroCopy ZeroCopy // "": auto
	// FrameSize is the size of each UMEM frame: a power of two from 2048
	// to the page size; 0: 2048.
	FrameSize int
	// RingSize is the number of TX and completion ring entries and of
	// UMEM frames: a power of two from 64 to 32768; 0: 2048. With as many
	// frames as ring entries neither ring can overflow.
	RingSize int
	// BusyPoll, above 0, has sendto run the driver's NAPI loop in the
	// caller's thread for up to that long (SO_PREFER_BUSY_POLL,
	// SO_BUSY_POLL) instead of leaving the send to softirq: zero-copy
	// only (copy mode sends inside sendto anyway).
	BusyPoll time.Duration
	// Budget is how many frames one copy-mode sendto sends at most
	// (XDP_MAX_TX_SKB_BUDGET); 0: the kernel's, 32.
	Budget int
}

const (
	DefaultFrameSize = 2048
	DefaultRingSize  = 2048
	MinFrameSize     = 2048
	MinRingSize      = 64
	MaxRingSize      = 32768

	// metaLen is the TX metadata area in front of each frame's data
	// (struct xsk_tx_metadata: flags, then csum_start, csum_offset and a
	// launch time).
	metaLen = 24
	// Headroom is where a frame's data starts in its UMEM chunk, after
	// the metadata; Frame returns the bytes from here.
	Headroom = 32
)

// Check validates c's sizes and fills defaults.
func (c Config) Check() (Config, error) {
	if c.ZeroCopy == "" {
		c.ZeroCopy = ZeroCopyAuto
	}
	if _, err := ParseZeroCopy(string(c.ZeroCopy)); err != nil {
		return c, err
	}
	if c.FrameSize == 0 {
		c.FrameSize = DefaultFrameSize
	}
	if c.RingSize == 0 {
		c.RingSize = DefaultRingSize
	}
	if err := CheckFrameSize(c.FrameSize); err != nil {
		return c, err
	}
	if err := CheckRingSize(c.RingSize); err != nil {
		return c, err
	}
	if c.Queue < 0 || c.BusyPoll < 0 || c.Budget < 0 {
		return c, errors.New("afxdp: negative queue, busy poll or budget")
	}
	return c, nil
}

// CheckFrameSize is the rule for FrameSize (aligned UMEM chunks).
func CheckFrameSize(n int) error {
	if n < MinFrameSize || n > os.Getpagesize() || n&(n-1) != 0 {
		return fmt.Errorf("afxdp: frame size %d: want a power of two from %d to %d", n, MinFrameSize, os.Getpagesize())
	}
	return nil
}

// CheckRingSize is the rule for RingSize.
func CheckRingSize(n int) error {
	if n < MinRingSize || n > MaxRingSize || n&(n-1) != 0 {
		return fmt.Errorf("afxdp: ring size %d: want a power of two from %d to %d", n, MinRingSize, MaxRingSize)
	}
	return nil
}

// Statistics are the kernel's counters of a socket (struct
// xdp_statistics).
type Statistics struct {
	RxDropped, RxInvalidDescs, TxInvalidDescs, RxRingFull, RxFillRingEmptyDescs, TxRingEmptyDescs uint64
}
