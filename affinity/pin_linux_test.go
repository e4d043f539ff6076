package affinity

import (
	"errors"
	"fmt"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// inGoroutine runs f on a fresh goroutine and waits for it, so a test can lock
// and pin a thread the test's own goroutine never uses.
func inGoroutine(f func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- f() }()
	return <-errc
}

// maskOf reads the mask of thread tid (sched_getaffinity takes a thread id).
func maskOf(tid int) (CPUSet, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(tid, &set); err != nil {
		return nil, err
	}
	var out CPUSet
	for cpu := range 1024 {
		if set.IsSet(cpu) {
			out = append(out, cpu)
		}
	}
	return out, nil
}

// TestPinEachCPU pins a goroutine to each allowed CPU in turn and checks that
// it runs there, on one thread whose kernel mask is that CPU, while Allowed
// still answers the process's set; Unpin restores the thread's mask.
func TestPinEachCPU(t *testing.T) {
	checkGoroutines(t)
	allowed, err := Allowed()
	if err != nil {
		t.Fatal(err)
	}
	if len(allowed) == 0 || CurrentCPU() < 0 {
		t.Fatalf("allowed %v, current CPU %d", allowed, CurrentCPU())
	}
	for _, cpu := range allowed {
		err := inGoroutine(func() error {
			if err := Pin(cpu); err != nil {
				return err
			}
			tid := unix.Gettid()
			for range 200 {
				runtime.Gosched() // give the scheduler every chance to move us
				if got := CurrentCPU(); got != cpu {
					return fmt.Errorf("pinned to %d, running on %d", cpu, got)
				}
				if got := unix.Gettid(); got != tid {
					return fmt.Errorf("pinned goroutine moved from thread %d to %d", tid, got)
				}
			}
			if m, err := maskOf(tid); err != nil || !m.Equal(CPUSet{cpu}) {
				return fmt.Errorf("pinned thread's mask %v, %v; want %d", m, err, cpu)
			}
			// The pinned thread and any other one see the process's set.
			if a, err := Allowed(); err != nil || !a.Equal(allowed) {
				return fmt.Errorf("Allowed from the pinned thread = %v, %v; want %v", a, err, allowed)
			}
			if a, err := inGoroutineAllowed(); err != nil || !a.Equal(allowed) {
				return fmt.Errorf("Allowed beside a pinned thread = %v, %v; want %v", a, err, allowed)
			}
			if err := Unpin(); err != nil {
				return err
			}
			if m, err := maskOf(tid); err != nil || !m.Equal(allowed) {
				return fmt.Errorf("thread mask after Unpin %v, %v; want %v", m, err, allowed)
			}
			if err := Unpin(); err == nil {
				return errors.New("a second Unpin succeeded")
			}
			return nil
		})
		if err != nil {
			t.Errorf("CPU %d: %v", cpu, err)
		}
	}
}

func inGoroutineAllowed() (CPUSet, error) {
	var a CPUSet
	err := inGoroutine(func() (err error) { a, err = Allowed(); return err })
	return a, err
}

