//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
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

// cpuSample holds /proc/stat's jiffies per CPU.
type cpuSample struct {
	busy, soft, steal, total []float64
}

func readCPU() (cpuSample, error) {
	var s cpuSample
	f, err := os.Open("/proc/stat")
	if err != nil {
		return s, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 9 || !strings.HasPrefix(fs[0], "cpu") || fs[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(fs[0][3:])
		if err != nil {
			continue
		}
		for len(s.total) <= n {
			s.busy, s.soft, s.steal, s.total = append(s.busy, 0), append(s.soft, 0), append(s.steal, 0), append(s.total, 0)
		}
		var v [8]float64 // user nice system idle iowait irq softirq steal
		for i := range v {
			v[i], _ = strconv.ParseFloat(fs[i+1], 64)
			s.total[n] += v[i]
		}
		s.busy[n] = s.total[n] - v[3] - v[4] - v[7] // stolen time was not ours to use
		s.soft[n] = v[6]
		s.steal[n] = v[7]
	}
	return s, sc.Err()
}

// util returns the busy and softirq fractions of cpu between a and b.
func util(a, b cpuSample, cpu int) (busy, soft float64) {
	busy, soft, _ = util3(a, b, cpu)
	return busy, soft
}

// util3 adds the fraction the hypervisor stole.
func util3(a, b cpuSample, cpu int) (busy, soft, steal float64) {
	if cpu >= len(a.total) || cpu >= len(b.total) {
		return 0, 0, 0
	}
	d := b.total[cpu] - a.total[cpu]
	if d <= 0 {
		return 0, 0, 0
	}
	return (b.busy[cpu] - a.busy[cpu]) / d, (b.soft[cpu] - a.soft[cpu]) / d, (b.steal[cpu] - a.steal[cpu]) / d
}

// othersCPU is the CPU time in seconds used so far by every user-space
// process but this one (reaped children included). Kernel threads are left
// out: ksoftirqd may be doing this benchmark's own work.
func othersCPU() float64 {
	self := os.Getpid()
	ents, _ := os.ReadDir("/proc")
	var total float64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fs := strings.Fields(s[i+1:]) // fs[0] is field 3, the state
		if len(fs) < 15 {
			continue
		}
		if ppid, _ := strconv.Atoi(fs[1]); pid == 2 || ppid == 2 {
			continue
		}
		for _, k := range []int{11, 12, 13, 14} { // utime stime cutime cstime
			v, _ := strconv.ParseFloat(fs[k], 64)
			total += v
		}
	}
	return total / 100 // USER_HZ
}
