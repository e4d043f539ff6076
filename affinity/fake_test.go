package affinity

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeTree builds a sysfs and a procfs under t.TempDir(). files maps a path
// under the root ("sys/...", "proc/...") to its content; a content starting
// with "->" makes a symlink to the rest; a path ending in "/" a directory.
func fakeTree(t *testing.T, files map[string]string) roots {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(p, "/"):
			err = os.MkdirAll(full, 0o755)
		case strings.HasPrefix(content, "->"):
			err = os.Symlink(strings.TrimPrefix(content, "->"), full)
		default:
			err = os.WriteFile(full, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return roots{sys: filepath.Join(root, "sys"), proc: filepath.Join(root, "proc")}
}

// twoQueueNIC is a PCI NIC eth7 on NUMA node 1 (CPUs 4-7) of an 8-CPU, 2-node
// machine with SMT pairs (n, n+1): two TX queues whose XPS masks and IRQs sit
// on CPUs 0-3, a misc IRQ, and decoys that must not count as eth7's.
func twoQueueNIC() map[string]string {
	const pci = "sys/devices/pci0000:00/0000:00:1f.0/"
	m := map[string]string{
		"sys/bus/pci/":                            "",
		"sys/class/net/eth7/device":               "->../../../devices/pci0000:00/0000:00:1f.0",
		"sys/class/net/eth7/queues/rx-0/rps_cpus": "0\n",
		"sys/class/net/eth7/queues/rx-1/rps_cpus": "0\n",
		"sys/class/net/eth7/queues/tx-0/xps_cpus": "00000003\n",
		"sys/class/net/eth7/queues/tx-1/xps_cpus": "0000000c\n",
		pci + "subsystem":                         "->../../../bus/pci",
		pci + "numa_node":                         "1\n",
		pci + "msi_irqs/40":                       "msix\n",
		pci + "msi_irqs/41":                       "msix\n",
		pci + "msi_irqs/42":                       "msix\n",
		"sys/devices/system/node/node0/cpulist":   "0-3\n",
		"sys/devices/system/node/node1/cpulist":   "4-7\n",
		"proc/interrupts": `            CPU0       CPU1       CPU2       CPU3       CPU4       CPU5       CPU6       CPU7
  26:          0         14          0          0          0          0          0          0  IO-APIC   4-edge      ttyS0
  40:        100          0          0          0          0          0          0          0  PCI-MSIX-0000:00:1f.0   0-edge      eth7-TxRx-0
  41:          0        100          0          0          0          0          0          0  PCI-MSIX-0000:00:1f.0   1-edge      eth7-TxRx-1
  42:          0          0          1          0          0          0          0          0  PCI-MSIX-0000:00:1f.0   2-edge      eth7
  50:          0          0          0          0          0          0          0          0  PCI-MSIX-0000:00:1e.0   0-edge      eth70-TxRx-0
NMI:          0          0          0          0          0          0          0          0   Non-maskable interrupts
LOC:     841442     803319     841442     803319     841442     803319     841442     803319   Local timer interrupts
ERR:          0
`,
		"proc/irq/26/ttyS0/":                       "",
		"proc/irq/26/smp_affinity_list":            "0-7\n",
		"proc/irq/40/eth7-TxRx-0/":                 "",
		"proc/irq/40/smp_affinity_list":            "0\n",
		"proc/irq/41/eth7-TxRx-1/":                 "",
		"proc/irq/41/smp_affinity_list":            "1\n",
		"proc/irq/42/eth7/":                        "",
		"proc/irq/42/smp_affinity_list":            "0-7\n",
		"proc/irq/50/eth70-TxRx-0/":                "",
		"proc/irq/50/smp_affinity_list":            "2\n",
		"sys/class/net/eth70/queues/tx-0/":         "",
		"sys/class/net/veth3/queues/tx-0/xps_cpus": "00000000\n",
		"sys/class/net/veth3/queues/tx-1/xps_cpus": "00000040\n",
		"sys/class/net/dummy0/mtu":                 "1500\n",
		"sys/class/net/veth3/queues/rx-0/":         "",
	}
	for cpu := range 8 {
		m["sys/devices/system/cpu/cpu"+itoa(cpu)+"/topology/core_cpus_list"] = itoa(cpu&^1) + "-" + itoa(cpu|1) + "\n"
	}
	return m
}

// virtioNIC is eth0 as a Firecracker or QEMU guest sees it: the netdev's
// device is a virtio node whose PCI parent holds numa_node (-1) and the MSI
// vectors; one TX queue without XPS (the kernel answers ENOENT, mimicked by
// a missing file); IRQs named after the virtio node.
func virtioNIC() map[string]string {
	const pci = "sys/devices/pci0000:00/0000:00:03.0/"
	return map[string]string{
		"sys/bus/pci/":                    "",
		"sys/bus/virtio/":                 "",
		"sys/class/net/eth0/device":       "->../../../devices/pci0000:00/0000:00:03.0/virtio2",
		"sys/class/net/eth0/queues/tx-0/": "",
		"sys/class/net/eth0/queues/rx-0/": "",
		pci + "subsystem":                 "->../../../bus/pci",
		pci + "numa_node":                 "-1\n",
		pci + "msi_irqs/37":               "msix\n",
		pci + "msi_irqs/38":               "msix\n",
		pci + "msi_irqs/39":               "msix\n",
		pci + "virtio2/subsystem":         "->../../../../bus/virtio",
		"proc/interrupts": `           CPU0       CPU1
 37:          0          0 PCI-MSIX-0000:00:03.0   0-edge      virtio2-config
 38:          0       7196 PCI-MSIX-0000:00:03.0   1-edge      virtio2-input.0
 39:       5125          0 PCI-MSIX-0000:00:03.0   2-edge      virtio2-output.0
 40:          0          0 PCI-MSIX-0000:00:04.0   0-edge      virtio3-config
`,
		"proc/irq/37/smp_affinity_list": "0-1\n",
		"proc/irq/38/smp_affinity_list": "0-1\n",
		"proc/irq/39/smp_affinity":      "3\n", // no _list: the hex file is read
		"proc/irq/40/smp_affinity_list": "0-1\n",
	}
}

func itoa(n int) string { return CPUSet{n}.String() }
