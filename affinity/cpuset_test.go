package affinity

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		in   string
		want CPUSet
		str  string // String() of the result
	}{
		{"", nil, ""},
		{"  \n", nil, ""},
		{"0", CPUSet{0}, "0"},
		{"0-3,8,10-11", CPUSet{0, 1, 2, 3, 8, 10, 11}, "0-3,8,10-11"},
		{"0-3,8,10-11\n", CPUSet{0, 1, 2, 3, 8, 10, 11}, "0-3,8,10-11"},
		{" 3 , 1 - 2 ", CPUSet{1, 2, 3}, "1-3"},
		{"5,3,5,4", CPUSet{3, 4, 5}, "3-5"},
		{"0-3,2-5", CPUSet{0, 1, 2, 3, 4, 5}, "0-5"},
		{"7-7", CPUSet{7}, "7"},
		{"0-15:2/4", CPUSet{0, 1, 4, 5, 8, 9, 12, 13}, "0-1,4-5,8-9,12-13"},
		{"1-9:1/4", CPUSet{1, 5, 9}, "1,5,9"},
		{"0-3:4/4", CPUSet{0, 1, 2, 3}, "0-3"},
		{"65535", CPUSet{MaxCPU}, "65535"},
	}
	for _, tt := range tests {
		got, err := ParseCPUList(tt.in)
		if err != nil {
			t.Errorf("ParseCPUList(%q): %v", tt.in, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ParseCPUList(%q) = %v, want %v", tt.in, got, tt.want)
		}
		if s := got.String(); s != tt.str {
			t.Errorf("ParseCPUList(%q).String() = %q, want %q", tt.in, s, tt.str)
		}
		back, err := ParseCPUList(got.String())
		if err != nil || !back.Equal(got) {
			t.Errorf("round trip of %q: %v, %v", tt.in, back, err)
		}
	}
}

func TestParseCPUListErrors(t *testing.T) {
	for _, in := range []string{
		",", "1,", ",1", "1,,2", "a", "1-", "-1", "3-1", "1-2-3", "0x3", "1.5",
		"65536", "0-65536", "0-4000000000", "1:1/2", "0-3:0/4", "0-3:5/4", "0-3:1/0",
		"0-3:2", "0-3:a/4", "+1", "1 2",
	} {
		if got, err := ParseCPUList(in); err == nil {
			t.Errorf("ParseCPUList(%q) = %v, want an error", in, got)
		} else if !errors.Is(err, errSyntax) || !strings.Contains(err.Error(), "affinity:") {
			t.Errorf("ParseCPUList(%q): error %q does not wrap the syntax error", in, err)
		}
	}
}

func TestHexMask(t *testing.T) {
	tests := []struct {
		in   string
		want CPUSet
		hex  string // HexMask() of the result
	}{
		{"0", nil, "0"},
		{"00000000", nil, "0"},
		{"00000003", CPUSet{0, 1}, "3"},
		{"3\n", CPUSet{0, 1}, "3"},
		{"ff,ffffffff", Range(0, 39), "ff,ffffffff"},
		{"00000000,00000000,00000001", CPUSet{0}, "1"},
		{"1,00000000", CPUSet{32}, "1,00000000"},
		{"80000000,00000001", CPUSet{0, 63}, "80000000,00000001"},
		{"A", CPUSet{1, 3}, "a"},
		{"10", CPUSet{4}, "10"},
	}
	for _, tt := range tests {
		got, err := ParseHexMask(tt.in)
		if err != nil {
			t.Errorf("ParseHexMask(%q): %v", tt.in, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ParseHexMask(%q) = %v, want %v", tt.in, got, tt.want)
		}
		if h := got.HexMask(); h != tt.hex {
			t.Errorf("ParseHexMask(%q).HexMask() = %q, want %q", tt.in, h, tt.hex)
		}
		back, err := ParseHexMask(got.HexMask())
		if err != nil || !back.Equal(got) {
			t.Errorf("round trip of %q: %v, %v", tt.in, back, err)
		}
	}
	for _, in := range []string{"", ",", "3,", ",3", "g", "0x3", "123456789", "-1", "1,,2",
		strings.Repeat("0,", 2048) + "0"} {
		if got, err := ParseHexMask(in); err == nil {
			t.Errorf("ParseHexMask(%q) = %v, want an error", in, got)
		}
	}
}

// Range returns lo..hi inclusive, for tests.
func Range(lo, hi int) CPUSet {
	var c CPUSet
	for i := lo; i <= hi; i++ {
		c = append(c, i)
	}
	return c
}

func TestSetOps(t *testing.T) {
	a, b := CPUSet{0, 1, 2, 5}, CPUSet{1, 5, 7}
	tests := []struct {
		name      string
		got, want CPUSet
	}{
		{"intersect", a.Intersect(b), CPUSet{1, 5}},
		{"difference", a.Difference(b), CPUSet{0, 2}},
		{"union", a.Union(b), CPUSet{0, 1, 2, 5, 7}},
		{"intersect empty", a.Intersect(nil), nil},
		{"difference of empty", CPUSet(nil).Difference(a), nil},
	}
	for _, tt := range tests {
		if !tt.got.Equal(tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	for cpu, want := range map[int]bool{0: true, 2: true, 3: false, 5: true, 6: false, -1: false} {
		if a.Contains(cpu) != want {
			t.Errorf("%v.Contains(%d) = %v", a, cpu, !want)
		}
	}
	if _, err := normalize([]int{3, -1}); err == nil {
		t.Error("normalize accepted a negative CPU")
	}
}
