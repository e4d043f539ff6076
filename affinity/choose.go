package affinity

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// roots are where sysfs and procfs are mounted; tests point them at a tree they
// build, so nothing here depends on the host.
type roots struct{ sys, proc string }

var hostRoots = roots{sys: "/sys", proc: "/proc"}

// checkNIC refuses names that could leave /sys/class/net (IFNAMSIZ is 16).
func checkNIC(nic string) error {
	if nic == "" || len(nic) > 15 || nic == "." || nic == ".." || strings.ContainsAny(nic, "/\x00") {
		return fmt.Errorf("affinity: %q is not a network interface name", nic)
	}
	return nil
}

// nicDir returns /sys/class/net/<nic>, or an error wrapping fs.ErrNotExist.
func (r roots) nicDir(nic string) (string, error) {
	if err := checkNIC(nic); err != nil {
		return "", err
	}
	dir := filepath.Join(r.sys, "class", "net", nic)
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("affinity: network interface %s: %w", nic, err)
	}
	return dir, nil
}

// busDevice returns the NIC's bus device (resolved sysfs path), or "" for a
// virtual NIC (lo, veth: no device link). A virtio NIC's device is a virtio
// node whose PCI parent holds numa_node and msi_irqs, so it climbs to the
// nearest PCI device, but never past one: a PCI bridge's IRQs are not the NIC's.
func (r roots) busDevice(nicDir string) (string, error) {
	dev, err := filepath.EvalSymlinks(filepath.Join(nicDir, "device"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("affinity: %w", err)
	}
	for d, i := dev, 0; i < 3; d, i = filepath.Dir(d), i+1 {
		switch subsystem(d) {
		case "pci":
			return d, nil
		case "":
			return dev, nil // left the device tree
		}
	}
	return dev, nil
}

func subsystem(dev string) string {
	link, err := os.Readlink(filepath.Join(dev, "subsystem"))
	if err != nil {
		return ""
	}
	return filepath.Base(link)
}

// numaNode reads dev/numa_node; -1 when unknown (no device, or the firmware
// does not say).
func numaNode(dev string) int {
	if dev == "" {
		return -1
	}
	n, err := readInt(filepath.Join(dev, "numa_node"))
	if err != nil || n < 0 {
		return -1
	}
	return n
}

func (r roots) nodeCPUs(node int) (CPUSet, error) {
	if node < 0 {
		return nil, nil
	}
	c, err := readCPUList(filepath.Join(r.sys, "devices", "system", "node", "node"+strconv.Itoa(node), "cpulist"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // a kernel without NUMA: no preference
	}
	if err != nil {
		return nil, fmt.Errorf("affinity: %w", err)
	}
	return c, nil
}

// nicLocalCPUs returns the CPUs of the NIC's NUMA node; nil when nic is "" or
// its node is unknown.
func (r roots) nicLocalCPUs(nic string) (CPUSet, error) {
	if nic == "" {
		return nil, nil
	}
	dir, err := r.nicDir(nic)
	if err != nil {
		return nil, err
	}
	dev, err := r.busDevice(dir)
	if err != nil {
		return nil, err
	}
	return r.nodeCPUs(numaNode(dev))
}

// cores maps each CPU to the first CPU of its physical core (SMT siblings share
// one); CPUs without topology files are their own core.
func (r roots) cores(cpus CPUSet) map[int]int {
	core := make(map[int]int, len(cpus))
	for _, cpu := range cpus {
		core[cpu] = cpu
		base := filepath.Join(r.sys, "devices", "system", "cpu", "cpu"+strconv.Itoa(cpu), "topology")
		for _, f := range []string{"core_cpus_list", "thread_siblings_list"} {
			if sib, err := readCPUList(filepath.Join(base, f)); err == nil && len(sib) > 0 {
				core[cpu] = sib[0]
				break
			}
		}
	}
	return core
}

// choose reads the NIC's node and the core topology under r, then chooses.
func (r roots) choose(n int, want, allowed CPUSet, nic string) (CPUSet, error) {
	local, err := r.nicLocalCPUs(nic)
	if err != nil {
		return nil, err
	}
	return choose(n, want, allowed, local, r.cores(allowed))
}

// choose picks n CPUs, one per worker, from want (which must lie within
// allowed) or else from allowed. Order of preference: CPUs of the NIC's node
// (local) first, and within each group one CPU per physical core before SMT
// siblings, then lower numbers. n == 0 takes all of want, or else the allowed
// CPUs of the local node (all allowed CPUs when none is local).
func choose(n int, want, allowed, local CPUSet, core map[int]int) (CPUSet, error) {
	if n < 0 {
		return nil, fmt.Errorf("affinity: %d workers", n)
	}
	want, err := normalize(want)
	if err != nil {
		return nil, err
	}
	pool := allowed
	if len(want) > 0 {
		if extra := want.Difference(allowed); len(extra) > 0 {
			return nil, fmt.Errorf("affinity: CPUs %s are outside the allowed set %s", extra, allowed)
		}
		pool = want
	}
	if len(pool) == 0 {
		return nil, errors.New("affinity: no CPU to choose from")
	}
	near := pool.Intersect(local)
	if n == 0 {
		if len(want) == 0 && len(near) > 0 {
			return near, nil
		}
		return pool, nil
	}
	if n > len(pool) {
		return nil, fmt.Errorf("affinity: %d workers need as many CPUs, only %s to choose from", n, pool)
	}
	type ranked struct{ cpu, far, sibling int }
	seen := map[int]bool{} // cores that already have a CPU ahead in the order
	var order []ranked
	for far, group := range []CPUSet{near, pool.Difference(local)} {
		for _, cpu := range group {
			c, ok := core[cpu]
			if !ok {
				c = cpu
			}
			sib := 0
			if seen[c] {
				sib = 1
			}
			seen[c] = true
			order = append(order, ranked{cpu, far, sib})
		}
	}
	slices.SortStableFunc(order, func(a, b ranked) int {
		if a.far != b.far {
			return a.far - b.far
		}
		return a.sibling - b.sibling
	})
	picked := make([]int, n)
	for i := range picked {
		picked[i] = order[i].cpu
	}
	return normalize(picked)
}

func readInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("affinity: %s: %w", path, err)
	}
	return n, nil
}

func readCPUList(path string) (CPUSet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseCPUList(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
