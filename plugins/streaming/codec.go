package streaming

import (
	"fmt"
	"strconv"
	"strings"
)

// codec is one RTP codec a mountpoint stream can carry.
type codec struct {
	Name     string // lower case, as Janus names it: vp8, vp9, h264, av1, opus, pcmu, pcma
	Media    string // audio or video
	PT       uint8
	Clock    uint32
	Channels uint16 // audio only; 0 when the rtpmap has none
	FMTP     string
}

type codecDefault struct {
	media    string
	encoding string // rtpmap encoding name
	pt       uint8
	clock    uint32
	channels uint16
	fmtp     string
}

// codecs is what Spillway can stream; the keys are Janus's codec names.
var codecs = map[string]codecDefault{
	"vp8":  {media: "video", encoding: "VP8", pt: 96, clock: 90000},
	"vp9":  {media: "video", encoding: "VP9", pt: 98, clock: 90000},
	"h264": {media: "video", encoding: "H264", pt: 102, clock: 90000, fmtp: "profile-level-id=42e01f;packetization-mode=1"},
	"av1":  {media: "video", encoding: "AV1", pt: 45, clock: 90000},
	"opus": {media: "audio", encoding: "opus", pt: 111, clock: 48000, channels: 2},
	"pcmu": {media: "audio", encoding: "PCMU", pt: 0, clock: 8000},
	"pcma": {media: "audio", encoding: "PCMA", pt: 8, clock: 8000},
}

// Rtpmap is the SDP rtpmap value without the payload type.
func (c codec) Rtpmap() string {
	enc := codecs[c.Name].encoding
	if c.Channels > 0 {
		return fmt.Sprintf("%s/%d/%d", enc, c.Clock, c.Channels)
	}
	return fmt.Sprintf("%s/%d", enc, c.Clock)
}

// parseCodec resolves a stream's codec from what a create request or the
// configuration gives: a codec name and/or an rtpmap ("VP8/90000"), a
// payload type (0 keeps the codec's usual one) and an fmtp.
func parseCodec(media, name, rtpmap string, pt int, ptSet bool, fmtp string) (codec, error) {
	var clock uint64
	var channels uint64
	if rtpmap != "" {
		parts := strings.Split(rtpmap, "/")
		name = strings.TrimSpace(parts[0])
		if len(parts) > 1 {
			v, err := strconv.ParseUint(parts[1], 10, 32)
			if err != nil {
				return codec{}, fmt.Errorf("invalid rtpmap %q", rtpmap)
			}
			clock = v
		}
		if len(parts) > 2 {
			v, err := strconv.ParseUint(parts[2], 10, 16)
			if err != nil {
				return codec{}, fmt.Errorf("invalid rtpmap %q", rtpmap)
			}
			channels = v
		}
	}
	name = strings.ToLower(name)
	d, ok := codecs[name]
	if !ok {
		if name == "" {
			return codec{}, fmt.Errorf("missing codec for %s stream", media)
		}
		return codec{}, fmt.Errorf("unsupported codec %q", name)
	}
	if d.media != media {
		return codec{}, fmt.Errorf("codec %s is not a %s codec", name, media)
	}
	c := codec{Name: name, Media: media, PT: d.pt, Clock: d.clock, Channels: d.channels, FMTP: d.fmtp}
	if clock != 0 {
		if clock != uint64(d.clock) {
			return codec{}, fmt.Errorf("codec %s runs at %d Hz, not %d", name, d.clock, clock)
		}
	}
	if channels != 0 && media == "audio" {
		c.Channels = uint16(channels)
	}
	if ptSet {
		if pt < 0 || pt > 127 || (pt >= 64 && pt <= 95) {
			return codec{}, fmt.Errorf("invalid payload type %d", pt)
		}
		c.PT = uint8(pt)
	}
	if fmtp != "" {
		c.FMTP = fmtp
	}
	return c, nil
}
