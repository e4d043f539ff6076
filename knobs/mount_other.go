//go:build !linux

package knobs

import (
	"errors"
	"io"
	"log/slog"
)

// Mount needs Linux: the knob directory is a FUSE filesystem mounted directly.
func (t *Table) Mount(dir string, log *slog.Logger) (io.Closer, error) {
	return nil, errors.New("knobs: the knob directory needs Linux (FUSE with a direct mount)")
}
