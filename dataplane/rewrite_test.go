package dataplane

import (
	"testing"
	"time"
)

func TestRewriter(t *testing.T) {
	type ev struct {
		ssrc   uint32
		seq    uint16
		ts     uint32
		at     time.Duration
		key    bool
		rebase bool // set before this packet (switch, resume)
		ok     bool
		oseq   uint16
		ots    uint32
	}
	const audio, video = 48000, 90000
	cases := []struct {
		name  string
		clock uint32
		evs   []ev
	}{
		{"audio passes through", audio, []ev{
			{ssrc: 1, seq: 10, ts: 1000, ok: true, oseq: 10, ots: 1000},
			{ssrc: 1, seq: 11, ts: 1960, at: 20 * time.Millisecond, ok: true, oseq: 11, ots: 1960},
		}},
		{"video waits for a first keyframe", video, []ev{
			{ssrc: 1, seq: 10, ts: 1000},
			{ssrc: 1, seq: 11, ts: 4000, key: true, ok: true, oseq: 11, ots: 4000},
			{ssrc: 1, seq: 12, ts: 4000, ok: true, oseq: 12, ots: 4000},
		}},
		{"ssrc change rebases", audio, []ev{
			{ssrc: 1, seq: 10, ts: 1000, ok: true, oseq: 10, ots: 1000},
			{ssrc: 2, seq: 500, ts: 99, at: 20 * time.Millisecond, ok: true, oseq: 11, ots: 1960},
			{ssrc: 2, seq: 501, ts: 1059, at: 40 * time.Millisecond, ok: true, oseq: 12, ots: 2920},
		}},
		{"forward jump rebases", audio, []ev{
			{ssrc: 1, seq: 10, ts: 1000, ok: true, oseq: 10, ots: 1000},
			{ssrc: 1, seq: 5000, ts: 7, at: 10 * time.Millisecond, ok: true, oseq: 11, ots: 1480},
		}},
		{"backward jump rebases", audio, []ev{
			{ssrc: 1, seq: 5000, ts: 1000, ok: true, oseq: 5000, ots: 1000},
			{ssrc: 1, seq: 100, ts: 1000, ok: true, oseq: 5001, ots: 1001},
		}},
		{"small gap is kept", audio, []ev{
			{ssrc: 1, seq: 10, ts: 1000, ok: true, oseq: 10, ots: 1000},
			{ssrc: 1, seq: 15, ts: 5800, ok: true, oseq: 15, ots: 5800},
		}},
		{"reordering is kept", audio, []ev{
			{ssrc: 1, seq: 10, ts: 0, ok: true, oseq: 10, ots: 0},
			{ssrc: 1, seq: 12, ts: 1920, ok: true, oseq: 12, ots: 1920},
			{ssrc: 1, seq: 11, ts: 960, ok: true, oseq: 11, ots: 960},
			{ssrc: 1, seq: 13, ts: 2880, ok: true, oseq: 13, ots: 2880},
		}},
		{"wrap is not a jump", audio, []ev{
			{ssrc: 1, seq: 65535, ts: 0, ok: true, oseq: 65535, ots: 0},
			{ssrc: 1, seq: 0, ts: 960, ok: true, oseq: 0, ots: 960},
		}},
		{"no time elapsed still steps by one", audio, []ev{
			{ssrc: 1, seq: 10, ts: 1000, ok: true, oseq: 10, ots: 1000},
			{ssrc: 2, seq: 10, ts: 1000, ok: true, oseq: 11, ots: 1001},
		}},
		{"video restart waits for a keyframe", video, []ev{
			{ssrc: 1, seq: 10, ts: 1000, key: true, ok: true, oseq: 10, ots: 1000},
			{ssrc: 2, seq: 77, ts: 5, at: 20 * time.Millisecond},
			{ssrc: 2, seq: 78, ts: 3005, at: 40 * time.Millisecond, key: true, ok: true, oseq: 11, ots: 4600},
			{ssrc: 2, seq: 79, ts: 3005, at: 41 * time.Millisecond, ok: true, oseq: 12, ots: 4600},
		}},
		{"switch rebases audio at once", audio, []ev{
			{ssrc: 1, seq: 10, ts: 1000, ok: true, oseq: 10, ots: 1000},
			{ssrc: 1, seq: 300, ts: 5, at: time.Second, rebase: true, ok: true, oseq: 11, ots: 49000},
		}},
		{"switch makes video wait", video, []ev{
			{ssrc: 1, seq: 10, ts: 1000, key: true, ok: true, oseq: 10, ots: 1000},
			{ssrc: 1, seq: 11, ts: 1000, rebase: true},
			{ssrc: 1, seq: 12, ts: 4000, at: time.Second, key: true, ok: true, oseq: 11, ots: 91000},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rewriter{video: c.clock == video, clock: c.clock}
			for i, e := range c.evs {
				if e.rebase {
					r.rebase = true
				}
				oseq, ots, ok := r.next(e.ssrc, e.seq, e.ts, int64(e.at), e.key)
				if ok != e.ok || (ok && (oseq != e.oseq || ots != e.ots)) {
					t.Fatalf("packet %d: got (%d, %d, %v), want (%d, %d, %v)", i, oseq, ots, ok, e.oseq, e.ots, e.ok)
				}
			}
		})
	}
}
