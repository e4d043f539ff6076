package knobs

// The knob directory: a FUSE filesystem with one directory per path segment and
// one file per knob.
//
//	open        -> the handle keeps a snapshot of the value, so reads are consistent
//	read        -> value + "\n"
//	truncate    -> ignored (`echo v > f` truncates before it writes)
//	write       -> the handle's bytes so far, minus the line end, go to Table.Set;
//	               a refusal fails the write(2): EINVAL, or EPERM for a knob that
//	               needs a restart, and is kept in .errors and logged
//	.errors     -> the last refusals, oldest first
//
// Pages are never cached (FOPEN_DIRECT_IO, no attribute cache), so a read always
// sees the current value. Only the mounting user (root) may enter the directory.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// fsName names the filesystem; /proc/self/mountinfo shows it as "fuse." + fsName.
const fsName = "spillway-knobs"

// maxErrors is how many refusals .errors keeps.
const maxErrors = 32

// Mount mounts the knob directory at dir (created if missing) and serves it until
// Close, which unmounts it. It needs root (the mount(2) is direct, no fusermount)
// and /dev/fuse. A stale mount left at dir by a crashed process is lazily
// unmounted first; a live one is an error. Call Start first: writes are runtime
// changes.
func (t *Table) Mount(dir string, log *slog.Logger) (io.Closer, error) {
	if !t.Started() {
		return nil, errors.New("knobs: Mount before Start: the knob directory serves runtime changes")
	}
	if log == nil {
		log = slog.Default()
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("knobs: knob directory: %w", err)
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return nil, fmt.Errorf("knobs: knob directory needs FUSE: %w (load the fuse module, or give the container /dev/fuse)", err)
	}
	if err := clearStale(dir, log); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("knobs: knob directory: %w", err)
	}

	m := &mountedDir{t: t, dir: dir, log: log}
	zero, entry := time.Duration(0), time.Second
	root := &dirNode{m: m}
	opts := &fs.Options{
		MountOptions: fuse.MountOptions{
			DirectMountStrict: true,
			FsName:            fsName,
			Name:              fsName,
			DisableXAttrs:     true,
			Logger:            slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		EntryTimeout:    &entry, // the tree never changes
		AttrTimeout:     &zero,  // sizes follow the values
		NegativeTimeout: &entry,
		Logger:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		OnAdd:           func(ctx context.Context) { m.build(ctx, root) },
	}
	srv, err := fs.Mount(dir, root, opts)
	if err != nil {
		return nil, fmt.Errorf("knobs: mount knob directory %s: %w", dir, err)
	}
	m.srv = srv
	log.Info("knob directory mounted", "dir", dir, "knobs", len(t.sorted))
	return m, nil
}

// clearStale lazily unmounts a dead FUSE mount at dir (its server died, so any
// access fails with ENOTCONN) and refuses to stack on a live knob directory.
func clearStale(dir string, log *slog.Logger) error {
	var st unix.Stat_t
	err := unix.Stat(dir, &st)
	if errors.Is(err, unix.ENOTCONN) || errors.Is(err, unix.ECONNABORTED) {
		log.Warn("knob directory: lazily unmounting a stale mount", "dir", dir, "err", err)
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("knobs: unmount stale knob directory %s: %w", dir, err)
		}
		return nil
	}
	if err == nil && mountedAt(dir) {
		return fmt.Errorf("knobs: a knob directory is already mounted at %s (another spillway running?)", dir)
	}
	return nil
}

// mountedAt reports whether /proc/self/mountinfo lists a knob directory at dir.
func mountedAt(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint options [optional...] - fstype source super
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+1 >= len(fields) {
			continue
		}
		if unescapeMountinfo(fields[4]) == dir && fields[sep+1] == "fuse."+fsName {
			return true
		}
	}
	return false
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountedDir is one mounted knob directory; Close unmounts it.
type mountedDir struct {
	t   *Table
	dir string
	log *slog.Logger
	srv *fuse.Server

	errMu sync.Mutex
	errs  []string // the last refusals, oldest first

	closeOnce sync.Once
	closeErr  error
}

// Close unmounts the directory and waits for the FUSE server to stop. When a
// process still sits in the directory, the mount is detached lazily instead and
// goes away when that process leaves it.
func (m *mountedDir) Close() error {
	m.closeOnce.Do(func() {
		if err := m.srv.Unmount(); err != nil {
			if derr := unix.Unmount(m.dir, unix.MNT_DETACH); derr != nil {
				m.closeErr = fmt.Errorf("knobs: unmount knob directory %s: %w", m.dir, errors.Join(err, derr))
				return
			}
			m.log.Warn("knob directory busy: detached lazily", "dir", m.dir, "err", err)
			m.closeErr = fmt.Errorf("knobs: knob directory %s busy, detached lazily: %w", m.dir, err)
			return
		}
		m.log.Info("knob directory unmounted", "dir", m.dir)
	})
	return m.closeErr
}

// refuse records a refused write for .errors and the log.
func (m *mountedDir) refuse(err error) {
	m.log.Warn("knob write refused", "err", err)
	line := time.Now().UTC().Format(time.RFC3339) + " " + err.Error()
	m.errMu.Lock()
	defer m.errMu.Unlock()
	if len(m.errs) == maxErrors {
		m.errs = append(m.errs[:0], m.errs[1:]...)
	}
	m.errs = append(m.errs, line)
}

