//go:build linux

package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/spillway-rtc/spillway/bench/sysstat"
)

// lockTo locks the calling goroutine to its thread and the thread to cpu.
// The caller never unlocks: the runtime then ends the thread with the
// goroutine instead of handing a pinned thread to other goroutines.
func lockTo(cpu int) (tid int, err error) {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return 0, fmt.Errorf("pin to CPU %d: %w", cpu, err)
	}
	return unix.Gettid(), nil
}

// confineThreads moves every thread of the process to the CPUs in to,
// except the threads in keep and those pinned to exactly one CPU of
// pinned (the data plane's workers). Threads created later inherit the mask
// of the thread that creates them, so the whole runtime stays inside to.
func confineThreads(to []int, keep map[int]bool, pinned int) error {
	var set unix.CPUSet
	for _, c := range to {
		set.Set(c)
	}
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil || keep[tid] {
			continue
		}
		var cur unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &cur); err != nil {
			continue // the thread exited
		}
		if pinned >= 0 && cur.Count() == 1 && cur.IsSet(pinned) {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
			return fmt.Errorf("affinity of thread %d: %w", tid, err)
		}
	}
	return nil
}

// othersCPU is the CPU time in seconds used so far by every user-space
// process but this one.
func othersCPU() float64 { return sysstat.OthersCPU(map[int]bool{os.Getpid(): true}) }
