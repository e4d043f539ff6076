// Package pin holds the module's pinned dependencies in go.mod while the
// packages that use them are written. Removed once they are imported.
package pin

import (
	_ "github.com/gorilla/websocket"
	_ "github.com/pion/dtls/v3"
	_ "github.com/pion/ice/v4"
	_ "github.com/pion/interceptor"
	_ "github.com/pion/logging"
	_ "github.com/pion/rtcp"
	_ "github.com/pion/rtp"
	_ "github.com/pion/rtp/codecs"
	_ "github.com/pion/sdp/v3"
	_ "github.com/pion/srtp/v3"
	_ "github.com/pion/transport/v4/packetio"
	_ "github.com/pion/webrtc/v4"
	_ "github.com/pion/webrtc/v4/pkg/media/ivfreader"
	_ "github.com/pion/webrtc/v4/pkg/media/oggreader"
	_ "golang.org/x/net/ipv4"
	_ "golang.org/x/net/ipv6"
)
