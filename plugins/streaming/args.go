package streaming

import (
	"encoding/json"
	"fmt"
	"math"
)

// Error codes of janus.plugin.streaming, as Janus numbers them.
const (
	errNoMessage       = 450
	errInvalidJSON     = 451
	errInvalidRequest  = 452
	errMissingElement  = 453
	errInvalidElement  = 454
	errNoSuchMount     = 455
	errCantCreate      = 456
	errUnauthorized    = 457
	errCantSwitch      = 458
	errCantRecord      = 459
	errInvalidState    = 460
	errInvalidSDP      = 461
	errUnknown         = 470
	maxSafeJSONInteger = 1<<53 - 1
)

// pluginError is an error that goes back to the client inside the plugin
// data, as {"streaming":"event","error_code":N,"error":"..."}.
type pluginError struct {
	code   int
	reason string
}

func (e *pluginError) Error() string { return fmt.Sprintf("%d %s", e.code, e.reason) }

func perr(code int, format string, a ...any) *pluginError {
	return &pluginError{code: code, reason: fmt.Sprintf(format, a...)}
}

func (e *pluginError) data() map[string]any {
	return map[string]any{"streaming": "event", "error_code": e.code, "error": e.reason}
}

// args is a request body with typed getters that produce the Janus
// plugin's errors (453 missing, 454 wrong type).
type args map[string]json.RawMessage

func parseArgs(body json.RawMessage) (args, *pluginError) {
	if len(body) == 0 || string(body) == "null" {
		return nil, perr(errNoMessage, "No message??")
	}
	var a args
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, perr(errInvalidJSON, "JSON error: not an object")
	}
	return a, nil
}

func (a args) has(k string) bool {
	v, ok := a[k]
	return ok && string(v) != "null"
}

func (a args) str(k string, required bool) (string, *pluginError) {
	if !a.has(k) {
		if required {
			return "", perr(errMissingElement, "Missing element (%s)", k)
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(a[k], &s); err != nil {
		return "", perr(errInvalidElement, "Invalid element type (%s should be a string)", k)
	}
	return s, nil
}

func (a args) boolean(k string, def bool) (bool, *pluginError) {
	if !a.has(k) {
		return def, nil
	}
	var b bool
	if err := json.Unmarshal(a[k], &b); err != nil {
		return false, perr(errInvalidElement, "Invalid element type (%s should be a boolean)", k)
	}
	return b, nil
}

// integer reads a JSON integer; ok is false when the key is absent.
func (a args) integer(k string, required bool) (v int64, ok bool, e *pluginError) {
	if !a.has(k) {
		if required {
			return 0, false, perr(errMissingElement, "Missing element (%s)", k)
		}
		return 0, false, nil
	}
	var f float64
	if err := json.Unmarshal(a[k], &f); err != nil || f != math.Trunc(f) || math.Abs(f) > maxSafeJSONInteger {
		return 0, false, perr(errInvalidElement, "Invalid element type (%s should be an integer)", k)
	}
	return int64(f), true, nil
}

// id reads a mountpoint id (a positive integer).
func (a args) id(required bool) (uint64, bool, *pluginError) {
	v, ok, e := a.integer("id", required)
	if e != nil || !ok {
		return 0, ok, e
	}
	if v <= 0 {
		return 0, false, perr(errInvalidElement, "Invalid element (id should be a positive integer)")
	}
	return uint64(v), true, nil
}

func (a args) array(k string) ([]json.RawMessage, bool, *pluginError) {
	if !a.has(k) {
		return nil, false, nil
	}
	var arr []json.RawMessage
	if err := json.Unmarshal(a[k], &arr); err != nil {
		return nil, false, perr(errInvalidElement, "Invalid element type (%s should be an array)", k)
	}
	return arr, true, nil
}
