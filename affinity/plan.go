package affinity

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Change is one sysfs/procfs write that aligning the NIC would make.
type Change struct {
	Path string // xps_cpus of a TX queue, or smp_affinity_list of an IRQ
	Old  string // value seen when planned (hex mask for xps_cpus, cpulist otherwise)
	New  string // value to write, same format
}

// String says "path: old -> new".
func (c Change) String() string { return c.Path + ": " + c.Old + " -> " + c.New }

// plan reads the NIC under r and computes the changes that align it to workers.
func (r roots) plan(nic string, workers CPUSet) ([]Change, error) {
	workers, err := normalize(workers)
	if err != nil {
		return nil, err
	}
	if len(workers) == 0 {
		return nil, errors.New("affinity: plan needs at least one worker CPU")
	}
	rep, err := r.report(nic)
	if err != nil {
		return nil, err
	}
	return r.planReport(rep, workers), nil
}

// planReport gives worker i the TX queue i (round robin when there are fewer
// queues than workers): that queue's XPS mask becomes its workers' CPUs and so
// do its IRQs' affinities, so a worker's packets leave through a queue whose
// completions come back on the same CPU. Queues left without a worker, and
// their IRQs, lose the worker CPUs so no other traffic lands on them. Queues
// whose XPS the kernel does not expose (single-queue NICs) keep their IRQs
// aligned only.
func (r roots) planReport(rep NICReport, workers CPUSet) []Change {
	if len(rep.TXQueues) == 0 {
		return nil
	}
	queueCPUs := make([]CPUSet, len(rep.TXQueues)) // by position in rep.TXQueues
	for i, cpu := range workers {
		q := i % len(queueCPUs)
		queueCPUs[q] = append(queueCPUs[q], cpu)
	}
	pos := map[int]int{} // queue index -> position
	var changes []Change
	for i, q := range rep.TXQueues {
		pos[queueIndex(q.Name)] = i
		if q.XPSError != "" {
			continue
		}
		want := queueCPUs[i]
		if len(want) == 0 {
			want = q.XPS.Difference(workers)
		}
		if !want.Equal(q.XPS) {
			changes = append(changes, Change{
				Path: filepath.Join(r.sys, "class", "net", rep.NIC, "queues", q.Name, "xps_cpus"),
				Old:  q.XPS.HexMask(),
				New:  want.HexMask(),
			})
		}
	}
	for _, irq := range rep.IRQs {
		i, ok := pos[irq.TXQueue]
		if irq.TXQueue < 0 || !ok || len(irq.Affinity) == 0 {
			continue
		}
		want := queueCPUs[i]
		if len(want) == 0 {
			want = irq.Affinity.Difference(workers)
		}
		if len(want) > 0 && !want.Equal(irq.Affinity) { // an IRQ needs some CPU
			changes = append(changes, Change{
				Path: filepath.Join(r.proc, "irq", strconv.Itoa(irq.Number), "smp_affinity_list"),
				Old:  irq.Affinity.String(),
				New:  want.String(),
			})
		}
	}
	return changes
}

// apply checks every change first (a known kind of file, a valid value) and
// writes none if one is wrong. Then it writes each file whose value is still the
// one planned, and goes on past failures (a managed IRQ refuses new affinity
// with EIO) so the rest still lands; the error names every path that failed.
func apply(changes []Change) error {
	for _, c := range changes {
		parse, err := changeFormat(c.Path)
		if err != nil {
			return err
		}
		for _, v := range []string{c.Old, c.New} {
			if _, err := parse(v); err != nil {
				return fmt.Errorf("affinity: %s: %w", c.Path, err)
			}
		}
		if set, _ := parse(c.New); len(set) == 0 && filepath.Base(c.Path) != "xps_cpus" {
			return fmt.Errorf("affinity: %s: an IRQ needs at least one CPU", c.Path)
		}
	}
	var errs []error
	for _, c := range changes {
		if err := applyOne(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func applyOne(c Change) error {
	parse, _ := changeFormat(c.Path)
	b, err := os.ReadFile(c.Path)
	if err != nil {
		return fmt.Errorf("affinity: %w", err)
	}
	cur, err := parse(string(b))
	if err != nil {
		return fmt.Errorf("affinity: %s: %w", c.Path, err)
	}
	old, _ := parse(c.Old)
	if !cur.Equal(old) {
		return fmt.Errorf("affinity: %s changed since the plan: now %q, planned from %q", c.Path, cur, old)
	}
	f, err := os.OpenFile(c.Path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("affinity: %w", err)
	}
	// sysfs takes a value in one write.
	_, err = f.Write([]byte(c.New + "\n"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("affinity: write %q to %s: %w", c.New, c.Path, err)
	}
	return nil
}

// changeFormat accepts only the files Plan writes, named the way sysfs and
// procfs name them, and returns the parser of their format.
func changeFormat(path string) (func(string) (CPUSet, error), error) {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return nil, fmt.Errorf("affinity: %q is not a clean absolute path", path)
	}
	dir := filepath.Dir(path)
	parent, grand := filepath.Base(dir), filepath.Base(filepath.Dir(dir))
	_, numErr := strconv.Atoi(parent)
	switch base := filepath.Base(path); {
	case base == "xps_cpus" && queueIndex(parent) >= 0 && grand == "queues":
		return ParseHexMask, nil
	case base == "smp_affinity_list" && numErr == nil && grand == "irq":
		return ParseCPUList, nil
	case base == "smp_affinity" && numErr == nil && grand == "irq":
		return ParseHexMask, nil
	}
	return nil, fmt.Errorf("affinity: %s is not a TX queue's xps_cpus or an IRQ's affinity", path)
}
