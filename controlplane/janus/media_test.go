package janus

import (
	"fmt"
	"testing"
)

func TestMediaEvents(t *testing.T) {
	h := newHarness(t)
	sid, hid := h.createHTTP()
	hp := fmt.Sprintf("/janus/%d/%d", sid, hid)
	fs := h.plugin.session(hid)

	h.post(hp, obj{"janus": "message", "body": obj{"request": "async"}, "jsep": obj{"type": "offer", "sdp": "v=0 offer"}})
	h.pollFor(sid, "event")
	m, made := h.medias.last(hid)
	if made != 1 {
		t.Fatalf("%d Media made", made)
	}

	// Up: webrtcup, then SetupMedia with the handoff.
	m.ev.Up(testMedia())
	if ev := h.pollFor(sid, "webrtcup"); num(t, ev["sender"]) != hid || num(t, ev["session_id"]) != sid {
		t.Fatalf("webrtcup: %v", ev)
	}
	waitFor(t, "SetupMedia", func() bool { s, _, _, _ := fs.counts(); return s == 1 })

	// The plugin's egress reaches the Media.
	eg := &fakeEgress{}
	fs.h.SetEgress(eg)
	m.mu.Lock()
	gotEgress := m.egress
	m.mu.Unlock()
	if gotEgress != eg {
		t.Fatalf("Media egress %v, want the plugin's", gotEgress)
	}

	m.ev.KeyframeRequest()
	waitFor(t, "KeyframeRequest", func() bool { _, _, k, _ := fs.counts(); return k == 1 })

	m.ev.SlowLink("1", "video", true, 12)
	ev := h.pollFor(sid, "slowlink")
	if ev["mid"] != "1" || ev["media"] != "video" || ev["uplink"] != true || num(t, ev["lost"]) != 12 {
		t.Fatalf("slowlink: %v", ev)
	}

	// Down: hangup with the reason, then HangupMedia.
	m.ev.Down("DTLS alert")
	if ev := h.pollFor(sid, "hangup"); ev["reason"] != "DTLS alert" {
		t.Fatalf("hangup: %v", ev)
	}
	waitFor(t, "HangupMedia", func() bool { _, hu, _, _ := fs.counts(); return hu == 1 })

	// Callbacks of the old Media are ignored from now on.
	m.ev.Up(testMedia())
	m.ev.KeyframeRequest()
	m.ev.Down("again")

	// The next jsep makes a new Media.
	h.post(hp, obj{"janus": "message", "body": obj{"request": "async"}, "jsep": obj{"type": "offer", "sdp": "v=0 offer 2"}})
	if ev := h.pollFor(sid, "event"); field(t, ev, "jsep", "type") != "answer" {
		t.Fatalf("second negotiation: %v", ev)
	}
	m2, made := h.medias.last(hid)
	if made != 2 || m2 == m {
		t.Fatalf("%d Media made, want a new one", made)
	}
	m2.ev.Up(testMedia())
	h.pollFor(sid, "webrtcup")
	waitFor(t, "second SetupMedia", func() bool { s, _, _, _ := fs.counts(); return s == 2 })
	if s, hu, k, _ := fs.counts(); s != 2 || hu != 1 || k != 1 {
		t.Fatalf("stale callbacks reached the plugin: setups %d hangups %d keyframes %d", s, hu, k)
	}

	// The plugin closes the PeerConnection itself.
	fs.h.ClosePC("plugin said so")
	if ev := h.pollFor(sid, "hangup"); ev["reason"] != "plugin said so" {
		t.Fatalf("ClosePC hangup: %v", ev)
	}
	waitFor(t, "second HangupMedia", func() bool { _, hu, _, _ := fs.counts(); return hu == 2 })
}

func TestPushEventErrors(t *testing.T) {
	h := newHarness(t)
	_, hid := h.createHTTP()
	fs := h.plugin.session(hid)
	tests := []struct {
		name string
		data any
		jsep *pluginJSEP
	}{
		{"data not an object", []int{1, 2}, nil},
		{"jsep of a bad type", map[string]any{}, &pluginJSEP{Type: "rollback", SDP: "v=0"}},
		{"SDP the Media refuses", map[string]any{}, &pluginJSEP{Type: "offer", SDP: "invalid"}},
		{"data that cannot be encoded", map[string]any{"f": func() {}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := fs.h.PushEvent("", tc.data, tc.jsep); err == nil {
				t.Fatal("PushEvent succeeded")
			}
		})
	}
}
