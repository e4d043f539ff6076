// Package dataplane is Spillway's egress: per-core workers that own
// viewers, encrypt RTP with each viewer's SRTP key and send it from sockets
// that share the control plane's media port. The control plane talks to it
// only through the handoff API (Handoff, Plane, Source, Viewer).
//
// A packet's way through, one stage per file:
//
//	ingest.go      UDP RTP in, validated, keyframes detected (IsKeyframe, keyframe.go)
//	source.go      Publish: one copy into a shared, reference-counted buffer per packet,
//	               handed to each worker that has viewers of the source
//	worker.go      per worker: batch, rewrite (rewrite.go), encrypt, note the history
//	               (history.go), queue one message per viewer
//	sock_linux.go  sendmmsg of many viewers' messages on the worker's socket
//	ops.go         control operations, applied by the worker between batches
//
// Inbound traffic on the shared port always reaches the control plane's
// socket: see Plane.Join.
package dataplane
