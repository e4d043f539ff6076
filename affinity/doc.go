// Package affinity places the data plane's workers on CPUs and lines the NIC up
// with them.
//
// Flow, top to bottom:
//
//  1. Allowed reads the process's CPU mask (sched_getaffinity); ParseCPUList reads
//     the `affinity/cpus` knob in the kernel's cpulist format.
//  2. Choose picks one CPU per worker: from the knob if set (it must lie within the
//     mask), else from the mask, CPUs of the NIC's NUMA node first.
//  3. Each worker goroutine calls Pin(cpu) (LockOSThread + sched_setaffinity) and
//     Unpin when it stops.
//  4. Report lists the NIC's TX queues with their XPS masks and the NIC's IRQs with
//     their affinities; Plan says what aligning them to the workers would change,
//     and Apply writes that to sysfs/procfs, only when the operator asks.
//
// The sysfs/procfs parsing is plain file reading under configurable roots, so it is
// tested on constructed trees on any OS; syscalls live in affinity_linux.go, and
// affinity_other.go makes every entry point fail with "not supported".
package affinity
