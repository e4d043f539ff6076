package peer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/pion/logging"
)

// pionLogger routes pion's leveled logs into slog. pion's Info is chatty
// per connection, so it becomes Debug; Trace is dropped.
type pionLogger struct {
	l *slog.Logger
}

func newPionLoggerFactory(l *slog.Logger) logging.LoggerFactory { return pionLoggerFactory{l} }

type pionLoggerFactory struct{ l *slog.Logger }

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{l: f.l.With("pion", scope)}
}

func (p pionLogger) log(level slog.Level, msg string) {
	p.l.Log(context.Background(), level, msg)
}

func (p pionLogger) logf(level slog.Level, format string, args ...any) {
	if !p.l.Enabled(context.Background(), level) {
		return
	}
	msg := fmt.Sprintf(format, args...)
	// pion/ice warns about io.ErrClosedPipe from every muxed candidate when
	// an agent closes (it only filters io.EOF and net.ErrClosed).
	if level == slog.LevelWarn && strings.HasSuffix(msg, io.ErrClosedPipe.Error()) {
		level = slog.LevelDebug
	}
	p.l.Log(context.Background(), level, msg)
}

func (pionLogger) Trace(string)          {}
func (pionLogger) Tracef(string, ...any) {}

func (p pionLogger) Debug(msg string)                  { p.log(slog.LevelDebug, msg) }
func (p pionLogger) Debugf(format string, args ...any) { p.logf(slog.LevelDebug, format, args...) }
func (p pionLogger) Info(msg string)                   { p.log(slog.LevelDebug, msg) }
func (p pionLogger) Infof(format string, args ...any)  { p.logf(slog.LevelDebug, format, args...) }
func (p pionLogger) Warn(msg string)                   { p.log(slog.LevelWarn, msg) }
func (p pionLogger) Warnf(format string, args ...any)  { p.logf(slog.LevelWarn, format, args...) }
func (p pionLogger) Error(msg string)                  { p.log(slog.LevelError, msg) }
func (p pionLogger) Errorf(format string, args ...any) { p.logf(slog.LevelError, format, args...) }
