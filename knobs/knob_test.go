package knobs

import (
	"errors"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spillway-rtc/spillway/affinity"
)

func TestParse(t *testing.T) {
	var (
		boolK     = Knob{Kind: Bool}
		intK      = Knob{Kind: Int}
		boundedK  = Knob{Kind: Int, Min: 1, Max: 64}
		openHighK = Knob{Kind: Int, Min: 1, Max: math.MaxInt64}
		durK      = Knob{Kind: Duration}
		durBoundK = Knob{Kind: Duration, Min: int64(100 * time.Microsecond), Max: int64(time.Second)}
		strK      = Knob{Kind: String}
		cpuK      = Knob{Kind: CPUList}
		enumK     = Knob{Kind: Enum, Enum: []string{"socket", "queue"}}
		addrK     = Knob{Kind: Addr}
		ipsK      = Knob{Kind: IPs}
	)
	tests := []struct {
		name string
		k    Knob
		in   string
		want string // canonical text; "" with err set: refused
		err  string // substring of the error
	}{
		{"bool true", boolK, "true", "true", ""},
		{"bool 1", boolK, "1", "true", ""},
		{"bool on padded", boolK, " on\n", "true", ""},
		{"bool NO", boolK, "NO", "false", ""},
		{"bool off", boolK, "off", "false", ""},
		{"bool junk", boolK, "maybe", "", "not a bool"},
		{"bool empty", boolK, "", "", "not a bool"},

		{"int", intK, "42", "42", ""},
		{"int plus sign", intK, "+7", "7", ""},
		{"int negative unbounded", intK, "-3", "-3", ""},
		{"int hex refused", intK, "0x10", "", "not a decimal integer"},
		{"int float refused", intK, "1.5", "", "not a decimal integer"},
		{"int overflow", intK, "9223372036854775808", "", "out of the int64 range"},
		{"int at min", boundedK, "1", "1", ""},
		{"int at max", boundedK, "64", "64", ""},
		{"int below min", boundedK, "0", "", "below the minimum 1"},
		{"int above max", boundedK, "65", "", "above the maximum 64"},
		{"int open high", openHighK, "1000000000", "1000000000", ""},
		{"int open high below", openHighK, "0", "", "below the minimum 1"},

		{"duration", durK, "1ms", "1ms", ""},
		{"duration canonical", durK, "90s", "1m30s", ""},
		{"duration zero", durK, "0", "0s", ""},
		{"duration no unit", durK, "5", "", "not a duration"},
		{"duration negative", durK, "-1ms", "", "negative duration"},
		{"duration in bounds", durBoundK, "500us", "500µs", ""},
		{"duration below", durBoundK, "10us", "", "below the minimum 100µs"},
		{"duration above", durBoundK, "2s", "", "above the maximum 1s"},

		{"string", strK, "spillway 1", "spillway 1", ""},
		{"string keeps spaces", strK, " a ", " a ", ""},
		{"string empty", strK, "", "", ""},
		{"string newline", strK, "a\nb", "", "line end"},

		{"cpulist", cpuK, "0-3,8", "0-3,8", ""},
		{"cpulist compacts", cpuK, "3, 1,2,2,0,8", "0-3,8", ""},
		{"cpulist single", cpuK, "5", "5", ""},
		{"cpulist empty", cpuK, "", "", ""},
		{"cpulist backwards", cpuK, "3-1", "", "runs backwards"},
		{"cpulist junk", cpuK, "a", "", "not a CPU number"},
		{"cpulist negative", cpuK, "-1", "", "not a CPU number"},
		{"cpulist empty item", cpuK, "1,,2", "", "empty item"},
		{"cpulist too high", cpuK, "8192", "", "CPU 8192 above 8191"},

		{"enum", enumK, "queue", "queue", ""},
		{"enum case", enumK, "Queue", "", "not one of socket, queue"},
		{"enum other", enumK, "afxdp", "", "not one of socket, queue"},

		{"addr ipv4", addrK, "127.0.0.1:8088", "127.0.0.1:8088", ""},
		{"addr ipv6", addrK, "[::1]:8088", "[::1]:8088", ""},
		{"addr ipv6 canonical", addrK, "[0:0::1]:80", "[::1]:80", ""},
		{"addr any host", addrK, ":8088", ":8088", ""},
		{"addr name", addrK, "localhost:8188", "localhost:8188", ""},
		{"addr port leading zero", addrK, "127.0.0.1:080", "127.0.0.1:80", ""},
		{"addr no port", addrK, "127.0.0.1", "", "not host:port"},
		{"addr port range", addrK, "127.0.0.1:65536", "", "port \"65536\""},
		{"addr port name", addrK, "127.0.0.1:http", "", "port \"http\""},
		{"addr bad host", addrK, "bad_host!:80", "", "neither an IP address nor a host name"},

		{"ips", ipsK, "127.0.0.1, ::1", "127.0.0.1,::1", ""},
		{"ips canonical", ipsK, "0:0::1", "::1", ""},
		{"ips empty", ipsK, "", "", ""},
		{"ips junk", ipsK, "127.0.0.1,nope", "", "\"nope\" is not an IP address"},
		{"ips cidr refused", ipsK, "10.0.0.0/8", "", "not an IP address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := tt.k.Parse(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("Parse(%q) = %q, %v; want an ErrInvalid containing %q", tt.in, v.String(), err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if v.String() != tt.want || v.Kind() != tt.k.Kind {
				t.Fatalf("Parse(%q) = %q (%s), want %q (%s)", tt.in, v.String(), v.Kind(), tt.want, tt.k.Kind)
			}
			// The canonical form parses to itself.
			if again, err := tt.k.Parse(v.String()); err != nil || again.String() != v.String() {
				t.Fatalf("canonical %q reparses as %q, %v", v.String(), again.String(), err)
			}
		})
	}
}

