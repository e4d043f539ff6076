package janus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spillway-rtc/spillway/controlplane/plugin"
)

// fields is a request's top-level JSON object, decoded lazily per key so
// that type errors become Janus errors (467) rather than decode failures.
type fields map[string]json.RawMessage

// parseRequest decodes a request: 454 when it is not JSON, 455 when it is
// not an object.
func parseRequest(b []byte) (fields, *apiError) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, newError(errInvalidJSON, "Request payload missing")
	}
	if !json.Valid(b) {
		var v any
		err := json.Unmarshal(b, &v)
		return nil, newError(errInvalidJSON, "JSON error: %v", err)
	}
	if b[0] != '{' {
		return nil, newError(errInvalidJSONObject, "JSON error: not an object")
	}
	var f fields
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, newError(errInvalidJSON, "JSON error: %v", err)
	}
	return f, nil
}

// has reports a key present and not null.
func (f fields) has(key string) bool {
	v, ok := f[key]
	return ok && string(v) != "null"
}

// str returns a string field; present is false when it is absent or null.
func (f fields) str(key string) (v string, present bool, e *apiError) {
	if !f.has(key) {
		return "", false, nil
	}
	if err := json.Unmarshal(f[key], &v); err != nil {
		return "", true, newError(errInvalidElementType, "Invalid element type (%s should be a string)", key)
	}
	return v, true, nil
}

// uint returns a non-negative integer field.
func (f fields) uint(key string) (v uint64, present bool, e *apiError) {
	if !f.has(key) {
		return 0, false, nil
	}
	v, err := strconv.ParseUint(string(f[key]), 10, 64)
	if err != nil {
		return 0, true, newError(errInvalidElementType, "Invalid element type (%s should be a positive integer)", key)
	}
	return v, true, nil
}

// boolean returns a boolean field.
func (f fields) boolean(key string) (v bool, present bool, e *apiError) {
	if !f.has(key) {
		return false, false, nil
	}
	if err := json.Unmarshal(f[key], &v); err != nil {
		return false, true, newError(errInvalidElementType, "Invalid element type (%s should be a boolean)", key)
	}
	return v, true, nil
}

// object returns an object field as raw JSON.
func (f fields) object(key string) (v json.RawMessage, present bool, e *apiError) {
	if !f.has(key) {
		return nil, false, nil
	}
	if !isObject(f[key]) {
		return nil, true, newError(errInvalidElementType, "Invalid element type (%s should be an object)", key)
	}
	return f[key], true, nil
}

// header is what every request carries: transaction, janus, and the ids.
type header struct {
	transaction string
	hasTx       bool
	janus       string
	sessionID   uint64
	handleID    uint64
	hasHandle   bool
}

// parseHeader validates transaction and janus (456, 452, 467) and the ids.
func parseHeader(f fields) (header, *apiError) {
	var h header
	var e *apiError
	h.transaction, h.hasTx, e = f.str("transaction")
	if e != nil {
		return h, e
	}
	if !h.hasTx {
		return h, newError(errMissingMandatoryElement, "Missing mandatory element (transaction)")
	}
	var present bool
	h.janus, present, e = f.str("janus")
	if e != nil {
		return h, e
	}
	if !present {
		return h, newError(errMissingRequest, "Missing request (janus)")
	}
	h.janus = strings.ToLower(h.janus)
	if h.sessionID, _, e = f.uint("session_id"); e != nil {
		return h, e
	}
	h.handleID, h.hasHandle, e = f.uint("handle_id")
	return h, e
}

// outcome is a reply and what to run once the transport has written it.
type outcome struct {
	reply msg
	after func()
}

func fail(h header, e *apiError) outcome {
	return outcome{reply: errorReply(h.sessionID, h.transaction, h.hasTx, e)}
}

// sessionOf checks a request's path and secret and finds the session it
// names.
func (g *Gateway) sessionOf(f fields, h header, secret func(fields) *apiError) (*session, *apiError) {
	if h.sessionID == 0 {
		return nil, newError(errSessionNotFound, "")
	}
	if h.hasHandle && h.handleID == 0 {
		return nil, newError(errHandleNotFound, "")
	}
	if e := secret(f); e != nil {
		return nil, e
	}
	s := g.findSession(h.sessionID)
	if s == nil {
		return nil, newError(errSessionNotFound, "No such session %d", h.sessionID)
	}
	return s, nil
}

