package streaming

import (
	"encoding/json"
	"net/netip"
	"strings"
)

// mountSpec is a mountpoint as a create request (or the configuration)
// describes it, validated.
type mountSpec struct {
	Type        string // rtp or clip
	ID          uint64
	Name        string
	Description string
	Metadata    string
	Secret      string
	PIN         string
	Private     bool
	Streams     []streamSpec
	VideoFile   string // clip: IVF with VP8; "" with AudioFile "" = the built-in demo clip
	AudioFile   string // clip: Ogg with Opus
	legacy      bool   // created with audioport/videoport rather than media[]
}

type streamSpec struct {
	Media    string // audio or video
	MID      string
	Label    string
	MSID     string
	Codec    codec
	Host     netip.Addr // where the RTP port listens (invalid: the plugin's default)
	Port     int        // 0: allocate from the port range
	RTCPPort int        // -1: none; 0: allocate
}

// parseSpec validates a create request. Both Janus forms are accepted: the
// multistream "media" array and the legacy audio/video fields.
func parseSpec(a args) (*mountSpec, *pluginError) {
	s := &mountSpec{}
	var e *pluginError
	if s.Type, e = a.str("type", true); e != nil {
		return nil, e
	}
	s.Type = strings.ToLower(s.Type)
	if s.Type == "live" || s.Type == "ondemand" || s.Type == "rtsp" {
		return nil, perr(errCantCreate, "Mountpoint type %q is not supported (rtp and clip are)", s.Type)
	}
	if s.Type != "rtp" && s.Type != "clip" {
		return nil, perr(errInvalidElement, "Invalid element (type should be rtp or clip)")
	}
	// Janode sends "id": 0 for "choose one", as Janus allows.
	if v, _, e := a.integer("id", false); e != nil {
		return nil, e
	} else if v < 0 {
		return nil, perr(errInvalidElement, "Invalid element (id should be a positive integer)")
	} else {
		s.ID = uint64(v)
	}
	for _, f := range []struct {
		k   string
		dst *string
	}{{"name", &s.Name}, {"description", &s.Description}, {"metadata", &s.Metadata},
		{"secret", &s.Secret}, {"pin", &s.PIN}, {"videofile", &s.VideoFile}, {"audiofile", &s.AudioFile}} {
		if *f.dst, e = a.str(f.k, false); e != nil {
			return nil, e
		}
	}
	if s.Private, e = a.boolean("is_private", false); e != nil {
		return nil, e
	}
	if a.has("data") {
		if on, e := a.boolean("data", false); e != nil || on {
			return nil, perr(errCantCreate, "Data streams are not supported")
		}
	}
	if s.Type == "clip" {
		s.Streams = []streamSpec{
			{Media: "video", MID: "v", Label: "video", Codec: mustCodec("video", "vp8"), RTCPPort: -1},
			{Media: "audio", MID: "a", Label: "audio", Codec: mustCodec("audio", "opus"), RTCPPort: -1},
		}
		return s, nil
	}
	media, isMulti, e := a.array("media")
	if e != nil {
		return nil, e
	}
	if isMulti {
		for i, raw := range media {
			var ma args
			if err := json.Unmarshal(raw, &ma); err != nil {
				return nil, perr(errInvalidElement, "Invalid element type (media[%d] should be an object)", i)
			}
			st, e := parseStream(ma, "", i)
			if e != nil {
				return nil, e
			}
			s.Streams = append(s.Streams, st)
		}
	} else {
		s.legacy = true
		// Janus's legacy order: audio first, then video.
		for _, m := range []string{"audio", "video"} {
			on, e := a.boolean(m, false)
			if e != nil {
				return nil, e
			}
			if !on {
				continue
			}
			st, e := parseStream(a, m, len(s.Streams))
			if e != nil {
				return nil, e
			}
			s.Streams = append(s.Streams, st)
		}
	}
	if len(s.Streams) == 0 {
		return nil, perr(errCantCreate, "Can't add 'rtp' stream, no audio or video have to be streamed...")
	}
	seen := map[string]bool{}
	for _, st := range s.Streams {
		if seen[st.MID] {
			return nil, perr(errCantCreate, "Duplicate mid %q", st.MID)
		}
		seen[st.MID] = true
	}
	return s, nil
}

// parseStream reads one stream: from a media[] entry (prefix "") or from
// the legacy fields of the request itself (prefix "audio" or "video").
func parseStream(a args, prefix string, index int) (streamSpec, *pluginError) {
	key := func(k string) string { return prefix + k }
	st := streamSpec{Media: prefix, RTCPPort: -1}
	var e *pluginError
	if prefix == "" {
		if st.Media, e = a.str("type", true); e != nil {
			return st, e
		}
		if st.Media == "data" {
			return st, perr(errCantCreate, "Data streams are not supported")
		}
		if st.Media != "audio" && st.Media != "video" {
			return st, perr(errInvalidElement, "Invalid element (type should be audio or video)")
		}
		if st.MID, e = a.str("mid", true); e != nil {
			return st, e
		}
		if st.Label, e = a.str("label", false); e != nil {
			return st, e
		}
		if st.MSID, e = a.str("msid", false); e != nil {
			return st, e
		}
	} else {
		st.MID = map[string]string{"audio": "a", "video": "v"}[prefix]
	}
	if st.MID == "" || strings.ContainsAny(st.MID, " \t\r\n") {
		return st, perr(errInvalidElement, "Invalid element (mid)")
	}
	if st.Label == "" {
		st.Label = st.MID
	}
	name, e := a.str(key("codec"), false)
	if e != nil {
		return st, e
	}
	rtpmap, e := a.str(key("rtpmap"), false)
	if e != nil {
		return st, e
	}
	fmtp, e := a.str(key("fmtp"), false)
	if e != nil {
		return st, e
	}
	pt, ptSet, e := a.integer(key("pt"), false)
	if e != nil {
		return st, e
	}
	c, err := parseCodec(st.Media, name, rtpmap, int(pt), ptSet, fmtp)
	if err != nil {
		return st, perr(errCantCreate, "Can't add 'rtp' stream %d (%s): %v", index, st.MID, err)
	}
	st.Codec = c
	port, _, e := a.integer(key("port"), false)
	if e != nil {
		return st, e
	}
	if port < 0 || port > 65535 {
		return st, perr(errInvalidElement, "Invalid element (%s out of range)", key("port"))
	}
	st.Port = int(port)
	if rp, ok, e := a.integer(key("rtcpport"), false); e != nil {
		return st, e
	} else if ok {
		if rp < 0 || rp > 65535 {
			return st, perr(errInvalidElement, "Invalid element (%s out of range)", key("rtcpport"))
		}
		st.RTCPPort = int(rp)
	}
	iface, e := a.str(key("iface"), false)
	if e != nil {
		return st, e
	}
	if iface != "" {
		ip, err := netip.ParseAddr(iface)
		if err != nil {
			return st, perr(errInvalidElement, "Invalid element (%s should be an IP address)", key("iface"))
		}
		st.Host = ip
	}
	if mc, e := a.str(key("mcast"), false); e != nil {
		return st, e
	} else if mc != "" {
		return st, perr(errCantCreate, "Multicast sources are not supported")
	}
	return st, nil
}

func mustCodec(media, name string) codec {
	c, err := parseCodec(media, name, "", 0, false, "")
	if err != nil {
		panic(err)
	}
	return c
}
