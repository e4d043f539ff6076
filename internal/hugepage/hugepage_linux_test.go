package hugepage

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"
)

func TestReadMode(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		text, want string
		err        bool
	}{
		{"always [madvise] never\n", "madvise", false},
		{"[always] madvise never\n", "always", false},
		{"always madvise [never]\n", "never", false},
		{"always madvise never\n", "", true},
		{"", "", true},
	}
	for i, tt := range tests {
		path := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(path, []byte(tt.text), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := readMode(path)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("readMode(%q) = %q, %v; want %q, error %v", tt.text, got, err, tt.want, tt.err)
		}
	}
	if _, err := readMode(filepath.Join(dir, "missing")); !errors.Is(err, ErrUnsupported) {
		t.Errorf("missing file: %v, want ErrUnsupported", err)
	}
}

func TestHeapRanges(t *testing.T) {
	maps := `00400000-00600000 r-xp 00000000 08:01 123 /usr/bin/spillway
00600000-00800000 rw-p 00200000 08:01 123 /usr/bin/spillway
c000000000-c000400000 rw-p 00000000 00:00 0 
c000400000-c004000000 rw-p 00000000 00:00 0 
c004000000-c008000000 ---p 00000000 00:00 0 
c008000000-c008200000 rw-p 00000000 00:00 0 
7f0000000000-7f0000800000 rw-p 00000000 00:00 0 
7f0000800000-7f0000801000 rw-p 00000000 00:00 0 [stack]
`
	tests := []struct {
		addr uintptr
		want []addrRange
	}{
		{0xc000500000, []addrRange{{0xc000000000, 0xc000400000}, {0xc000400000, 0xc004000000}}},
		{0xc000000000, []addrRange{{0xc000000000, 0xc000400000}, {0xc000400000, 0xc004000000}}},
		{0xc008100000, []addrRange{{0xc008000000, 0xc008200000}}},
		{0x7f0000000100, []addrRange{{0x7f0000000000, 0x7f0000800000}}},
		{0xc005000000, nil}, // reserved, not mapped
		{0x00600100, nil},   // file-backed
	}
	for _, tt := range tests {
		got, err := heapRanges([]byte(maps), tt.addr)
		if tt.want == nil {
			if err == nil {
				t.Errorf("%#x: %v, want an error", tt.addr, got)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%#x: %v, %v; want %v", tt.addr, got, err, tt.want)
		}
	}
}

// vmFlags returns the VmFlags of the mapping that holds addr.
func vmFlags(t *testing.T, addr uintptr) []string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 && !strings.HasSuffix(strings.Fields(line)[0], ":") {
			in = addr >= lo && addr < hi
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return strings.Fields(strings.TrimPrefix(line, "VmFlags:"))
		}
	}
	t.Fatalf("no mapping holds %#x", addr)
	return nil
}

func contains(s []string, x string) bool {
	for _, e := range s {
		if e == x {
			return true
		}
	}
	return false
}

// TestAdvise advises this test process's own heap. The kernel's mode is
// given as madvise, so the advice is made whatever the host's setting;
// the mapping must then carry the hg flag, and a second pass finds
// nothing new.
func TestAdvise(t *testing.T) {
	if _, err := readMode(modePath); err != nil {
		t.Fatalf("this kernel has no transparent huge pages (%s): %v", modePath, err)
	}
	mode := filepath.Join(t.TempDir(), "enabled")
	if err := os.WriteFile(mode, []byte("always [madvise] never\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16<<20) // 16 MiB of heap, at least a few huge pages of it
	for i := range buf {
		buf[i] = byte(i)
	}
	addr := uintptr(unsafe.Pointer(&buf[8<<20]))
	a := Advisor{modeFile: mode}
	st, err := a.Advise()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first pass: %+v", st)
	if st.Mode != "madvise" || st.Heap < int64(len(buf)) || st.Advised < 4*Size {
		t.Fatalf("first pass %+v: want the heap of at least %d bytes advised", st, len(buf))
	}
	if f := vmFlags(t, addr); !contains(f, "hg") {
		t.Fatalf("heap mapping flags %v: no hg (MADV_HUGEPAGE)", f)
	}
	st, err = a.Advise()
	if err != nil || st.Advised != 0 {
		t.Fatalf("second pass %+v, %v: want nothing new", st, err)
	}
	for i := range buf { // the memory is unchanged
		if buf[i] != byte(i) {
			t.Fatalf("byte %d changed", i)
		}
	}

	// In the kernel's other modes Advise does nothing.
	for _, m := range []string{"[always] madvise never", "always madvise [never]"} {
		if err := os.WriteFile(mode, []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
		b := Advisor{modeFile: mode}
		if st, err := b.Advise(); err != nil || st.Advised != 0 || st.Heap != 0 {
			t.Errorf("mode %q: %+v, %v; want nothing done", m, st, err)
		}
	}
}