// dispatch handles one Janus API request that came from o.
func (g *Gateway) dispatch(f fields, o origin) outcome {
	h, e := parseHeader(f)
	if e != nil {
		return fail(h, e)
	}
	if h.sessionID == 0 && h.handleID == 0 {
		switch h.janus {
		case "info":
			return outcome{reply: g.info(h.transaction)}
		case "ping":
			return outcome{reply: reply("pong", 0, h.transaction)}
		case "create":
			return g.create(f, h, o)
		}
		return fail(h, newError(errInvalidRequestPath, "Unhandled request '%s' at this path", h.janus))
	}
	s, e := g.sessionOf(f, h, g.checkAPISecret)
	if e != nil {
		return fail(h, e)
	}
	s.touch()
	var hd *handle
	if h.handleID != 0 {
		if hd = s.findHandle(h.handleID); hd == nil {
			return fail(h, newError(errHandleNotFound, "No such handle %d in session %d", h.handleID, h.sessionID))
		}
	}
	wrongPath := func() outcome {
		return fail(h, newError(errInvalidRequestPath, "Unhandled request '%s' at this path", h.janus))
	}
	switch h.janus {
	case "keepalive":
		return outcome{reply: reply("ack", s.id, h.transaction)}
	case "claim":
		if !s.claim(o) {
			return fail(h, newError(errSessionNotFound, "No such session %d", h.sessionID))
		}
		return outcome{reply: reply("success", s.id, h.transaction)}
	case "attach":
		if hd != nil {
			return wrongPath()
		}
		return g.attach(f, h, s)
	case "destroy":
		if hd != nil {
			return wrongPath()
		}
		if g.removeSession(s) {
			s.destroy(endDestroyed)
		}
		return outcome{reply: reply("success", s.id, h.transaction)}
	case "detach":
		if hd == nil {
			return wrongPath()
		}
		if !s.removeHandle(hd) {
			return fail(h, newError(errHandleNotFound, "No such handle %d in session %d", h.handleID, h.sessionID))
		}
		// Events after the reply: Janode fails a detach whose "detached" comes first.
		return outcome{reply: reply("success", s.id, h.transaction), after: func() { hd.destroy(true) }}
	case "hangup":
		if hd == nil {
			return wrongPath()
		}
		return outcome{reply: reply("success", s.id, h.transaction), after: hd.hangup}
	case "message":
		if hd == nil {
			return wrongPath()
		}
		return g.message(f, h, hd)
	case "trickle":
		if hd == nil {
			return wrongPath()
		}
		return g.trickle(f, h, hd)
	}
	return fail(h, newError(errUnknownRequest, "Unknown request '%s'", h.janus))
}

func (g *Gateway) checkAPISecret(f fields) *apiError {
	return checkSecret(f, "apisecret", g.cfg.APISecret)
}

// checkSecret: with a secret configured, the request's key must carry it.
func checkSecret(f fields, key, want string) *apiError {
	if want == "" {
		return nil
	}
	if v, _, e := f.str(key); e == nil && secretOK(v, want) {
		return nil
	}
	return newError(errUnauthorized, "")
}

func (g *Gateway) create(f fields, h header, o origin) outcome {
	if e := g.checkAPISecret(f); e != nil {
		return fail(h, e)
	}
	id, present, e := f.uint("id")
	if e != nil {
		return fail(h, e)
	}
	if present && id == 0 {
		return fail(h, newError(errInvalidElementType, "Invalid element type (id should be a positive integer)"))
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return fail(h, newError(errNotAcceptingNewSessions, ""))
	}
	if id != 0 {
		if _, taken := g.sessions[id]; taken {
			g.mu.Unlock()
			h.sessionID = id
			return fail(h, newError(errSessionConflict, "Session ID already in use"))
		}
	} else {
		for id == 0 || g.sessions[id] != nil {
			id = randomID()
		}
	}
	s := newSession(g, id, o.newSink(id))
	g.sessions[id] = s
	g.mu.Unlock()
	g.log.Info("session created", "session", id)
	r := reply("success", 0, h.transaction)
	r["data"] = msg{"id": id}
	return outcome{reply: r}
}

