package srtpbatch

import (
	"testing"
	"unsafe"
)

// AppendSpans must name the stream, its context and the cipher's key
// state, each a real object of its own size.
func TestAppendSpans(t *testing.T) {
	for _, p := range []Profile{ProfileAEADAES128GCM, ProfileAEADAES256GCM, ProfileAES128CMHMACSHA1_80} {
		t.Run(p.String(), func(t *testing.T) {
			kl, sl, err := KeyLen(p)
			if err != nil {
				t.Fatal(err)
			}
			c, err := NewContext(p, make([]byte, kl), make([]byte, sl))
			if err != nil {
				t.Fatal(err)
			}
			s := c.Stream(1)
			spans := s.AppendSpans(nil)
			if len(spans) < 3 {
				t.Fatalf("%d spans, want the stream, the context and the keys", len(spans))
			}
			if spans[0].P != unsafe.Pointer(s) || spans[1].P != unsafe.Pointer(c) {
				t.Fatalf("spans %v do not start with the stream and its context", spans)
			}
			for i, sp := range spans {
				if sp.P == nil || sp.N == 0 || sp.N > 1024 {
					t.Fatalf("span %d: %+v", i, sp)
				}
			}
			// The cipher's object holds at least the AES round keys.
			if keys := spans[2]; keys.N < 176 {
				t.Fatalf("key span of %d bytes, less than AES-128's round keys", keys.N)
			}
			if got := s.AppendSpans(spans[:1]); len(got) != len(spans)+1 || got[0] != spans[0] {
				t.Fatalf("AppendSpans does not append")
			}
		})
	}
}
