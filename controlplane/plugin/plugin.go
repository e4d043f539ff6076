// Package plugin is the contract between the Janus API core and the plugins
// it hosts (janus.plugin.streaming, ...). It mirrors Janus's plugin API:
// the core owns sessions, handles and the WebRTC peer of each handle; a
// plugin owns the application logic and tells the core what to send.
//
// Flow of one handle:
//
//	attach          -> Plugin.NewSession(handle)
//	message         -> Session.HandleMessage (sync result, or Async and a later Handle.PushEvent)
//	PushEvent+JSEP  -> the core completes the plugin's SDP with ICE and DTLS and sends it
//	message+JSEP    -> the core applies the client's SDP to the peer before HandleMessage
//	peer up         -> Session.SetupMedia(handoff); the plugin starts the data plane and
//	                   gives the egress back with Handle.SetEgress for NACK and sender reports
//	PLI / FIR       -> Session.KeyframeRequest
//	peer down       -> Session.HangupMedia
//	detach          -> Session.Destroy
package plugin

import (
	"encoding/json"
	"net/netip"

	"github.com/spillway-rtc/spillway/dataplane"
)

// JSEP is the session description that travels next to a Janus message.
type JSEP struct {
	Type    string `json:"type"`
	SDP     string `json:"sdp"`
	Trickle *bool  `json:"trickle,omitempty"`
}

// Info describes a plugin in the core's "info" reply.
type Info struct {
	Package       string // janus.plugin.streaming
	Name          string
	Description   string
	Author        string
	Version       int
	VersionString string
}

// Plugin is one application hosted by the core.
type Plugin interface {
	Info() Info
	// NewSession is called on attach. An error refuses the attach.
	NewSession(h Handle) (Session, error)
	// Close stops the plugin; called once at shutdown after every Session is destroyed.
	Close() error
}

// Request is a "message" sent to a handle.
type Request struct {
	Transaction string
	Body        json.RawMessage
	JSEP        *JSEP // already applied to the handle's peer when it is an answer
}

// Result is what HandleMessage answers.
//
// Sync (Async false): the core replies "success" with plugindata.data = Data.
// Async: the core replies "ack" and the plugin answers later with
// Handle.PushEvent using the same transaction.
// Plugin-level errors (Janus plugins put error_code and error inside the
// plugin data) are ordinary Data; Err is for core failures and becomes a
// Janus error 490 JANUS_ERROR_PLUGIN_MESSAGE.
type Result struct {
	Data  any
	Async bool
	Err   error
}

// Media is what the core hands the plugin when the handle's PeerConnection
// is up: everything the data plane needs to send SRTP to this viewer.
type Media struct {
	Handoff dataplane.Handoff
}

// Session is the plugin's side of one handle.
type Session interface {
	HandleMessage(req Request) Result
	// SetupMedia: ICE and DTLS completed ("webrtcup").
	SetupMedia(m Media)
	// KeyframeRequest: the viewer sent a PLI or FIR.
	KeyframeRequest()
	// HangupMedia: the PeerConnection is gone (hangup, consent expiry, DTLS alert).
	HangupMedia()
	// Destroy: the handle is detached or its session destroyed.
	Destroy()
	// Query returns the plugin-specific part of the Admin API's handle_info.
	Query() any
}

// Egress is the handle's data-plane path as the core's RTCP handling sees it.
type Egress interface {
	// Retransmit resends the given sequence numbers of one outgoing SSRC
	// from the owning worker's history; it returns how many were found.
	Retransmit(ssrc uint32, seqs []uint16) int
	// Counters returns what sender reports are built from.
	Counters(ssrc uint32) (dataplane.StreamCounters, bool)
	// SetPath follows a change of the selected candidate pair.
	SetPath(local, remote netip.AddrPort)
}

// Handle is the core's side of one handle, given to the plugin on attach.
type Handle interface {
	SessionID() uint64
	HandleID() uint64
	Opaque() string
	// PushEvent sends a plugin event to the client. jsep, when not nil, is
	// an offer or answer whose SDP the plugin wrote without ICE and DTLS
	// attributes; the core completes it. It fails when the SDP is unusable.
	PushEvent(transaction string, data any, jsep *JSEP) error
	// SetEgress gives the core the viewer's egress after SetupMedia, so RTCP
	// NACKs become retransmissions and sender reports use real counters.
	// nil removes it.
	SetEgress(e Egress)
	// ClosePC hangs up the handle's PeerConnection (the core then sends a
	// "hangup" event and calls HangupMedia).
	ClosePC(reason string)
}
