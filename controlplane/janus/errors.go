package janus

import "fmt"

// Janus API error codes, as Janus's apierror.h defines them.
const (
	errUnauthorized            = 403
	errUnauthorizedPlugin      = 405
	errUnknown                 = 490
	errTransportSpecific       = 450
	errMissingRequest          = 452
	errUnknownRequest          = 453
	errInvalidJSON             = 454
	errInvalidJSONObject       = 455
	errMissingMandatoryElement = 456
	errInvalidRequestPath      = 457
	errSessionNotFound         = 458
	errHandleNotFound          = 459
	errPluginNotFound          = 460
	errPluginAttach            = 461
	errPluginMessage           = 462
	errPluginDetach            = 463
	errJSEPUnknownType         = 464
	errJSEPInvalidSDP          = 465
	errTrickleInvalidStream    = 466
	errInvalidElementType      = 467
	errSessionConflict         = 468
	errUnexpectedAnswer        = 469
	errTokenNotFound           = 470
	errWebRTCState             = 471
	errNotAcceptingNewSessions = 472
)

// defaultReasons are the texts Janus uses when an error has no specific one.
var defaultReasons = map[int]string{
	errUnauthorized:            "Unauthorized request (wrong or missing secret/token)",
	errUnauthorizedPlugin:      "Unauthorized access to plugin (token is not allowed to)",
	errUnknown:                 "Unknown error",
	errTransportSpecific:       "Transport specific error",
	errMissingRequest:          "Missing request",
	errUnknownRequest:          "Unknown request",
	errInvalidJSON:             "Invalid JSON",
	errInvalidJSONObject:       "Invalid JSON Object",
	errMissingMandatoryElement: "Missing mandatory element",
	errInvalidRequestPath:      "Invalid path for this request",
	errSessionNotFound:         "Session not found",
	errHandleNotFound:          "Handle not found",
	errPluginNotFound:          "Plugin not found",
	errPluginAttach:            "Error attaching plugin",
	errPluginMessage:           "Error sending message to plugin",
	errPluginDetach:            "Error detaching from plugin",
	errJSEPUnknownType:         "Unsupported JSEP type",
	errJSEPInvalidSDP:          "Invalid SDP",
	errTrickleInvalidStream:    "Invalid stream",
	errInvalidElementType:      "Invalid element type",
	errSessionConflict:         "Session ID already in use",
	errUnexpectedAnswer:        "Unexpected ANSWER (did we offer?)",
	errTokenNotFound:           "Token not found",
	errWebRTCState:             "Wrong WebRTC state",
	errNotAcceptingNewSessions: "Currently not accepting new sessions",
}

// apiError is a Janus API error: it becomes
// {"janus":"error","error":{"code":N,"reason":".."}}.
type apiError struct {
	code   int
	reason string
}

func (e *apiError) Error() string { return fmt.Sprintf("janus error %d: %s", e.code, e.reason) }

// newError builds an error with a formatted reason, or Janus's default
// reason for the code when format is empty.
func newError(code int, format string, args ...any) *apiError {
	if format == "" {
		return &apiError{code: code, reason: defaultReasons[code]}
	}
	return &apiError{code: code, reason: fmt.Sprintf(format, args...)}
}
