//go:build cgo

package decode_test

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilcam/vigil/ingest/decode"
)

// clips holds what ffprobe says about each shared clip.
var clips = []struct {
	name          string
	codec         string
	width, height int
	fps           float64
	frames        int64
}{
	{"vtest.avi", "msmpeg4v3", 768, 576, 10, 795},
	{"car-detection.mp4", "h264", 768, 432, 12.5, 377},
	{"one-by-one-person-detection.mp4", "h264", 768, 432, 10, 1394},
	{"cars.mp4", "h264", 1280, 720, 30, 268},
	{"dog.mp4", "h264", 640, 360, 25, 244},
}

// within reports whether got is within share of want.
func within(got, want int64, share float64) bool {
	return math.Abs(float64(got-want)) <= share*float64(want)
}

func TestClips(t *testing.T) {
	for _, c := range clips {
		t.Run(c.name, func(t *testing.T) {
			info, frames, decoded := decodeAll(t, clip(t, c.name), decode.Options{})
			t.Logf("%+v; decoded %d", info, decoded)
			if info.Codec != c.codec || info.Width != c.width || info.Height != c.height {
				t.Errorf("info %s %dx%d, want %s %dx%d", info.Codec, info.Width, info.Height, c.codec, c.width, c.height)
			}
			if math.Abs(info.FPS-c.fps) > 0.01 {
				t.Errorf("info FPS %v, want %v", info.FPS, c.fps)
			}
			if !within(info.Frames, c.frames, 0.03) {
				t.Errorf("info Frames %d, want %d", info.Frames, c.frames)
			}
			wantDur := time.Duration(float64(c.frames) / c.fps * float64(time.Second))
			if d := info.Duration - wantDur; d.Abs() > time.Second {
				t.Errorf("info Duration %v, want about %v", info.Duration, wantDur)
			}
			if !within(decoded, c.frames, 0.01) || int64(len(frames)) != decoded {
				t.Errorf("decoded %d and passed on %d frames, want %d of both", decoded, len(frames), c.frames)
			}
			for i, fr := range frames {
				if fr.Seq != int64(i) {
					t.Fatalf("frame %d has Seq %d", i, fr.Seq)
				}
				if fr.Width != c.width || fr.Height != c.height {
					t.Fatalf("frame %d is %dx%d", i, fr.Width, fr.Height)
				}
				if i > 0 && fr.PTS < frames[i-1].PTS {
					t.Fatalf("frame %d: PTS %v after %v", i, fr.PTS, frames[i-1].PTS)
				}
			}
			last := frames[len(frames)-1].PTS
			if want := info.Duration - time.Duration(float64(time.Second)/c.fps); (last - want).Abs() > 100*time.Millisecond {
				t.Errorf("last PTS %v, want about %v", last, want)
			}
		})
	}
}

func TestSampling(t *testing.T) {
	path := clip(t, "car-detection.mp4") // 377 frames 80 ms apart, 30.16 s
	const frameGap = 80 * time.Millisecond
	for _, c := range []struct {
		fps  float64
		want int
	}{
		{0, 377},
		{5, 151},
		{1, 31},
		{12.5, 377},
		{50, 377}, // faster than the source: every frame, no burst
	} {
		t.Run(fmt.Sprintf("fps=%g", c.fps), func(t *testing.T) {
			_, frames, decoded := decodeAll(t, path, decode.Options{FPS: c.fps})
			if decoded != 377 {
				t.Errorf("decoded %d frames, want all 377", decoded)
			}
			if len(frames) < c.want-3 || len(frames) > c.want+3 {
				t.Errorf("passed on %d frames, want %d±3", len(frames), c.want)
			}
			if c.fps == 0 {
				return
			}
			if frames[0].PTS != 0 {
				t.Errorf("first frame at %v, want 0", frames[0].PTS)
			}
			step := time.Duration(float64(time.Second) / c.fps)
			for i := 1; i < len(frames); i++ {
				gap := frames[i].PTS - frames[i-1].PTS
				if gap < step-frameGap || gap > max(step, frameGap)+frameGap {
					t.Fatalf("frames %d and %d are %v apart, want about %v", i-1, i, gap, step)
				}
			}
			if n := len(frames); n > 1 && c.fps < 12.5 {
				mean := (frames[n-1].PTS - frames[0].PTS) / time.Duration(n-1)
				if (mean - step).Abs() > step/50 {
					t.Errorf("mean gap %v, want %v", mean, step)
				}
			}
		})
	}
}

