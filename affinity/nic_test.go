package affinity

import (
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReportFakeTrees(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		nic   string
		want  NICReport // Device relative to the sys root
		lines []string  // in String()
	}{
		{
			name: "two-queue PCI NIC", files: twoQueueNIC(), nic: "eth7",
			want: NICReport{
				NIC: "eth7", NUMANode: 1, Device: "devices/pci0000:00/0000:00:1f.0",
				TXQueues: []TXQueue{{Name: "tx-0", XPS: CPUSet{0, 1}}, {Name: "tx-1", XPS: CPUSet{2, 3}}},
				IRQs: []IRQ{
					{Number: 40, Name: "eth7-TxRx-0", Affinity: CPUSet{0}, TXQueue: 0},
					{Number: 41, Name: "eth7-TxRx-1", Affinity: CPUSet{1}, TXQueue: 1},
					{Number: 42, Name: "eth7", Affinity: Range(0, 7), TXQueue: -1},
				},
			},
			lines: []string{"nic eth7: numa node 1", `tx-1 xps "2-3"`, `irq 41 eth7-TxRx-1 (tx-1) cpus "1"`, "irq 42 eth7 (not a tx queue)"},
		},
		{
			name: "virtio NIC", files: virtioNIC(), nic: "eth0",
			want: NICReport{
				NIC: "eth0", NUMANode: -1, Device: "devices/pci0000:00/0000:00:03.0",
				TXQueues: []TXQueue{{Name: "tx-0", XPSError: "no such file or directory"}},
				IRQs: []IRQ{
					{Number: 37, Name: "virtio2-config", Affinity: CPUSet{0, 1}, TXQueue: -1},
					{Number: 38, Name: "virtio2-input.0", Affinity: CPUSet{0, 1}, TXQueue: -1},
					{Number: 39, Name: "virtio2-output.0", Affinity: CPUSet{0, 1}, TXQueue: 0},
				},
			},
			lines: []string{"tx-0 xps unavailable (no such file or directory)", "irq 39 virtio2-output.0 (tx-0)"},
		},
		{
			name: "virtual NIC", nic: "veth3", files: twoQueueNIC(),
			want:  NICReport{NIC: "veth3", NUMANode: -1, TXQueues: []TXQueue{{Name: "tx-0"}, {Name: "tx-1", XPS: CPUSet{6}}}},
			lines: []string{"virtual (no device), 2 tx queues, 0 irqs", `tx-0 xps ""`},
		},
		{
			name: "no device, IRQ found by name", nic: "eth70", files: twoQueueNIC(),
			want: NICReport{NIC: "eth70", NUMANode: -1,
				TXQueues: []TXQueue{{Name: "tx-0", XPSError: "no such file or directory"}},
				IRQs:     []IRQ{{Number: 50, Name: "eth70-TxRx-0", Affinity: CPUSet{2}, TXQueue: 0}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fakeTree(t, tt.files)
			got, err := r.report(tt.nic)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want.Device != "" {
				tt.want.Device = filepath.Join(r.sys, tt.want.Device)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("report:\n got %#v\nwant %#v", got, tt.want)
			}
			s := got.String()
			for _, l := range tt.lines {
				if !strings.Contains(s, l) {
					t.Errorf("String() lacks %q:\n%s", l, s)
				}
			}
		})
	}
}

func TestReportErrors(t *testing.T) {
	r := fakeTree(t, twoQueueNIC())
	for _, nic := range []string{"eth9", "", "..", "../eth7", "a/b", "abcdefghijklmnop"} {
		if _, err := r.report(nic); err == nil {
			t.Errorf("report(%q) succeeded", nic)
		}
	}
	if _, err := r.report("eth9"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("report of a missing NIC: %v, want fs.ErrNotExist", err)
	}
	// A bad xps_cpus is reported per queue, not fatal.
	files := twoQueueNIC()
	files["sys/class/net/eth7/queues/tx-1/xps_cpus"] = "zz\n"
	rep, err := fakeTree(t, files).report("eth7")
	if err != nil {
		t.Fatal(err)
	}
	if q := rep.TXQueues[1]; q.XPS != nil || !strings.Contains(q.XPSError, "invalid syntax") {
		t.Errorf("bad xps_cpus gave %+v", q)
	}
}

func TestTXQueueOf(t *testing.T) {
	tests := []struct {
		name string
		want int
	}{
		{"eth0-TxRx-3", 3},
		{"i40e-eth0-TxRx-12", 12},
		{"eth0-tx-2", 2},
		{"eth0-Tx-Rx-5", 5},
		{"virtio2-output.0", 0},
		{"virtio2-output.7", 7},
		{"mlx5_comp3@pci:0000:08:00.0", 3},
		{"eth0-combined-1", 1},
		{"eth0-rx-2", -1},
		{"virtio2-input.0", -1},
		{"virtio2-config", -1},
		{"eth0", -1},
		{"mlx5_async0@pci:0000:08:00.0", -1},
		{"eth0-tx", -1},
		{"eth0-TxRx-99999999999999999999", -1},
		{"", -1},
	}
	for _, tt := range tests {
		if got := txQueueOf(tt.name); got != tt.want {
			t.Errorf("txQueueOf(%q) = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestNameHasKey(t *testing.T) {
	tests := []struct {
		name string
		keys []string
		want bool
	}{
		{"eth7-TxRx-0", []string{"eth7"}, true},
		{"eth70-TxRx-0", []string{"eth7"}, false},
		{"xeth7-TxRx-0", []string{"eth7"}, false},
		{"eth70-eth7", []string{"eth7"}, true},
		{"eth7", []string{"eth7"}, true},
		{"mlx5_comp0@pci:0000:08:00.0", []string{"enp8s0", "0000:08:00.0"}, true},
		{"mlx5_comp0@pci:0000:08:00.1", []string{"enp8s0", "0000:08:00.0"}, false},
		{"virtio2-output.0", []string{"eth0", "virtio2"}, true},
		{"virtio20-output.0", []string{"eth0", "virtio2"}, false},
		{"ttyS0", []string{"lo"}, false},
	}
	for _, tt := range tests {
		if got := nameHasKey(tt.name, tt.keys); got != tt.want {
			t.Errorf("nameHasKey(%q, %q) = %v", tt.name, tt.keys, got)
		}
	}
}
