package dataplane

import (
	"fmt"
	"runtime"

	"github.com/spillway-rtc/spillway/affinity"
)

// workerCPUs picks one CPU per worker: cfg.CPUs (which must lie within the
// process's mask), or cfg.Workers of the process's CPUs (all of them when
// 0). Workers that will not be pinned may outnumber the CPUs: they get CPUs
// in turn, as a label only.
func workerCPUs(cfg Config) ([]int, error) {
	cpus, err := affinity.Choose(cfg.Workers, affinity.CPUSet(cfg.CPUs), "")
	if err == nil {
		if cfg.CPUs != nil {
			return cfg.CPUs, nil // in the order given
		}
		return cpus, nil
	}
	if !cfg.NoPin && cfg.Mode != ModeQueue {
		return nil, fmt.Errorf("dataplane: worker CPUs: %w", err)
	}
	if cfg.CPUs != nil {
		return cfg.CPUs, nil
	}
	n := cfg.Workers
	if n == 0 {
		n = runtime.NumCPU()
	}
	out := make([]int, n)
	for i := range out {
		out[i] = i % runtime.NumCPU()
	}
	return out, nil
}
