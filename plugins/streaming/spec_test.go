package streaming

import (
	"strconv"
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		code    int    // 0: valid
		streams string // media/codec/pt/mid of each stream, when valid
	}{
		{"multistream", `{"type":"rtp","media":[{"type":"video","mid":"v","port":0,"codec":"vp8"},{"type":"audio","mid":"a","port":0,"codec":"opus","pt":100}]}`, 0, "video/vp8/96/v audio/opus/100/a"},
		{"legacy", `{"type":"rtp","audio":true,"audioport":0,"audiopt":111,"audiortpmap":"opus/48000/2","video":true,"videoport":0,"videopt":96,"videortpmap":"VP8/90000"}`, 0, "audio/opus/111/a video/vp8/96/v"},
		{"legacy codec names", `{"type":"rtp","video":true,"videocodec":"h264"}`, 0, "video/h264/102/v"},
		{"every codec", `{"type":"rtp","media":[{"type":"video","mid":"1","codec":"vp9"},{"type":"video","mid":"2","codec":"av1"},{"type":"audio","mid":"3","codec":"pcmu"},{"type":"audio","mid":"4","codec":"pcma"}]}`, 0, "video/vp9/98/1 video/av1/45/2 audio/pcmu/0/3 audio/pcma/8/4"},
		{"clip", `{"type":"clip","id":7}`, 0, "video/vp8/96/v audio/opus/111/a"},
		{"janode id 0", `{"type":"rtp","id":0,"media":[{"type":"audio","mid":"a","codec":"opus"}]}`, 0, "audio/opus/111/a"},
		{"missing type", `{"media":[]}`, errMissingElement, ""},
		{"unknown type", `{"type":"hls"}`, errInvalidElement, ""},
		{"rtsp", `{"type":"rtsp"}`, errCantCreate, ""},
		{"unknown codec", `{"type":"rtp","media":[{"type":"video","mid":"v","codec":"mpeg2"}]}`, errCantCreate, ""},
		{"wrong clock", `{"type":"rtp","media":[{"type":"video","mid":"v","rtpmap":"VP8/48000"}]}`, errCantCreate, ""},
		{"bad pt", `{"type":"rtp","media":[{"type":"video","mid":"v","codec":"vp8","pt":200}]}`, errCantCreate, ""},
		{"rtcp pt range", `{"type":"rtp","media":[{"type":"video","mid":"v","codec":"vp8","pt":72}]}`, errCantCreate, ""},
		{"no codec", `{"type":"rtp","media":[{"type":"video","mid":"v"}]}`, errCantCreate, ""},
		{"no streams", `{"type":"rtp"}`, errCantCreate, ""},
		{"data", `{"type":"rtp","media":[{"type":"data","mid":"d"}]}`, errCantCreate, ""},
		{"dup mid", `{"type":"rtp","media":[{"type":"audio","mid":"a","codec":"opus"},{"type":"audio","mid":"a","codec":"pcmu"}]}`, errCantCreate, ""},
		{"port type", `{"type":"rtp","media":[{"type":"audio","mid":"a","codec":"opus","port":"5000"}]}`, errInvalidElement, ""},
		{"port range", `{"type":"rtp","media":[{"type":"audio","mid":"a","codec":"opus","port":65536}]}`, errInvalidElement, ""},
		{"iface", `{"type":"rtp","media":[{"type":"audio","mid":"a","codec":"opus","iface":"eth0"}]}`, errInvalidElement, ""},
		{"mcast", `{"type":"rtp","media":[{"type":"audio","mid":"a","codec":"opus","mcast":"232.1.1.1"}]}`, errCantCreate, ""},
		{"negative id", `{"type":"rtp","id":-4,"media":[{"type":"audio","mid":"a","codec":"opus"}]}`, errInvalidElement, ""},
		{"fractional id", `{"type":"rtp","id":1.5,"media":[{"type":"audio","mid":"a","codec":"opus"}]}`, errInvalidElement, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, e := parseArgs([]byte(tc.body))
			if e != nil {
				t.Fatal(e)
			}
			s, e := parseSpec(a)
			if tc.code != 0 {
				if e == nil || e.code != tc.code || e.reason == "" {
					t.Fatalf("got %v, want error %d", e, tc.code)
				}
				return
			}
			if e != nil {
				t.Fatalf("unexpected error %v", e)
			}
			var got []string
			for _, st := range s.Streams {
				got = append(got, strings.Join([]string{st.Media, st.Codec.Name, strconv.Itoa(int(st.Codec.PT)), st.MID}, "/"))
			}
			if g := strings.Join(got, " "); g != tc.streams {
				t.Errorf("streams %q, want %q", g, tc.streams)
			}
		})
	}
}

func TestRtpmap(t *testing.T) {
	for name, want := range map[string]string{"vp8": "VP8/90000", "opus": "opus/48000/2", "pcmu": "PCMU/8000", "h264": "H264/90000"} {
		media := codecs[name].media
		c, err := parseCodec(media, name, "", 0, false, "")
		if err != nil {
			t.Fatal(err)
		}
		if c.Rtpmap() != want {
			t.Errorf("%s: rtpmap %q, want %q", name, c.Rtpmap(), want)
		}
	}
}

func TestBareOffer(t *testing.T) {
	spec := &mountSpec{ID: 9, Description: "line\r\nbreak", Streams: []streamSpec{
		{Media: "video", MID: "v", Label: "cam one", Codec: mustCodec("video", "h264")},
		{Media: "audio", MID: "a", Label: "mic", MSID: "stream track", Codec: mustCodec("audio", "opus")},
	}}
	sdp := bareOffer(spec, []offeredStream{{index: 0, mid: "v", ssrc: 11}, {index: 1, mid: "a", ssrc: 22}})
	for _, want := range []string{
		"s=line  break\r\n", "m=video 9 UDP/TLS/RTP/SAVPF 102\r\n", "a=mid:v\r\n", "a=sendonly\r\n",
		"a=rtpmap:102 H264/90000\r\n", "a=fmtp:102 profile-level-id=42e01f;packetization-mode=1\r\n",
		"a=rtcp-fb:102 nack pli\r\n", "a=msid:spillway-9 cam-one\r\n", "a=ssrc:11 cname:spillway\r\n",
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "a=msid:stream track\r\n", "a=ssrc:22 msid:stream track\r\n",
	} {
		if !strings.Contains(sdp, want) {
			t.Errorf("offer lacks %q:\n%s", want, sdp)
		}
	}
	if strings.Contains(sdp, "a=rtcp-fb:111") {
		t.Errorf("audio got video feedback:\n%s", sdp)
	}
}
