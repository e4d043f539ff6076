package logtail

import (
	"strings"
	"testing"
)

func TestBuffer(t *testing.T) {
	w := New(8)
	for _, s := range []string{"abc", "defgh", "ijk"} {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got := w.String(100); got != "defghijk" {
		t.Errorf("tail = %q, want defghijk", got)
	}
}

func TestOf(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short\n", 100, "short"},
		{"0123456789", 4, "...6789"},
		// A line start near the cut is where the tail begins.
		{strings.Repeat("x", 20) + "\nlast line", 10, "...last line"},
		// One too far into the tail is not.
		{"0123456789abcdefgh\nxy", 10, "...bcdefgh\nxy"},
	}
	for _, tt := range tests {
		if got := Of([]byte(tt.in), tt.n); got != tt.want {
			t.Errorf("Of(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
