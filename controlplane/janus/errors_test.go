package janus

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestBadInput sends every kind of bad request over HTTP and over
// WebSocket and checks the Janus error code and that a reason is given.
func TestBadInput(t *testing.T) {
	const secret = "s3cret"
	h := newHarness(t, withConfig(func(c *Config) { c.APISecret = secret }))
	r := h.post("/janus", obj{"janus": "create", "apisecret": secret})
	sid := num(t, field(t, r, "data", "id"))
	r = h.post(fmt.Sprintf("/janus/%d", sid), obj{"janus": "attach", "plugin": fakePkg, "apisecret": secret})
	hid := num(t, field(t, r, "data", "id"))

	tests := []struct {
		name string
		req  string // $S, $H and $K are replaced by the session, handle and secret
		code int
	}{
		{"malformed JSON", `{"janus":"create",`, errInvalidJSON},
		{"empty payload", ``, errInvalidJSON},
		{"not an object", `["create"]`, errInvalidJSONObject},
		{"missing janus", `{"transaction":"t","apisecret":"$K"}`, errMissingRequest},
		{"missing transaction", `{"janus":"create","apisecret":"$K"}`, errMissingMandatoryElement},
		{"transaction not a string", `{"janus":"create","transaction":5}`, errInvalidElementType},
		{"unknown request", `{"janus":"frobnicate","transaction":"t","session_id":$S,"apisecret":"$K"}`, errUnknownRequest},
		{"unknown session", `{"janus":"keepalive","transaction":"t","session_id":12345,"apisecret":"$K"}`, errSessionNotFound},
		{"session id not a number", `{"janus":"keepalive","transaction":"t","session_id":"x","apisecret":"$K"}`, errInvalidElementType},
		{"unknown handle", `{"janus":"message","transaction":"t","session_id":$S,"handle_id":777,"body":{},"apisecret":"$K"}`, errHandleNotFound},
		{"unknown plugin", `{"janus":"attach","transaction":"t","session_id":$S,"plugin":"janus.plugin.nope","apisecret":"$K"}`, errPluginNotFound},
		{"attach without plugin", `{"janus":"attach","transaction":"t","session_id":$S,"apisecret":"$K"}`, errMissingMandatoryElement},
		{"attach refused by the plugin", `{"janus":"attach","transaction":"t","session_id":$S,"plugin":"janus.plugin.fake","opaque_id":"refuse","apisecret":"$K"}`, errPluginAttach},
		{"plugin error", `{"janus":"message","transaction":"t","session_id":$S,"handle_id":$H,"body":{"request":"error"},"apisecret":"$K"}`, errPluginMessage},
		{"plugin data not an object", `{"janus":"message","transaction":"t","session_id":$S,"handle_id":$H,"body":{"request":"notobject"},"apisecret":"$K"}`, errPluginMessage},
		{"message without body", `{"janus":"message","transaction":"t","session_id":$S,"handle_id":$H,"apisecret":"$K"}`, errMissingMandatoryElement},
		{"body not an object", `{"janus":"message","transaction":"t","session_id":$S,"handle_id":$H,"body":[1],"apisecret":"$K"}`, errInvalidElementType},
		{"jsep not an object", `{"janus":"message","transaction":"t","session_id":$S,"handle_id":$H,"body":{},"jsep":"sdp","apisecret":"$K"}`, errInvalidJSONObject},
		{"jsep without sdp", `{"janus":"message","transaction":"t","session_id":$S,"handle_id":$H,"body":{},"jsep":{"type":"offer"},"apisecret":"$K"}`, errMissingMandatoryElement},
		{"bad jsep type", `{"janus":"message","transaction":"t","session_id":$S,"handle_id":$H,"body":{},"jsep":{"type":"rollback","sdp":"v=0"},"apisecret":"$K"}`, errJSEPUnknownType},
		{"invalid SDP from Media", `{"janus":"message","transaction":"t","session_id":$S,"handle_id":$H,"body":{},"jsep":{"type":"offer","sdp":"invalid"},"apisecret":"$K"}`, errJSEPInvalidSDP},
		{"unexpected answer", `{"janus":"message","transaction":"t","session_id":$S,"handle_id":$H,"body":{},"jsep":{"type":"answer","sdp":"v=0"},"apisecret":"$K"}`, errUnexpectedAnswer},
		{"trickle with both", `{"janus":"trickle","transaction":"t","session_id":$S,"handle_id":$H,"candidate":{"completed":true},"candidates":[],"apisecret":"$K"}`, errInvalidJSON},
		{"trickle with neither", `{"janus":"trickle","transaction":"t","session_id":$S,"handle_id":$H,"apisecret":"$K"}`, errMissingMandatoryElement},
		{"trickle candidate not a string", `{"janus":"trickle","transaction":"t","session_id":$S,"handle_id":$H,"candidate":{"candidate":5},"apisecret":"$K"}`, errInvalidElementType},
		{"missing api secret", `{"janus":"create","transaction":"t"}`, errUnauthorized},
		{"wrong api secret", `{"janus":"keepalive","transaction":"t","session_id":$S,"apisecret":"nope"}`, errUnauthorized},
		{"create with a taken id", `{"janus":"create","transaction":"t","id":$S,"apisecret":"$K"}`, errSessionConflict},
		{"attach at the root", `{"janus":"attach","transaction":"t","plugin":"janus.plugin.fake","apisecret":"$K"}`, errInvalidRequestPath},
		{"message at session level", `{"janus":"message","transaction":"t","session_id":$S,"body":{},"apisecret":"$K"}`, errInvalidRequestPath},
		{"destroy at handle level", `{"janus":"destroy","transaction":"t","session_id":$S,"handle_id":$H,"apisecret":"$K"}`, errInvalidRequestPath},
		{"admin request on the Janus API", `{"janus":"list_sessions","transaction":"t","apisecret":"$K"}`, errInvalidRequestPath},
	}
	expand := func(s string) string {
		return strings.NewReplacer("$S", fmt.Sprint(sid), "$H", fmt.Sprint(hid), "$K", secret).Replace(s)
	}
	w := h.dial(h.ws, wsProtocol)
	for _, transport := range []string{"http", "ws"} {
		for _, tc := range tests {
			if transport == "ws" && tc.req == "" {
				continue // an empty body is an HTTP matter
			}
			t.Run(transport+"/"+tc.name, func(t *testing.T) {
				var m obj
				if transport == "http" {
					status, body := h.postRaw(h.api.URL+"/janus", expand(tc.req))
					if status != http.StatusOK {
						t.Fatalf("status %d", status)
					}
					m = decode(t, body).(obj)
				} else {
					w.sendRaw(expand(tc.req))
					m = w.recv()
				}
				if got := errCode(t, m); got != tc.code {
					t.Fatalf("code %d, want %d: %v", got, tc.code, m)
				}
				if reason, _ := field(t, m, "error", "reason").(string); reason == "" {
					t.Fatalf("no reason: %v", m)
				}
				if strings.Contains(tc.req, `"transaction":"t"`) && m["transaction"] != "t" {
					t.Fatalf("transaction not echoed: %v", m)
				}
			})
		}
	}

	// Janus lets info and ping through without the secret.
	if r := h.post("/janus", obj{"janus": "info"}); r["janus"] != "server_info" || r["api_secret"] != true {
		t.Fatalf("info without secret: %v", r)
	}

	// HTTP paths.
	paths := []struct {
		name, path, body string
		status, code     int
	}{
		{"not a number", "/janus/abc", `{"janus":"keepalive","transaction":"t"}`, http.StatusNotFound, errInvalidRequestPath},
		{"too deep", fmt.Sprintf("/janus/%d/%d/3", sid, hid), `{"janus":"keepalive","transaction":"t"}`, http.StatusNotFound, errInvalidRequestPath},
		{"session conflict", fmt.Sprintf("/janus/%d", sid), `{"janus":"keepalive","transaction":"t","session_id":99}`, http.StatusOK, errInvalidRequestPath},
		{"handle conflict", fmt.Sprintf("/janus/%d/%d", sid, hid), `{"janus":"hangup","transaction":"t","handle_id":99}`, http.StatusOK, errInvalidRequestPath},
		{"message at the session path", fmt.Sprintf("/janus/%d", sid), `{"janus":"message","transaction":"t","body":{},"apisecret":"s3cret"}`, http.StatusOK, errInvalidRequestPath},
	}
	for _, tc := range paths {
		t.Run("path/"+tc.name, func(t *testing.T) {
			status, body := h.postRaw(h.api.URL+tc.path, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if got := errCode(t, decode(t, body).(obj)); got != tc.code {
				t.Fatalf("code %d, want %d: %s", got, tc.code, body)
			}
		})
	}
	t.Run("poll without secret", func(t *testing.T) {
		if status, _ := h.get(fmt.Sprintf("%s/janus/%d", h.api.URL, sid)); status != http.StatusForbidden {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("poll without a session", func(t *testing.T) {
		if status, _ := h.get(h.api.URL + "/janus?apisecret=" + secret); status != http.StatusNotFound {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("poll of an unknown session", func(t *testing.T) {
		if status, _ := h.get(fmt.Sprintf("%s/janus/12345?apisecret=%s", h.api.URL, secret)); status != http.StatusNotFound {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("unsupported method", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, h.api.URL+"/janus", strings.NewReader("{}"))
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m obj
		_ = jsonDecode(resp.Body, &m)
		if c := field(t, m, "error", "code"); fmt.Sprint(c) != fmt.Sprint(errTransportSpecific) {
			t.Fatalf("PUT: %v", m)
		}
	})

	// The session and handle survived all of that.
	if r := h.post(fmt.Sprintf("/janus/%d/%d", sid, hid), obj{"janus": "message", "body": obj{"request": "sync"}, "apisecret": secret}); r["janus"] != "success" {
		t.Fatalf("message after the bad input: %v", r)
	}
}
