package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// msg is a Janus API message.
type msg map[string]any

func (m msg) str(k string) string { s, _ := m[k].(string); return s }
func (m msg) obj(k string) msg    { o, _ := m[k].(map[string]any); return o }
func (m msg) id(k string) uint64 {
	switch v := m[k].(type) {
	case float64:
		return uint64(v)
	case json.Number:
		n, _ := strconv.ParseUint(string(v), 10, 64)
		return n
	}
	return 0
}

// pluginData is plugindata.data of a plugin reply or event.
func (m msg) pluginData() msg { return m.obj("plugindata").obj("data") }

// apiError is a Janus error reply.
type apiError struct {
	Code   int
	Reason string
}

func (e *apiError) Error() string { return fmt.Sprintf("janus error %d: %s", e.Code, e.Reason) }

// session is one Janus session carrying many handles, as one janus.js or
// Janode connection does: requests are matched to replies by transaction,
// and events are routed to their handle by "sender". One session serves
// many viewers, so a thousand viewers cost the server a few long polls or
// WebSockets, not a thousand.
type session struct {
	id      uint64
	send    func(m msg) error
	log     *slog.Logger
	timeout time.Duration

	mu      sync.Mutex
	waiting map[string]chan msg
	handles map[uint64]chan msg
	closed  bool

	stop    chan struct{}
	wg      sync.WaitGroup
	closeFn func()
}

// requestTimeout bounds a request's wait for its reply.
const requestTimeout = 15 * time.Second

func newTx() string { return strconv.FormatUint(rand.Uint64(), 36) }

// dialSession opens a transport to url (http(s):// for REST with long
// polls, ws(s):// for WebSocket) and creates a session on it.
func dialSession(ctx context.Context, url string, log *slog.Logger) (*session, error) {
	s := &session{
		log: log, timeout: requestTimeout, stop: make(chan struct{}),
		waiting: map[string]chan msg{}, handles: map[uint64]chan msg{},
	}
	switch {
	case strings.HasPrefix(url, "http://"), strings.HasPrefix(url, "https://"):
		s.dialHTTP(url)
	case strings.HasPrefix(url, "ws://"), strings.HasPrefix(url, "wss://"):
		if err := s.dialWS(ctx, url); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("loadgen: %q: want an http(s):// or ws(s):// URL", url)
	}
	r, err := s.request(ctx, msg{"janus": "create"}, false)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("loadgen: create session: %w", err)
	}
	s.id = r.obj("data").id("id")
	if s.id == 0 {
		s.close()
		return nil, fmt.Errorf("loadgen: create session: no id in %v", r)
	}
	if s.closeFn == nil { // HTTP: events come from long polls on the session
		s.wg.Add(1)
		go s.longPoll(url)
	}
	s.wg.Add(1)
	go s.keepalive()
	return s, nil
}

// deliver hands m to the request waiting for it, or to its handle.
func (s *session) deliver(m msg) {
	kind := m.str("janus")
	if kind == "keepalive" {
		return
	}
	tx := m.str("transaction")
	s.mu.Lock()
	ch, ok := s.waiting[tx]
	// Replies end a request's wait; events (which may carry the
	// transaction of the request that caused them, and may overtake its
	// HTTP reply) don't. An ack ends only the wait of a request that wanted
	// one (an async plugin message).
	reply := kind == "success" || kind == "error" || (kind == "ack" && cap(ch) == 2)
	if ok && reply {
		delete(s.waiting, tx)
	}
	if ok && reply {
		s.mu.Unlock()
		ch <- m
		return
	}
	// Sent under the lock (it never blocks), so forget cannot close the
	// channel under it.
	if hch := s.handles[m.id("sender")]; hch != nil {
		select {
		case hch <- m:
		default:
			s.log.Warn("loadgen: handle event queue full, event dropped", "handle", m.id("sender"), "janus", kind)
		}
	}
	s.mu.Unlock()
}

// request sends m and waits for its reply (success or error, or the ack
// when wantAck is set).
func (s *session) request(ctx context.Context, m msg, wantAck bool) (msg, error) {
	tx := newTx()
	m["transaction"] = tx
	if s.id != 0 && m["session_id"] == nil {
		m["session_id"] = s.id
	}
	ch := make(chan msg, 1)
	if wantAck {
		ch = make(chan msg, 2)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("session closed")
	}
	s.waiting[tx] = ch
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		delete(s.waiting, tx)
		s.mu.Unlock()
	}
	if err := s.send(m); err != nil {
		forget()
		return nil, err
	}
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case r := <-ch:
		if r.str("janus") == "error" {
			e := r.obj("error")
			return r, &apiError{Code: int(e.id("code")), Reason: e.str("reason")}
		}
		return r, nil
	case <-t.C:
		forget()
		return nil, fmt.Errorf("no reply to %q in %v", m["janus"], s.timeout)
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	case <-s.stop:
		return nil, errors.New("session closed")
	}
}

