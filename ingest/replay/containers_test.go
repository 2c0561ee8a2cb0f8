//go:build cgo

package replay_test

import (
	"path/filepath"
	"testing"

	"github.com/vigilcam/vigil/ingest/replay"
)

// TestContainers sends H.264 and H.265 from the containers that frame NAL units differently:
// length prefixes with avcC/hvcC records (MP4, Matroska) and Annex B start codes (MPEG-TS, raw
// elementary streams, whose timestamps the demuxer makes up). Every packet arrives, with the
// timestamps ffprobe reports.
func TestContainers(t *testing.T) {
	dir := t.TempDir()
	src := clip(t, "car-detection.mp4")
	hevc := filepath.Join(dir, "hevc.mp4")
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=2", "-c:v", "libx265", "-preset", "ultrafast",
		"-x265-params", "log-level=error:keyint=25", "-pix_fmt", "yuv420p", hevc)
	for _, c := range []struct {
		name, from, codec string
	}{
		{"h264.mkv", src, "h264"},
		{"h264.ts", src, "h264"},
		{"h264.h264", src, "h264"},
		{"hevc.mkv", hevc, "h265"},
		{"hevc.ts", hevc, "h265"},
		{"hevc.hevc", hevc, "h265"},
		{"hevc.mp4", hevc, "h265"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name)
			if path != c.from {
				ffmpeg(t, "-i", c.from, "-map", "0:v", "-c", "copy", path)
			}
			want := probe(t, path)
			rp := open(t, newServer(t), path, replay.Options{})
			if info := rp.Info(); info.Codec != c.codec || info.Transcoded {
				t.Errorf("info %+v, want %s sent as it is", info, c.codec)
			}
			rd, got, err := replayAll(t, rp, nil)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			switch {
			case rd.h264 != nil && (len(rd.h264.SPS) == 0 || len(rd.h264.PPS) == 0),
				rd.h265 != nil && (len(rd.h265.VPS) == 0 || len(rd.h265.SPS) == 0 || len(rd.h265.PPS) == 0):
				t.Error("SDP lacks parameter sets")
			case (rd.h265 != nil) != (c.codec == "h265"):
				t.Errorf("SDP is not %s", c.codec)
			}
			checkTimestamps(t, got, want)
			if !rd.isRandomAccess(got[0]) || !rd.hasParams(got[0]) {
				t.Error("the first access unit is not a random access unit with its parameter sets")
			}
		})
	}
}
