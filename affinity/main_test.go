package affinity

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// helperEnv makes the test binary report a NIC and exit: tests run it inside a
// network namespace (`ip netns exec` mounts that namespace's sysfs), where the
// NICs they create are visible.
const helperEnv = "SPILLWAY_AFFINITY_REPORT"

// helperOut is what the helper prints: the report and the plan that would put
// the NIC's queues on the first allowed CPU.
type helperOut struct {
	Report  NICReport
	Workers CPUSet
	Changes []Change
}

func TestMain(m *testing.M) {
	if nic, ok := os.LookupEnv(helperEnv); ok {
		os.Exit(reportHelper(nic))
	}
	os.Exit(m.Run())
}

func reportHelper(nic string) int {
	var out helperOut
	allowed, err := Allowed()
	if err == nil {
		out.Workers = allowed[:1]
		out.Report, err = Report(nic)
	}
	if err == nil {
		out.Changes, err = Plan(nic, out.Workers)
	}
	if err == nil {
		err = json.NewEncoder(os.Stdout).Encode(out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// checkGoroutines fails the test if it leaves goroutines behind.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
