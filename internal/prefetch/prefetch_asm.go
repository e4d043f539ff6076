//go:build (amd64 || arm64) && !purego

package prefetch

// spans prefetches the lines of n Spans starting at s; n > 0.
//
//go:noescape
func spans(s *Span, n int)
