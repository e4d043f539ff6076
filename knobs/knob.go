// Package knobs keeps every tunable of Spillway in one table of knobs. A knob has
// a sysfs-style path ("dataplane/gso"), a kind, a default, a one-line doc and,
// when it can change at runtime, an Apply hook. The same table feeds the config
// file (LoadFile), the command line (RegisterFlags), the Admin API (Get, Set,
// List), the runtime knob directory (Mount), `spillway knobs` (Text) and
// docs/knobs.md (Markdown), so the six can never disagree.
//
// Life of a value: default < config file < flags, all during the start phase,
// when Set only parses and stores (code at start reads Value). Start ends that
// phase; from then on Set calls Apply for live knobs and refuses the others with
// "needs a restart". A refused value leaves the old one in place.
package knobs

import (
	"errors"
	"fmt"
	"github.com/spillway-rtc/spillway/affinity"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind is the type of a knob's value.
type Kind string

// The kinds of knob. Each has one canonical text form, which Get returns.
const (
	Bool     Kind = "bool"     // true or false (also 1/0, on/off, yes/no)
	Int      Kind = "int"      // decimal int64, bounded by Min and Max
	Duration Kind = "duration" // Go duration ("1ms", "1m30s"), not negative, bounded in ns
	String   Kind = "string"   // any single line
	CPUList  Kind = "cpulist"  // Linux cpulist ("0-3,8"); empty: none given
	Enum     Kind = "enum"     // one of Knob.Enum
	Addr     Kind = "addr"     // host:port; host may be empty, an IP or a name
	IPs      Kind = "ips"      // comma list of IP addresses; empty: none
)

var kinds = []Kind{Bool, Int, Duration, String, CPUList, Enum, Addr, IPs}

// MaxCPU is the largest CPU number a cpulist may name (Linux NR_CPUS at most 8192).
const MaxCPU = 8191

// Knob declares one tunable.
type Knob struct {
	Path    string   // "dataplane/gso": lower case, [a-z0-9_] segments joined by "/"
	Kind    Kind     // the value's type
	Default string   // in the knob's text form
	Doc     string   // one line
	Enum    []string // the allowed values of an Enum knob
	// Min and Max bound an Int knob, or a Duration knob in ns, both inclusive.
	// 0, 0: no bound. Use math.MinInt64 or math.MaxInt64 for an open side.
	Min, Max int64
	// Live knobs are applied at runtime. Others take effect at the next start, and a
	// write after Start is refused with ErrNeedsRestart.
	Live bool
	// Apply is called after Start with each new value of a live knob; an error
	// refuses the value and the old one stays. Calls for one knob never overlap.
	// Apply must not Set its own knob. nil: nothing to do (code reads Value).
	Apply func(v Value) error
}

// Value is a parsed knob value. It is immutable; the accessor that matches the
// knob's kind must be used, and a mismatch panics (a programming error, caught by
// the first test that reads the knob).
type Value struct {
	kind Kind
	text string // canonical form
	b    bool
	i    int64
	list []string // ips: canonical addresses
	cpus []int
}

// Kind reports the kind of knob the value belongs to.
func (v Value) Kind() Kind { return v.kind }

// String returns the canonical text form, for every kind.
func (v Value) String() string { return v.text }

// Bool returns the value of a Bool knob.
func (v Value) Bool() bool { v.must(Bool); return v.b }

// Int returns the value of an Int knob.
func (v Value) Int() int { v.must(Int); return int(v.i) }

// Int64 returns the value of an Int knob.
func (v Value) Int64() int64 { v.must(Int); return v.i }

// Duration returns the value of a Duration knob.
func (v Value) Duration() time.Duration { v.must(Duration); return time.Duration(v.i) }

// CPUs returns the CPUs of a CPUList knob, ascending and without duplicates; nil
// when the list is empty.
func (v Value) CPUs() []int { v.must(CPUList); return slices.Clone(v.cpus) }

// Strings returns the addresses of an IPs knob in their canonical form; nil when
// the list is empty.
func (v Value) Strings() []string { v.must(IPs); return slices.Clone(v.list) }

// IPs returns the addresses of an IPs knob.
func (v Value) IPs() []netip.Addr {
	v.must(IPs)
	out := make([]netip.Addr, 0, len(v.list))
	for _, s := range v.list {
		out = append(out, netip.MustParseAddr(s)) // canonical, so it parses
	}
	return out
}

func (v Value) must(k Kind) {
	if v.kind != k {
		panic(fmt.Sprintf("knobs: %s accessor used on a %q value", k, v.kind))
	}
}

// ErrInvalid matches (errors.Is) every error about a value that does not parse or
// is out of bounds.
var ErrInvalid = errors.New("invalid value")

type invalidError string

func (e invalidError) Error() string        { return string(e) }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error {
	return invalidError(fmt.Sprintf(format, args...))
}

// Parse parses text as a value of k, checking its kind, bounds and enum. Leading
// and trailing white space is ignored for every kind but String, where only line
// ends are refused.
func (k *Knob) Parse(text string) (Value, error) {
	v := Value{kind: k.Kind}
	if k.Kind != String {
		text = strings.TrimSpace(text)
	}
	switch k.Kind {
	case Bool:
		switch strings.ToLower(text) {
		case "true", "1", "on", "yes", "t", "y":
			v.b = true
		case "false", "0", "off", "no", "f", "n":
		default:
			return v, invalidf("not a bool (want true or false)")
		}
		v.text = strconv.FormatBool(v.b)
	case Int:
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return v, invalidf("out of the int64 range")
			}
			return v, invalidf("not a decimal integer")
		}
		if err := k.inBounds(n, strconv.FormatInt); err != nil {
			return v, err
		}
		v.i, v.text = n, strconv.FormatInt(n, 10)
	case Duration:
		d, err := time.ParseDuration(text)
		if err != nil {
			return v, invalidf("not a duration (want e.g. 500us, 20ms, 1m30s)")
		}
		if d < 0 {
			return v, invalidf("negative duration")
		}
		if err := k.inBounds(int64(d), func(n int64, _ int) string { return time.Duration(n).String() }); err != nil {
			return v, err
		}
		v.i, v.text = int64(d), d.String()
	case String:
		if strings.ContainsAny(text, "\r\n") {
			return v, invalidf("a line end inside a string value")
		}
		v.text = text
	case CPUList:
		set, err := affinity.ParseCPUList(text)
		if err != nil {
			return v, invalidf("%v", err)
		}
		if len(set) > 0 && set[len(set)-1] > MaxCPU {
			return v, invalidf("CPU %d above %d", set[len(set)-1], MaxCPU)
		}
		v.cpus, v.text = []int(set), set.String()
	case Enum:
		if !slices.Contains(k.Enum, text) {
			return v, invalidf("not one of %s", strings.Join(k.Enum, ", "))
		}
		v.text = text
	case Addr:
		s, err := parseAddr(text)
		if err != nil {
			return v, err
		}
		v.text = s
	case IPs:
		list, err := parseIPs(text)
		if err != nil {
			return v, err
		}
		v.list, v.text = list, strings.Join(list, ",")
	default:
		return v, invalidf("unknown kind %q", k.Kind)
	}
	return v, nil
}

