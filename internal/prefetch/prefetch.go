// Package prefetch asks the CPU to start loading memory into its caches
// before the code that needs it runs.
//
// The data plane walks thousands of viewers per batch, and each viewer's
// state (its structs, its SRTP keys) sits in a different place in memory:
// at a thousand viewers and more, every first touch of it misses the cache
// and the core waits. A prefetch does not wait: issued for the viewers a
// few places ahead, their state arrives while the current one is encrypted.
//
// Go has no prefetch intrinsic outside the runtime, so Spans is a few lines
// of assembly on amd64 and arm64 and does nothing elsewhere. A prefetch is
// a hint: it never faults, and a wrong or stale address costs only the
// bandwidth.
package prefetch

import "unsafe"

// Span is N bytes of memory starting at P.
type Span struct {
	P unsafe.Pointer
	N uintptr
}

// Of returns the span of the value p points to.
func Of[T any](p *T) Span {
	return Span{P: unsafe.Pointer(p), N: unsafe.Sizeof(*p)}
}

// SliceOf returns the span of s's elements.
func SliceOf[T any](s []T) Span {
	if len(s) == 0 {
		return Span{}
	}
	return Span{P: unsafe.Pointer(unsafe.SliceData(s)), N: uintptr(len(s)) * unsafe.Sizeof(s[0])}
}

// LineSize is the cache line size the prefetches step by.
const LineSize = 64

// Spans prefetches every cache line of every span into all cache levels.
// It reads nothing and returns at once; spans with a nil P are skipped.
func Spans(s []Span) {
	if len(s) > 0 {
		spans(unsafe.SliceData(s), len(s))
	}
}
