// Package webrtc joins the Janus API core to the WebRTC peer: each handle's
// Media is a peer.Peer on the shared media port.
package webrtc

import (
	"fmt"

	"github.com/spillway-rtc/spillway/controlplane/janus"
	"github.com/spillway-rtc/spillway/controlplane/peer"
	"github.com/spillway-rtc/spillway/controlplane/plugin"
	"github.com/spillway-rtc/spillway/dataplane"
)

// MediaFactory gives the core one peer per handle on transport t.
func MediaFactory(t *peer.Transport) janus.MediaFactory {
	return func(_, _ uint64, ev janus.MediaEvents) janus.Media {
		return &media{p: t.NewPeer(peer.Events{
			Up: func(h dataplane.Handoff) {
				if ev.Up != nil {
					ev.Up(plugin.Media{Handoff: h})
				}
			},
			Down:            ev.Down,
			KeyframeRequest: ev.KeyframeRequest,
			SlowLink:        ev.SlowLink,
		})}
	}
}

type media struct{ p *peer.Peer }

// LocalDescription completes a plugin's offer. Plugins that answer client
// offers (EchoTest, VideoRoom publishers) come later.
func (m *media) LocalDescription(j plugin.JSEP) (plugin.JSEP, error) {
	if j.Type != "offer" {
		return j, fmt.Errorf("a plugin %s is not supported yet: Spillway's plugins offer", j.Type)
	}
	sdp, err := m.p.CompleteOffer(j.SDP)
	if err != nil {
		return j, err
	}
	j.SDP = sdp
	return j, nil
}

func (m *media) RemoteDescription(j plugin.JSEP) error {
	if j.Type != "answer" {
		return fmt.Errorf("%w: client %s not supported, this handle expects an answer to the plugin's offer", janus.ErrJSEPType, j.Type)
	}
	return m.p.ApplyAnswer(j.SDP)
}

func (m *media) Trickle(candidate string) error { return m.p.AddCandidate(candidate) }

func (m *media) SetEgress(e plugin.Egress) {
	if e == nil {
		m.p.SetEgress(nil)
		return
	}
	m.p.SetEgress(e)
}

func (m *media) Hangup(reason string) { m.p.Close(reason) }

func (m *media) Info() any { return m.p.Info() }
