package rtsp_test

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/ingest/replay"
	"github.com/vigilcam/vigil/ingest/rtsp"
	"github.com/vigilcam/vigil/ingest/rtsp/rtsptest"
)

// camera simulates a live camera: an in-process gortsplib server looping a clip in real time at a
// fixed address and path, so it can be stopped and started again under the same URL.
type camera struct {
	t    testing.TB
	clip string
	addr string
	srv  *replay.Server
	stop context.CancelFunc
	done chan struct{}
}

func newCamera(t testing.TB, clip string) *camera {
	c := &camera{t: t, clip: sharedtest.Clip(t, clip), addr: fmt.Sprintf("127.0.0.1:%d", rtsptest.FreePort(t))}
	c.start()
	t.Cleanup(c.halt)
	return c
}

func (c *camera) url() string { return "rtsp://" + c.addr + "/replay/cam" }

func (c *camera) start() {
	c.t.Helper()
	srv, err := replay.New(replay.Config{Address: c.addr}, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	r, err := srv.Open(c.clip, replay.Options{RealTime: true, Loop: true, Name: "cam"})
	if err != nil {
		srv.Close()
		c.t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	c.srv, c.stop, c.done = srv, stop, make(chan struct{})
	go func() {
		defer close(c.done)
		r.Run(ctx)
	}()
}

func (c *camera) halt() {
	if c.srv == nil {
		return
	}
	c.stop()
	<-c.done
	c.srv.Close()
	c.srv = nil
}

// TestInProcessServer reads a clip from a gortsplib server in this process over TCP and over the
// automatic transport (the server refuses UDP, so automatic must fall back): frames decode at the
// analysis rate, and their times only move forward.
func TestInProcessServer(t *testing.T) {
	cam := newCamera(t, "one-by-one-person-detection.mp4") // 768×432, 10 fps
	for _, transport := range []string{"tcp", "auto"} {
		t.Run(transport, func(t *testing.T) {
			src := newSource(t, rtsp.Config{URL: cam.url(), Transport: transport, FPS: 4})
			c := newCollector()
			if err := run(t, src, c, 6*time.Second); err != nil {
				t.Fatalf("attempt ended early: %v", err)
			}
			frames := c.snapshot()
			if len(frames) < 12 {
				t.Fatalf("%d frames in 6 s at 4 fps", len(frames))
			}
			for i, f := range frames {
				if f.Width != 768 || f.Height != 432 {
					t.Fatalf("frame %d is %dx%d", i, f.Width, f.Height)
				}
				if i > 0 && (f.PTS <= frames[i-1].PTS || f.Wall.Before(frames[i-1].Wall)) {
					t.Fatalf("frame %d at %v / %v, after %v / %v", i, f.PTS, f.Wall, frames[i-1].PTS, frames[i-1].Wall)
				}
			}
			n := len(frames)
			mean := (frames[n-1].PTS - frames[0].PTS) / time.Duration(n-1)
			if mean < 240*time.Millisecond || mean > 260*time.Millisecond {
				t.Errorf("mean gap %v at 4 fps of a 10 fps stream, want 250 ms", mean)
			}
			// Every picture is decoded, whatever the analysis rate.
			if st := src.Stats(); st.Decoded < int64(n)*2 {
				t.Errorf("decoded %d pictures for %d frames passed on at 4 of 10 fps", st.Decoded, n)
			}
		})
	}
}

// TestH265 reads an H.265 camera: the track, its VPS, SPS and PPS from the SDP, and decoding.
func TestH265(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("ffmpeg is not on PATH (deploy/setup.sh installs it)")
	}
	clip := filepath.Join(t.TempDir(), "hevc.mp4")
	cmd := exec.Command(ffmpeg, "-v", "error", "-i", sharedtest.Clip(t, "dog.mp4"), "-an", "-t", "4", "-vf", "scale=320:180",
		"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=none:keyint=25", "-tag:v", "hvc1", clip)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, msg)
	}
	srv, err := replay.New(replay.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	r, err := srv.Open(clip, replay.Options{RealTime: true, Loop: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Info().Codec != "h265" {
		t.Fatalf("replay sends %s, want h265 as it is", r.Info().Codec)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	c := newCollector()
	if err := run(t, newSource(t, rtsp.Config{URL: r.URL(), Transport: "tcp", FPS: 5}), c, 4*time.Second); err != nil {
		t.Fatal(err)
	}
	frames := c.snapshot()
	if len(frames) < 10 || frames[0].Width != 320 || frames[0].Height != 180 {
		t.Fatalf("%d frames in 4 s at 5 fps; first %+v", len(frames), frames[0])
	}
}

// TestFlaps stops and restarts the camera's server 20 times under a running supervisor: it
// reconnects every time, frames resume every time, and neither goroutines nor memory grow.
func TestFlaps(t *testing.T) {
	if testing.Short() {
		t.Skip("20 reconnects take about a minute")
	}
	cam := newCamera(t, "one-by-one-person-detection.mp4") // a keyframe every second
	baseline := runtime.NumGoroutine()
	sup := ingest.NewSupervisor(ingest.SupervisorConfig{
		Camera: "flappy", MinBackoff: 50 * time.Millisecond, MaxBackoff: 400 * time.Millisecond,
		Attempt: rtsp.Attempt(rtsp.Config{URL: cam.url(), Transport: "tcp", FPS: 5, Timeout: 3 * time.Second}),
	}, ingest.NewCameraMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); sup.Run(ctx) }()
	go func() { // the pipeline's end: take frames as they come
		defer wg.Done()
		for {
			if _, err := sup.Next(); err != nil {
				return
			}
		}
	}()

	resumed := func(after int64) ingest.State {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			st := sup.State()
			if st.Phase == ingest.Streaming && st.FramesIn >= after+3 {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("frames did not resume: %+v", st)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	st := resumed(0)
	var heap5 uint64
	for flap := 1; flap <= 20; flap++ {
		cam.halt()
		cam.start()
		st = resumed(st.FramesIn)
		if flap == 5 {
			heap5 = heapInUse()
		}
	}
	if st.Reconnects < 20 {
		t.Errorf("%d reconnects after 20 flaps", st.Reconnects)
	}
	if grown := int64(heapInUse()) - int64(heap5); grown > 16<<20 {
		t.Errorf("heap grew by %d MiB from flap 5 to flap 20", grown>>20)
	}
	t.Logf("after 20 flaps: %+v", st)
	cancel()
	wg.Wait()
	cam.halt()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before the camera was watched:\n%s", runtime.NumGoroutine(), baseline,
				buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