// TestPinNested checks that each Unpin undoes the latest Pin.
func TestPinNested(t *testing.T) {
	checkGoroutines(t)
	allowed, err := Allowed()
	if err != nil {
		t.Fatal(err)
	}
	first, second := allowed[0], allowed[len(allowed)-1]
	err = inGoroutine(func() error {
		if err := Pin(first); err != nil {
			return err
		}
		tid := unix.Gettid()
		if err := Pin(second); err != nil {
			return err
		}
		if got := CurrentCPU(); got != second {
			return fmt.Errorf("inner pin: on CPU %d, want %d", got, second)
		}
		if err := Unpin(); err != nil {
			return err
		}
		if got := unix.Gettid(); got != tid {
			return errors.New("inner Unpin unlocked the thread")
		}
		if m, _ := maskOf(tid); !m.Equal(CPUSet{first}) || CurrentCPU() != first {
			return fmt.Errorf("after inner Unpin: mask %v on CPU %d, want %d", m, CurrentCPU(), first)
		}
		if err := Unpin(); err != nil {
			return err
		}
		if m, _ := maskOf(tid); !m.Equal(allowed) {
			return fmt.Errorf("after outer Unpin: mask %v, want %v", m, allowed)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPinRespectsMask runs on a thread narrowed to one CPU, as under taskset:
// Pin refuses every other CPU although the kernel would take it.
func TestPinRespectsMask(t *testing.T) {
	checkGoroutines(t)
	allowed, err := Allowed()
	if err != nil {
		t.Fatal(err)
	}
	only := allowed[0]
	other := only + 1 // outside the narrowed mask, online or not
	if len(allowed) > 1 {
		other = allowed[1]
	}
	err = inGoroutine(func() error {
		// Never unlocked: the narrowed thread ends with this goroutine.
		runtime.LockOSThread()
		if err := setThreadMask(CPUSet{only}); err != nil {
			return err
		}
		if a, err := Allowed(); err != nil || !a.Equal(CPUSet{only}) {
			return fmt.Errorf("Allowed on the narrowed thread = %v, %v", a, err)
		}
		for _, cpu := range []int{other, -1, MaxCPU + 1} {
			if err := Pin(cpu); !errors.Is(err, ErrNotAllowed) {
				return fmt.Errorf("Pin(%d) on a thread allowed only %d: %v", cpu, only, err)
			}
		}
		if m, _ := maskOf(unix.Gettid()); !m.Equal(CPUSet{only}) {
			return fmt.Errorf("a refused Pin changed the mask to %v", m)
		}
		if err := Pin(only); err != nil {
			return err
		}
		return Unpin()
	})
	if err != nil {
		t.Fatal(err)
	}
	if a, err := Allowed(); err != nil || !a.Equal(allowed) {
		t.Errorf("Allowed after the narrowed thread = %v, %v", a, err)
	}
}

// TestPinnedGoroutineExits checks that a goroutine ending pinned takes its
// thread along: no other goroutine inherits the pinned mask, and a record left
// for a thread id that the kernel hands out again is not believed.
func TestPinnedGoroutineExits(t *testing.T) {
	checkGoroutines(t)
	allowed, err := Allowed()
	if err != nil {
		t.Fatal(err)
	}
	cpu := allowed[len(allowed)-1]
	if err := inGoroutine(func() error { return Pin(cpu) }); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if m, err := inGoroutineMask(); err != nil || !m.Equal(allowed) {
			t.Fatalf("a goroutine after the pinned one exited runs with mask %v, %v", m, err)
		}
	}
	// A stale record for this thread: Allowed checks it against the kernel.
	err = inGoroutine(func() error {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid := unix.Gettid()
		pins.Lock()
		pins.byTID[tid] = []pinned{{prev: CPUSet{MaxCPU}, cpu: MaxCPU}}
		pins.Unlock()
		if a, err := Allowed(); err != nil || !a.Equal(allowed) {
			return fmt.Errorf("Allowed with a stale record = %v, %v", a, err)
		}
		pins.Lock()
		defer pins.Unlock()
		if _, ok := pins.byTID[tid]; ok {
			return errors.New("stale record kept")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func inGoroutineMask() (CPUSet, error) {
	var m CPUSet
	err := inGoroutine(func() (err error) { m, err = threadMask(); return err })
	return m, err
}

func TestUnpinWithoutPin(t *testing.T) {
	err := inGoroutine(func() error {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		return Unpin()
	})
	if err == nil {
		t.Fatal("Unpin without Pin succeeded")
	}
}

func TestChooseHost(t *testing.T) {
	allowed, err := Allowed()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Choose(0, nil, ""); err != nil || !got.Equal(allowed) {
		t.Errorf("Choose(0, nil, \"\") = %v, %v; want %v", got, err, allowed)
	}
	got, err := Choose(1, nil, "lo")
	if err != nil || len(got) != 1 || !allowed.Contains(got[0]) {
		t.Errorf("Choose(1, nil, lo) = %v, %v", got, err)
	}
	if got, err := Choose(1, CPUSet{allowed[len(allowed)-1]}, ""); err != nil || !got.Equal(CPUSet{allowed[len(allowed)-1]}) {
		t.Errorf("Choose with want = %v, %v", got, err)
	}
	if got, err := Choose(1, CPUSet{MaxCPU}, ""); err == nil {
		t.Errorf("Choose outside the mask = %v", got)
	}
	if got, err := Choose(len(allowed)+1, nil, ""); err == nil {
		t.Errorf("Choose of more CPUs than allowed = %v", got)
	}
}
