//go:build cgo

package decode_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/ingest/decode"
)

func clip(t testing.TB, name string) string { return sharedtest.Clip(t, name) }

func ffmpegPath(t testing.TB) string {
	p, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skipf("ffmpeg is not on PATH (deploy/setup.sh installs it): %v", err)
	}
	return p
}

// elementary has ffmpeg write a clip's video as an Annex-B elementary stream with an access unit
// delimiter before every access unit, and splits it into access units the way an RTP
// depacketizer hands them over: NAL units without start codes, delimiters dropped. encode empty
// copies the stream as it is.
func elementary(t testing.TB, codec decode.Codec, path string, encode ...string) [][][]byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "stream")
	args := []string{"-v", "error", "-i", path, "-an", "-frames:v", "120"}
	if len(encode) == 0 {
		encode = []string{"-c:v", "copy"}
	}
	args = append(args, encode...)
	if codec == decode.H265 {
		args = append(args, "-bsf:v", "hevc_mp4toannexb,hevc_metadata=aud=insert", "-f", "hevc", out)
	} else {
		args = append(args, "-bsf:v", "h264_mp4toannexb,h264_metadata=aud=insert", "-f", "h264", out)
	}
	if msg, err := exec.Command(ffmpegPath(t), args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, msg)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(data); err != nil {
		t.Fatal(err)
	}
	var aus [][][]byte
	for _, n := range nalus {
		aud := len(n) > 0 && n[0]&0x1f == byte(h264.NALUTypeAccessUnitDelimiter)
		if codec == decode.H265 {
			aud = len(n) > 0 && h265.NALUType((n[0]>>1)&0x3f) == h265.NALUType_AUD_NUT
		}
		if aud {
			aus = append(aus, nil)
			continue
		}
		aus[len(aus)-1] = append(aus[len(aus)-1], n)
	}
	return aus
}

// feed decodes every access unit, 80 ms apart, and returns all frames, flushed at the end.
func feed(t testing.TB, s *decode.Stream, aus [][][]byte, start time.Time) []ingest.Frame {
	t.Helper()
	var frames []ingest.Frame
	for i, au := range aus {
		pts := time.Duration(i) * 80 * time.Millisecond
		got, err := s.Decode(au, pts, start.Add(pts))
		if err != nil {
			t.Fatalf("access unit %d: %v", i, err)
		}
		frames = append(frames, got...)
	}
	rest, err := s.Flush()
	if err != nil {
		t.Fatal(err)
	}
	return append(frames, rest...)
}

