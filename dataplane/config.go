package dataplane

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"
)

// Config tunes the data plane. The zero value of every field means "default".
type Config struct {
	Workers       int           // 0: runtime.NumCPU()
	Batch         int           // max packets a worker takes before it sends; 0: 32
	FlushInterval time.Duration // 0: 1ms (a worker never holds a packet longer)
	History       int           // packets kept per outgoing stream for NACK; 0: 512 (power of two)
	Logger        *slog.Logger
}

const (
	defaultBatch         = 32
	defaultFlushInterval = time.Millisecond
	defaultHistory       = 512

	// maxPacket is the largest plain RTP packet a Source accepts: an Ethernet
	// MTU with room to spare. Larger ones are dropped and counted.
	maxPacket = 1600
	// srtpOverhead bounds what SRTP adds (16-byte GCM tag; 10 for AES-CM-80).
	srtpOverhead = 32
	maxOut       = maxPacket + srtpOverhead

	// maxMsgs is the kernel's UIO_MAXIOV: the most messages one sendmmsg takes.
	maxMsgs = 1024
	// inQueue is each worker's inbound packet queue; when it is full, Publish
	// drops for that worker and counts it rather than stall the ingest.
	inQueue = 4096
)

// withDefaults fills zero fields and rejects impossible values.
func (c Config) withDefaults() (Config, error) {
	if c.Workers < 0 || c.Batch < 0 || c.FlushInterval < 0 || c.History < 0 {
		return c, errors.New("dataplane: negative config value")
	}
	if c.Workers == 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.Batch == 0 {
		c.Batch = defaultBatch
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = defaultFlushInterval
	}
	if c.History == 0 {
		c.History = defaultHistory
	}
	if c.History&(c.History-1) != 0 {
		return c, fmt.Errorf("dataplane: history %d is not a power of two", c.History)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// Stats is a snapshot of the data plane's counters.
type Stats struct {
	Workers []WorkerStats
	Viewers int // in total
}

// WorkerStats are one worker's counters since the plane started.
type WorkerStats struct {
	Viewers  int
	Packets  uint64 // datagrams the kernel accepted
	Bytes    uint64 // their bytes (SRTP, without UDP/IP headers)
	Sendmmsg uint64 // sendmmsg calls
	Errors   uint64 // datagrams the kernel rejected, or that had nowhere to go
	Drops    uint64 // published packets dropped because the worker's queue was full
}
