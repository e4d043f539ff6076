package affinity

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// NICReport is what the kernel says about a NIC's transmit side.
type NICReport struct {
	NIC      string
	NUMANode int    // -1: unknown (virtual NIC, or firmware does not say)
	Device   string // sysfs path of its bus device; "" for a virtual NIC
	TXQueues []TXQueue
	IRQs     []IRQ
}

// TXQueue is one transmit queue and its XPS mask (the CPUs that send on it).
type TXQueue struct {
	Name     string // "tx-0"
	XPS      CPUSet
	XPSError string // why xps_cpus could not be read (a single-queue NIC has no XPS); "" when read
}

// IRQ is one interrupt of the NIC.
type IRQ struct {
	Number   int
	Name     string // its handler names, ", " between shared ones
	Affinity CPUSet // smp_affinity_list
	TXQueue  int    // index of the TX queue it serves, judged from its name; -1: none or unknown
}

// report reads the NIC's queues and IRQs under r. A virtual NIC has no device
// and no IRQs: the report says so rather than fail.
func (r roots) report(nic string) (NICReport, error) {
	dir, err := r.nicDir(nic)
	if err != nil {
		return NICReport{}, err
	}
	link, err := filepath.EvalSymlinks(filepath.Join(dir, "device"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return NICReport{}, fmt.Errorf("affinity: %w", err)
	}
	bus, err := r.busDevice(dir)
	if err != nil {
		return NICReport{}, err
	}
	rep := NICReport{NIC: nic, NUMANode: numaNode(bus), Device: bus}
	if rep.TXQueues, err = txQueues(dir); err != nil {
		return NICReport{}, err
	}
	keys := []string{nic}
	for _, d := range []string{link, bus} {
		if d != "" && !slices.Contains(keys, filepath.Base(d)) {
			keys = append(keys, filepath.Base(d))
		}
	}
	if rep.IRQs, err = r.irqs(keys, bus); err != nil {
		return NICReport{}, err
	}
	return rep, nil
}

func txQueues(nicDir string) ([]TXQueue, error) {
	ents, err := os.ReadDir(filepath.Join(nicDir, "queues"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("affinity: %w", err)
	}
	var qs []TXQueue
	for _, e := range ents {
		if queueIndex(e.Name()) < 0 {
			continue
		}
		q := TXQueue{Name: e.Name()}
		b, err := os.ReadFile(filepath.Join(nicDir, "queues", e.Name(), "xps_cpus"))
		if err == nil {
			q.XPS, err = ParseHexMask(string(b))
		}
		if err != nil {
			// The kernel lists xps_cpus but answers ENOENT on a single-queue NIC.
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			q.XPSError = err.Error()
		}
		qs = append(qs, q)
	}
	slices.SortFunc(qs, func(a, b TXQueue) int { return queueIndex(a.Name) - queueIndex(b.Name) })
	return qs, nil
}

// queueIndex returns N for "tx-N", else -1.
func queueIndex(name string) int {
	s, ok := strings.CutPrefix(name, "tx-")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// irqs finds the NIC's IRQs: the device's MSI vectors, plus every line of
// /proc/interrupts whose handler name contains one of keys as a whole word (the
// NIC's name, its virtio or PCI device name).
func (r roots) irqs(keys []string, bus string) ([]IRQ, error) {
	names := map[int][]string{} // IRQ -> handler names
	if bus != "" {
		ents, err := os.ReadDir(filepath.Join(bus, "msi_irqs"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("affinity: %w", err)
		}
		for _, e := range ents {
			if n, err := strconv.Atoi(e.Name()); err == nil {
				names[n] = r.irqNames(n, "")
			}
		}
	}
	lines, err := r.interrupts()
	if err != nil {
		return nil, err
	}
	for n, last := range lines {
		ns := r.irqNames(n, last)
		if slices.ContainsFunc(ns, func(name string) bool { return nameHasKey(name, keys) }) {
			names[n] = ns
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	out := make([]IRQ, 0, len(names))
	for n, ns := range names {
		if len(ns) == 0 {
			ns = r.irqNames(n, lines[n])
		}
		irq := IRQ{Number: n, Name: strings.Join(ns, ", "), TXQueue: -1}
		for _, name := range ns {
			if q := txQueueOf(name); q >= 0 {
				irq.TXQueue = q
				break
			}
		}
		irq.Affinity = r.irqAffinity(n)
		out = append(out, irq)
	}
	slices.SortFunc(out, func(a, b IRQ) int { return a.Number - b.Number })
	return out, nil
}

// interrupts maps each numbered line of /proc/interrupts to its last field, the
// handler name when there is one handler without spaces in its name.
func (r roots) interrupts() (map[int]string, error) {
	f, err := os.Open(filepath.Join(r.proc, "interrupts"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("affinity: %w", err)
	}
	defer f.Close()
	out := map[int]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		num, rest, ok := strings.Cut(sc.Text(), ":")
		n, err := strconv.Atoi(strings.TrimSpace(num))
		if !ok || err != nil {
			continue // header, NMI, LOC, ...
		}
		fields := strings.Fields(rest)
		last := ""
		if len(fields) > 0 {
			last = fields[len(fields)-1]
		}
		out[n] = last
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("affinity: %s: %w", f.Name(), err)
	}
	return out, nil
}

// irqNames returns the IRQ's handler names: procfs makes a directory per handler
// under /proc/irq/<n>/, exact even when names have spaces or the IRQ is shared.
func (r roots) irqNames(n int, fallback string) []string {
	ents, _ := os.ReadDir(filepath.Join(r.proc, "irq", strconv.Itoa(n)))
	var ns []string
	for _, e := range ents {
		if e.IsDir() {
			ns = append(ns, e.Name())
		}
	}
	if len(ns) == 0 && fallback != "" {
		ns = []string{fallback}
	}
	return ns
}

func (r roots) irqAffinity(n int) CPUSet {
	dir := filepath.Join(r.proc, "irq", strconv.Itoa(n))
	if c, err := readCPUList(filepath.Join(dir, "smp_affinity_list")); err == nil {
		return c
	}
	if b, err := os.ReadFile(filepath.Join(dir, "smp_affinity")); err == nil {
		if c, err := ParseHexMask(string(b)); err == nil {
			return c
		}
	}
	return nil
}

// nameHasKey reports whether name holds a key as a whole word: "eth7" matches
// "eth7-TxRx-0" but not "eth70-TxRx-0".
func nameHasKey(name string, keys []string) bool {
	for _, k := range keys {
		for i := 0; ; {
			j := strings.Index(name[i:], k)
			if j < 0 {
				break
			}
			j += i
			end := j + len(k)
			if (j == 0 || !isAlnum(name[j-1])) && (end == len(name) || !isAlnum(name[end])) {
				return true
			}
			i = j + 1
		}
	}
	return false
}

func isAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// txWords are the words drivers put in the names of IRQs that serve transmit
// queues: "eth0-TxRx-3" (Intel), "eth0-tx-0", "virtio2-output.0",
// "mlx5_comp3@pci:..." (completion vectors).
var txWords = map[string]bool{"tx": true, "txrx": true, "txq": true, "output": true, "comp": true, "combined": true}

// txQueueOf returns the TX queue an IRQ name says it serves, or -1: the number
// glued to the first transmit word, or else the first number after it.
func txQueueOf(name string) int {
	name = strings.ToLower(name)
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name = name[:i]
	}
	toks := strings.FieldsFunc(name, func(r rune) bool { return r > 0x7f || !isAlnum(byte(r)) })
	for i, t := range toks {
		word := strings.TrimRight(t, "0123456789")
		if !txWords[word] {
			continue
		}
		if digits := t[len(word):]; digits != "" {
			return atoiOr(digits, -1)
		}
		for _, u := range toks[i+1:] {
			if strings.TrimLeft(u, "0123456789") == "" {
				return atoiOr(u, -1)
			}
		}
		return -1
	}
	return -1
}

func atoiOr(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil || n > MaxCPU {
		return def
	}
	return n
}

// String prints the report one line per queue and IRQ, as `spillway doctor`
// shows it.
func (r NICReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "nic %s: numa node %d", r.NIC, r.NUMANode)
	if r.Device == "" {
		b.WriteString(", virtual (no device)")
	} else {
		fmt.Fprintf(&b, ", device %s", r.Device)
	}
	fmt.Fprintf(&b, ", %d tx queues, %d irqs\n", len(r.TXQueues), len(r.IRQs))
	for _, q := range r.TXQueues {
		if q.XPSError != "" {
			fmt.Fprintf(&b, "  %s xps unavailable (%s)\n", q.Name, q.XPSError)
		} else {
			fmt.Fprintf(&b, "  %s xps %q\n", q.Name, q.XPS.String())
		}
	}
	for _, irq := range r.IRQs {
		queue := "not a tx queue"
		if irq.TXQueue >= 0 {
			queue = "tx-" + strconv.Itoa(irq.TXQueue)
		}
		fmt.Fprintf(&b, "  irq %d %s (%s) cpus %q\n", irq.Number, irq.Name, queue, irq.Affinity.String())
	}
	return b.String()
}