func (m *mountedDir) errorsText() []byte {
	m.errMu.Lock()
	defer m.errMu.Unlock()
	var b strings.Builder
	for _, line := range m.errs {
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// build creates the tree under root: a directory per path segment, a file per knob.
func (m *mountedDir) build(ctx context.Context, root *dirNode) {
	root.AddChild(".errors", root.NewPersistentInode(ctx, &errorsNode{m: m}, fs.StableAttr{Mode: syscall.S_IFREG}), true)
	for _, e := range m.t.sorted {
		parent := &root.Inode
		segs := strings.Split(e.knob.Path, "/")
		for _, seg := range segs[:len(segs)-1] {
			child := parent.GetChild(seg)
			if child == nil {
				child = parent.NewPersistentInode(ctx, &dirNode{m: m}, fs.StableAttr{Mode: syscall.S_IFDIR})
				parent.AddChild(seg, child, true)
			}
			parent = child
		}
		parent.AddChild(segs[len(segs)-1], parent.NewPersistentInode(ctx, &knobNode{m: m, e: e}, fs.StableAttr{Mode: syscall.S_IFREG}), true)
	}
}

type dirNode struct {
	fs.Inode
	m *mountedDir
}

var (
	_ fs.NodeGetattrer = (*dirNode)(nil)
	_ fs.NodeCreater   = (*dirNode)(nil)
)

func (d *dirNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = 0o755
	return 0
}

// Create answers a write to a name that is no knob: no such file, and why in .errors.
func (d *dirNode) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	d.m.refuse(&Error{Path: strings.TrimPrefix(d.Path(nil)+"/"+name, "/"), Err: ErrUnknown})
	return nil, nil, 0, syscall.ENOENT
}

type knobNode struct {
	fs.Inode
	m *mountedDir
	e *entry
}

var (
	_ fs.NodeGetattrer = (*knobNode)(nil)
	_ fs.NodeSetattrer = (*knobNode)(nil)
	_ fs.NodeOpener    = (*knobNode)(nil)
)

func (n *knobNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	st := n.e.cur.Load()
	out.Mode = 0o444
	if n.e.knob.Live {
		out.Mode = 0o644
	}
	out.Size = uint64(len(st.v.text) + 1)
	out.SetTimes(nil, &st.at, &st.at)
	return 0
}

// Setattr accepts the truncate of `echo v > f` (the write that follows sets the
// value) and ignores times and modes.
func (n *knobNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if h, ok := fh.(*knobHandle); ok {
		if size, ok := in.GetSize(); ok && size == 0 {
			h.mu.Lock()
			h.buf = h.buf[:0]
			h.mu.Unlock()
		}
	}
	return n.Getattr(ctx, fh, out)
}

func (n *knobNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return &knobHandle{n: n, snap: []byte(n.e.cur.Load().v.text + "\n")}, fuse.FOPEN_DIRECT_IO, 0
}

// knobHandle is one open of a knob file.
type knobHandle struct {
	n    *knobNode
	snap []byte // the value at open, for reads

	mu  sync.Mutex
	buf []byte // bytes written through this handle
}

var (
	_ fs.FileReader = (*knobHandle)(nil)
	_ fs.FileWriter = (*knobHandle)(nil)
)

func (h *knobHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return readAt(h.snap, dest, off)
}

// Write sets the knob to everything written through this handle so far, so a
// value split over several write(2) calls ends up whole; offsets are ignored
// (a knob file is one value, not a byte store).
func (h *knobHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf = append(h.buf, data...)
	text := strings.TrimSuffix(strings.TrimSuffix(string(h.buf), "\n"), "\r")
	path := h.n.e.knob.Path
	if err := h.n.m.t.Set(path, text); err != nil {
		h.buf = h.buf[:len(h.buf)-len(data)]
		h.n.m.refuse(err)
		if errors.Is(err, ErrNeedsRestart) {
			return 0, syscall.EPERM
		}
		return 0, syscall.EINVAL
	}
	h.n.m.log.Info("knob set", "path", path, "value", text, "via", "knob directory")
	return uint32(len(data)), 0
}

type errorsNode struct {
	fs.Inode
	m *mountedDir
}

var (
	_ fs.NodeGetattrer = (*errorsNode)(nil)
	_ fs.NodeOpener    = (*errorsNode)(nil)
)

func (n *errorsNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = 0o444
	out.Size = uint64(len(n.m.errorsText()))
	return 0
}

func (n *errorsNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return nil, 0, syscall.EACCES
	}
	return &snapshot{data: n.m.errorsText()}, fuse.FOPEN_DIRECT_IO, 0
}

type snapshot struct{ data []byte }

var _ fs.FileReader = (*snapshot)(nil)

func (s *snapshot) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return readAt(s.data, dest, off)
}

func readAt(data, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= int64(len(data)) {
		return fuse.ReadResultData(nil), 0
	}
	end := min(off+int64(len(dest)), int64(len(data)))
	return fuse.ReadResultData(data[off:end]), 0
}
