//go:build !linux

package afxdp

import "errors"

// Socket needs AF_XDP: Linux only. Open fails elsewhere.
type Socket struct{ Kicks, Retries, Exhausted uint64 }

var errNotLinux = errors.New("afxdp: AF_XDP needs Linux")

func Open(Config) (*Socket, error)                      { return nil, errNotLinux }
func (s *Socket) ZeroCopy() bool                        { return false }
func (s *Socket) Refused() error                        { return nil }
func (s *Socket) Offload() bool                         { return false }
func (s *Socket) Mode() string                          { return "" }
func (s *Socket) QueueID() int                          { return 0 }
func (s *Socket) Room() int                             { return 0 }
func (s *Socket) Frame() ([]byte, uint64, bool)         { return nil, 0, false }
func (s *Socket) Release(uint64)                        {}
func (s *Socket) Queue(frame uint64, n, start, off int) {}
func (s *Socket) Pending() int                          { return 0 }
func (s *Socket) Flush() error                          { return errNotLinux }
func (s *Socket) Stats() (Statistics, error)            { return Statistics{}, errNotLinux }
func (s *Socket) Close() error                          { return nil }
