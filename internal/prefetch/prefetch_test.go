package prefetch

import (
	"testing"
	"unsafe"
)

func TestSpans(t *testing.T) {
	big := make([]byte, 10_000)
	type pair struct{ a, b uint64 }
	p := &pair{1, 2}
	tests := []struct {
		name  string
		spans []Span
	}{
		{"none", nil},
		{"nil pointer", []Span{{}}},
		{"empty", []Span{{P: unsafe.Pointer(p), N: 0}}},
		{"struct", []Span{Of(p)}},
		{"unaligned slice", []Span{SliceOf(big[3:9_999])}},
		{"several", []Span{Of(p), {}, SliceOf(big), SliceOf([]int32{}), Of(&big[len(big)-1])}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			Spans(tt.spans) // must neither fault nor change anything
			if p.a != 1 || p.b != 2 {
				t.Fatal("prefetch changed memory")
			}
		})
	}
}

func TestOf(t *testing.T) {
	var x struct {
		a [3]uint64
		b byte
	}
	if s := Of(&x); s.P != unsafe.Pointer(&x) || s.N != 32 {
		t.Fatalf("Of = %+v, want %p and 32 bytes", s, &x)
	}
	s := []uint32{1, 2, 3}
	if sp := SliceOf(s[1:]); sp.P != unsafe.Pointer(&s[1]) || sp.N != 8 {
		t.Fatalf("SliceOf = %+v, want %p and 8 bytes", sp, &s[1])
	}
	if sp := SliceOf([]byte(nil)); sp != (Span{}) {
		t.Fatalf("SliceOf(nil) = %+v", sp)
	}
}

func TestSpansAllocs(t *testing.T) {
	p := new([512]byte)
	s := []Span{Of(p), Of(p)}
	if n := testing.AllocsPerRun(100, func() { Spans(s) }); n != 0 {
		t.Fatalf("Spans allocates %v times", n)
	}
}

// BenchmarkSpans is the cost of the call itself, its lines already cached.
func BenchmarkSpans(b *testing.B) {
	p := new([256]byte)
	s := []Span{Of(p)}
	for b.Loop() {
		Spans(s)
	}
}
