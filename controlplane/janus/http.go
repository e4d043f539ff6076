package janus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

const maxRequestBody = 4 << 20 // an offer with many m-lines fits easily

// HTTPHandler serves the Janus API over HTTP at /janus, /janus/<session>
// and /janus/<session>/<handle> (or the same paths without the /janus
// prefix): POST requests, GET long polls with maxev, GET /janus/info and
// /janus/ping, and CORS like Janus.
func (g *Gateway) HTTPHandler() http.Handler { return &httpTransport{g: g, base: "/janus"} }

// AdminHTTPHandler serves the Admin API at /admin, /admin/<session> and
// /admin/<session>/<handle>.
func (g *Gateway) AdminHTTPHandler() http.Handler {
	return &httpTransport{g: g, base: "/admin", admin: true}
}

type httpTransport struct {
	g     *Gateway
	base  string
	admin bool
}

// httpOrigin: every HTTP request is the same transport instance for claim,
// and a session created or claimed over HTTP gets a long-poll queue.
type httpOrigin struct{ g *Gateway }

func (o httpOrigin) newSink(uint64) sink { return newPollQueue(o.g.queueLen) }
func (o httpOrigin) owns(k sink) bool {
	_, ok := k.(*pollQueue)
	return ok
}

func (t *httpTransport) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cors(w, r)
	switch r.Method {
	case http.MethodOptions:
		w.WriteHeader(http.StatusOK)
		return
	case http.MethodGet, http.MethodPost:
	default:
		writeMsg(w, http.StatusOK, errorReply(0, "", false, newError(errTransportSpecific, "Unsupported method %s", r.Method)))
		return
	}
	comps, ok := t.split(r.URL.Path)
	if !ok {
		writeMsg(w, http.StatusNotFound, errorReply(0, "", false, newError(errInvalidRequestPath, "Invalid path %s", r.URL.Path)))
		return
	}
	if len(comps) == 1 && (comps[0] == "info" || comps[0] == "ping") {
		if r.Method != http.MethodGet {
			writeMsg(w, http.StatusBadRequest, errorReply(0, "", false, newError(errTransportSpecific, "Use GET for the %s endpoint", comps[0])))
			return
		}
		t.answer(w, fields{"janus": quote(comps[0]), "transaction": quote(randomTransaction())})
		return
	}
	ids := make([]uint64, len(comps))
	for i, c := range comps {
		id, err := strconv.ParseUint(c, 10, 64)
		if err != nil || id == 0 {
			writeMsg(w, http.StatusNotFound, errorReply(0, "", false, newError(errInvalidRequestPath, "Invalid path %s", r.URL.Path)))
			return
		}
		ids[i] = id
	}
	if r.Method == http.MethodGet {
		switch {
		case t.admin:
			writeMsg(w, http.StatusOK, errorReply(0, "", false, newError(errInvalidJSON, "Request payload missing")))
			return
		case len(ids) == 0: // a long poll needs a session
			writeMsg(w, http.StatusNotFound, errorReply(0, "", false, newError(errSessionNotFound, "")))
			return
		}
		t.longPoll(w, r, ids)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		writeMsg(w, http.StatusOK, errorReply(0, "", false, newError(errInvalidJSON, "Request payload unreadable: %v", err)))
		return
	}
	f, e := parseRequest(body)
	if e != nil {
		writeMsg(w, http.StatusOK, errorReply(0, "", false, e))
		return
	}
	// Ids from the path fill in the payload's, and must not contradict them.
	for i, key := range []string{"session_id", "handle_id"} {
		if i >= len(ids) {
			break
		}
		if v, present, _ := f.uint(key); present && v != ids[i] {
			what := strings.TrimSuffix(key, "_id")
			writeMsg(w, http.StatusOK, errorReply(0, "", false, newError(errInvalidRequestPath, "Conflicting %s ID (payload and path)", what)))
			return
		}
		f[key] = json.RawMessage(strconv.FormatUint(ids[i], 10))
	}
	t.answer(w, f)
}

// answer dispatches a request and writes its reply.
func (t *httpTransport) answer(w http.ResponseWriter, f fields) {
	var out outcome
	if t.admin {
		out = t.g.adminDispatch(f)
	} else {
		out = t.g.dispatch(f, httpOrigin{t.g})
	}
	writeMsg(w, http.StatusOK, out.reply)
	if out.after != nil {
		out.after()
	}
}

// split returns the path's components after the base: none, a session,
// or a session and a handle.
func (t *httpTransport) split(p string) ([]string, bool) {
	if p == t.base || strings.HasPrefix(p, t.base+"/") {
		p = p[len(t.base):]
	}
	p = strings.TrimSuffix(strings.TrimPrefix(p, "/"), "/")
	if p == "" {
		return nil, true
	}
	comps := strings.Split(p, "/")
	if len(comps) > 2 {
		return nil, false
	}
	for _, c := range comps {
		if c == "" {
			return nil, false
		}
	}
	return comps, true
}

