//go:build !linux

package dataplane

import "runtime"

// Elsewhere workers are not pinned.

func chooseCPUs(n int) ([]int, error) {
	cpus := make([]int, n)
	for i := range cpus {
		cpus[i] = i % runtime.NumCPU()
	}
	return cpus, nil
}

func pinThread(int) error { return nil }

func unpinThread() {}