func TestValueAccessors(t *testing.T) {
	parse := func(k Knob, s string) Value {
		t.Helper()
		v, err := k.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if !parse(Knob{Kind: Bool}, "yes").Bool() {
		t.Error("Bool")
	}
	if v := parse(Knob{Kind: Int}, "-12"); v.Int() != -12 || v.Int64() != -12 {
		t.Error("Int")
	}
	if d := parse(Knob{Kind: Duration}, "1m1ms").Duration(); d != time.Minute+time.Millisecond {
		t.Errorf("Duration = %v", d)
	}
	if c := parse(Knob{Kind: CPUList}, "4,0-2").CPUs(); !slices.Equal(c, []int{0, 1, 2, 4}) {
		t.Errorf("CPUs = %v", c)
	}
	if c := parse(Knob{Kind: CPUList}, "").CPUs(); c != nil {
		t.Errorf("empty CPUs = %v, want nil", c)
	}
	ips := parse(Knob{Kind: IPs}, "127.0.0.1,::1")
	if s := ips.Strings(); !slices.Equal(s, []string{"127.0.0.1", "::1"}) {
		t.Errorf("Strings = %v", s)
	}
	if a := ips.IPs(); len(a) != 2 || a[1] != netip.IPv6Loopback() {
		t.Errorf("IPs = %v", a)
	}
	// Callers get copies: changing them changes nothing.
	v := parse(Knob{Kind: CPUList}, "1")
	v.CPUs()[0] = 9
	if v.CPUs()[0] != 1 {
		t.Error("CPUs shares its slice")
	}

	wrong := []struct {
		name string
		call func()
	}{
		{"Bool on int", func() { parse(Knob{Kind: Int}, "1").Bool() }},
		{"Int on bool", func() { parse(Knob{Kind: Bool}, "1").Int() }},
		{"Duration on int", func() { parse(Knob{Kind: Int}, "1").Duration() }},
		{"CPUs on ips", func() { parse(Knob{Kind: IPs}, "").CPUs() }},
		{"Strings on string", func() { parse(Knob{Kind: String}, "a").Strings() }},
	}
	for _, w := range wrong {
		t.Run(w.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic on the wrong accessor")
				}
			}()
			w.call()
		})
	}
}

func TestFormatCPUList(t *testing.T) {
	tests := []struct {
		in   []int
		want string
	}{
		{nil, ""},
		{[]int{0}, "0"},
		{[]int{0, 1}, "0-1"},
		{[]int{0, 2, 4}, "0,2,4"},
		{[]int{0, 1, 2, 5, 6, 9}, "0-2,5-6,9"},
	}
	for _, tt := range tests {
		if got := affinity.CPUSet(tt.in).String(); got != tt.want {
			t.Errorf("CPUSet(%v).String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}