// TestPixels compares the first frame with what the ffmpeg command line makes of it.
func TestPixels(t *testing.T) {
	ffmpeg := ffmpegPath(t)
	for _, name := range []string{"vtest.avi", "car-detection.mp4", "cars.mp4"} {
		t.Run(name, func(t *testing.T) {
			path := clip(t, name)
			f, err := decode.OpenFile(path, decode.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fr, err := f.Next()
			if err != nil {
				t.Fatal(err)
			}
			var ref bytes.Buffer
			cmd := exec.Command(ffmpeg, "-v", "error", "-i", path, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "bgr24", "-")
			cmd.Stdout = &ref
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			if ref.Len() != len(fr.BGR) {
				t.Fatalf("ffmpeg gave %d bytes, we %d", ref.Len(), len(fr.BGR))
			}
			got, want := channelMeans(fr.BGR), channelMeans(ref.Bytes())
			for ch, name := range []string{"B", "G", "R"} {
				if math.Abs(got[ch]-want[ch]) > 2 {
					t.Errorf("mean %s %.2f, ffmpeg %.2f", name, got[ch], want[ch])
				}
			}
			var diff int
			for i, b := range fr.BGR {
				diff += max(int(b), int(ref.Bytes()[i])) - min(int(b), int(ref.Bytes()[i]))
			}
			t.Logf("means BGR %.2f, ffmpeg %.2f; mean absolute difference %.3f levels",
				got, want, float64(diff)/float64(len(fr.BGR)))
		})
	}
}

func channelMeans(bgr []byte) [3]float64 {
	var sum [3]float64
	for i, b := range bgr {
		sum[i%3] += float64(b)
	}
	n := float64(len(bgr) / 3)
	return [3]float64{sum[0] / n, sum[1] / n, sum[2] / n}
}

func TestWall(t *testing.T) {
	t.Run("creation_time", func(t *testing.T) {
		f, err := decode.OpenFile(clip(t, "car-detection.mp4"), decode.Options{FPS: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		created := time.Date(2018, 4, 19, 22, 46, 0, 0, time.UTC)
		if got := f.Info().Created; !got.Equal(created) {
			t.Fatalf("Created %v, want %v", got, created)
		}
		for range 3 {
			fr, err := f.Next()
			if err != nil {
				t.Fatal(err)
			}
			if want := created.Add(fr.PTS); !fr.Wall.Equal(want) {
				t.Errorf("frame %d at %v: Wall %v, want %v", fr.Seq, fr.PTS, fr.Wall, want)
			}
		}
	})
	t.Run("open time", func(t *testing.T) {
		path := clip(t, "cars.mp4") // no creation_time tag
		before := time.Now()
		f, err := decode.OpenFile(path, decode.Options{FPS: 2})
		after := time.Now()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if c := f.Info().Created; !c.IsZero() {
			t.Fatalf("Created %v, want zero", c)
		}
		for range 3 {
			fr, err := f.Next()
			if err != nil {
				t.Fatal(err)
			}
			if fr.Wall.Before(before.Add(fr.PTS)) || fr.Wall.After(after.Add(fr.PTS)) {
				t.Errorf("frame %d at %v: Wall %v, want open time + PTS", fr.Seq, fr.PTS, fr.Wall)
			}
		}
	})
}

func TestCloseTwice(t *testing.T) {
	f, err := decode.OpenFile(clip(t, "dog.mp4"), decode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := f.Next(); err == nil {
		t.Fatal("Next after Close: no error")
	}
}

// BenchmarkDecode decodes whole files with every frame converted to BGR on one goroutine
// (libavcodec may use its own threads), and reports how many times faster than real time that is.
func BenchmarkDecode(b *testing.B) {
	for _, name := range []string{"vtest.avi", "cars.mp4"} {
		b.Run(filepath.Base(name), func(b *testing.B) {
			path := clip(b, name)
			var frames int64
			var fps float64
			for b.Loop() {
				info, _, decoded := decodeAll(b, path, decode.Options{})
				frames += decoded
				fps = info.FPS
			}
			rate := float64(frames) / b.Elapsed().Seconds()
			b.ReportMetric(rate, "frames/s")
			b.ReportMetric(rate/fps, "x_realtime")
		})
	}
}

// TestSizeChange decodes a transport stream whose picture size changes halfway, as a camera's
// does when someone changes its resolution during a recording.
func TestSizeChange(t *testing.T) {
	ffmpeg := ffmpegPath(t)
	dir := t.TempDir()
	var joined []byte
	for _, size := range []string{"320x240", "160x96"} {
		p := filepath.Join(dir, size+".ts")
		cmd := exec.Command(ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=1:rate=25:size="+size,
			"-c:v", "libx264", "-pix_fmt", "yuv420p", p)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("cannot make an H.264 clip: %s: %v\n%s", cmd, err, out)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		joined = append(joined, data...)
	}
	path := filepath.Join(dir, "joined.ts")
	if err := os.WriteFile(path, joined, 0o600); err != nil {
		t.Fatal(err)
	}
	_, frames, _ := decodeAll(t, path, decode.Options{})
	sizes := map[[2]int]int{}
	for _, fr := range frames {
		sizes[[2]int{fr.Width, fr.Height}]++
	}
	if len(frames) != 50 || sizes[[2]int{320, 240}] != 25 || sizes[[2]int{160, 96}] != 25 {
		t.Errorf("decoded %d frames of sizes %v, want 25 of 320x240 then 25 of 160x96", len(frames), sizes)
	}
}