func (g *Gateway) attach(f fields, h header, s *session) outcome {
	pkg, present, e := f.str("plugin")
	if e != nil {
		return fail(h, e)
	}
	if !present {
		return fail(h, newError(errMissingMandatoryElement, "Missing mandatory element (plugin)"))
	}
	opaque, _, e := f.str("opaque_id")
	if e != nil {
		return fail(h, e)
	}
	p, ok := g.plugins[pkg]
	if !ok {
		return fail(h, newError(errPluginNotFound, "No such plugin '%s'", pkg))
	}
	hd := newHandle(s, s.newHandleID(), pkg, opaque)
	var ps plugin.Session
	var err error
	if !hd.safely("NewSession", func() { ps, err = p.NewSession(hd) }) {
		err = fmt.Errorf("plugin panicked")
	}
	if err == nil && ps == nil {
		err = fmt.Errorf("plugin returned no session")
	}
	if err != nil {
		return fail(h, newError(errPluginAttach, "Couldn't attach to plugin: %v", err))
	}
	hd.ps = ps
	if !s.addHandle(hd) {
		hd.safely("Destroy", ps.Destroy)
		return fail(h, newError(errSessionNotFound, "No such session %d", h.sessionID))
	}
	g.log.Debug("handle attached", "session", s.id, "handle", hd.id, "plugin", pkg)
	r := reply("success", s.id, h.transaction)
	r["data"] = msg{"id": hd.id}
	return outcome{reply: r}
}

func (g *Gateway) message(f fields, h header, hd *handle) outcome {
	body, present, e := f.object("body")
	if e != nil {
		return fail(h, e)
	}
	if !present {
		return fail(h, newError(errMissingMandatoryElement, "Missing mandatory element (body)"))
	}
	jsep, e := parseJSEP(f)
	if e != nil {
		return fail(h, e)
	}
	hd.begin()
	if jsep != nil {
		if e := hd.applyRemote(*jsep); e != nil {
			hd.end()
			return fail(h, e)
		}
	}
	var res plugin.Result
	req := plugin.Request{Transaction: h.transaction, Body: body, JSEP: jsep}
	if !hd.safely("HandleMessage", func() { res = hd.ps.HandleMessage(req) }) {
		res.Err = fmt.Errorf("plugin panicked")
	}
	out := g.messageReply(h, hd, res)
	out.after = hd.end
	return out
}

func (g *Gateway) messageReply(h header, hd *handle, res plugin.Result) outcome {
	if res.Err != nil {
		return fail(h, newError(errPluginMessage, "%v", res.Err))
	}
	if res.Async {
		return outcome{reply: reply("ack", h.sessionID, h.transaction)}
	}
	if res.Data == nil {
		return fail(h, newError(errPluginMessage, "Plugin didn't provide any content for this synchronous response"))
	}
	data, err := json.Marshal(res.Data)
	if err != nil || !isObject(data) {
		return fail(h, newError(errPluginMessage, "Plugin returned an invalid JSON response"))
	}
	r := reply("success", h.sessionID, h.transaction)
	r["sender"] = hd.id
	r["plugindata"] = msg{"plugin": hd.pkg, "data": json.RawMessage(data)}
	return outcome{reply: r}
}

// parseJSEP validates the optional jsep of a message.
func parseJSEP(f fields) (*plugin.JSEP, *apiError) {
	if !f.has("jsep") {
		return nil, nil
	}
	if !isObject(f["jsep"]) {
		return nil, newError(errInvalidJSONObject, "Invalid jsep object")
	}
	var jf fields
	if err := json.Unmarshal(f["jsep"], &jf); err != nil {
		return nil, newError(errInvalidJSONObject, "Invalid jsep object")
	}
	var j plugin.JSEP
	for _, key := range []string{"type", "sdp"} {
		v, present, e := jf.str(key)
		if e != nil {
			return nil, newError(errInvalidElementType, "JSEP error: invalid element type (%s should be a string)", key)
		}
		if !present {
			return nil, newError(errMissingMandatoryElement, "JSEP error: missing mandatory element (%s)", key)
		}
		if key == "type" {
			j.Type = v
		} else {
			j.SDP = v
		}
	}
	t, present, e := jf.boolean("trickle")
	if e != nil {
		return nil, newError(errInvalidElementType, "JSEP error: invalid element type (trickle should be a boolean)")
	}
	if present {
		j.Trickle = &t
	}
	return &j, nil
}

