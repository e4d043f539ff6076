//go:build linux

package janus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/spillway-rtc/spillway/affinity"
	"github.com/spillway-rtc/spillway/bench/logtail"
)

// StartOptions say where and how Janus runs; Config says what it serves.
type StartOptions struct {
	Binary       string          // janus binary; empty: Locate
	Dir          string          // config folder to write; empty: a temporary one that Stop removes
	Netns        string          // `ip netns` name to run in; empty: the caller's namespace
	CPUs         affinity.CPUSet // CPUs Janus and all its threads may run on (taskset -c); empty: any
	Log          io.Writer       // Janus's stdout and stderr; nil: discarded (a tail is kept for errors)
	NoFile       uint64          // RLIMIT_NOFILE for Janus; 0: this process's hard limit
	ReadyTimeout time.Duration   // how long to wait for GET /janus/info (default 20 s)
}

// Process is a running Janus.
type Process struct {
	cmd    *exec.Cmd
	url    string
	hc     *http.Client
	tr     *http.Transport
	logs   *logtail.Buffer
	info   ServerInfo
	tmpDir string

	done    chan struct{} // closed once the child is reaped
	waitErr error         // set before done closes

	stopOnce sync.Once
	stopErr  error
}

// Start writes c into a config folder and runs janus on it (-F and -C that
// folder, so a config that fails to parse is fatal instead of silently
// replaced by defaults), inside opt.Netns, pinned to opt.CPUs, and returns
// once GET /janus/info answers. ctx bounds only the start: cancelling it
// later does not stop Janus; Stop does.
func Start(ctx context.Context, c Config, opt StartOptions) (*Process, error) {
	bin := opt.Binary
	if bin == "" || c.PluginsDir == "" || c.TransportsDir == "" {
		paths, err := Locate()
		if err != nil {
			return nil, err
		}
		if bin == "" {
			bin = paths.Binary
		}
		if c.PluginsDir == "" {
			c.PluginsDir = paths.PluginsDir
		}
		if c.TransportsDir == "" {
			c.TransportsDir = paths.TransportsDir
		}
	}
	c = c.withDefaults()
	if c.SRTPGCM {
		ok, err := GCMCompiledIn(bin)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("janus: SRTPGCM asked, but %s was built without AES-GCM SRTP (--disable-aes-gcm)", bin)
		}
	}
	p := &Process{
		logs: logtail.New(16 << 10),
		done: make(chan struct{}),
		url:  "http://" + net.JoinHostPort(c.HTTPIP, strconv.Itoa(c.HTTPPort)) + "/janus",
	}
	dir := opt.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "spillway-janus-")
		if err != nil {
			return nil, fmt.Errorf("janus: %w", err)
		}
		dir, p.tmpDir = tmp, tmp
	}
	if err := WriteConfig(dir, c); err != nil {
		p.removeTmp()
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		p.removeTmp()
		return nil, fmt.Errorf("janus: %w", err)
	}

	args := []string{bin, "-F", abs, "-C", filepath.Join(abs, "janus.jcfg"), "-P", c.PluginsDir}
	if len(opt.CPUs) > 0 {
		// taskset before exec: every thread Janus makes inherits the mask.
		args = append([]string{"taskset", "-c", opt.CPUs.String()}, args...)
	}
	if opt.Netns != "" {
		args = append([]string{"ip", "netns", "exec", opt.Netns}, args...)
	}
	for _, tool := range []string{bin, "taskset", "ip"} {
		if tool == "taskset" && len(opt.CPUs) == 0 || tool == "ip" && opt.Netns == "" {
			continue
		}
		if _, err := exec.LookPath(tool); err != nil {
			p.removeTmp()
			return nil, fmt.Errorf("janus: need %s: %w", tool, err)
		}
	}
	cmd := exec.Command(args[0], args[1:]...)
	var out io.Writer = p.logs
	if opt.Log != nil {
		out = io.MultiWriter(opt.Log, p.logs)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = abs
	// Its own process group, so a terminal's ^C reaches us, not Janus, and
	// Stop decides how Janus ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p.cmd = cmd

	// Pdeathsig fires when the thread that forked the child exits, not the
	// process; the runtime ends threads whose goroutine exits locked (as the
	// netns dialer's do). So fork from a locked thread that lives until the
	// child is reaped.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		p.removeTmp()
		return nil, fmt.Errorf("janus: start %v: %w", args, err)
	}
	if err := setNoFile(cmd.Process.Pid, opt.NoFile); err != nil {
		_ = p.Stop()
		return nil, err
	}

	p.tr = &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16}
	if opt.Netns != "" {
		p.tr.DialContext = netnsDialer(opt.Netns)
	}
	// No client timeout: a long poll legitimately waits up to 30 s; callers bound requests with contexts.
	p.hc = &http.Client{Transport: p.tr}

	timeout := opt.ReadyTimeout
	if timeout == 0 {
		timeout = 20 * time.Second
	}
	if err := p.waitReady(ctx, timeout); err != nil {
		_ = p.Stop()
		return nil, err
	}
	return p, nil
}

