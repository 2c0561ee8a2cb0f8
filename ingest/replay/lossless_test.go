//go:build cgo

package replay_test

import (
	"slices"
	"testing"
	"time"

	"github.com/vigilcam/vigil/ingest/replay"
)

// TestLossless replays every H.264 clip to a reader that is slow now and then: it gets every
// packet of the file as one access unit, with the file's timestamps, starting at a random access
// unit, and the parameter sets both in the SDP and before every random access unit.
func TestLossless(t *testing.T) {
	srv := newServer(t)
	for _, name := range h264Clips {
		t.Run(name, func(t *testing.T) {
			path := clip(t, name)
			want := probe(t, path)
			rp := open(t, srv, path, replay.Options{})
			info := rp.Info()
			if info.Codec != "h264" || info.Source != "h264" || info.Transcoded {
				t.Errorf("info %+v, want h264 sent as it is", info)
			}
			// A pause every 97th access unit, longer than the writer needs to fill its window.
			rd, got, err := replayAll(t, rp, func(i int) time.Duration {
				if i%97 == 0 {
					return 30 * time.Millisecond
				}
				return 0
			})
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if rd.h264 == nil || len(rd.h264.SPS) == 0 || len(rd.h264.PPS) == 0 {
				t.Fatalf("SDP lacks SPS or PPS: %+v", rd.h264)
			}
			checkTimestamps(t, got, want)
			if !rd.isRandomAccess(got[0]) {
				t.Error("the first access unit is not a random access unit")
			}
			keys := 0
			for i, a := range got {
				if rd.isRandomAccess(a) {
					keys++
					if !rd.hasParams(a) {
						t.Errorf("random access unit %d lacks in-band SPS and PPS", i)
					}
				}
			}
			// Presentation times: all distinct; in order unless the file has B-frames.
			ts := make([]int64, len(got))
			for i, a := range got {
				ts[i] = int64(int32(a.ts - got[0].ts))
			}
			if !want.bFrames && !slices.IsSorted(ts) {
				t.Error("RTP timestamps go back in a file without B-frames")
			}
			slices.Sort(ts)
			if len(slices.Compact(ts)) != len(got) {
				t.Error("two access units share an RTP timestamp")
			}
			p := rp.Progress()
			if p.Written != int64(len(got)) || p.Acked != p.Written || p.Corrupt != 0 || p.Skipped != 0 {
				t.Errorf("progress %+v after %d access units", p, len(got))
			}
			if info.Frames != int64(len(got)) {
				t.Errorf("Info.Frames %d, sent %d", info.Frames, len(got))
			}
			t.Logf("%d access units, %d random access, %dx%d", len(got), keys, info.Width, info.Height)
		})
	}
}
