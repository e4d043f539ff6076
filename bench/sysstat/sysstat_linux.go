//go:build linux

// Package sysstat reads what the benches measure about the machine from
// /proc: per-CPU busy, softirq and stolen time, and a process's CPU time
// and memory.
package sysstat

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// userHZ is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const userHZ = 100

// CPUs holds /proc/stat's jiffies per CPU.
type CPUs struct {
	busy, soft, steal, total []float64
}

// ReadCPUs reads /proc/stat.
func ReadCPUs() (CPUs, error) {
	var s CPUs
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

// Util returns the busy, softirq and stolen fractions of cpu between a
// and b.
func Util(a, b CPUs, cpu int) (busy, soft, steal float64) {
	if cpu >= len(a.total) || cpu >= len(b.total) {
		return 0, 0, 0
	}
	d := b.total[cpu] - a.total[cpu]
	if d <= 0 {
		return 0, 0, 0
	}
	return (b.busy[cpu] - a.busy[cpu]) / d, (b.soft[cpu] - a.soft[cpu]) / d, (b.steal[cpu] - a.steal[cpu]) / d
}

// procStat returns the fields of /proc/pid/stat from field 3 (the state) on.
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("sysstat: /proc/%d/stat: no command", pid)
	}
	return strings.Fields(s[i+1:]), nil
}

// ProcessCPU is the CPU time, in seconds, pid and its reaped children
// have used.
func ProcessCPU(pid int) (float64, error) {
	fs, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	if len(fs) < 15 {
		return 0, fmt.Errorf("sysstat: /proc/%d/stat: short", pid)
	}
	var total float64
	for _, k := range []int{11, 12, 13, 14} { // utime stime cutime cstime
		v, _ := strconv.ParseFloat(fs[k], 64)
		total += v
	}
	return total / userHZ, nil
}

// RSS is pid's resident memory in bytes.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("sysstat: VmRSS %q: %w", rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("sysstat: no VmRSS for %d", pid)
}

// OthersCPU is the CPU time in seconds used so far by every user-space
// process but the ones in skip (reaped children included). Kernel threads
// are left out: ksoftirqd may be doing a benchmark's own work.
func OthersCPU(skip map[int]bool) float64 {
	ents, _ := os.ReadDir("/proc")
	var total float64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || skip[pid] {
			continue
		}
		fs, err := procStat(pid)
		if err != nil || len(fs) < 15 {
			continue
		}
		if ppid, _ := strconv.Atoi(fs[1]); pid == 2 || ppid == 2 {
			continue
		}
		for _, k := range []int{11, 12, 13, 14} {
			v, _ := strconv.ParseFloat(fs[k], 64)
			total += v
		}
	}
	return total / userHZ
}
