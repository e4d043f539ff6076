package experiment

import (
	"fmt"
	"io"
	"sync"
)

// serverLogMax bounds what one server process writes to the run's log:
// Janus past its capacity warns of every packet it discards, hundreds of
// megabytes a run.
const serverLogMax = 64 << 20

// capped writes to w until left bytes are written, then says so once and
// drops the rest.
type capped struct {
	mu   sync.Mutex
	w    io.Writer
	left int64
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.left < 0:
	case int64(len(p)) <= c.left:
		c.left -= int64(len(p))
		return c.w.Write(p)
	default:
		c.left = -1
		fmt.Fprintf(c.w, "\n[spillway-bench: this server's log cut at %d MiB]\n", serverLogMax>>20)
	}
	return len(p), nil
}
