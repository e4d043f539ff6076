package dataplane

import (
	"crypto/rand"
	"testing"
	"unsafe"

	"github.com/spillway-rtc/spillway/internal/prefetch"
)

// warmViewer builds a viewer of a two-stream source as AddViewer and
// attach do, without a plane.
func warmViewer(t *testing.T, prof Profile, ssrcs ...uint32) *Viewer {
	t.Helper()
	key, salt := make([]byte, 16), make([]byte, 12)
	if prof != ProfileAEADAES128GCM {
		salt = make([]byte, 14)
	}
	_, _ = rand.Read(key)
	_, _ = rand.Read(salt)
	prot, err := newProtectors(Handoff{Profile: prof, MasterKey: key, MasterSalt: salt})
	if err != nil {
		t.Fatal(err)
	}
	v := &Viewer{bySrc: make([][]*vstream, 2)}
	for i, ssrc := range ssrcs {
		vs := &vstream{v: v, ssrc: ssrc, srcIdx: i % 2, prot: prot(ssrc), hist: make([]histEntry, 16)}
		v.streams = append(v.streams, vs)
		v.bySrc[vs.srcIdx] = append(v.bySrc[vs.srcIdx], vs)
	}
	return v
}

func has(spans []prefetch.Span, p unsafe.Pointer) bool {
	for _, s := range spans {
		if s.P == p {
			return true
		}
	}
	return false
}

// checkWarm verifies that ws lists, in order, each viewer's own memory:
// the viewer, its streams and their SRTP state, each span once.
func checkWarm(t *testing.T, ws *warmState, viewers []*Viewer) {
	t.Helper()
	if len(ws.ends) != len(viewers) {
		t.Fatalf("warm list has %d viewers, want %d", len(ws.ends), len(viewers))
	}
	start := int32(0)
	for i, v := range viewers {
		mine := ws.spans[start:ws.ends[i]]
		start = ws.ends[i]
		if len(mine) == 0 || mine[0] != prefetch.Of(v) {
			t.Fatalf("viewer %d: spans do not start with the viewer", i)
		}
		seen := map[unsafe.Pointer]bool{}
		for _, s := range mine {
			if s.P == nil || s.N == 0 || seen[s.P] {
				t.Fatalf("viewer %d: empty or repeated span %+v", i, s)
			}
			seen[s.P] = true
		}
		for _, vs := range v.streams {
			st := vs.prot.(interface {
				AppendSpans([]prefetch.Span) []prefetch.Span
			})
			for _, s := range append([]prefetch.Span{prefetch.Of(vs)}, st.AppendSpans(nil)...) {
				if s.P != nil && !has(mine, s.P) {
					t.Fatalf("viewer %d stream %d: span %+v missing", i, vs.ssrc, s)
				}
			}
		}
	}
	if int(start) != len(ws.spans) {
		t.Fatalf("%d spans past the last viewer", len(ws.spans)-int(start))
	}
}

func TestWarmFollowsViewers(t *testing.T) {
	for _, prof := range []Profile{ProfileAEADAES128GCM, ProfileAES128CMHMACSHA1_80} {
		t.Run(prof.String(), func(t *testing.T) {
			var viewers []*Viewer
			var ws warmState
			for i := range 5 {
				v := warmViewer(t, prof, uint32(10*i+1), uint32(10*i+2), uint32(10*i+3))
				viewers = append(viewers, v)
				ws.added(v)
			}
			checkWarm(t, &ws, viewers)

			// A viewer leaves: the list goes stale and lets go of them all,
			// and the next batch rebuilds it.
			viewers = append(viewers[:1], viewers[2:]...)
			ws.removed()
			if len(ws.spans) != 0 || cap(ws.spans) == 0 || ws.spans[:1][0].P != nil {
				t.Fatal("removed kept pointers")
			}
			ws.added(warmViewer(t, prof, 99)) // ignored while stale
			ws.sync(viewers)
			checkWarm(t, &ws, viewers)

			// One joins while the list is current.
			v := warmViewer(t, prof, 7)
			viewers = append(viewers, v)
			ws.added(v)
			ws.sync(viewers)
			checkWarm(t, &ws, viewers)

			for i, v := range viewers {
				ws.viewer(i)
				ws.history(v, []int{0, 1, 5})
			}
		})
	}
}

// The prefetch must not add allocations to the per-packet path once the
// list is built.
func TestWarmAllocs(t *testing.T) {
	var ws warmState
	var viewers []*Viewer
	for i := range 8 {
		v := warmViewer(t, ProfileAEADAES128GCM, uint32(2*i+1), uint32(2*i+2))
		viewers = append(viewers, v)
		ws.added(v)
	}
	streams := []int{0, 1}
	ws.history(viewers[0], streams)
	if n := testing.AllocsPerRun(100, func() {
		ws.sync(viewers)
		for i, v := range viewers {
			ws.viewer(i)
			ws.history(v, streams)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per batch", n)
	}
}
