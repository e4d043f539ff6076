package janus

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/spillway-rtc/spillway/bench/logtail"
)

// ServerInfo is the part of Janus's GET /janus/info answer the bench
// checks: that the running instance took the config it was given.
type ServerInfo struct {
	Janus          string                     `json:"janus"` // "server_info"
	Version        string                     `json:"version_string"`
	ICELite        bool                       `json:"ice-lite"`
	ICETCP         bool                       `json:"ice-tcp"`
	FullTrickle    bool                       `json:"full-trickle"`
	MDNS           bool                       `json:"mdns-enabled"`
	EventLoops     int                        `json:"static-event-loops"`
	SessionTimeout int                        `json:"session-timeout"`
	LocalIP        string                     `json:"local-ip"`
	Dependencies   map[string]string          `json:"dependencies"`
	Plugins        map[string]json.RawMessage `json:"plugins"`
	Transports     map[string]json.RawMessage `json:"transports"`
}

// GetInfo asks a Janus API base URL (http://ip:port/janus) for its info.
func GetInfo(ctx context.Context, hc *http.Client, base string) (ServerInfo, error) {
	var info ServerInfo
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/info", nil)
	if err != nil {
		return info, fmt.Errorf("janus: info: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return info, fmt.Errorf("janus: info: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return info, fmt.Errorf("janus: info: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return info, fmt.Errorf("janus: info: HTTP %d: %s", resp.StatusCode, logtail.Of(body, 200))
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return info, fmt.Errorf("janus: info: %w", err)
	}
	if info.Janus != "server_info" {
		return info, fmt.Errorf("janus: info: answer is %q, not server_info", info.Janus)
	}
	return info, nil
}

// GCMCompiledIn tells whether a janus binary was built with AES-GCM SRTP
// (HAVE_SRTP_AESGCM): only then does it hold the GCM profile names it hands
// to OpenSSL's use_srtp list. Janus 1.1.x has no run-time switch for it.
func GCMCompiledIn(bin string) (bool, error) {
	b, err := os.ReadFile(bin)
	if err != nil {
		return false, fmt.Errorf("janus: %w", err)
	}
	return bytes.Contains(b, []byte("SRTP_AEAD_AES_128_GCM")), nil
}
