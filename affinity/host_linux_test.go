package affinity

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestReportLoopback reads the real sysfs for lo: no device, no NUMA node, no
// IRQs, and one TX queue whose XPS the kernel does not offer (single queue).
func TestReportLoopback(t *testing.T) {
	rep, err := Report("lo")
	if err != nil {
		t.Fatal(err)
	}
	if rep.NIC != "lo" || rep.Device != "" || rep.NUMANode != -1 || len(rep.IRQs) != 0 {
		t.Errorf("Report(lo):\n%s", rep)
	}
	if len(rep.TXQueues) != 1 || rep.TXQueues[0].Name != "tx-0" || rep.TXQueues[0].XPSError == "" {
		t.Errorf("lo's queues: %#v", rep.TXQueues)
	}
	if cs, err := Plan("lo", CPUSet{0}); err != nil || len(cs) != 0 {
		t.Errorf("Plan(lo) = %v, %v; want nothing to change", cs, err)
	}
	if _, err := Report("spw-no-such0"); err == nil {
		t.Error("Report of a missing NIC succeeded")
	}
}

// TestReportHostNICs reads every NIC this machine has: whatever its kind,
// Report must tell what there is rather than fail.
func TestReportHostNICs(t *testing.T) {
	ents, err := os.ReadDir("/sys/class/net")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		rep, err := Report(e.Name())
		if err != nil {
			t.Errorf("Report(%s): %v", e.Name(), err)
			continue
		}
		for _, irq := range rep.IRQs {
			if len(irq.Affinity) == 0 {
				t.Errorf("%s: IRQ %d (%s) without an affinity", e.Name(), irq.Number, irq.Name)
			}
		}
		t.Logf("%s", rep)
	}
}

// TestReportVethNetns makes a network namespace with a veth pair of two TX
// queues, and runs this test binary in it (`ip netns exec` mounts the
// namespace's own sysfs) to report and plan one end. The namespace, and with
// it the pair, is removed at the end.
func TestReportVethNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating a network namespace needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN)")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Fatalf("iproute2 is needed to make a netns: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := "spw-aff-" + strconv.Itoa(os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.CommandContext(ctx, ip, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command(ip, "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", ns, err, out)
		}
	})
	run("-n", ns, "link", "add", "spw0", "numtxqueues", "2", "numrxqueues", "2",
		"type", "veth", "peer", "name", "spw1", "numtxqueues", "2", "numrxqueues", "2")

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, ip, "netns", "exec", ns, self, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=spw0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("report helper in %s: %v\n%s", ns, err, stderr.Bytes())
	}
	var got helperOut
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	rep := got.Report
	if rep.NIC != "spw0" || rep.Device != "" || rep.NUMANode != -1 || len(rep.IRQs) != 0 || len(rep.TXQueues) != 2 {
		t.Fatalf("veth report:\n%s", rep)
	}
	// A new veth has XPS exposed and empty on both queues; the plan puts tx-0
	// on the worker and leaves tx-1 alone.
	for i, q := range rep.TXQueues {
		if q.Name != "tx-"+strconv.Itoa(i) || q.XPSError != "" || len(q.XPS) != 0 {
			t.Errorf("queue %d: %#v", i, q)
		}
	}
	want := Change{
		Path: "/sys/class/net/spw0/queues/tx-0/xps_cpus",
		Old:  "0",
		New:  got.Workers.HexMask(),
	}
	if len(got.Workers) != 1 || len(got.Changes) != 1 || got.Changes[0] != want {
		t.Errorf("plan for %v: %v, want [%s]", got.Workers, got.Changes, want)
	}
}
