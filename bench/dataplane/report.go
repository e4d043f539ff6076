package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spillway-rtc/spillway/dataplane"
)

const (
	modeProbe    = "limit probe"
	modeXDPProbe = "afxdp limit" // the limit probe through AF_XDP, for the afxdp rows
	modeShaped   = "shaped"      // the probe sending the stream's frames, at a rate
)

// modeOrder is the order rows are shown in within a bitrate.
var modeOrder = []string{modeProbe, modeXDPProbe, modeShaped, "socket", "nogso", "nommsg", "batch1", "queue", "afxdp"}

// limitOf is the probe a mode's × limit is over: the AF_XDP probe for
// afxdp mode, the socket probe for the others (the AF_XDP probe's own ×
// limit compares the two probes).
func limitOf(mode string) string {
	if mode == "afxdp" {
		return modeXDPProbe
	}
	return modeProbe
}

type profileInfo struct {
	p         dataplane.Profile
	key, salt int
	name      string
}

var profiles = map[string]profileInfo{
	"gcm": {dataplane.ProfileAEADAES128GCM, 16, 12, "AEAD_AES_128_GCM"},
	"cm":  {dataplane.ProfileAES128CMHMACSHA1_80, 16, 14, "AES_CM_128_HMAC_SHA1_80"},
}

// result is one row of the table.
type result struct {
	Profile string  // gcm or cm
	Mode    string  // modeProbe, modeXDPProbe, modeShaped, socket, nogso, nommsg, batch1, queue, afxdp
	Rate    float64 // Mbit/s of the stream; 0 for the probe
	Runs    int     // runs behind the row (retries of disturbed runs included)
	Round   int     // of a run: its round, from 1
	Block   float64 // of a run: the rate of the block it ran in (ratios are taken within one)

	MppsMin, MppsMax float64 // over the rounds

	SentMpps    float64 // RTP packets the sender's kernel accepted
	Mpps        float64 // RTP packets counted by XDP at the sink
	Gbps        float64 // their UDP payload (SRTP) bits
	CPU         float64 // busy fraction of the worker's CPU
	Softirq     float64 // of which softirq (the veth and the sink's XDP)
	CPUOther    float64 // busy fraction of the housekeeping CPU
	Loss        float64 // 1 - counted/sent over the whole row
	Others      float64 // cores used by other processes, and stolen by the hypervisor, during the window
	PktPerCall  float64 // RTP packets per send system call
	PktPerDgram float64 // RTP packets per UDP datagram (GSO segments)

	Errors, Drops, GSOFallbacks uint64
	ViewersPerCore              float64 // viewers of this stream one busy core serves

	XLimit, XShaped, XQueue float64 // Mpps over the probe's, the shaped probe's, queue mode's
}

// isProbe tells the probes' rows, which have no stream rate.
func isProbe(mode string) bool { return mode == modeProbe || mode == modeXDPProbe }

func (r result) label() string {
	if isProbe(r.Mode) {
		return r.Profile + " " + r.Mode
	}
	return fmt.Sprintf("%s %s %g Mbit/s", r.Profile, r.Mode, r.Rate)
}

// medians folds the rounds of each row into one: the run with the median
// Mpps (the lower middle one for an even count), with the spread of all and
// the median of each ratio over the runs that have it.
func medians(runs []result) []result {
	var order []string
	byLabel := map[string][]result{}
	for _, r := range runs {
		l := r.label()
		if _, ok := byLabel[l]; !ok {
			order = append(order, l)
		}
		byLabel[l] = append(byLabel[l], r)
	}
	var out []result
	for _, l := range order {
		rs := byLabel[l]
		slices.SortFunc(rs, func(a, b result) int {
			switch {
			case a.Mpps < b.Mpps:
				return -1
			case a.Mpps > b.Mpps:
				return 1
			}
			return 0
		})
		m := rs[(len(rs)-1)/2]
		m.MppsMin, m.MppsMax, m.Runs = rs[0].Mpps, rs[len(rs)-1].Mpps, 0
		for _, r := range rs {
			m.Runs += r.Runs
		}
		m.XLimit = medianOf(rs, func(r result) float64 { return r.XLimit })
		m.XShaped = medianOf(rs, func(r result) float64 { return r.XShaped })
		m.XQueue = medianOf(rs, func(r result) float64 { return r.XQueue })
		out = append(out, m)
	}
	return out
}

// medianOf is the median of f over the runs where it is not 0 (the lower
// middle for an even count), 0 if there are none.
func medianOf(rs []result, f func(result) float64) float64 {
	var xs []float64
	for _, r := range rs {
		if x := f(r); x != 0 {
			xs = append(xs, x)
		}
	}
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[(len(xs)-1)/2]
}