func newStream(t testing.TB, codec decode.Codec, params [][]byte, opts decode.StreamOptions) *decode.Stream {
	t.Helper()
	s, err := decode.NewStream(codec, params, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestStreamPixels decodes the first frames of clips and compares them with what the ffmpeg
// command line makes of the same stream: same size, same colours.
func TestStreamPixels(t *testing.T) {
	ffmpeg := ffmpegPath(t)
	for _, name := range []string{"car-detection.mp4", "cars.mp4", "dog.mp4"} {
		t.Run(name, func(t *testing.T) {
			path := clip(t, name)
			aus := elementary(t, decode.H264, path)
			start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			frames := feed(t, newStream(t, decode.H264, nil, decode.StreamOptions{}), aus, start)
			if len(frames) != len(aus) {
				t.Fatalf("%d access units gave %d frames", len(aus), len(frames))
			}
			for i, f := range frames {
				// feed stamps units in decode order, which is display order only without B-frames:
				// in car-detection.mp4 each picture must come out with its own unit's wall clock.
				if f.Seq != int64(i) || (name == "car-detection.mp4" && !f.Wall.Equal(start.Add(f.PTS))) {
					t.Fatalf("frame %d: seq %d pts %v wall %v", i, f.Seq, f.PTS, f.Wall)
				}
			}
			var ref bytes.Buffer
			cmd := exec.Command(ffmpeg, "-v", "error", "-i", path, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "bgr24", "-")
			cmd.Stdout = &ref
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			fr := frames[0]
			if ref.Len() != len(fr.BGR) {
				t.Fatalf("ffmpeg gave %d bytes, we %d (%dx%d)", ref.Len(), len(fr.BGR), fr.Width, fr.Height)
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

func TestStreamAnalysisRate(t *testing.T) {
	aus := elementary(t, decode.H264, clip(t, "car-detection.mp4")) // 120 units fed 80 ms apart: 9.6 s
	for _, c := range []struct {
		fps  float64
		want int
	}{
		{0, 120},
		{5, 48},
		{1, 10},
		{12.5, 120},
		{50, 120}, // faster than the source: every frame, no burst
	} {
		t.Run(fmt.Sprintf("fps=%g", c.fps), func(t *testing.T) {
			s := newStream(t, decode.H264, nil, decode.StreamOptions{FPS: c.fps})
			frames := feed(t, s, aus, time.Now())
			if len(frames) < c.want-1 || len(frames) > c.want+1 {
				t.Errorf("passed on %d frames, want %d±1", len(frames), c.want)
			}
			if decoded, _, _ := s.Stats(); decoded != int64(len(aus)) {
				t.Errorf("decoded %d of %d access units: every one must be decoded", decoded, len(aus))
			}
			if c.fps == 0 || len(frames) < 2 {
				return
			}
			step := time.Duration(float64(time.Second) / c.fps)
			const frameGap = 80 * time.Millisecond
			for i := 1; i < len(frames); i++ {
				if gap := frames[i].PTS - frames[i-1].PTS; gap < step-frameGap || gap > max(step, frameGap)+frameGap {
					t.Fatalf("frames %d and %d are %v apart, want about %v", i-1, i, gap, step)
				}
			}
		})
	}
}

func TestStreamWaitsForRandomAccess(t *testing.T) {
	// Re-encoded with a keyframe every 25 frames so that joining late has something to wait for.
	aus := elementary(t, decode.H264, clip(t, "cars.mp4"), "-c:v", "libx264", "-preset", "ultrafast",
		"-g", "25", "-bf", "0", "-s", "320x180")
	s := newStream(t, decode.H264, nil, decode.StreamOptions{})
	frames := feed(t, s, aus[10:], time.Now()) // joins 10 units in, as after a reconnect
	_, skipped, _ := s.Stats()
	if skipped != 15 || len(frames) != len(aus)-25 {
		t.Errorf("joined at unit 10 with keyframes at 0, 25, 50…: skipped %d units, gave %d frames; want 15 skipped and %d frames",
			skipped, len(frames), len(aus)-25)
	}
	key := newStream(t, decode.H264, nil, decode.StreamOptions{KeyframesOnly: true})
	frames = feed(t, key, aus, time.Now())
	decoded, skipped, _ := key.Stats()
	if len(frames) != 5 || decoded != 5 || skipped != int64(len(aus)-5) {
		t.Errorf("keyframes only: %d frames, %d decoded, %d skipped of %d; want the 5 keyframes", len(frames), decoded, skipped, len(aus))
	}
}

func TestStreamH265WithParamsFromSDP(t *testing.T) {
	aus := elementary(t, decode.H265, clip(t, "dog.mp4"), "-c:v", "libx265", "-preset", "ultrafast",
		"-x265-params", "log-level=none:bframes=0", "-s", "320x180")
	// Move the parameter sets out of the stream, as a camera that announces them only in the SDP.
	var params [][]byte
	for i, au := range aus {
		var rest [][]byte
		for _, n := range au {
			switch h265.NALUType((n[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT, h265.NALUType_SPS_NUT, h265.NALUType_PPS_NUT:
				if i == 0 {
					params = append(params, n)
				}
			default:
				rest = append(rest, n)
			}
		}
		aus[i] = rest
	}
	if len(params) != 3 {
		t.Fatalf("found %d parameter sets, want VPS, SPS and PPS", len(params))
	}
	frames := feed(t, newStream(t, decode.H265, params, decode.StreamOptions{}), aus, time.Now())
	if len(frames) != len(aus) || frames[0].Width != 320 || frames[0].Height != 180 {
		t.Errorf("%d access units gave %d frames (first %dx%d)", len(aus), len(frames), frames[0].Width, frames[0].Height)
	}
	// Without them nothing decodes, and a long run of refused units ends the stream with an error.
	bare := newStream(t, decode.H265, nil, decode.StreamOptions{})
	var err error
	for i := 0; i < len(aus) && err == nil; i++ {
		var frames []ingest.Frame
		if frames, err = bare.Decode(aus[i], time.Duration(i)*40*time.Millisecond, time.Now()); len(frames) > 0 {
			t.Fatalf("access unit %d decoded without parameter sets", i)
		}
	}
	if err == nil {
		t.Errorf("%d access units refused without an error", len(aus))
	}
}

func TestStreamRejectsUnknownCodec(t *testing.T) {
	if _, err := decode.NewStream("mjpeg", nil, decode.StreamOptions{}); !errors.Is(err, decode.ErrUnsupportedCodec) {
		t.Errorf("mjpeg: %v, want ErrUnsupportedCodec", err)
	}
}

// FuzzStream feeds hostile access units, as a broken or malicious camera could send them: the
// decoder may refuse them, never crash.
func FuzzStream(f *testing.F) {
	f.Add([]byte{0x67, 0x42, 0, 0x1e, 0x95, 0xa8}, []byte{0x65, 0x88, 0x84, 0, 0x33, 0xff}, false)
	f.Add([]byte{0x40, 0x01, 0x0c}, []byte{0x26, 0x01, 0xaf, 0x06}, true)
	f.Fuzz(func(t *testing.T, a, b []byte, hevc bool) {
		codec := decode.H264
		if hevc {
			codec = decode.H265
		}
		s, err := decode.NewStream(codec, [][]byte{a}, decode.StreamOptions{FPS: 5})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for i := range 3 {
			s.Decode([][]byte{a, b, append([]byte{0x65}, b...)}, time.Duration(i)*time.Second, time.Now())
		}
		s.Flush()
	})
}

// rss reads this process's resident set size from /proc/self/statm.
func rss(t *testing.T) int64 {
	runtime.GC()
	debug.FreeOSMemory()
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("cannot read resident memory: %v", err)
	}
	var size, resident int64
	if _, err := fmt.Sscan(string(data), &size, &resident); err != nil {
		t.Fatalf("/proc/self/statm %q: %v", data, err)
	}
	return resident * int64(os.Getpagesize())
}

// TestStreamLeak catches libav objects left behind by Close, as a camera that reconnects for
// months would pile them up: one leaked 720p H.264 decoder with its picture pool holds
// megabytes, so 200 of them would stand far above the bound.
func TestStreamLeak(t *testing.T) {
	aus := elementary(t, decode.H264, clip(t, "cars.mp4"))[:3]
	cycle := func() {
		s, err := decode.NewStream(decode.H264, nil, decode.StreamOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i, au := range aus {
			if _, err := s.Decode(au, time.Duration(i)*time.Second/30, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if frames, err := s.Flush(); err != nil || len(frames) == 0 {
			t.Fatalf("flush: %d frames, %v", len(frames), err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for range 20 { // let allocators and thread stacks reach their steady size
		cycle()
	}
	before := rss(t)
	for range 200 {
		cycle()
	}
	grown := rss(t) - before
	t.Logf("resident memory grew by %.1f MiB over 200 open/decode/close cycles", float64(grown)/(1<<20))
	if grown > 64<<20 {
		t.Errorf("resident memory grew by %d MiB over 200 cycles", grown>>20)
	}
}
