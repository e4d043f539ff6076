// Package janus is the Janus API core of Spillway and its transports: the
// Janus API over HTTP (REST and long poll) and WebSocket ("janus-protocol"),
// and the Admin API over HTTP and WebSocket ("janus-admin-protocol"). It
// speaks the protocol of Janus 1.x so that janus.js and Janode work
// unchanged.
//
// Flow of one request:
//
//	transport   reads a request (HTTP body, WebSocket frame), parses it (454, 455)
//	dispatch    checks transaction, janus, api_secret, session and handle (452-459, 403)
//	session     create, claim, keepalive, destroy; the session's sink is where its events go
//	handle      attach -> plugin.NewSession; message -> Media.RemoteDescription, then
//	            Session.HandleMessage; trickle -> Media.Trickle; hangup; detach
//	reply       "success", "ack" or "error", written by the transport that read the request
//	events      Handle.PushEvent (+ Media.LocalDescription), MediaEvents (webrtcup, hangup,
//	            slowlink) and timeouts go to the session's sink: a WebSocket connection's
//	            bounded queue, or an HTTP session's long-poll queue
//
// Concurrency: every object is guarded by its own mutex, taken in the orders
// Gateway -> session -> sink and handle -> session -> sink, and never held
// while calling a plugin or a Media. Plugin callbacks other than HandleMessage (SetupMedia,
// HangupMedia, KeyframeRequest, Destroy) run in order on a per-handle
// serial executor, so a plugin may call back into its Handle from any of
// them. Sinks never block: a WebSocket connection whose queue overflows is
// dropped, and so is an HTTP session whose events nobody polls.
package janus
