//go:build linux

package bpf

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// SteerToFirst attaches to the SO_REUSEPORT group of the UDP socket fd a
// program that hands every datagram arriving on the group's address to its
// first member. Socket mode binds the control plane's socket first and
// the workers' send sockets after it on the same wildcard address and
// port: without it, the kernel would spread viewers' STUN, DTLS and RTCP
// over send sockets that never read. The program is one classic BPF
// instruction, "return 0" (the index of the member), which is all the
// choice needs; eBPF's SK_REUSEPORT type would add a socket map to keep in
// step with the group for nothing. Members keep their index while the
// first stays open. The program lives as long as the group: no crash
// leaves it behind.
func SteerToFirst(fd int) error {
	prog := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &fprog); err != nil {
		return fmt.Errorf("bpf: attach reuseport steering: %w", err)
	}
	return nil
}
