package janus

import "time"

// adminDispatch handles one Admin API request. info and ping need no
// secret; everything else needs admin_secret when one is configured.
func (g *Gateway) adminDispatch(f fields) outcome {
	h, e := parseHeader(f)
	if e != nil {
		return fail(h, e)
	}
	wrongPath := func() outcome {
		return fail(h, newError(errInvalidRequestPath, "Unhandled request '%s' at this path", h.janus))
	}
	if h.sessionID == 0 && h.handleID == 0 {
		switch h.janus {
		case "info":
			return outcome{reply: g.info(h.transaction)}
		case "ping":
			return outcome{reply: reply("pong", 0, h.transaction)}
		}
		if e := g.checkAdminSecret(f); e != nil {
			return fail(h, e)
		}
		switch h.janus {
		case "get_status":
			return g.adminStatus(h)
		case "set_session_timeout":
			return g.adminSetTimeout(f, h, nil)
		case "list_sessions":
			return g.adminListSessions(h)
		case "get_knobs", "get_knob", "set_knob":
			return g.adminKnobs(f, h)
		}
		return wrongPath()
	}
	s, e := g.sessionOf(f, h, g.checkAdminSecret)
	if e != nil {
		return fail(h, e)
	}
	if h.handleID == 0 {
		switch h.janus {
		case "destroy_session":
			if g.removeSession(s) {
				g.log.Info("session destroyed by the admin API", "session", s.id)
				s.destroy(endDestroyed)
			}
			return outcome{reply: reply("success", s.id, h.transaction)}
		case "set_session_timeout":
			return g.adminSetTimeout(f, h, s)
		case "list_handles":
			r := reply("success", s.id, h.transaction)
			r["handles"] = s.handleIDs()
			return outcome{reply: r}
		}
		return wrongPath()
	}
	hd := s.findHandle(h.handleID)
	if hd == nil {
		return fail(h, newError(errHandleNotFound, "No such handle %d in session %d", h.handleID, h.sessionID))
	}
	if h.janus != "handle_info" {
		return wrongPath()
	}
	pluginOnly, _, e := f.boolean("plugin_only")
	if e != nil {
		return fail(h, e)
	}
	info := hd.info(pluginOnly)
	g.mu.Lock()
	global := g.sessionTimeout
	g.mu.Unlock()
	s.mu.Lock()
	timeout := s.timeout
	if timeout < 0 {
		timeout = global
	}
	info["session_id"] = s.id
	info["session_last_activity"] = g.micros(s.lastActivity)
	info["session_timeout"] = int64(timeout.Seconds())
	if s.sink != nil && !s.gone {
		info["session_transport"] = s.sink.transport()
	}
	s.mu.Unlock()
	info["current_time"] = g.micros(time.Now())
	r := reply("success", s.id, h.transaction)
	r["handle_id"] = hd.id
	r["info"] = info
	return outcome{reply: r}
}

func (g *Gateway) checkAdminSecret(f fields) *apiError {
	return checkSecret(f, "admin_secret", g.cfg.AdminSecret)
}

func (g *Gateway) adminStatus(h header) outcome {
	g.mu.Lock()
	timeout := g.sessionTimeout
	sessions := len(g.sessions)
	g.mu.Unlock()
	r := reply("success", 0, h.transaction)
	r["status"] = msg{
		"token_auth":              false,
		"session_timeout":         int64(timeout.Seconds()),
		"reclaim_session_timeout": int64(g.cfg.ReclaimTimeout.Seconds()),
		"candidates_timeout":      45,
		"accepting_new_sessions":  !g.isClosed(),
		"sessions":                sessions,
	}
	if g.cfg.Status != nil {
		status := r["status"].(msg)
		for k, v := range g.cfg.Status() {
			if _, taken := status[k]; !taken {
				status[k] = v
			}
		}
	}
	return outcome{reply: r}
}

func (g *Gateway) adminListSessions(h header) outcome {
	g.mu.Lock()
	ids := make([]uint64, 0, len(g.sessions))
	for id := range g.sessions {
		ids = append(ids, id)
	}
	g.mu.Unlock()
	sortIDs(ids)
	r := reply("success", 0, h.transaction)
	r["sessions"] = ids
	return outcome{reply: r}
}

// adminSetTimeout sets the global session timeout (s nil: seconds > 0,
// 0 disables) or one session's (-1 means the global one again).
func (g *Gateway) adminSetTimeout(f fields, h header, s *session) outcome {
	if !f.has("timeout") {
		return fail(h, newError(errMissingMandatoryElement, "Missing mandatory element (timeout)"))
	}
	var n int64
	if err := jsonInt(f["timeout"], &n); err != nil {
		return fail(h, newError(errInvalidElementType, "Invalid element type (timeout should be an integer)"))
	}
	d := time.Duration(n) * time.Second
	r := msg{"janus": "success", "transaction": h.transaction, "timeout": n}
	if s == nil {
		if n < 0 {
			return fail(h, newError(errInvalidElementType, "Invalid element type (timeout should be a positive integer)"))
		}
		g.mu.Lock()
		g.sessionTimeout = d
		g.mu.Unlock()
		return outcome{reply: r}
	}
	if n < -1 {
		return fail(h, newError(errInvalidElementType, "Invalid element type (timeout should be a non-negative integer or -1)"))
	}
	s.mu.Lock()
	s.timeout = d
	if n == -1 {
		s.timeout = -1
	}
	s.mu.Unlock()
	r["session_id"] = s.id
	return outcome{reply: r}
}

// adminKnobs serves the knob table: get_knobs lists every value, get_knob
// and set_knob take a "path" (and a "value", given as a string).
func (g *Gateway) adminKnobs(f fields, h header) outcome {
	k := g.cfg.Knobs
	if k == nil {
		return fail(h, newError(errUnknown, "This server has no knobs"))
	}
	r := msg{"janus": "success", "transaction": h.transaction}
	if h.janus == "get_knobs" {
		all := map[string]string{}
		for _, p := range k.Paths() {
			if v, err := k.Get(p); err == nil {
				all[p] = v
			}
		}
		r["knobs"] = all
		return outcome{reply: r}
	}
	path, ok, e := f.str("path")
	if e != nil {
		return fail(h, e)
	}
	if !ok {
		return fail(h, newError(errMissingMandatoryElement, "Missing mandatory element (path)"))
	}
	if h.janus == "set_knob" {
		value, ok, e := f.str("value")
		if e != nil {
			return fail(h, e)
		}
		if !ok {
			return fail(h, newError(errMissingMandatoryElement, "Missing mandatory element (value)"))
		}
		if err := k.Set(path, value); err != nil {
			return fail(h, newError(errInvalidElementType, "%v", err))
		}
	}
	v, err := k.Get(path)
	if err != nil {
		return fail(h, newError(errInvalidElementType, "%v", err))
	}
	r["path"], r["value"] = path, v
	return outcome{reply: r}
}
