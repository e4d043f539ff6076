// Package bpf holds Spillway's eBPF programs and their cilium/ebpf loaders.
// The programs are written with cilium/ebpf's asm package, so a build needs
// no clang and there is no generated object to keep in step.
//
// XDPCounter is the sink of the data-plane benchmark: attached to the far
// end of a veth, it counts UDP frames and drops them, so the sender's core
// does all the work that is measured and nothing downstream can be the
// bottleneck. MediaSink is the sink of the Janus-style bench: tc egress on
// the server's veth or XDP on the client's, it counts and drops RTP and
// RTCP to all but a few sample viewers and passes STUN and DTLS. It also follows
// each RTP stream's packets and highest sequence number, from which
// FlowLoss gives the loss the viewers would see.
//
// XDPPass passes every frame to the kernel stack untouched. AF_XDP egress
// attaches it because some drivers (i40e, ice, ixgbe, ...) create the TX
// queues of zero-copy AF_XDP only while an XDP program is attached; it tries
// driver mode first, falls back to generic mode, and records which.
//
// SteerToFirst is socket mode's reuseport steering: everything that
// arrives on the shared media port goes to the control plane's socket,
// the group's first member.
//
// Programs on interfaces are attached through bpf links, which the kernel
// detaches when the process exits, and the steering program goes with its
// socket group, so a crashed run leaves no program behind.
package bpf
