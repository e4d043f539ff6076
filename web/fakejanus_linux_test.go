package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/spillway-rtc/spillway/plugins/streaming/fileloop"
)

// fakeJanus is just enough of the Janus HTTP API and of the Streaming
// plugin to drive the demo page: one session, one handle, mountpoint 1
// plays the demo clip from a pion PeerConnection, any other id answers
// error 455. Every request is recorded for the test to check.
type fakeJanus struct {
	t      *testing.T
	events chan map[string]any

	mu       sync.Mutex
	requests []map[string]any
	pc       *webrtc.PeerConnection
	stopLoop context.CancelFunc
	loopDone chan struct{}
}

// IDs above 2^32 but below 2^53, as Janus makes them for JavaScript.
const (
	fakeSession = 4503599627370001
	fakeHandle  = 4503599627370002
)

func newFakeJanus(t *testing.T) *fakeJanus {
	f := &fakeJanus{t: t, events: make(chan map[string]any, 64)}
	t.Cleanup(f.hangup)
	return f
}

func (f *fakeJanus) recorded(match func(map[string]any) bool) []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []map[string]any
	for _, r := range f.requests {
		if match(r) {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeJanus) push(ev map[string]any) {
	select {
	case f.events <- ev:
	default:
		f.t.Errorf("fake janus: event queue full, dropped %v", ev["janus"])
	}
}

func pluginEvent(tx string, data map[string]any) map[string]any {
	ev := map[string]any{"janus": "event", "sender": fakeHandle,
		"plugindata": map[string]any{"plugin": "janus.plugin.streaming", "data": data}}
	if tx != "" {
		ev["transaction"] = tx
	}
	return ev
}

func status(s string) map[string]any {
	return map[string]any{"streaming": "event", "result": map[string]any{"status": s}}
}

func reply(w http.ResponseWriter, v map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeJanus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")[1:] // after "janus"
	ids := make([]uint64, len(parts))
	for i, p := range parts {
		ids[i], _ = strconv.ParseUint(p, 10, 64)
	}
	if r.Method == http.MethodGet && len(ids) == 1 && ids[0] == fakeSession {
		f.longPoll(w, r)
		return
	}
	var req map[string]any
	if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&req) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.mu.Unlock()
	tx, _ := req["transaction"].(string)
	ok := func(extra map[string]any) {
		m := map[string]any{"janus": "success", "transaction": tx}
		for k, v := range extra {
			m[k] = v
		}
		reply(w, m)
	}
	ack := func() { reply(w, map[string]any{"janus": "ack", "session_id": fakeSession, "transaction": tx}) }
	switch verb, _ := req["janus"].(string); {
	case len(ids) == 0 && verb == "create":
		ok(map[string]any{"data": map[string]any{"id": fakeSession}})
	case len(ids) == 1 && ids[0] == fakeSession && verb == "attach" && req["plugin"] == "janus.plugin.streaming":
		ok(map[string]any{"session_id": fakeSession, "data": map[string]any{"id": fakeHandle}})
	case len(ids) == 1 && verb == "keepalive":
		ack()
	case len(ids) == 1 && verb == "destroy":
		ok(map[string]any{"session_id": fakeSession})
	case len(ids) == 2 && ids[1] == fakeHandle && verb == "trickle":
		ack() // ICE from the browser's candidates is not needed: pion learns them as peer-reflexive
	case len(ids) == 2 && ids[1] == fakeHandle && verb == "message":
		f.message(w, tx, req, ok, ack)
	default:
		reply(w, map[string]any{"janus": "error", "transaction": tx,
			"error": map[string]any{"code": 458, "reason": fmt.Sprintf("no such session or verb %q", verb)}})
	}
}

// longPoll answers one event as an object and several as an array, so the
// page meets both shapes.
func (f *fakeJanus) longPoll(w http.ResponseWriter, r *http.Request) {
	maxev, _ := strconv.Atoi(r.URL.Query().Get("maxev"))
	var evs []map[string]any
	select {
	case ev := <-f.events:
		evs = append(evs, ev)
	case <-time.After(2 * time.Second):
		reply(w, map[string]any{"janus": "keepalive"})
		return
	case <-r.Context().Done():
		return
	}
	for len(evs) < max(maxev, 1) {
		select {
		case ev := <-f.events:
			evs = append(evs, ev)
			continue
		default:
		}
		break
	}
	w.Header().Set("Content-Type", "application/json")
	if len(evs) == 1 {
		_ = json.NewEncoder(w).Encode(evs[0])
	} else {
		_ = json.NewEncoder(w).Encode(evs)
	}
}

