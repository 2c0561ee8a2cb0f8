//go:build cgo

package decode_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/ingest/decode"
)

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

func TestStreamMatchesFileDecoder(t *testing.T) {
	path := clip(t, "car-detection.mp4") // H.264 Baseline: no B-frames, 12.5 fps
	aus := elementary(t, decode.H264, path)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	frames := feed(t, newStream(t, decode.H264, nil, decode.StreamOptions{}), aus, start)
	if len(frames) != len(aus) {
		t.Fatalf("%d access units gave %d frames", len(aus), len(frames))
	}
	for i, f := range frames {
		want := time.Duration(i) * 80 * time.Millisecond
		if f.Seq != int64(i) || f.PTS != want || !f.Wall.Equal(start.Add(want)) || f.Width != 768 || f.Height != 432 {
			t.Fatalf("frame %d: seq %d pts %v wall %v size %dx%d", i, f.Seq, f.PTS, f.Wall, f.Width, f.Height)
		}
	}
	file, err := decode.OpenFile(path, decode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for i := range 30 {
		ref, err := file.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ref.BGR, frames[i].BGR) {
			t.Fatalf("frame %d differs from the file decoder's", i)
		}
	}
}

func TestStreamAnalysisRate(t *testing.T) {
	aus := elementary(t, decode.H264, clip(t, "car-detection.mp4"))
	s := newStream(t, decode.H264, nil, decode.StreamOptions{FPS: 5})
	frames := feed(t, s, aus, time.Now())
	// 120 access units 80 ms apart span 9.6 s: 48 frames at 5 fps, one every 200 ms on average.
	if len(frames) < 47 || len(frames) > 49 {
		t.Errorf("passed on %d frames, want 48±1", len(frames))
	}
	for i := 1; i < len(frames); i++ {
		if gap := frames[i].PTS - frames[i-1].PTS; gap < 160*time.Millisecond || gap > 240*time.Millisecond {
			t.Fatalf("frames %d and %d are %v apart", i-1, i, gap)
		}
	}
	if decoded, _, _ := s.Stats(); decoded != int64(len(aus)) {
		t.Errorf("decoded %d of %d access units: every one must be decoded", decoded, len(aus))
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
