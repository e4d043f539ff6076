package main

import (
	"bytes"
	"encoding/csv"
	"math"
	"strings"
	"testing"
)

func sampleRows() []result {
	return []result{
		{Profile: "cm", Mode: "queue", Rate: 2, Mpps: 0.1},
		{Profile: "gcm", Mode: "queue", Rate: 2, Mpps: 0.2},
		{Profile: "gcm", Mode: "socket", Rate: 2, Mpps: 0.8, Others: 0.5},
		{Profile: "gcm", Mode: modeProbe, Mpps: 1.0},
		{Profile: "gcm", Mode: "socket", Rate: 1, Mpps: 0.7},
		{Profile: "cm", Mode: modeProbe, Mpps: 0.4},
		{Profile: "cm", Mode: "socket", Rate: 2, Mpps: 0.3},
		{Profile: "gcm", Mode: modeShaped, Rate: 2, Mpps: 0.5},
		{Profile: "gcm", Mode: "afxdp", Rate: 2, Mpps: 1.0},
		{Profile: "gcm", Mode: modeXDPProbe, Mpps: 1.25},
	}
}

func TestRatios(t *testing.T) {
	rs := sampleRows()
	ratios(rs)
	want := map[string][3]float64{ // label: x limit, x shaped, x queue
		"cm queue 2 Mbit/s":   {0.25, 0, 1},
		"gcm queue 2 Mbit/s":  {0.2, 0.4, 1},
		"gcm socket 2 Mbit/s": {0.8, 1.6, 4},
		"gcm limit probe":     {1, 0, 0},
		"gcm socket 1 Mbit/s": {0.7, 0, 0}, // no shaped or queue row at 1 Mbit/s
		"cm limit probe":      {1, 0, 0},
		"cm socket 2 Mbit/s":  {0.75, 0, 3}, // the shaped row is gcm's
		"gcm shaped 2 Mbit/s": {0.5, 1, 0},
		"gcm afxdp 2 Mbit/s":  {0.8, 2, 5},  // x limit over the AF_XDP probe
		"gcm afxdp limit":     {1.25, 0, 0}, // over the socket probe
	}
	for _, r := range rs {
		w := want[r.label()]
		if math.Abs(r.XLimit-w[0]) > 1e-9 || math.Abs(r.XShaped-w[1]) > 1e-9 || math.Abs(r.XQueue-w[2]) > 1e-9 {
			t.Errorf("%s: x limit %.3f, x shaped %.3f, x queue %.3f; want %v", r.label(), r.XLimit, r.XShaped, r.XQueue, w)
		}
	}
}

// A run's ratios are against the runs of its own round and block, and a
// row's ratio is the median of its runs' ratios, not the ratio of medians:
// here the machine ran at two speeds, and each round's ratio is 0.8.
func TestRatiosPairWithinRound(t *testing.T) {
	var runs []result
	for round, speed := range []float64{1, 0.6, 1, 0.6, 1} {
		for block, rate := range []float64{2, 4} {
			s := speed * (1 + 0.01*float64(block)) // each block a little faster
			runs = append(runs,
				result{Profile: "gcm", Mode: modeProbe, Block: rate, Round: round + 1, Mpps: s},
				result{Profile: "gcm", Mode: "socket", Rate: rate, Block: rate, Round: round + 1, Mpps: 0.8 * s},
				result{Profile: "gcm", Mode: "queue", Rate: rate, Block: rate, Round: round + 1, Mpps: 0.2 * s})
		}
	}
	ratios(runs)
	rows := medians(runs)
	if len(rows) != 5 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, r := range rows {
		want := map[string][2]float64{modeProbe: {1, 0}, "socket": {0.8, 4}, "queue": {0.2, 1}}[r.Mode]
		if math.Abs(r.XLimit-want[0]) > 1e-9 || math.Abs(r.XQueue-want[1]) > 1e-9 {
			t.Errorf("%s: x limit %.4f, x queue %.4f; want %v", r.label(), r.XLimit, r.XQueue, want)
		}
	}
}

func TestSortRows(t *testing.T) {
	rs := sampleRows()
	sortRows(rs, []string{"gcm", "cm"})
	var got []string
	for _, r := range rs {
		got = append(got, r.label())
	}
	want := "gcm limit probe|gcm afxdp limit|gcm socket 1 Mbit/s|gcm shaped 2 Mbit/s|gcm socket 2 Mbit/s|gcm queue 2 Mbit/s|gcm afxdp 2 Mbit/s|cm limit probe|cm socket 2 Mbit/s|cm queue 2 Mbit/s"
	if strings.Join(got, "|") != want {
		t.Fatalf("order %v", got)
	}
}

// Every Markdown row has as many cells as the header, noisy rows are
// marked, and the CSV round-trips with one record per row.
func TestMarkdownAndCSV(t *testing.T) {
	rs := sampleRows()
	ratios(rs)
	var md bytes.Buffer
	markdown(&md, rs, 0.1)
	lines := strings.Split(strings.TrimSpace(md.String()), "\n")
	if len(lines) != 2+len(rs) {
		t.Fatalf("%d lines for %d rows", len(lines), len(rs))
	}
	cells := strings.Count(lines[0], "|")
	for _, l := range lines[1:] {
		if strings.Count(l, "|") != cells {
			t.Fatalf("row with %d separators, header %d: %s", strings.Count(l, "|"), cells, l)
		}
	}
	if n := strings.Count(md.String(), " * |"); n != 1 {
		t.Fatalf("%d noisy marks, want 1", n)
	}
	if !strings.Contains(md.String(), "| gcm | socket | 2 | 0.800 | – |") || !strings.Contains(md.String(), "| 0.80 | 1.60 | 4.00 |") {
		t.Fatalf("socket row missing or wrong:\n%s", md.String())
	}

	var buf bytes.Buffer
	if err := writeCSV(&buf, rs); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+len(rs) || len(recs[0]) != len(csvHeader) {
		t.Fatalf("%d records of %d fields", len(recs), len(recs[0]))
	}
	if recs[4][1] != "limit_probe" || recs[4][5] != "1.0000" {
		t.Fatalf("probe record %v", recs[4])
	}
}

// The rounds of a row fold into their median run, with the spread of all
// and the count of runs; rows keep their first-seen order.
func TestMedians(t *testing.T) {
	run := func(mode string, mpps, cpu float64) result {
		return result{Profile: "gcm", Mode: mode, Rate: 2, Mpps: mpps, CPU: cpu, Runs: 1}
	}
	got := medians([]result{
		run("socket", 0.5, 0.1), run("queue", 0.2, 0.5),
		run("socket", 0.7, 0.2), run("queue", 0.1, 0.6),
		run("socket", 0.6, 0.3),
	})
	if len(got) != 2 || got[0].Mode != "socket" || got[1].Mode != "queue" {
		t.Fatalf("rows %+v", got)
	}
	if s := got[0]; s.Mpps != 0.6 || s.CPU != 0.3 || s.MppsMin != 0.5 || s.MppsMax != 0.7 || s.Runs != 3 {
		t.Errorf("socket %+v", s)
	}
	if q := got[1]; q.Mpps != 0.1 || q.CPU != 0.6 || q.MppsMin != 0.1 || q.MppsMax != 0.2 || q.Runs != 2 {
		t.Errorf("queue (lower middle of two) %+v", q)
	}
	var md bytes.Buffer
	markdown(&md, got, 1)
	if !strings.Contains(md.String(), "| 0.600 | 17% |") {
		t.Errorf("spread not shown:\n%s", md.String())
	}
}
