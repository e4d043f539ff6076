// Package peer is the control plane's WebRTC stack: one Peer per Janus
// handle, all peers sharing one Transport (the media port).
//
// Flow of one peer:
//
//	NewPeer          -> nothing on the wire yet
//	CompleteOffer    -> ICE-lite agent created and gathered on the transport's
//	                    UDPMux; the plugin's bare offer gets ICE, DTLS and
//	                    candidate attributes; streams (mid, SSRC, PTs) recorded
//	ApplyAnswer      -> remote ICE credentials, fingerprint, DTLS role, chosen
//	                    PTs; the peer goroutine starts:
//	  run              ICE Accept (controlled), DTLS handshake (server or
//	                   client), SRTP key export, Events.Up(Handoff); then a
//	                   loop that sends sender reports and checks consent
//	  readLoop         demultiplexes ICE data by first byte (RFC 7983): DTLS
//	                   to the DTLS conn, SRTCP decrypted and handled (RR, PLI,
//	                   FIR, NACK, TWCC, REMB), SRTP ignored
//	  dtlsReadLoop     processes DTLS alerts and close_notify
//	Close or failure -> DTLS close_notify, agent closed, goroutines joined,
//	                    Events.Down(reason) exactly once
//
// RTP is never sent here: the data plane sends media with the key in the
// Handoff, and the peer reaches it back through Egress for NACK
// retransmissions and sender-report counters.
package peer
