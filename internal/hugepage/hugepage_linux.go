//go:build linux

package hugepage

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Advisor remembers which parts of the heap it advised: each 2 MiB of it
// is advised and collapsed once. Memory the Go runtime later returns to the
// kernel stays returned.
type Advisor struct {
	done     map[uintptr]bool // by huge page index
	modeFile string           // tests: the kernel's mode from elsewhere
}

const modePath = "/sys/kernel/mm/transparent_hugepage/enabled"

// Advise finds the heap's mappings in /proc/self/maps, marks the parts not
// advised before MADV_HUGEPAGE (faults there get huge pages from now on)
// and asks the kernel to collapse what is already there (MADV_COLLAPSE,
// Linux 6.1; best effort). With the kernel's mode "always" there is nothing
// to do, and with "never" nothing can be done.
func (a *Advisor) Advise() (Stats, error) {
	var st Stats
	path := modePath
	if a.modeFile != "" {
		path = a.modeFile
	}
	mode, err := readMode(path)
	if err != nil {
		return st, err
	}
	st.Mode = mode
	if mode != "madvise" {
		return st, nil
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return st, fmt.Errorf("hugepage: %w", err)
	}
	probe := new([64]byte) // somewhere in the heap
	heap, err := heapRanges(maps, uintptr(unsafe.Pointer(probe)))
	if err != nil {
		return st, err
	}
	if a.done == nil {
		a.done = map[uintptr]bool{}
	}
	for _, r := range heap {
		st.Heap += int64(r.end - r.start)
		// Whole huge pages within the mapping, in runs not advised yet.
		for p := alignUp(r.start); p+Size <= r.end; {
			if a.done[p/Size] {
				p += Size
				continue
			}
			q := p
			for q+Size <= r.end && !a.done[q/Size] {
				a.done[q/Size] = true
				q += Size
			}
			if err := madvise(p, q-p, unix.MADV_HUGEPAGE); err != nil {
				return st, fmt.Errorf("hugepage: madvise %#x+%d: %w", p, q-p, err)
			}
			st.Advised += int64(q - p)
			// EAGAIN or ENOMEM: no huge page to be had now; faults and
			// khugepaged may still do it later.
			if madvise(p, q-p, unix.MADV_COLLAPSE) == nil {
				st.Collapsed += int64(q - p)
			}
			p = q
		}
	}
	return st, nil
}

func readMode(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return "", ErrUnsupported
		}
		return "", fmt.Errorf("hugepage: %w", err)
	}
	// "always [madvise] never": the bracketed word is in effect.
	s := string(b)
	i, j := strings.IndexByte(s, '['), strings.IndexByte(s, ']')
	if i < 0 || j < i {
		return "", fmt.Errorf("hugepage: %s: %q", path, strings.TrimSpace(s))
	}
	return s[i+1 : j], nil
}

type addrRange struct{ start, end uintptr }

// heapRanges returns the run of adjacent anonymous read-write private
// mappings that holds addr: the Go heap grows by mapping arenas next to
// each other, and each mapping call may make a mapping of its own.
func heapRanges(maps []byte, addr uintptr) ([]addrRange, error) {
	var all []addrRange
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// start-end perms offset dev inode [path]
		f := strings.Fields(sc.Text())
		if len(f) < 5 || f[1] != "rw-p" || f[4] != "0" || len(f) > 5 {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		s, err1 := strconv.ParseUint(lo, 16, 64)
		e, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || e <= s {
			continue
		}
		all = append(all, addrRange{uintptr(s), uintptr(e)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("hugepage: maps: %w", err)
	}
	for i, r := range all {
		if addr < r.start || addr >= r.end {
			continue
		}
		lo, hi := i, i+1
		for lo > 0 && all[lo-1].end == all[lo].start {
			lo--
		}
		for hi < len(all) && all[hi].start == all[hi-1].end {
			hi++
		}
		return all[lo:hi], nil
	}
	return nil, fmt.Errorf("hugepage: no anonymous mapping holds the heap address %#x", addr)
}

// madvise takes the range as numbers: it is memory the Go runtime manages,
// not a Go object of ours.
func madvise(p, n uintptr, advice int) error {
	if _, _, e := unix.Syscall(unix.SYS_MADVISE, p, n, uintptr(advice)); e != 0 {
		return e
	}
	return nil
}

func alignUp(p uintptr) uintptr { return (p + Size - 1) &^ (Size - 1) }