// longPoll answers GET /janus/<session>?maxev=N with up to N events, or a
// keepalive after pollWait with nothing. A long poll counts as activity.
func (t *httpTransport) longPoll(w http.ResponseWriter, r *http.Request, ids []uint64) {
	g := t.g
	q := r.URL.Query()
	if g.cfg.APISecret != "" && !secretOK(q.Get("apisecret"), g.cfg.APISecret) {
		writeMsg(w, http.StatusForbidden, errorReply(0, "", false, newError(errUnauthorized, "")))
		return
	}
	s := g.findSession(ids[0])
	if s != nil {
		s.touch()
	}
	if len(ids) > 1 {
		loc := strings.TrimSuffix(r.URL.Path, "/")
		loc = loc[:strings.LastIndexByte(loc, '/')]
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusFound)
		return
	}
	var pq *pollQueue
	if s != nil {
		pq, _ = s.currentSink().(*pollQueue)
	}
	if pq == nil {
		writeMsg(w, http.StatusNotFound, errorReply(ids[0], "", false, newError(errSessionNotFound, "No such session %d", ids[0])))
		return
	}
	maxev := 1
	if v, err := strconv.Atoi(q.Get("maxev")); err == nil && v > 1 {
		maxev = v
	}
	timer := time.NewTimer(g.pollWait)
	defer timer.Stop()
	for {
		evs, wake, closed := pq.take(maxev)
		switch {
		case len(evs) > 0:
			writeEvents(w, evs, maxev)
			return
		case closed:
			writeMsg(w, http.StatusNotFound, errorReply(ids[0], "", false, newError(errSessionNotFound, "No such session %d", ids[0])))
			return
		}
		select {
		case <-wake:
		case <-timer.C:
			writeEvents(w, [][]byte{[]byte(`{"janus":"keepalive"}`)}, maxev)
			return
		case <-r.Context().Done():
			return
		case <-g.stop:
			writeEvents(w, [][]byte{[]byte(`{"janus":"keepalive"}`)}, maxev)
			return
		}
	}
}

func (s *session) currentSink() sink {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		return nil
	}
	return s.sink
}

// writeEvents writes one event, or an array of them when the poll asked
// for more than one.
func writeEvents(w http.ResponseWriter, evs [][]byte, maxev int) {
	var body []byte
	if maxev == 1 {
		body = evs[0]
	} else {
		body = append(append([]byte{'['}, bytes.Join(evs, []byte{','})...), ']')
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func writeMsg(w http.ResponseWriter, status int, m msg) {
	b, err := json.Marshal(m)
	if err != nil {
		b = []byte(`{"janus":"error","error":{"code":490,"reason":"cannot encode the reply"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// cors sets the headers Janus sets: any origin, and the method and
// headers the preflight asked for.
func cors(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Max-Age", "86400")
	if v := r.Header.Get("Access-Control-Request-Method"); v != "" {
		h.Set("Access-Control-Allow-Methods", v)
	}
	if v := r.Header.Get("Access-Control-Request-Headers"); v != "" {
		h.Set("Access-Control-Allow-Headers", v)
	}
}

func quote(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

func randomTransaction() string { return fmt.Sprintf("%012x", randomID()&(1<<48-1)) }

// pollQueue is the sink of a session held over HTTP: events wait there
// for long polls. It is bounded; when nobody polls and it overflows it
// reports itself dead and the session goes as if its transport had.
type pollQueue struct {
	max int

	mu       sync.Mutex
	events   [][]byte
	wake     chan struct{} // closed and replaced on every change
	closed   bool
	overflow bool
}

func newPollQueue(max int) *pollQueue {
	return &pollQueue{max: max, wake: make(chan struct{})}
}

func (q *pollQueue) signal() {
	close(q.wake)
	q.wake = make(chan struct{})
}

func (q *pollQueue) send(ev []byte) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.overflow {
		return false
	}
	if len(q.events) >= q.max {
		q.overflow, q.events = true, nil
		return false
	}
	q.events = append(q.events, ev)
	q.signal()
	return true
}

func (q *pollQueue) over(uint64, endReason) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		q.signal()
	}
}

func (q *pollQueue) dead() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.overflow
}

func (q *pollQueue) transport() string { return "janus.transport.http" }

// take pops up to n events; when there are none it returns the channel
// that the next change closes, and whether the queue is closed.
func (q *pollQueue) take(n int) ([][]byte, <-chan struct{}, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.events) > 0 {
		n = min(n, len(q.events))
		evs := make([][]byte, n)
		copy(evs, q.events)
		clear(q.events[:n])
		q.events = q.events[n:]
		return evs, nil, false
	}
	return nil, q.wake, q.closed
}
