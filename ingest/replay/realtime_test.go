//go:build cgo

package replay_test

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilcam/vigil/ingest/replay"
)

// TestRealTimeThirdParty has ffprobe, whose RTSP client shares no code with gortsplib, read a
// looping real-time replay: it must recognise H.264 at the clip's size.
func TestRealTimeThirdParty(t *testing.T) {
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Skipf("ffprobe not on PATH: %v", err)
	}
	rp := open(t, newServer(t), clip(t, "dog.mp4"), replay.Options{RealTime: true, Loop: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := run(ctx, rp)
	// -timeout (µs) bounds each socket read, so a silent server fails the test instead of hanging it.
	out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-rtsp_transport", "tcp", "-timeout", "10000000",
		"-show_streams", "-of", "json", rp.URL()).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", rp.URL(), err)
	}
	var doc struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	if len(doc.Streams) != 1 || doc.Streams[0].CodecName != "h264" || doc.Streams[0].Width != 640 || doc.Streams[0].Height != 360 {
		t.Errorf("ffprobe sees %+v, want one h264 stream of 640x360", doc.Streams)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("run after cancel: %v", err)
	}
}

// TestRealTimeLoop reads a one-second clip looping in real time: the timestamps keep rising by
// one frame across the loops, every pass starts with a random access unit that carries its
// parameter sets, and the replay never runs ahead of the clock.
func TestRealTimeLoop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "second.mp4")
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=1", "-c:v", "libx264",
		"-preset", "ultrafast", "-bf", "0", "-g", "10", "-pix_fmt", "yuv420p", path)
	rp := open(t, newServer(t), path, replay.Options{RealTime: true, Loop: true})
	if f := rp.Info().Frames; f != 25 {
		t.Fatalf("Info.Frames %d, want 25", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rd, done := playing(t, ctx, rp, 0)
	// A reader that joins a live stream starts at its next random access unit.
	var got []au
	var first time.Time
	for len(got) < 60 {
		select {
		case a := <-rd.aus:
			if len(got) == 0 && !rd.isRandomAccess(a) {
				continue
			}
			if len(got) == 0 {
				first = time.Now()
			}
			got = append(got, a)
		case err := <-done:
			t.Fatalf("run ended: %v", err)
		case <-ctx.Done():
			t.Fatalf("received %d access units", len(got))
		}
	}
	took := time.Since(first)
	for i := 1; i < len(got); i++ {
		if step := int32(got[i].ts - got[i-1].ts); step != 3600 {
			t.Fatalf("access units %d and %d are %d ticks apart, want 3600 (one frame at 25 fps)", i-1, i, step)
		}
		if rd.isRandomAccess(got[i]) && !rd.hasParams(got[i]) {
			t.Errorf("random access unit %d lacks in-band SPS and PPS", i)
		}
	}
	// Load can only slow the replay down; 59 frame intervals take at least 2.36 s of clock.
	if least := 59 * 40 * time.Millisecond; took < least-40*time.Millisecond {
		t.Errorf("60 frames arrived in %v, faster than real time (%v)", took, least)
	}
	if p := rp.Progress(); p.Loops < 2 {
		t.Errorf("progress %+v after 60 frames of a 25-frame clip, want 2 loops", p)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("run after cancel: %v", err)
	}
}
