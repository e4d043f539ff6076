// Package dataplane is Spillway's egress: per-core workers that own
// viewers, encrypt RTP with each viewer's SRTP key and send it from sockets
// that share the control plane's media port. The control plane talks to it
// only through the handoff API (Handoff, Plane, Source, Viewer).
package dataplane
