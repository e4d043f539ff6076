//go:build (!amd64 && !arm64) || purego

package prefetch

func spans(*Span, int) {}
