package affinity

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrNotAllowed is returned by Pin for a CPU outside the process's mask: the
// kernel would accept it (sched_setaffinity may widen a mask), but an operator
// who ran us under taskset or a cpuset meant otherwise.
var ErrNotAllowed = errors.New("affinity: CPU not in the process's allowed set")

// pins remembers, per pinned thread, the masks Pin replaced, so Unpin can put
// them back and Allowed can answer the process's mask from a pinned thread.
var pins = struct {
	sync.Mutex
	byTID map[int][]pinned
}{byTID: map[int][]pinned{}}

type pinned struct {
	prev CPUSet // thread mask before this Pin
	cpu  int
}

// Allowed returns the CPUs the process may run on. The kernel keeps a mask
// per thread; from a thread Pin locked it answers the mask the thread had
// before, so workers and everyone else see the same set.
func Allowed() (CPUSet, error) {
	// Mask and thread id must come from one thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cur, err := threadMask()
	if err != nil {
		return nil, err
	}
	tid := unix.Gettid()
	pins.Lock()
	defer pins.Unlock()
	stack := pins.byTID[tid]
	if len(stack) == 0 {
		return cur, nil
	}
	if !cur.Equal(CPUSet{stack[len(stack)-1].cpu}) {
		// A goroutine that ended pinned took its thread with it (Go ends a
		// locked thread); this is a new thread that reuses the id.
		delete(pins.byTID, tid)
		return cur, nil
	}
	return stack[0].prev, nil
}

// threadMask reads the calling thread's mask, growing the buffer for kernels
// built with more CPUs than it holds (EINVAL).
func threadMask() (CPUSet, error) {
	for n := 1024; ; n *= 2 {
		set := unix.NewCPUSet(n)
		err := unix.SchedGetaffinityDynamic(0, set)
		if errors.Is(err, unix.EINVAL) && n < MaxCPU+1 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("affinity: sched_getaffinity: %w", err)
		}
		bits := len(set) * int(unsafe.Sizeof(set[0])) * 8
		var out CPUSet
		for cpu := range bits {
			if set.IsSet(cpu) {
				out = append(out, cpu)
			}
		}
		return out, nil
	}
}

func setThreadMask(c CPUSet) error {
	n := 1
	if len(c) > 0 {
		n = c[len(c)-1] + 1
	}
	set := unix.NewCPUSet(n)
	for _, cpu := range c {
		set.Set(cpu)
	}
	return unix.SchedSetaffinityDynamic(0, set)
}

// Pin locks the calling goroutine to its OS thread and the thread to cpu, which
// must be in Allowed. Pins nest: each Unpin undoes the latest Pin. The runtime
// never clones a locked thread's mask into a new thread (it starts threads from
// a clean template thread), so pinning stays with this goroutine.
func Pin(cpu int) error {
	allowed, err := Allowed()
	if err != nil {
		return err
	}
	if !allowed.Contains(cpu) {
		return fmt.Errorf("%w: CPU %d, allowed %s", ErrNotAllowed, cpu, allowed)
	}
	runtime.LockOSThread()
	prev, err := threadMask()
	if err == nil {
		err = setThreadMask(CPUSet{cpu})
	}
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("affinity: pin to CPU %d: %w", cpu, err)
	}
	tid := unix.Gettid()
	pins.Lock()
	pins.byTID[tid] = append(pins.byTID[tid], pinned{prev: prev, cpu: cpu})
	pins.Unlock()
	return nil
}

// Unpin restores the mask the latest Pin replaced and unlocks the goroutine.
// If no mask can be restored the goroutine stays locked, so the pinned thread
// never runs other goroutines (it ends when the goroutine does).
func Unpin() error {
	tid := unix.Gettid()
	pins.Lock()
	defer pins.Unlock()
	stack := pins.byTID[tid]
	if len(stack) == 0 {
		return errors.New("affinity: Unpin on a thread that Pin did not pin")
	}
	top := stack[len(stack)-1]
	if err := setThreadMask(top.prev); err != nil {
		// The old CPUs went offline or out of the cpuset: take all the kernel
		// allows (it drops the bits it refuses).
		all := unix.NewCPUSet(MaxCPU + 1)
		all.Fill()
		if err2 := unix.SchedSetaffinityDynamic(0, all); err2 != nil {
			return fmt.Errorf("affinity: unpin from CPU %d: %w", top.cpu, errors.Join(err, err2))
		}
	}
	if len(stack) == 1 {
		delete(pins.byTID, tid)
	} else {
		pins.byTID[tid] = stack[:len(stack)-1]
	}
	runtime.UnlockOSThread()
	return nil
}

// CurrentCPU returns the CPU the calling thread runs on, -1 if unknown. Unless
// the goroutine is pinned it may move right after.
func CurrentCPU() int {
	var cpu uint32
	if _, _, errno := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), 0, 0); errno != 0 {
		return -1
	}
	return int(cpu)
}

// Choose picks n worker CPUs: from want if given (it must lie within Allowed),
// else from Allowed; CPUs of the NUMA node of nic (if not "") first, and one
// per physical core before SMT siblings. n == 0 means all of want, or all
// allowed CPUs of the NIC's node (all allowed when that is unknown).
func Choose(n int, want CPUSet, nic string) (CPUSet, error) {
	allowed, err := Allowed()
	if err != nil {
		return nil, err
	}
	return hostRoots.choose(n, want, allowed, nic)
}

// Report reads the NIC's TX queues, XPS masks, IRQs and their affinities from
// /sys and /proc. A virtual NIC (lo, veth) has no device and no IRQs.
func Report(nic string) (NICReport, error) { return hostRoots.report(nic) }

// Plan says what aligning nic to the workers' CPUs would change; it writes
// nothing.
func Plan(nic string, workers CPUSet) ([]Change, error) { return hostRoots.plan(nic, workers) }

// Apply writes planned changes to sysfs/procfs (root only). It refuses any
// path that is not a TX queue's xps_cpus or an IRQ's affinity, and a file whose
// value moved since the plan.
func Apply(changes []Change) error { return apply(changes) }
