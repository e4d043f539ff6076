package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// msg is a Janus API message.
type msg map[string]any

func (m msg) str(k string) string  { s, _ := m[k].(string); return s }
func (m msg) obj(k string) msg     { o, _ := m[k].(map[string]any); return o }
func (m msg) num(k string) float64 { f, _ := m[k].(float64); return f }

// pluginData is plugindata.data of a plugin reply or event.
func (m msg) pluginData() msg { return m.obj("plugindata").obj("data") }

// janusClient speaks the Janus API the way janus.js does, over HTTP long
// poll or over WebSocket: requests get replies by transaction, everything
// else lands in the events channel.
type janusClient struct {
	t       testing.TB
	session uint64
	events  chan msg
	send    func(m msg) error

	mu       sync.Mutex
	waiting  map[string]chan msg
	byHandle map[uint64]chan msg // events of handles that asked for their own

	closeFn   func()
	onSession func()
}

func newTx() string { return strconv.FormatUint(rand.Uint64(), 36) }

func (c *janusClient) deliver(m msg) {
	tx := m.str("transaction")
	c.mu.Lock()
	ch, ok := c.waiting[tx]
	// Replies end a request's wait; events (which carry the transaction of
	// the request that caused them, and may overtake its HTTP reply) don't.
	// An ack only ends the wait of a request that wanted an ack.
	kind := m.str("janus")
	reply := kind == "success" || kind == "error" || kind == "pong" || kind == "server_info" || (kind == "ack" && cap(ch) == 2)
	if ok && reply {
		delete(c.waiting, tx)
	} else {
		ok = false
	}
	c.mu.Unlock()
	if ok {
		ch <- m
		return
	}
	c.mu.Lock()
	hch := c.byHandle[uint64(m.num("sender"))]
	c.mu.Unlock()
	if hch != nil {
		select {
		case hch <- m:
		default:
			c.t.Errorf("handle event queue full, dropped %v", m)
		}
		return
	}
	select {
	case c.events <- m:
	default:
		c.t.Errorf("event queue full, dropped %v", m)
	}
}

// request sends m and waits for its reply (success, error, or ack when
// wantAck is set).
func (c *janusClient) request(m msg, wantAck bool) (msg, error) {
	tx := newTx()
	m["transaction"] = tx
	if c.session != 0 && m["session_id"] == nil {
		m["session_id"] = c.session
	}
	ch := make(chan msg, 1)
	if wantAck {
		ch = make(chan msg, 2)
	}
	c.mu.Lock()
	c.waiting[tx] = ch
	c.mu.Unlock()
	if err := c.send(m); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		if r.str("janus") == "error" {
			e := r.obj("error")
			return r, fmt.Errorf("janus error %v: %v", e["code"], e["reason"])
		}
		return r, nil
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("no reply to %v", m["janus"])
	}
}

// handleEvents routes the events of one handle to their own channel.
func (c *janusClient) handleEvents(h uint64) chan msg {
	ch := make(chan msg, 64)
	c.mu.Lock()
	if c.byHandle == nil {
		c.byHandle = map[uint64]chan msg{}
	}
	c.byHandle[h] = ch
	c.mu.Unlock()
	return ch
}

// waitEvent waits for an event that matches.
func (c *janusClient) waitEvent(d time.Duration, match func(msg) bool) (msg, error) {
	deadline := time.After(d)
	for {
		select {
		case m := <-c.events:
			if match(m) {
				return m, nil
			}
		case <-deadline:
			return nil, errors.New("timed out waiting for an event")
		}
	}
}

func (c *janusClient) create() error {
	r, err := c.request(msg{"janus": "create"}, false)
	if err != nil {
		return err
	}
	c.session = uint64(r.obj("data").num("id"))
	if c.onSession != nil {
		c.onSession()
	}
	return nil
}

func (c *janusClient) attach(pkg string) (uint64, error) {
	r, err := c.request(msg{"janus": "attach", "plugin": pkg}, false)
	if err != nil {
		return 0, err
	}
	return uint64(r.obj("data").num("id")), nil
}

// message sends a plugin message; async requests return the ack.
func (c *janusClient) message(handle uint64, body msg, jsep msg, async bool) (msg, error) {
	m := msg{"janus": "message", "handle_id": handle, "body": body}
	if jsep != nil {
		m["jsep"] = jsep
	}
	return c.request(m, async)
}

func (c *janusClient) close() { c.closeFn() }

// dialHTTP connects like janus.js over REST with a long-poll loop.
func dialHTTP(t testing.TB, base string) *janusClient {
	c := &janusClient{t: t, events: make(chan msg, 256), waiting: map[string]chan msg{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	post := func(m msg) error {
		url := base
		if c.session != 0 {
			url = fmt.Sprintf("%s/%d", base, c.session)
			if h, ok := m["handle_id"].(uint64); ok {
				url = fmt.Sprintf("%s/%d", url, h)
			}
		}
		b, _ := json.Marshal(m)
		go func() {
			resp, err := http.Post(url, "application/json", bytes.NewReader(b))
			if err != nil {
				return
			}
			defer resp.Body.Close()
			var r msg
			if json.NewDecoder(resp.Body).Decode(&r) == nil {
				c.deliver(r)
			}
		}()
		return nil
	}
	c.send = post
	c.onSession = func() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 40 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(fmt.Sprintf("%s/%d?maxev=10&rid=%d", base, c.session, time.Now().UnixNano()))
				if err != nil {
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
					}
					continue
				}
				var raw json.RawMessage
				err = json.NewDecoder(resp.Body).Decode(&raw)
				resp.Body.Close()
				if err != nil {
					continue
				}
				var arr []msg
				if json.Unmarshal(raw, &arr) != nil {
					var one msg
					if json.Unmarshal(raw, &one) != nil {
						continue
					}
					arr = []msg{one}
				}
				for _, m := range arr {
					if m.str("janus") != "keepalive" {
						c.deliver(m)
					}
				}
			}
		}()
	}
	c.closeFn = func() {
		if c.session != 0 {
			_, _ = c.request(msg{"janus": "destroy"}, false)
		}
		close(stop)
		wg.Wait()
	}
	return c
}

// dialWS connects over WebSocket with the janus-protocol subprotocol.
func dialWS(t testing.TB, url string) *janusClient {
	d := websocket.Dialer{Subprotocols: []string{"janus-protocol"}, HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("websocket dial %s: %v", url, err)
	}
	if resp.Header.Get("Sec-WebSocket-Protocol") != "janus-protocol" {
		t.Fatalf("subprotocol %q", resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	c := &janusClient{t: t, events: make(chan msg, 256), waiting: map[string]chan msg{}}
	var wmu sync.Mutex
	c.send = func(m msg) error {
		wmu.Lock()
		defer wmu.Unlock()
		return conn.WriteJSON(m)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			var m msg
			if err := conn.ReadJSON(&m); err != nil {
				return
			}
			c.deliver(m)
		}
	}()
	c.closeFn = func() {
		if c.session != 0 {
			_, _ = c.request(msg{"janus": "destroy"}, false)
		}
		conn.Close()
		<-done
	}
	return c
}
