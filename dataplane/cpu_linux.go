//go:build linux

package dataplane

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// chooseCPUs picks n CPUs for the workers from the process's affinity mask,
// in order, wrapping around when there are fewer CPUs than workers.
func chooseCPUs(n int) ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("dataplane: sched_getaffinity: %w", err)
	}
	var allowed []int
	for cpu := 0; cpu < len(set)*64; cpu++ {
		if set.IsSet(cpu) {
			allowed = append(allowed, cpu)
		}
	}
	if len(allowed) == 0 {
		return nil, errors.New("dataplane: empty CPU mask")
	}
	cpus := make([]int, n)
	for i := range cpus {
		cpus[i] = allowed[i%len(allowed)]
	}
	return cpus, nil
}

// pinThread locks the calling goroutine to its thread and the thread to cpu.
func pinThread(cpu int) error {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("dataplane: pin to CPU %d: %w", cpu, err)
	}
	return nil
}

// unpinThread ends pinThread. The thread's mask stays narrowed, so the
// thread is not given back to the scheduler's pool: a goroutine that exits
// locked takes its thread with it.
func unpinThread() {}
