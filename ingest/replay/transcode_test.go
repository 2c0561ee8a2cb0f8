//go:build cgo

package replay_test

import (
	"testing"

	"github.com/vigilcam/vigil/ingest/replay"
)

// TestTranscode replays vtest.avi (MS-MPEG4v3, which RTP cannot carry) as H.264 re-encoded frame
// for frame: as many access units as the file has packets, with their timestamps, an IDR picture
// first and about every two seconds after.
func TestTranscode(t *testing.T) {
	path := clip(t, "vtest.avi")
	want := probe(t, path)
	rp := open(t, newServer(t), path, replay.Options{})
	info := rp.Info()
	if info.Codec != "h264" || info.Source != "msmpeg4v3" || !info.Transcoded || info.Width != 768 || info.Height != 576 {
		t.Errorf("info %+v, want msmpeg4v3 768x576 transcoded to h264", info)
	}
	rd, got, err := replayAll(t, rp, nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if rd.h264 == nil || len(rd.h264.SPS) == 0 || len(rd.h264.PPS) == 0 {
		t.Fatalf("SDP lacks SPS or PPS: %+v", rd.h264)
	}
	checkTimestamps(t, got, want)
	var keys []int
	for i, a := range got {
		if rd.isRandomAccess(a) {
			keys = append(keys, i)
			if !rd.hasParams(a) {
				t.Errorf("IDR access unit %d lacks in-band SPS and PPS", i)
			}
		}
	}
	if len(keys) == 0 || keys[0] != 0 {
		t.Fatalf("random access units at %v, want the first one first", keys)
	}
	// libx264 may start a GOP early at a scene cut, never late.
	for i := 1; i < len(keys); i++ {
		if gap := keys[i] - keys[i-1]; gap > 20 {
			t.Errorf("IDR pictures %d and %d are %d frames apart, want at most 2 s (20 frames)", keys[i-1], keys[i], gap)
		}
	}
	if p := rp.Progress(); p.Written != 795 || p.Corrupt != 0 {
		t.Errorf("progress %+v, want 795 written", p)
	}
	t.Logf("%d access units, %d IDR, %d NAL units in the largest", len(got), len(keys), maxUnits(got))
}

func maxUnits(aus []au) int {
	n := 0
	for _, a := range aus {
		n = max(n, len(a.units))
	}
	return n
}
