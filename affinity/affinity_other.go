//go:build !linux

package affinity

import (
	"errors"
	"runtime"
)

var errNotSupported = errors.New("affinity: not supported on " + runtime.GOOS)

// ErrNotAllowed is returned by Pin for a CPU outside the process's mask.
var ErrNotAllowed = errors.New("affinity: CPU not in the process's allowed set")

// Allowed is Linux only.
func Allowed() (CPUSet, error) { return nil, errNotSupported }

// Pin is Linux only.
func Pin(int) error { return errNotSupported }

// Unpin is Linux only.
func Unpin() error { return errNotSupported }

// CurrentCPU is unknown outside Linux.
func CurrentCPU() int { return -1 }

// Choose is Linux only.
func Choose(int, CPUSet, string) (CPUSet, error) { return nil, errNotSupported }

// Report is Linux only.
func Report(string) (NICReport, error) { return NICReport{}, errNotSupported }

// Plan is Linux only.
func Plan(string, CPUSet) ([]Change, error) { return nil, errNotSupported }

// Apply is Linux only.
func Apply([]Change) error { return errNotSupported }