func (k *Knob) bounded() bool { return k.Min != 0 || k.Max != 0 }

func (k *Knob) inBounds(n int64, format func(int64, int) string) error {
	if !k.bounded() {
		return nil
	}
	if n < k.Min {
		return invalidf("below the minimum %s", format(k.Min, 10))
	}
	if n > k.Max {
		return invalidf("above the maximum %s", format(k.Max, 10))
	}
	return nil
}

func parseAddr(text string) (string, error) {
	host, port, err := net.SplitHostPort(text)
	if err != nil {
		return "", invalidf("not host:port (want e.g. 127.0.0.1:8088, [::1]:8088 or :8088)")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", invalidf("port %q is not a number from 0 to 65535", port)
	}
	if host != "" {
		if ip, err := netip.ParseAddr(host); err == nil {
			host = ip.String()
		} else if !validHostname(host) {
			return "", invalidf("host %q is neither an IP address nor a host name", host)
		}
	}
	return net.JoinHostPort(host, strconv.FormatUint(p, 10)), nil
}

// validHostname accepts RFC 1123 names: dot-separated labels of letters, digits
// and inner hyphens.
func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func parseIPs(text string) ([]string, error) {
	if text == "" {
		return nil, nil
	}
	var list []string
	for item := range strings.SplitSeq(text, ",") {
		item = strings.TrimSpace(item)
		ip, err := netip.ParseAddr(item)
		if err != nil {
			return nil, invalidf("%q is not an IP address", item)
		}
		list = append(list, ip.String())
	}
	return list, nil
}
