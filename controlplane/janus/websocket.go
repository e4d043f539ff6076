package janus

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	wsProtocol      = "janus-protocol"
	wsAdminProtocol = "janus-admin-protocol"
	wsWriteTimeout  = 10 * time.Second
)

// WebSocketHandler serves the Janus API over WebSocket (subprotocol
// "janus-protocol"), at whatever path it is mounted on.
func (g *Gateway) WebSocketHandler() http.Handler {
	return &wsTransport{g: g, protocol: wsProtocol}
}

// AdminWebSocketHandler serves the Admin API over WebSocket (subprotocol
// "janus-admin-protocol").
func (g *Gateway) AdminWebSocketHandler() http.Handler {
	return &wsTransport{g: g, protocol: wsAdminProtocol, admin: true}
}

type wsTransport struct {
	g        *Gateway
	protocol string
	admin    bool
}

func (t *wsTransport) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{
		Subprotocols: []string{t.protocol},
		// Janus accepts any origin; browsers on other hosts are the norm.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		t.g.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	c := &wsConn{
		g: t.g, conn: conn, admin: t.admin,
		out:  make(chan []byte, t.g.queueLen),
		done: make(chan struct{}),
	}
	g := t.g
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		conn.Close()
		return
	}
	g.conns[c] = struct{}{}
	g.wg.Add(2) // this reader and the writer
	g.mu.Unlock()
	defer g.wg.Done()
	go c.writer()
	g.log.Debug("websocket connected", "remote", r.RemoteAddr, "admin", t.admin)

	c.reader()

	c.kill("")
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
	if !t.admin {
		g.transportGone(c)
	}
}

// wsConn is one WebSocket connection: a transport instance (origin) and
// the sink of the sessions it created or claimed. Everything it writes
// goes through a bounded queue; a connection that cannot keep up is
// dropped rather than slowing the core.
type wsConn struct {
	g     *Gateway
	conn  *websocket.Conn
	admin bool
	out   chan []byte
	done  chan struct{}
	once  sync.Once
}

func (c *wsConn) reader() {
	c.conn.SetReadLimit(maxRequestBody)
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		var out outcome
		f, e := parseRequest(data)
		switch {
		case e != nil:
			out.reply = errorReply(0, "", false, e)
		case c.admin:
			out = c.g.adminDispatch(f)
		default:
			out = c.g.dispatch(f, c)
		}
		b, err := json.Marshal(out.reply)
		if err != nil {
			b = []byte(`{"janus":"error","error":{"code":490,"reason":"cannot encode the reply"}}`)
		}
		ok := c.send(b)
		if out.after != nil {
			out.after()
		}
		if !ok {
			return
		}
	}
}

func (c *wsConn) writer() {
	defer c.g.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case b := <-c.out:
			_ = c.conn.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
			if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
				c.kill("write failed: " + err.Error())
				return
			}
		}
	}
}

// kill drops the connection; the reader then sees an error and ends.
func (c *wsConn) kill(why string) {
	c.once.Do(func() {
		if why != "" {
			c.g.log.Info("dropping websocket connection", "remote", c.conn.RemoteAddr().String(), "why", why)
		}
		close(c.done)
		_ = c.conn.Close()
	})
}

// send implements sink: it never blocks.
func (c *wsConn) send(b []byte) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	select {
	case c.out <- b:
		return true
	default:
		c.kill("send queue overflow")
		return false
	}
}

func (c *wsConn) over(uint64, endReason) {}
func (c *wsConn) dead() bool             { return false }
func (c *wsConn) transport() string      { return "janus.transport.websockets" }

// newSink and owns implement origin.
func (c *wsConn) newSink(uint64) sink { return c }
func (c *wsConn) owns(k sink) bool    { return k == c }
