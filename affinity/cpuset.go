package affinity

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxCPU bounds the CPU numbers this package accepts. The kernel's NR_CPUS tops
// out at 8192; the bound keeps a typo such as "0-4000000000" from allocating.
const MaxCPU = 1<<16 - 1

// CPUSet is a set of CPU numbers, sorted and without duplicates.
type CPUSet []int

var errSyntax = errors.New("invalid syntax")

// ParseCPUList parses the kernel's cpulist format: "0-3,8,10-11", with spaces
// around items allowed and the stride form "0-15:2/4" (first 2 of every 4).
// "" is the empty set.
func ParseCPUList(s string) (CPUSet, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var cpus []int
	for item := range strings.SplitSeq(s, ",") {
		add, err := parseCPUItem(strings.TrimSpace(item))
		if err != nil {
			return nil, fmt.Errorf("affinity: cpu list %q: item %q: %w", s, strings.TrimSpace(item), err)
		}
		cpus = append(cpus, add...)
	}
	return normalize(cpus)
}

// parseCPUItem parses "N", "N-M" or "N-M:used/group".
func parseCPUItem(item string) ([]int, error) {
	if item == "" {
		return nil, fmt.Errorf("empty item: %w", errSyntax)
	}
	rng, stride, hasStride := strings.Cut(item, ":")
	lo, hi, isRange := strings.Cut(rng, "-")
	first, err := parseCPU(lo)
	if err != nil {
		return nil, err
	}
	last := first
	if isRange {
		if last, err = parseCPU(hi); err != nil {
			return nil, err
		}
		if last < first {
			return nil, fmt.Errorf("range %d-%d runs backwards: %w", first, last, errSyntax)
		}
	}
	used, group := 1, 1
	if hasStride {
		if !isRange {
			return nil, fmt.Errorf("stride without a range: %w", errSyntax)
		}
		u, g, ok := strings.Cut(stride, "/")
		if !ok {
			return nil, fmt.Errorf("stride %q is not used/group: %w", stride, errSyntax)
		}
		if used, err = parseCPU(u); err != nil {
			return nil, err
		}
		if group, err = parseCPU(g); err != nil {
			return nil, err
		}
		if used == 0 || group == 0 || used > group {
			return nil, fmt.Errorf("stride %d/%d: need 0 < used <= group: %w", used, group, errSyntax)
		}
	}
	out := make([]int, 0, last-first+1)
	for c := first; c <= last; c++ {
		if (c-first)%group < used {
			out = append(out, c)
		}
	}
	return out, nil
}

func parseCPU(s string) (int, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not a CPU number: %w", s, errSyntax)
	}
	if n > MaxCPU {
		return 0, fmt.Errorf("CPU %d above %d: %w", n, MaxCPU, errSyntax)
	}
	return int(n), nil
}

// ParseHexMask parses the kernel's hex bitmap format (xps_cpus, smp_affinity):
// 32-bit groups of at most 8 hex digits separated by commas, most significant
// first, e.g. "00000003" or "ff,ffffffff".
func ParseHexMask(s string) (CPUSet, error) {
	s = strings.TrimSpace(s)
	groups := strings.Split(s, ",")
	if len(groups)*32 > MaxCPU+1 {
		return nil, fmt.Errorf("affinity: hex mask %q: more than %d CPUs: %w", s, MaxCPU+1, errSyntax)
	}
	var cpus []int
	for i, g := range groups {
		g = strings.TrimSpace(g)
		if g == "" || len(g) > 8 {
			return nil, fmt.Errorf("affinity: hex mask %q: group %q needs 1 to 8 hex digits: %w", s, g, errSyntax)
		}
		v, err := strconv.ParseUint(g, 16, 32)
		if err != nil {
			return nil, fmt.Errorf("affinity: hex mask %q: group %q: %w", s, g, errSyntax)
		}
		base := (len(groups) - 1 - i) * 32
		for bit := range 32 {
			if v&(1<<bit) != 0 {
				cpus = append(cpus, base+bit)
			}
		}
	}
	return normalize(cpus)
}

// normalize sorts and deduplicates cpus and rejects numbers out of range.
func normalize(cpus []int) (CPUSet, error) {
	if len(cpus) == 0 {
		return nil, nil
	}
	out := slices.Clone(cpus)
	slices.Sort(out)
	out = slices.Compact(out)
	if out[0] < 0 || out[len(out)-1] > MaxCPU {
		return nil, fmt.Errorf("affinity: CPU numbers must be within 0-%d: %v", MaxCPU, []int(out))
	}
	return out, nil
}

// String returns the set in cpulist format ("0-3,8,10-11"); "" when empty.
func (c CPUSet) String() string {
	var b strings.Builder
	for i := 0; i < len(c); {
		j := i
		for j+1 < len(c) && c[j+1] == c[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(c[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(c[j]))
		}
		i = j + 1
	}
	return b.String()
}

// HexMask returns the set in the kernel's hex bitmap format, as xps_cpus takes
// it: "0" when empty, "3" for CPUs 0-1, "1,00000000" for CPU 32.
func (c CPUSet) HexMask() string {
	if len(c) == 0 {
		return "0"
	}
	groups := make([]uint32, c[len(c)-1]/32+1)
	for _, cpu := range c {
		groups[cpu/32] |= 1 << (cpu % 32)
	}
	var b strings.Builder
	for i := len(groups) - 1; i >= 0; i-- {
		if i == len(groups)-1 {
			fmt.Fprintf(&b, "%x", groups[i])
		} else {
			fmt.Fprintf(&b, ",%08x", groups[i])
		}
	}
	return b.String()
}

// Contains reports whether cpu is in c.
func (c CPUSet) Contains(cpu int) bool {
	_, ok := slices.BinarySearch(c, cpu)
	return ok
}

// Equal reports whether c and o hold the same CPUs.
func (c CPUSet) Equal(o CPUSet) bool { return slices.Equal(c, o) }

// Intersect returns the CPUs in both c and o.
func (c CPUSet) Intersect(o CPUSet) CPUSet {
	var out CPUSet
	for _, cpu := range c {
		if o.Contains(cpu) {
			out = append(out, cpu)
		}
	}
	return out
}

// Difference returns the CPUs of c that are not in o.
func (c CPUSet) Difference(o CPUSet) CPUSet {
	var out CPUSet
	for _, cpu := range c {
		if !o.Contains(cpu) {
			out = append(out, cpu)
		}
	}
	return out
}

// Union returns the CPUs in c or o.
func (c CPUSet) Union(o CPUSet) CPUSet {
	out := append(slices.Clone(c), o...)
	slices.Sort(out)
	return slices.Compact(out)
}
