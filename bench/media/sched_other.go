//go:build !linux

package media

import (
	"context"
	"fmt"
	"time"
)

// sleepUntil waits for due on a Go timer (not Linux: no nanosleep path), or
// returns ctx's error once it is done.
func sleepUntil(ctx context.Context, due time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d := time.Until(due)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// setRealTime: SCHED_FIFO is Linux's.
func setRealTime(prio int) error {
	return fmt.Errorf("media: real-time priority %d: only on Linux", prio)
}