func (g *Gateway) trickle(f fields, h header, hd *handle) outcome {
	one, many := f.has("candidate"), f.has("candidates")
	switch {
	case !one && !many:
		return fail(h, newError(errMissingMandatoryElement, "Missing mandatory element (candidate|candidates)"))
	case one && many:
		return fail(h, newError(errInvalidJSON, "Can't have both candidate and candidates"))
	}
	var cands []string
	if one {
		c, e := parseCandidate(f["candidate"])
		if e != nil {
			return fail(h, e)
		}
		cands = append(cands, c)
	} else {
		var list []json.RawMessage
		if err := json.Unmarshal(f["candidates"], &list); err != nil {
			return fail(h, newError(errInvalidElementType, "candidates is not an array"))
		}
		for _, raw := range list {
			// As Janus does, a bad candidate in a list is skipped.
			if c, e := parseCandidate(raw); e == nil {
				cands = append(cands, c)
			}
		}
	}
	hd.trickle(cands)
	return outcome{reply: reply("ack", h.sessionID, h.transaction)}
}

// parseCandidate returns the candidate line, or "" for the end of
// candidates ({"completed":true}, or anything that is not an object, as in
// Janus).
func parseCandidate(raw json.RawMessage) (string, *apiError) {
	if !isObject(raw) {
		return "", nil
	}
	var cf fields
	if err := json.Unmarshal(raw, &cf); err != nil {
		return "", newError(errInvalidJSONObject, "Trickle error: invalid candidate object")
	}
	if _, ok := cf["completed"]; ok {
		return "", nil
	}
	c, present, e := cf.str("candidate")
	if e != nil {
		return "", newError(errInvalidElementType, "Trickle error: invalid element type (candidate should be a string)")
	}
	if !present {
		return "", newError(errMissingMandatoryElement, "Trickle error: missing mandatory element (candidate)")
	}
	return c, nil
}

// info is the "server_info" reply.
func (g *Gateway) info(transaction string) msg {
	plugins := msg{}
	for _, pkg := range g.pluginPackages() {
		i := g.plugins[pkg].Info()
		plugins[pkg] = msg{
			"name": i.Name, "author": i.Author, "description": i.Description,
			"version": i.Version, "version_string": i.VersionString,
		}
	}
	transport := func(name, desc string) msg {
		return msg{"name": name, "author": serverAuthor, "description": desc,
			"version": versionNumber, "version_string": Version}
	}
	g.mu.Lock()
	timeout := g.sessionTimeout
	g.mu.Unlock()
	return msg{
		"janus":                   "server_info",
		"transaction":             transaction,
		"name":                    "Spillway",
		"version":                 versionNumber,
		"version_string":          Version,
		"author":                  serverAuthor,
		"server-name":             g.cfg.ServerName,
		"data_channels":           false,
		"accepting-new-sessions":  !g.isClosed(),
		"session-timeout":         int64(timeout.Seconds()),
		"reclaim-session-timeout": int64(g.cfg.ReclaimTimeout.Seconds()),
		"candidates-timeout":      45,
		"ipv6":                    false,
		"ice-lite":                true,
		"ice-tcp":                 false,
		"full-trickle":            false,
		"mdns-enabled":            false,
		"api_secret":              g.cfg.APISecret != "",
		"auth_token":              false,
		"event_handlers":          false,
		"opaqueid_in_api":         false,
		"transports": msg{
			"janus.transport.http":       transport("Spillway REST (HTTP) transport", "Janus API over HTTP: REST requests and long polls"),
			"janus.transport.websockets": transport("Spillway WebSockets transport", "Janus API over WebSocket (janus-protocol)"),
		},
		"events":  msg{},
		"loggers": msg{},
		"plugins": plugins,
	}
}

func (g *Gateway) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

func jsonInt(raw json.RawMessage, v *int64) error {
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %w", err)
	}
	*v = n
	return nil
}

func sortIDs(ids []uint64) { slices.Sort(ids) }
