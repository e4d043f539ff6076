package affinity

import (
	"strings"
	"testing"
)

func TestChoose(t *testing.T) {
	all := Range(0, 7)
	smt := map[int]int{0: 0, 1: 0, 2: 2, 3: 2, 4: 4, 5: 4, 6: 6, 7: 6} // pairs share a core
	tests := []struct {
		name           string
		n              int
		want, allowed  CPUSet
		local          CPUSet
		core           map[int]int
		got, errSubstr string // got in cpulist format
	}{
		{name: "local node, one per core", n: 2, allowed: all, local: Range(4, 7), core: smt, got: "4,6"},
		{name: "local siblings before remote", n: 4, allowed: all, local: Range(4, 7), core: smt, got: "4-7"},
		{name: "spill to remote node", n: 5, allowed: all, local: Range(4, 7), core: smt, got: "0,4-7"},
		{name: "spill one per remote core", n: 6, allowed: all, local: Range(4, 7), core: smt, got: "0,2,4-7"},
		{name: "n=0: the local node", allowed: all, local: Range(4, 7), core: smt, got: "4-7"},
		{name: "n=0: no node, all allowed", allowed: all, core: smt, got: "0-7"},
		{name: "n=0: want", want: CPUSet{2, 1}, allowed: all, local: Range(4, 7), got: "1-2"},
		{name: "want, local first", n: 2, want: CPUSet{1, 2, 5}, allowed: all, local: Range(4, 7), core: smt, got: "1,5"},
		{name: "want, duplicates", n: 2, want: CPUSet{3, 3, 1}, allowed: all, got: "1,3"},
		{name: "mask excludes the local node", n: 2, allowed: CPUSet{0, 1, 2}, local: Range(4, 7), core: smt, got: "0,2"},
		{name: "n=0, local node outside the mask", allowed: CPUSet{0, 1}, local: Range(4, 7), got: "0-1"},
		{name: "no topology, no node", n: 2, allowed: all, got: "0-1"},
		{name: "want outside the mask", n: 1, want: CPUSet{3, 8}, allowed: all, errSubstr: "CPUs 8 are outside the allowed set 0-7"},
		{name: "want negative", n: 1, want: CPUSet{-1}, allowed: all, errSubstr: "CPU numbers"},
		{name: "too many workers", n: 9, allowed: all, errSubstr: "9 workers need as many CPUs, only 0-7"},
		{name: "more workers than want", n: 3, want: CPUSet{1, 2}, allowed: all, errSubstr: "only 1-2"},
		{name: "negative n", n: -1, allowed: all, errSubstr: "-1 workers"},
		{name: "empty mask", n: 1, errSubstr: "no CPU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := choose(tt.n, tt.want, tt.allowed, tt.local, tt.core)
			if tt.errSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errSubstr) {
					t.Fatalf("choose = %v, %v; want an error with %q", got, err, tt.errSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.got {
				t.Errorf("choose = %s, want %s", got, tt.got)
			}
			if tt.n > 0 && len(got) != tt.n {
				t.Errorf("choose gave %d CPUs, want %d", len(got), tt.n)
			}
		})
	}
}

// TestChooseFakeSysfs reads the NIC's NUMA node and the SMT topology from a
// constructed sysfs.
func TestChooseFakeSysfs(t *testing.T) {
	files := twoQueueNIC()
	files["sys/class/net/eth8/device"] = "->../../../devices/pci0000:00/0000:00:1e.0"
	files["sys/devices/pci0000:00/0000:00:1e.0/subsystem"] = "->../../../bus/pci"
	files["sys/devices/pci0000:00/0000:00:1e.0/numa_node"] = "3\n" // a node sysfs does not list
	r := fakeTree(t, files)
	tests := []struct {
		n                  int
		want, allowed      CPUSet
		nic, got, errSubst string
	}{
		{n: 2, allowed: Range(0, 7), nic: "eth7", got: "4,6"},
		{n: 3, allowed: Range(0, 7), nic: "eth7", got: "4-6"},
		{n: 2, allowed: Range(0, 7), nic: "", got: "0,2"},
		{n: 2, allowed: Range(0, 7), nic: "veth3", got: "0,2"},
		{n: 2, allowed: Range(0, 7), nic: "eth8", got: "0,2"},
		{n: 2, allowed: CPUSet{1, 2, 3}, nic: "eth7", got: "1-2"},
		{n: 2, want: CPUSet{0, 1, 7}, allowed: Range(0, 7), nic: "eth7", got: "0,7"},
		{n: 1, want: CPUSet{7}, allowed: Range(0, 3), nic: "eth7", errSubst: "outside the allowed set"},
		{n: 1, allowed: Range(0, 7), nic: "eth9", errSubst: "network interface eth9"},
	}
	for _, tt := range tests {
		got, err := r.choose(tt.n, tt.want, tt.allowed, tt.nic)
		if tt.errSubst != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errSubst) {
				t.Errorf("choose(%d, %v, %v, %q) = %v, %v; want error %q", tt.n, tt.want, tt.allowed, tt.nic, got, err, tt.errSubst)
			}
			continue
		}
		if err != nil || got.String() != tt.got {
			t.Errorf("choose(%d, %v, %v, %q) = %v, %v; want %s", tt.n, tt.want, tt.allowed, tt.nic, got, err, tt.got)
		}
	}
}
