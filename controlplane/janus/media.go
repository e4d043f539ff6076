package janus

import (
	"errors"

	"github.com/spillway-rtc/spillway/controlplane/plugin"
)

// Media is the WebRTC side of one handle.
//
// The core calls it without holding any of its own locks, possibly from
// several goroutines (a transport's request goroutine and a plugin's
// goroutine), so implementations synchronise themselves. Callbacks into
// MediaEvents may be made from inside these methods.
type Media interface {
	LocalDescription(j plugin.JSEP) (plugin.JSEP, error) // complete a plugin's offer/answer before it goes to the client
	RemoteDescription(j plugin.JSEP) error               // apply the client's jsep before the plugin sees the message; error -> 465 (464 for a bad type)
	Trickle(candidate string) error                      // "" = end of candidates
	SetEgress(e plugin.Egress)
	Hangup(reason string) // close the PeerConnection; idempotent; ends in MediaEvents.Down
	Info() any            // for handle_info
}

// MediaEvents are the callbacks the Media of a handle calls into the core.
// Calls made after the Media was hung up by the core (detach, destroy) or
// replaced by a newer Media are ignored.
type MediaEvents struct {
	Up              func(m plugin.Media)                           // -> "webrtcup" event, then Session.SetupMedia
	Down            func(reason string)                            // -> "hangup" event, then Session.HangupMedia
	KeyframeRequest func()                                         // -> Session.KeyframeRequest
	SlowLink        func(mid, media string, uplink bool, lost int) // -> "slowlink" event
}

// MediaFactory creates the Media of a handle. It is called lazily on the
// first jsep of a handle (and again after a hangup).
type MediaFactory func(sessionID, handleID uint64, ev MediaEvents) Media

// ErrJSEPType is what a Media's RemoteDescription may wrap to report a
// description type it does not support; the client then gets 464 instead
// of 465.
var ErrJSEPType = errors.New("unsupported jsep type")