// attach attaches a handle to plugin; its events go to the returned channel.
func (s *session) attach(ctx context.Context, plugin string) (uint64, <-chan msg, error) {
	r, err := s.request(ctx, msg{"janus": "attach", "plugin": plugin}, false)
	if err != nil {
		return 0, nil, err
	}
	h := r.obj("data").id("id")
	ch := make(chan msg, 16)
	s.mu.Lock()
	s.handles[h] = ch
	s.mu.Unlock()
	return h, ch, nil
}

// message sends a plugin message; an async one returns at its ack.
func (s *session) message(ctx context.Context, handle uint64, body, jsep msg, async bool) (msg, error) {
	m := msg{"janus": "message", "handle_id": handle, "body": body}
	if jsep != nil {
		m["jsep"] = jsep
	}
	return s.request(ctx, m, async)
}

// detach ends a handle (its PeerConnection with it).
func (s *session) detach(ctx context.Context, handle uint64) error {
	_, err := s.request(ctx, msg{"janus": "detach", "handle_id": handle}, false)
	return err
}

// forget stops routing a handle's events and closes its channel.
func (s *session) forget(handle uint64) {
	s.mu.Lock()
	if ch, ok := s.handles[handle]; ok {
		delete(s.handles, handle)
		close(ch)
	}
	s.mu.Unlock()
}

// keepalive keeps the session from timing out (Janus's default is 60 s).
func (s *session) keepalive() {
	defer s.wg.Done()
	t := time.NewTicker(25 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
			if _, err := s.request(ctx, msg{"janus": "keepalive"}, true); err != nil {
				s.log.Warn("loadgen: keepalive", "session", s.id, "err", err)
			}
			cancel()
		}
	}
}

// close destroys the session and stops its goroutines.
func (s *session) close() {
	if s.id != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = s.request(ctx, msg{"janus": "destroy"}, false)
		cancel()
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	if s.closeFn != nil {
		s.closeFn()
	}
	s.wg.Wait()
}

// httpClient is shared by every HTTP session: keep-alive connections, and
// a long poll's 30 s wait plus slack.
var httpClient = &http.Client{
	Timeout:   45 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second},
}

// dialHTTP sets the session up for REST: each request is a POST whose
// response body is the reply; events come from longPoll.
func (s *session) dialHTTP(base string) {
	s.send = func(m msg) error {
		url := base
		if s.id != 0 {
			url = fmt.Sprintf("%s/%d", base, s.id)
			if h, ok := m["handle_id"].(uint64); ok {
				url = fmt.Sprintf("%s/%d", url, h)
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		// The reply may come after events that the request caused (on the
		// long poll), so it is read on its own goroutine.
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			resp, err := httpClient.Post(url, "application/json", bytes.NewReader(b))
			if err != nil {
				s.log.Debug("loadgen: POST", "url", url, "err", err)
				return
			}
			defer resp.Body.Close()
			var r msg
			if err := json.NewDecoder(resp.Body).Decode(&r); err == nil {
				s.deliver(r)
			}
		}()
		return nil
	}
}

// longPoll fetches the session's events, many at a time.
func (s *session) longPoll(base string) {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-s.stop; cancel() }()
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		url := fmt.Sprintf("%s/%d?maxev=50&rid=%d", base, s.id, time.Now().UnixNano())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := httpClient.Do(req)
		if err != nil {
			select {
			case <-s.stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			continue
		}
		var batch []msg
		if json.Unmarshal(raw, &batch) != nil {
			var one msg
			if json.Unmarshal(raw, &one) != nil {
				continue
			}
			batch = []msg{one}
		}
		for _, m := range batch {
			s.deliver(m)
		}
	}
}

// dialWS connects with the janus-protocol subprotocol; replies and events
// share the socket.
func (s *session) dialWS(ctx context.Context, url string) error {
	d := websocket.Dialer{Subprotocols: []string{"janus-protocol"}, HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return fmt.Errorf("loadgen: websocket %s: %w", url, err)
	}
	var wmu sync.Mutex
	s.send = func(m msg) error {
		wmu.Lock()
		defer wmu.Unlock()
		conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		return conn.WriteJSON(m)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var m msg
			if json.Unmarshal(b, &m) == nil {
				s.deliver(m)
			}
		}
	}()
	s.closeFn = func() {
		conn.Close()
		<-done
	}
	return nil
}
