//go:build linux

package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spillway-rtc/spillway/bench/logtail"
)

// SpillwayConfig starts the spillway binary as a bench target.
type SpillwayConfig struct {
	Bin        string     // the spillway binary
	Dir        string     // where its config file goes
	Netns      string     // network namespace to run it in ("": this one)
	CPUs       []int      // the process is pinned to these, with a data-plane worker on each
	IP         netip.Addr // API, media and RTP address
	HTTPPort   int
	MediaPort  int
	VideoPort  int
	AudioPort  int
	Mode       string // dataplane/mode: socket or queue
	Mountpoint uint64
	Log        io.Writer
}

// process is a server under test running as a child process.
type process struct {
	cmd  *exec.Cmd
	gone chan struct{} // closed when the process has exited
	err  error         // how it exited, set before gone closes
	tail *logtail.Buffer
}

// The bench's Spillway serves its Admin API at the API port plus
// adminPortOffset, with this secret.
const (
	adminPortOffset     = 200
	spillwayAdminSecret = "spillway-bench"
)

// spillwayDrops reads, through the Admin API's get_status, the data
// plane's packets dropped since start: late (waited longer than
// max_lag), queue (a worker's queue was full) and refused (the kernel
// refused them, or they had nowhere to go).
func spillwayDrops(ctx context.Context, adminURL string) (d drops, err error) {
	body := fmt.Sprintf(`{"janus":"get_status","transaction":"bench","admin_secret":%q}`, spillwayAdminSecret)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, adminURL, strings.NewReader(body))
	if err != nil {
		return d, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return d, fmt.Errorf("get_status: %w", err)
	}
	defer resp.Body.Close()
	var r struct {
		Janus  string
		Status struct {
			Dataplane struct {
				Workers []struct {
					LateDrops  uint64 `json:"late_drops"`
					QueueDrops uint64 `json:"queue_drops"`
					Errors     uint64 `json:"errors"`
				}
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return d, fmt.Errorf("get_status: %w", err)
	}
	if r.Janus != "success" || len(r.Status.Dataplane.Workers) == 0 {
		return d, fmt.Errorf("get_status: %q with %d data-plane workers", r.Janus, len(r.Status.Dataplane.Workers))
	}
	for _, w := range r.Status.Dataplane.Workers {
		d.late += w.LateDrops
		d.queue += w.QueueDrops
		d.refused += w.Errors
	}
	return d, nil
}

// StartSpillway writes the configuration and starts Spillway pinned to
// its CPUs, and returns once its Janus API answers.
func StartSpillway(ctx context.Context, c SpillwayConfig) (*process, error) {
	ip := c.IP.String()
	dataplane := map[string]any{"mode": c.Mode, "workers": len(c.CPUs)}
	if c.Mode == "queue" {
		// The Janus-like baseline drops by Janus's rule too: what waited
		// in a handle's queue over a second. Socket mode's 300 ms cut
		// queue mode's keyframe fan-outs at 85-95% busy, and where it
		// failed moved by a fifth from run to run.
		dataplane["max_lag"] = "1s"
	}
	cfg := map[string]any{
		"janus": map[string]any{
			"http": netip.AddrPortFrom(c.IP, uint16(c.HTTPPort)).String(), "ws": netip.AddrPortFrom(c.IP, uint16(c.HTTPPort+100)).String(),
			// The Admin API on the veth too: the bench reads the data
			// plane's drop counters from the viewers' namespace.
			"admin_http": netip.AddrPortFrom(c.IP, uint16(c.HTTPPort+adminPortOffset)).String(), "admin_ws": "127.0.0.1:7188",
			"admin_secret": spillwayAdminSecret, "session_timeout": "120s",
		},
		"webrtc":    map[string]any{"port": c.MediaPort, "ips": []string{ip}},
		"dataplane": dataplane,
		"affinity":  map[string]any{"cpus": cpuList(c.CPUs)},
		"streaming": map[string]any{"rtp_host": ip},
		"mountpoints": []any{map[string]any{
			"type": "rtp", "id": c.Mountpoint, "name": "bench", "description": "bench source",
			"media": []any{
				map[string]any{"type": "video", "mid": "v", "port": c.VideoPort, "pt": 96, "codec": "vp8"},
				map[string]any{"type": "audio", "mid": "a", "port": c.AudioPort, "pt": 111, "codec": "opus"},
			},
		}},
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(c.Dir, "spillway.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return nil, err
	}
	p, err := startPinned(c.Netns, c.CPUs, c.Log, c.Bin, "-config", path)
	if err != nil {
		return nil, err
	}
	if err := p.waitAPI(ctx, fmt.Sprintf("http://%s/janus/info", netip.AddrPortFrom(c.IP, uint16(c.HTTPPort)))); err != nil {
		p.stop()
		return nil, fmt.Errorf("spillway: %w", err)
	}
	return p, nil
}

// startPinned runs argv in netns (through ip netns exec) pinned to cpus
// (through taskset), its output to log and kept for errors.
func startPinned(netns string, cpus []int, log io.Writer, argv ...string) (*process, error) {
	full := append([]string{"taskset", "-c", cpuList(cpus)}, argv...)
	if netns != "" {
		full = append([]string{"ip", "netns", "exec", netns}, full...)
	}
	p := &process{tail: logtail.New(16 << 10), gone: make(chan struct{})}
	p.cmd = exec.Command(full[0], full[1:]...)
	var out io.Writer = p.tail
	if log != nil {
		out = io.MultiWriter(&capped{w: log, left: serverLogMax}, p.tail)
	}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the bench
	// The death signal follows the thread that forked, not the process, and
	// Go ends threads (every goroutine that locks one to enter a network
	// namespace ends it): fork from a thread locked until the child is
	// reaped.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the child
		if err := p.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = p.cmd.Wait()
		close(p.gone)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	return p, nil
}

// waitAPI polls url until it answers 200, the process exits, or 20 s pass.
func (p *process) waitAPI(ctx context.Context, url string) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.gone:
			return fmt.Errorf("exited (%v) before its API answered:\n%s", p.err, p.tail.String(2000))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := hc.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no answer from %s in 20 s:\n%s", url, p.tail.String(2000))
}

// pid is the server's own PID: with ip netns exec and taskset in front,
// both exec into the next, so it is the child's.
func (p *process) pid() int { return p.cmd.Process.Pid }

// stop ends the process: SIGTERM, SIGKILL after 5 s.
func (p *process) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.gone:
		return nil
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.gone
		return fmt.Errorf("did not end on SIGTERM in 5 s")
	}
}

// exited reports whether the process has ended, and how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.gone:
		return true, p.err
	default:
		return false, nil
	}
}

func cpuList(cpus []int) string {
	s := ""
	for i, c := range cpus {
		if i > 0 {
			s += ","
		}
		s += strconv.Itoa(c)
	}
	return s
}
