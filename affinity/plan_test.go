package affinity

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// changeStrings renders changes with the tree's roots cut to "sys" and "proc".
func changeStrings(r roots, cs []Change) []string {
	var out []string
	for _, c := range cs {
		s := strings.Replace(c.String(), r.sys, "sys", 1)
		out = append(out, strings.Replace(s, r.proc, "proc", 1))
	}
	return out
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		nic     string
		workers CPUSet
		want    []string
	}{
		{"a queue per worker", twoQueueNIC(), "eth7", CPUSet{4, 5}, []string{
			"sys/class/net/eth7/queues/tx-0/xps_cpus: 3 -> 10",
			"sys/class/net/eth7/queues/tx-1/xps_cpus: c -> 20",
			"proc/irq/40/smp_affinity_list: 0 -> 4",
			"proc/irq/41/smp_affinity_list: 1 -> 5",
		}},
		{"more workers than queues", twoQueueNIC(), "eth7", CPUSet{0, 1, 2}, []string{
			"sys/class/net/eth7/queues/tx-0/xps_cpus: 3 -> 5",
			"sys/class/net/eth7/queues/tx-1/xps_cpus: c -> 2",
			"proc/irq/40/smp_affinity_list: 0 -> 0,2",
		}},
		{"a spare queue gives up the worker CPU", twoQueueNIC(), "eth7", CPUSet{2}, []string{
			"sys/class/net/eth7/queues/tx-0/xps_cpus: 3 -> 4",
			"sys/class/net/eth7/queues/tx-1/xps_cpus: c -> 8",
			"proc/irq/40/smp_affinity_list: 0 -> 2",
		}},
		{"a spare queue's IRQ leaves a worker CPU", twoQueueNIC(), "eth7", CPUSet{1}, []string{
			"sys/class/net/eth7/queues/tx-0/xps_cpus: 3 -> 2",
			"proc/irq/40/smp_affinity_list: 0 -> 1",
		}},
		{"already aligned", twoQueueNIC(), "eth7", CPUSet{0}, []string{
			"sys/class/net/eth7/queues/tx-0/xps_cpus: 3 -> 1",
		}},
		{"virtio: no XPS, IRQ only", virtioNIC(), "eth0", CPUSet{1}, []string{
			"proc/irq/39/smp_affinity_list: 0-1 -> 1",
		}},
		{"virtual NIC: XPS only", twoQueueNIC(), "veth3", CPUSet{0, 1}, []string{
			"sys/class/net/veth3/queues/tx-0/xps_cpus: 0 -> 1",
			"sys/class/net/veth3/queues/tx-1/xps_cpus: 40 -> 2",
		}},
		{"no XPS, IRQ found by name", twoQueueNIC(), "eth70", CPUSet{0}, []string{
			"proc/irq/50/smp_affinity_list: 2 -> 0",
		}},
		{"no queues", twoQueueNIC(), "dummy0", CPUSet{0}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fakeTree(t, tt.files)
			cs, err := r.plan(tt.nic, tt.workers)
			if err != nil {
				t.Fatal(err)
			}
			if got := changeStrings(r, cs); !slices.Equal(got, tt.want) {
				t.Errorf("plan:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
	r := fakeTree(t, twoQueueNIC())
	if _, err := r.plan("eth7", nil); err == nil {
		t.Error("plan with no workers succeeded")
	}
	if _, err := r.plan("eth9", CPUSet{0}); err == nil {
		t.Error("plan of a missing NIC succeeded")
	}
}

// TestApply aligns the fake NIC, then checks the files, the report and that
// planning again finds nothing to do.
func TestApply(t *testing.T) {
	r := fakeTree(t, twoQueueNIC())
	cs, err := r.plan("eth7", CPUSet{4, 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := apply(cs); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		b, err := os.ReadFile(c.Path)
		if err != nil || string(b) != c.New+"\n" {
			t.Errorf("%s holds %q, %v; want %q", c.Path, b, err, c.New+"\n")
		}
	}
	rep, err := r.report("eth7")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.TXQueues[0].XPS.Equal(CPUSet{4}) || !rep.TXQueues[1].XPS.Equal(CPUSet{5}) ||
		!rep.IRQs[0].Affinity.Equal(CPUSet{4}) || !rep.IRQs[1].Affinity.Equal(CPUSet{5}) {
		t.Errorf("after apply:\n%s", rep)
	}
	if again, err := r.plan("eth7", CPUSet{4, 5}); err != nil || len(again) != 0 {
		t.Errorf("plan after apply = %v, %v; want nothing", again, err)
	}
	if err := apply(nil); err != nil {
		t.Errorf("apply(nil): %v", err)
	}
}

// TestApplyRefuses checks that one bad change stops the whole batch before any
// write.
func TestApplyRefuses(t *testing.T) {
	r := fakeTree(t, twoQueueNIC())
	good := Change{Path: filepath.Join(r.proc, "irq", "40", "smp_affinity_list"), Old: "0", New: "4"}
	xps := filepath.Join(r.sys, "class", "net", "eth7", "queues", "tx-0", "xps_cpus")
	outside := filepath.Join(r.sys, "class", "net", "eth7", "mtu")
	if err := os.WriteFile(outside, []byte("1500\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		bad  Change
	}{
		{"not a known file", Change{Path: outside, Old: "1500", New: "9000"}},
		{"relative", Change{Path: "sys/class/net/eth7/queues/tx-0/xps_cpus", Old: "3", New: "1"}},
		{"dot-dot", Change{Path: filepath.Join(r.sys, "class", "net", "eth7", "queues", "tx-0") + "/../tx-1/xps_cpus", Old: "c", New: "1"}},
		{"rx queue", Change{Path: filepath.Join(r.sys, "class", "net", "eth7", "queues", "rx-0", "xps_cpus"), Old: "0", New: "1"}},
		{"irq not numbered", Change{Path: filepath.Join(r.proc, "irq", "default", "smp_affinity_list"), Old: "0", New: "1"}},
		{"bad hex", Change{Path: xps, Old: "3", New: "0-1"}},
		{"bad list", Change{Path: good.Path, Old: "0", New: "ff"}},
		{"bad old", Change{Path: good.Path, Old: "x", New: "1"}},
		{"IRQ on no CPU", Change{Path: good.Path, Old: "0", New: ""}},
	}
	for _, tt := range tests {
		if err := apply([]Change{good, tt.bad}); err == nil {
			t.Errorf("%s: apply accepted %v", tt.name, tt.bad)
		}
		if b, _ := os.ReadFile(good.Path); string(b) != "0\n" {
			t.Fatalf("%s: apply wrote %q before refusing", tt.name, b)
		}
	}
	if b, _ := os.ReadFile(outside); string(b) != "1500\n" {
		t.Errorf("mtu became %q", b)
	}
}

// TestApplyStale checks that a file changed since the plan is left alone and
// named in the error, while the other changes land.
func TestApplyStale(t *testing.T) {
	r := fakeTree(t, twoQueueNIC())
	cs, err := r.plan("eth7", CPUSet{4, 5})
	if err != nil {
		t.Fatal(err)
	}
	stale := cs[0].Path
	if err := os.WriteFile(stale, []byte("000000ff\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := Change{Path: filepath.Join(r.proc, "irq", "77", "smp_affinity_list"), Old: "0", New: "1"}
	err = apply(append(cs, missing))
	if err == nil || !strings.Contains(err.Error(), stale+" changed since the plan") || !strings.Contains(err.Error(), "irq/77") {
		t.Fatalf("apply over a stale and a missing file: %v", err)
	}
	if b, _ := os.ReadFile(stale); string(b) != "000000ff\n" {
		t.Errorf("stale file overwritten: %q", b)
	}
	for _, c := range cs[1:] {
		if b, _ := os.ReadFile(c.Path); string(b) != c.New+"\n" {
			t.Errorf("%s not applied: %q", c.Path, b)
		}
	}
	// An equal value in another spelling is not stale.
	if err := os.WriteFile(stale, []byte("3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := apply(cs[:1]); err != nil {
		t.Errorf("apply over \"3\" planned as %q: %v", cs[0].Old, err)
	}
}