func (f *fakeJanus) message(w http.ResponseWriter, tx string, req map[string]any, ok func(map[string]any), ack func()) {
	body, _ := req["body"].(map[string]any)
	switch body["request"] {
	case "list":
		ok(map[string]any{"sender": fakeHandle, "plugindata": map[string]any{"plugin": "janus.plugin.streaming",
			"data": map[string]any{"streaming": "list", "list": []any{
				map[string]any{"id": 1, "description": "Spillway demo clip", "type": "live", "enabled": true,
					"media": []any{
						map[string]any{"mid": "v", "type": "video", "codec": "vp8"},
						map[string]any{"mid": "a", "type": "audio", "codec": "opus"},
					}},
				map[string]any{"id": 2, "description": "Refuses viewers", "type": "live", "enabled": true, "media": []any{}},
				map[string]any{"id": 3, "description": "Disabled", "type": "live", "enabled": false, "media": []any{}},
			}}}})
	case "watch":
		ack()
		if id, _ := body["id"].(float64); id != 1 {
			f.push(pluginEvent(tx, map[string]any{"streaming": "event", "error_code": 455,
				"error": fmt.Sprintf("No such mountpoint/stream %v", body["id"])}))
			return
		}
		go f.offer(tx)
	case "start":
		jsep, _ := req["jsep"].(map[string]any)
		sdp, _ := jsep["sdp"].(string)
		f.mu.Lock()
		pc := f.pc
		f.mu.Unlock()
		if pc == nil || jsep["type"] != "answer" {
			f.push(pluginEvent(tx, map[string]any{"streaming": "event", "error_code": 456, "error": "no answer or no offer"}))
			ack()
			return
		}
		if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
			f.t.Errorf("fake janus: the page's answer: %v", err)
		}
		ack()
		f.push(pluginEvent(tx, status("starting")))
	case "stop":
		ack()
		f.push(pluginEvent(tx, status("stopping")))
		f.hangup()
		f.push(map[string]any{"janus": "hangup", "session_id": fakeSession, "sender": fakeHandle, "reason": "stop"})
	default:
		ok(map[string]any{"plugindata": map[string]any{"plugin": "janus.plugin.streaming",
			"data": map[string]any{"error_code": 453, "error": "unknown request"}}})
	}
}

// offer builds the server side of a viewer: a pion PeerConnection on
// loopback, sendonly VP8 + Opus, fed by the demo clip once ICE is up.
func (f *fakeJanus) offer(tx string) {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	var me webrtc.MediaEngine
	if err := me.RegisterDefaultCodecs(); err != nil {
		f.t.Error(err)
		return
	}
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(&me)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		f.t.Error(err)
		return
	}
	video, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "spillway")
	audio, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "spillway")
	for _, tr := range []webrtc.TrackLocal{video, audio} {
		if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			f.t.Error(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.mu.Lock()
	f.pc, f.stopLoop = pc, cancel
	f.mu.Unlock()

	var once sync.Once
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		if s != webrtc.ICEConnectionStateConnected {
			return
		}
		once.Do(func() {
			f.push(map[string]any{"janus": "webrtcup", "session_id": fakeSession, "sender": fakeHandle})
			f.push(pluginEvent("", status("started")))
			done := make(chan struct{})
			f.mu.Lock()
			f.loopDone = done
			f.mu.Unlock()
			go f.play(ctx, done, video, audio)
		})
	})
	offer, err := pc.CreateOffer(nil)
	if err == nil {
		gathered := webrtc.GatheringCompletePromise(pc)
		if err = pc.SetLocalDescription(offer); err == nil {
			<-gathered
		}
	}
	if err != nil {
		f.t.Errorf("fake janus offer: %v", err)
		return
	}
	ev := pluginEvent(tx, status("preparing"))
	ev["jsep"] = map[string]any{"type": "offer", "sdp": pc.LocalDescription().SDP}
	f.push(ev)
}

func (f *fakeJanus) play(ctx context.Context, done chan struct{}, video, audio *webrtc.TrackLocalStaticRTP) {
	defer close(done)
	clip, err := fileloop.Demo()
	if err != nil {
		f.t.Error(err)
		return
	}
	tracks := [2]*webrtc.TrackLocalStaticRTP{video, audio}
	l := fileloop.NewLoop(clip, fileloop.Options{}, func(stream int, pkt []byte, _ bool) {
		_, _ = tracks[stream].Write(pkt)
	})
	_ = l.Run(ctx)
}

// hangup stops the media and closes the PeerConnection, if any.
func (f *fakeJanus) hangup() {
	f.mu.Lock()
	pc, cancel, done := f.pc, f.stopLoop, f.loopDone
	f.pc, f.stopLoop, f.loopDone = nil, nil, nil
	f.mu.Unlock()
	if pc == nil {
		return
	}
	cancel()
	if done != nil {
		<-done
	}
	if err := pc.Close(); err != nil {
		f.t.Errorf("closing the fake's PeerConnection: %v", err)
	}
}
