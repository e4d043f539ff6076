// Package dataplane is Spillway's egress: per-core workers that own
// viewers, encrypt RTP with each viewer's SRTP key and send it from sockets
// that share the control plane's media port. The control plane talks to it
// only through the handoff API (Handoff, Plane, Source, Viewer) and the live
// settings (SetGSO, SetMMsg, SetBatch, SetFlushInterval, SetSndBuf).
//
// A packet's way through, one stage per file:
//
//	ingest.go      UDP RTP in, validated, keyframes detected (IsKeyframe, keyframe.go)
//	source.go      Publish: one copy into a shared, reference-counted, numbered buffer
//	               per packet, handed to each worker that has viewers of the source
//	worker.go      per worker, pinned to its CPU (cpus.go): batch up to Batch packets
//	               or FlushInterval; retain each packet once for NACKs (history.go);
//	               then per viewer, its packets in order: rewrite (rewrite.go),
//	               encrypt in place in the worker's scratch space (protect.go,
//	               srtpbatch), lay equal-size runs into GSO datagrams (pack.go)
//	sock_linux.go  one sendmmsg carries many viewers' datagrams, each with its own
//	               destination and UDP_SEGMENT; EAGAIN waits, partial sends resume,
//	               GSO falls back per socket
//	ops.go         control operations, applied by the worker between batches
//	rebalance.go   viewers move from a skewed worker, SRTP and rewrite state with them
//	queue.go       Mode "queue": the Janus-like baseline, a goroutine, a queue, a copy
//	               and a sendto per viewer and packet, on the same code
//	settings.go    the knobs applied live
//
// Inbound traffic on the shared port always reaches the control plane's
// socket: see Plane.Join.
package dataplane
