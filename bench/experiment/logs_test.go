package experiment

import (
	"bytes"
	"strings"
	"testing"
)

// A capped log keeps whole writes up to its limit, says once that it cut,
// and keeps taking writes without error.
func TestCappedLog(t *testing.T) {
	var b bytes.Buffer
	c := &capped{w: &b, left: 10}
	for _, s := range []string{"12345", "6789", "abc", "def"} {
		if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("write %q: %d, %v", s, n, err)
		}
	}
	got := b.String()
	if !strings.HasPrefix(got, "123456789\n[spillway-bench:") || strings.Count(got, "cut at") != 1 || strings.Contains(got, "abc") || strings.Contains(got, "def") {
		t.Fatalf("log %q", got)
	}
}
