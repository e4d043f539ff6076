package server

import (
	"github.com/spillway-rtc/spillway/dataplane"
	"github.com/spillway-rtc/spillway/srtpbatch"
)

// status is what the Admin API's get_status adds to Janus's fields: the
// data plane's counters since start, per worker, so that an operator sees
// what the kernel took (packets, GSO datagrams and their segments, send
// calls) and what was dropped and why (queue full, late, refused by the
// kernel) without a profiler.
func (s *Server) status() map[string]any {
	st := s.plane.Stats()
	workers := make([]map[string]any, 0, len(st.Workers))
	for _, w := range st.Workers {
		workers = append(workers, map[string]any{
			"cpu":           w.CPU,
			"viewers":       w.Viewers,
			"packets":       w.Packets,
			"bytes":         w.Bytes,
			"send_calls":    w.Sendmmsg,
			"datagrams":     w.Datagrams,
			"segments":      w.Segments,
			"errors":        w.Errors,
			"queue_drops":   w.Drops,
			"late_drops":    w.Late,
			"gso_fallbacks": w.GSOFallbacks,
			"afxdp_frames":  w.XDPFrames,
		})
	}
	dp := map[string]any{
		"mode":    string(s.plane.Config().Mode),
		"srtp":    srtpbatch.Impl(),
		"viewers": st.Viewers,
		"workers": workers,
	}
	if cfg := s.plane.Config(); cfg.Mode == dataplane.ModeAFXDP {
		// Per interface and worker: zero-copy or copy, and the driver's
		// refusal of zero-copy when auto fell back.
		dp["afxdp"] = map[string]any{
			"zerocopy":         string(cfg.AFXDP.ZeroCopy),
			"sockets":          s.plane.AFXDPSockets(),
			"next_hop_updates": s.plane.AFXDPRehops(),
		}
	}
	return map[string]any{"dataplane": dp}
}
