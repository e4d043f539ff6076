package experiment

import (
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Row is one line of the summary: a target's capacity with one sink at one
// rate, its ratio to Janus, and its QoE sample.
type Row struct {
	Target  string
	Sink    string
	Rate    float64
	Best    Point // at capacity; zero when nothing passed
	Failing int
	XJanus  float64 // Best.Viewers over the mean of the Janus targets' with the same sink and rate
	QoE     Point   // at half the capacity, same sink
	Err     error
}

// Summarize turns results into rows, in target order, with ratios to the
// mean of the Janus targets at the same sink and rate, not to the better
// one. On one core, Janus with a helper thread and without are one server
// as far as this VM can tell (in 26 runs the one with the thread held
// 0.90-1.16 of the other, either way round), and the VM's speed wanders by
// a tenth or more from one minute to the next: the better of the two was
// whichever ran in a fast minute, the mean takes both. RunOrder puts them
// at either end of a run, so that their mean is the machine's speed in
// its middle, where the Spillway targets run.
func Summarize(rs []Result, sinks []string) []Row {
	var rows []Row
	for _, r := range rs {
		for _, s := range sinks {
			c, ok := r.ByS[s]
			row := Row{Target: r.Target, Sink: s, Rate: r.Rate, Err: r.Err}
			if ok {
				row.Best, row.Failing = c.Best, c.Failing
			}
			row.QoE = r.QoE[s]
			rows = append(rows, row)
		}
	}
	for i := range rows {
		sum, n := 0, 0
		for _, o := range rows {
			if isJanus(o.Target) && o.Best.Viewers > 0 && o.Sink == rows[i].Sink && o.Rate == rows[i].Rate {
				sum += o.Best.Viewers
				n++
			}
		}
		if n > 0 {
			rows[i].XJanus = float64(rows[i].Best.Viewers) * float64(n) / float64(sum)
		}
	}
	return rows
}

func isJanus(target string) bool { return strings.HasPrefix(target, "janus") }

// RunOrder is the order targets run in: the first Janus target first and
// the other Janus targets last, the rest between them in the order given.
// A drift of the machine's speed over a run then moves the mean of the
// Janus targets as much as the targets it divides.
func RunOrder(targets []string) []string {
	var first, mid, last []string
	for _, t := range targets {
		switch {
		case isJanus(t) && first == nil:
			first = []string{t}
		case isJanus(t):
			last = append(last, t)
		default:
			mid = append(mid, t)
		}
	}
	return slices.Concat(first, mid, last)
}

// Markdown writes the summary table.
func Markdown(w io.Writer, rows []Row) {
	fmt.Fprintf(w, "| server | sink | Mbit/s | viewers | Gbit/s | Mpps | server CPU | x Janus | first failing | QoE viewers | QoE loss, samples / sink | p50 | p99 | jitter |\n")
	fmt.Fprintf(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rows {
		if r.Err != nil && r.Best.Viewers == 0 {
			fmt.Fprintf(w, "| %s | %s | %g | failed: %s | | | | | | | | | | |\n", r.Target, r.Sink, r.Rate, oneLine(r.Err.Error()))
			continue
		}
		failing := "–"
		if r.Failing > 0 {
			failing = strconv.Itoa(r.Failing)
		}
		x := "–"
		if r.XJanus > 0 {
			x = fmt.Sprintf("%.2f", r.XJanus)
		}
		q := "| – | – | – | – | –"
		if r.QoE.Viewers > 0 {
			q = fmt.Sprintf("| %d | %.3f%% / %.3f%% | %s | %s | %.1f ms", r.QoE.Viewers, 100*r.QoE.SampleLoss, 100*r.QoE.Loss, ms(r.QoE.P50), ms(r.QoE.P99), r.QoE.JitterMs)
		}
		fmt.Fprintf(w, "| %s | %s | %g | %d | %.2f | %.3f | %.0f%% | %s | %s %s |\n",
			r.Target, r.Sink, r.Rate, r.Best.Viewers, r.Best.Gbps, r.Best.Mpps, 100*r.Best.CPU, x, failing, q)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return strings.ReplaceAll(s, "|", "/")
}

var csvHeader = []string{"target", "sink", "mbit_s", "kind", "viewers", "up", "starved", "loss", "shortfall", "sample_loss", "mpps", "gbit_s",
	"cpu", "softirq", "proc_cpu", "rss_bytes", "p50_ms", "p99_ms", "jitter_ms", "latency_packets", "source_late", "late_drops", "queue_drops", "refused", "catch_up_s", "window_s", "pass"}

// WriteCSV writes every measured point, search steps and QoE samples.
func WriteCSV(w io.Writer, rs []Result) error {
	cw := csv.NewWriter(w)
	cw.Write(csvHeader)
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', 6, 64) }
	put := func(p Point, kind string) {
		cw.Write([]string{p.Target, p.Sink, f(p.Rate), kind, strconv.Itoa(p.Viewers), strconv.Itoa(p.Up), strconv.Itoa(p.Starved), f(p.Loss), f(p.Shortfall), f(p.SampleLoss),
			f(p.Mpps), f(p.Gbps), f(p.CPU), f(p.Softirq), f(p.ProcCPU), strconv.FormatInt(p.RSS, 10),
			f(float64(p.P50) / 1e6), f(float64(p.P99) / 1e6), f(p.JitterMs), strconv.FormatUint(p.LatPackets, 10),
			strconv.FormatUint(p.SourceLate, 10), strconv.FormatUint(p.LateDrops, 10), strconv.FormatUint(p.QueueDrops, 10),
			strconv.FormatUint(p.Refused, 10), f(p.CatchUp.Seconds()), f(p.WindowSecs), strconv.FormatBool(p.Pass)})
	}
	for _, r := range rs {
		sinks := make([]string, 0, len(r.ByS))
		for s := range r.ByS {
			sinks = append(sinks, s)
		}
		slices.Sort(sinks)
		for _, s := range sinks {
			for _, p := range r.ByS[s].Points {
				put(p, "step")
			}
		}
		for _, s := range sinks {
			if q := r.QoE[s]; q.Viewers > 0 {
				put(q, "qoe")
			}
		}
	}
	cw.Flush()
	return cw.Error()
}