// ratios fills each run's XLimit (against the profile's probe), XShaped
// (against the shaped probe at the same rate) and XQueue (against queue
// mode at the same rate), all from the same round and block.
func ratios(rs []result) {
	for i := range rs {
		r := &rs[i]
		r.XLimit, r.XShaped, r.XQueue = 0, 0, 0
		for _, o := range rs {
			if o.Profile != r.Profile || o.Round != r.Round || o.Block != r.Block || o.Mpps <= 0 {
				continue
			}
			if o.Mode == limitOf(r.Mode) {
				r.XLimit = r.Mpps / o.Mpps
			}
			if isProbe(r.Mode) || o.Rate != r.Rate {
				continue
			}
			if o.Mode == modeShaped {
				r.XShaped = r.Mpps / o.Mpps
			}
			if o.Mode == "queue" && r.Mode != modeShaped {
				r.XQueue = r.Mpps / o.Mpps
			}
		}
	}
}

// sortRows orders rows by profile as given, then rate, then mode.
func sortRows(rs []result, profileOrder []string) {
	idx := func(xs []string, x string) int {
		if i := slices.Index(xs, x); i >= 0 {
			return i
		}
		return len(xs)
	}
	slices.SortStableFunc(rs, func(a, b result) int {
		if d := idx(profileOrder, a.Profile) - idx(profileOrder, b.Profile); d != 0 {
			return d
		}
		if a.Rate != b.Rate {
			if a.Rate < b.Rate {
				return -1
			}
			return 1
		}
		return idx(modeOrder, a.Mode) - idx(modeOrder, b.Mode)
	})
}

func pct(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) }

func ratio(f float64) string {
	if f == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", f)
}

// markdown writes the table; rows disturbed by other processes (more than
// maxOthers cores) are marked.
func markdown(w io.Writer, rs []result, maxOthers float64) {
	fmt.Fprintln(w, "| profile | mode | Mbit/s | Mpps | ± | Gbit/s | CPU | softirq | other CPU | loss | × limit | × shaped | × queue | pkt/call | pkt/dgram | viewers/core | others |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range rs {
		rate, vpc := "–", "–"
		if !isProbe(r.Mode) {
			rate = strconv.FormatFloat(r.Rate, 'g', -1, 64)
		}
		if !isProbe(r.Mode) && r.Mode != modeShaped {
			vpc = fmt.Sprintf("%.0f", r.ViewersPerCore)
		}
		others := fmt.Sprintf("%.2f", r.Others)
		if r.Others > maxOthers {
			others += " *"
		}
		loss := fmt.Sprintf("%.3f%%", 100*r.Loss)
		spread := "–"
		if r.Mpps > 0 && r.MppsMax > r.MppsMin {
			spread = fmt.Sprintf("%.0f%%", 50*(r.MppsMax-r.MppsMin)/r.Mpps)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.3f | %s | %.2f | %s | %s | %s | %s | %s | %s | %s | %.1f | %.1f | %s | %s |\n",
			r.Profile, r.Mode, rate, r.Mpps, spread, r.Gbps, pct(r.CPU), pct(r.Softirq), pct(r.CPUOther), loss,
			ratio(r.XLimit), ratio(r.XShaped), ratio(r.XQueue), r.PktPerCall, r.PktPerDgram, vpc, others)
	}
}

var csvHeader = []string{"profile", "mode", "mbit_s", "runs", "sent_mpps", "mpps", "mpps_min", "mpps_max", "gbit_s", "cpu", "softirq", "cpu_other",
	"loss", "x_limit", "x_shaped", "x_queue", "pkt_per_call", "pkt_per_dgram", "viewers_per_core", "others_cores", "errors", "drops", "gso_fallbacks"}

func writeCSV(w io.Writer, rs []result) error {
	cw := csv.NewWriter(w)
	cw.Write(csvHeader)
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', 4, 64) }
	for _, r := range rs {
		cw.Write([]string{r.Profile, strings.ReplaceAll(r.Mode, " ", "_"), f(r.Rate), strconv.Itoa(r.Runs),
			f(r.SentMpps), f(r.Mpps), f(r.MppsMin), f(r.MppsMax), f(r.Gbps), f(r.CPU), f(r.Softirq), f(r.CPUOther),
			strconv.FormatFloat(r.Loss, 'g', 6, 64), f(r.XLimit), f(r.XShaped), f(r.XQueue), f(r.PktPerCall), f(r.PktPerDgram),
			f(r.ViewersPerCore), f(r.Others),
			strconv.FormatUint(r.Errors, 10), strconv.FormatUint(r.Drops, 10), strconv.FormatUint(r.GSOFallbacks, 10)})
	}
	cw.Flush()
	return cw.Error()
}