func (p *Process) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		attempt, acancel := context.WithTimeout(ctx, time.Second)
		info, err := GetInfo(attempt, p.hc, p.url)
		acancel()
		if err == nil {
			p.info = info
			return nil
		}
		last = err
		select {
		case <-p.done:
			return fmt.Errorf("janus: exited during start (%v); log tail:\n%s", p.waitErr, p.logs.String(3000))
		case <-ctx.Done():
			return fmt.Errorf("janus: %s/info did not answer within %v (%v, last: %v); log tail:\n%s",
				p.url, timeout, ctx.Err(), last, p.logs.String(3000))
		case <-tick.C:
		}
	}
}

// PID is Janus's process id (ip netns exec and taskset exec into it).
func (p *Process) PID() int { return p.cmd.Process.Pid }

// URL is the Janus API base, http://HTTPIP:HTTPPort/janus.
func (p *Process) URL() string { return p.url }

// Client is an HTTP client that reaches URL, dialling from inside the
// namespace when Janus runs in one.
func (p *Process) Client() *http.Client { return p.hc }

// Info is what GET /janus/info answered at start.
func (p *Process) Info() ServerInfo { return p.info }

// LogTail returns up to the last n bytes Janus wrote.
func (p *Process) LogTail(n int) string { return p.logs.String(n) }

// Done is closed when Janus has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait blocks until Janus exits and returns how it did; an exit before Stop
// is an error with the log tail.
func (p *Process) Wait() error {
	<-p.done
	if p.waitErr != nil {
		return fmt.Errorf("janus: exited: %w; log tail:\n%s", p.waitErr, p.logs.String(2000))
	}
	return nil
}

// Stop sends SIGTERM, then SIGKILL to the process group after 5 s, reaps
// Janus and removes a temporary config folder. A clean exit, or one by
// SIGTERM or the SIGKILL Stop sent, returns nil.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() { p.stopErr = p.stop() })
	return p.stopErr
}

func (p *Process) stop() error {
	defer p.removeTmp()
	if p.tr != nil {
		defer p.tr.CloseIdleConnections()
	}
	select {
	case <-p.done:
		return p.exitErr(false)
	default:
	}
	pid := p.cmd.Process.Pid
	_ = unix.Kill(pid, unix.SIGTERM)
	killed := false
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		killed = true
		_ = unix.Kill(-pid, unix.SIGKILL) // the group: nothing of Janus survives
		<-p.done
	}
	return p.exitErr(killed)
}

func (p *Process) exitErr(killed bool) error {
	err := p.waitErr
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			if ws.Signal() == syscall.SIGTERM || (killed && ws.Signal() == syscall.SIGKILL) {
				return nil
			}
		}
	}
	return fmt.Errorf("janus: exit: %w; log tail:\n%s", err, p.logs.String(2000))
}

func (p *Process) removeTmp() {
	if p.tmpDir != "" {
		_ = os.RemoveAll(p.tmpDir)
	}
}

// setNoFile raises the child's open-file limit: Go restores the inherited
// soft limit in children, often 1024, and each viewer costs Janus a socket
// and an HTTP connection. The limit survives the execs into janus.
func setNoFile(pid int, n uint64) error {
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		return fmt.Errorf("janus: getrlimit: %w", err)
	}
	if n == 0 {
		n = cur.Max
	}
	lim := unix.Rlimit{Cur: n, Max: max(n, cur.Max)}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &lim, nil); err != nil {
		return fmt.Errorf("janus: prlimit nofile %d: %w", n, err)
	}
	return nil
}

// netnsDialer dials from a thread that entered the namespace: a socket keeps
// the namespace it was made in. The thread stays locked, so the runtime ends
// it with its goroutine rather than reuse a thread in another namespace.
func netnsDialer(netns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	path := netns
	if filepath.Base(path) == path {
		path = filepath.Join("/run/netns", netns)
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				ch <- result{nil, fmt.Errorf("janus: netns %s: %w", path, err)}
				return
			}
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
			if err != nil {
				ch <- result{nil, fmt.Errorf("janus: setns %s: %w", path, err)}
				return
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}
