package experiment

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// tailBuffer keeps the last max bytes written: a server's log for errors.
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimRight(string(t.b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

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
