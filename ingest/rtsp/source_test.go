package rtsp_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format"

	"github.com/vigilcam/vigil/ingest/rtsp"
	"github.com/vigilcam/vigil/ingest/rtsp/rtsptest"
)

func newSource(t testing.TB, cfg rtsp.Config) *rtsp.Source {
	t.Helper()
	s, err := rtsp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestVLC reads a clip from VLC's RTSP server, which offers UDP only: the automatic transport
// must get there, and the frames come at the analysis rate with times that only move forward.
func TestVLC(t *testing.T) {
	url := rtsptest.VLC(t, "car-detection.mp4")
	src := newSource(t, rtsp.Config{URL: url, FPS: 5})
	c := newCollector()
	if err := run(t, src, c, 8*time.Second); err != nil {
		t.Fatalf("attempt ended early: %v", err)
	}
	frames := c.snapshot()
	if c.streaming != 1 || len(frames) < 15 {
		t.Fatalf("streaming called %d times, %d frames in 8 s; want once and at least 15", c.streaming, len(frames))
	}
	for i, f := range frames {
		if f.Width != 768 || f.Height != 432 || f.Seq != int64(i) {
			t.Fatalf("frame %d: %dx%d seq %d", i, f.Width, f.Height, f.Seq)
		}
		if i == 0 {
			continue
		}
		gap := f.PTS - frames[i-1].PTS
		if gap < 120*time.Millisecond || gap > 400*time.Millisecond || f.Wall.Before(frames[i-1].Wall) {
			t.Fatalf("frames %d and %d: %v apart in stream time, wall %v then %v", i-1, i, gap, frames[i-1].Wall, f.Wall)
		}
	}
	if st := src.Stats(); st.Decoded < int64(len(frames)) {
		t.Errorf("decoded %d pictures but passed on %d", st.Decoded, len(frames))
	}
}

func TestBadPeers(t *testing.T) {
	const secret = "hunter2-s3cret"
	sdp := func(body string) func(string, string) string {
		return func(method, cseq string) string {
			if method != "DESCRIBE" {
				return fmt.Sprintf("RTSP/1.0 200 OK\r\nCSeq: %s\r\nPublic: DESCRIBE, SETUP, PLAY\r\n\r\n", cseq)
			}
			return fmt.Sprintf("RTSP/1.0 200 OK\r\nCSeq: %s\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
				cseq, len(body), body)
		}
	}
	h264 := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
	locked := serveDescription(t, h264, "admin", secret)
	cases := []struct {
		name, url, want string
	}{
		{"unreachable host", fmt.Sprintf("rtsp://127.0.0.1:%d/cam", rtsptest.FreePort(t)), "connection refused"},
		{"wrong credentials", strings.Replace(locked, "rtsp://", "rtsp://admin:"+secret+"x@", 1), "wrong or missing credentials"},
		{"no credentials", locked, "wrong or missing credentials"},
		{"garbage", rawServer(t, func(string, string) string { return "\x00\xffHTTP/1.1 418 teapot\r\n\r\n<html>" }), "describe"},
		{"truncated SDP", rawServer(t, sdp("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nm=video 0 RTP/AV")), "describe"},
		{"unsupported codec", serveDescription(t, &format.MJPEG{}, "", ""), "no H.264 or H.265 video track (the stream offers M-JPEG)"},
	}
	if testing.Short() {
		t.Log("skipping VLC's wrong path in -short mode")
	} else {
		cases = append(cases, struct{ name, url, want string }{"wrong path", strings.Replace(rtsptest.VLC(t, "dog.mp4"), "/cam", "/nope", 1), "no such stream"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := newSource(t, rtsp.Config{URL: c.url, Timeout: 2 * time.Second})
			start := time.Now()
			err := run(t, src, newCollector(), 15*time.Second)
			if err == nil {
				t.Fatal("attempt still running after 15 s")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows the password", err)
			}
			t.Logf("%s after %v: %v", c.name, time.Since(start).Round(time.Millisecond), err)
		})
	}
}

// TestRightCredentials: with the right user and password the attempt gets past DESCRIBE, SETUP
// and PLAY of a server that demands them, and only ends because this server sends no frames.
func TestRightCredentials(t *testing.T) {
	url := serveDescription(t, &format.H264{PayloadTyp: 96, PacketizationMode: 1}, "admin", "hunter2 s3cret")
	src := newSource(t, rtsp.Config{URL: strings.Replace(url, "rtsp://", "rtsp://admin:hunter2%20s3cret@", 1),
		Transport: "tcp", Timeout: time.Second})
	err := run(t, src, newCollector(), 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "read: ") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("attempt with the right credentials: %v; want it to reach reading, without the password in the error", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ url, transport, want string }{
		{"http://cam/stream", "", "scheme"},
		{"rtsp://cam/stream", "quic", "transport"},
		{"rtsp://admin:pa ss@cam:bad/x", "", "xxxxx"},
	} {
		_, err := rtsp.New(rtsp.Config{URL: c.url, Transport: c.transport})
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "pa ss") {
			t.Errorf("New(%q, %q): %v, want an error saying %q without the password", c.url, c.transport, err, c.want)
		}
	}
	if _, err := rtsp.New(rtsp.Config{URL: "rtsp://cam/x"}); err != nil {
		t.Error(err)
	}
	if !errors.Is(fmt.Errorf("x: %w", rtsp.ErrNoVideo), rtsp.ErrNoVideo) {
		t.Error("ErrNoVideo does not unwrap")
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"rtsp://admin:secret@10.0.0.5:554/h264": "rtsp://admin:xxxxx@10.0.0.5:554/h264",
		"rtsp://10.0.0.5/h264":                  "rtsp://10.0.0.5/h264",
		"rtsp://admin@10.0.0.5/h264":            "rtsp://admin@10.0.0.5/h264",
		"rtsp://a:b c@%zz/x":                    "rtsp://xxxxx@%zz/x",
	} {
		if got := rtsp.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
