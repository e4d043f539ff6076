// Package logtail keeps the end of what a child process writes (a server
// under test, apt-get), for the error that says why it stopped.
package logtail

import (
	"bytes"
	"sync"
)

// Buffer keeps the last bytes written to it, at most the max given to New.
// It is safe for concurrent use.
type Buffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

// New returns a Buffer that keeps the last max bytes.
func New(max int) *Buffer { return &Buffer{max: max} }

func (t *Buffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// String returns up to the last n bytes kept, as Of does.
func (t *Buffer) String(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Of(t.b, n)
}

// Of returns the last n bytes of b, from a line start when one is near,
// with "..." in front when it cut.
func Of(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) <= n {
		return string(b)
	}
	b = b[len(b)-n:]
	if i := bytes.IndexByte(b, '\n'); i >= 0 && i < len(b)/4 {
		b = b[i+1:]
	}
	return "..." + string(b)
}
