package rtsp_test

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilcam/vigil/configs"
	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/ingest/replay"
	"github.com/vigilcam/vigil/ingest/rtsp"
	"github.com/vigilcam/vigil/pipeline/motion"
)

// cpuTime is the CPU time this process (self) or its finished children have used.
func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchClip makes the benchmark's camera stream from a shared clip: 640×360 H.264 at 25 fps with
// a keyframe every 2 s, people walking in and out of an indoor scene (motion some of the time).
func benchClip(b *testing.B) string {
	b.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		b.Skip("ffmpeg is not on PATH (deploy/setup.sh installs it)")
	}
	out := filepath.Join(b.TempDir(), "cam.mp4")
	cmd := exec.Command(ffmpeg, "-v", "error", "-i", sharedtest.Clip(b, "one-by-one-person-detection.mp4"),
		"-t", "60", "-an", "-vf", "scale=640:360,fps=25", "-c:v", "libx264", "-preset", "veryfast",
		"-profile:v", "main", "-g", "50", "-bf", "0", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("ffmpeg: %v\n%s", err, msg)
	}
	return out
}

// BenchmarkCameras puts N simulated cameras (640×360 H.264 25 fps, looping in real time from a
// server in this process) through RTSP ingest, decoding at 5 fps analysis and the MOG2 motion
// gate, and reports the largest N whose cameras keep up: every camera delivers at least 95 % of
// its 5 frames a second and the gate sees every one of them (no drop beyond the intended
// decimation from 25 to 5 fps). It also reports CPU per camera, and vigil's decode cost against ffmpeg decoding
// the same file to nothing. Run it with make bench-cameras.
func BenchmarkCameras(b *testing.B) {
	clip := benchClip(b)
	const window = 12 * time.Second
	ratio := decodeRatio(b, clip)
	best := 0
	for _, n := range []int{4, 8, 16, 24, 32, 48, 64, 96} {
		r := runCameras(b, clip, n, window)
		b.Logf("%2d cameras: %5.1f fps delivered per camera (want 5), %4.1f%% dropped, %3.0f ms CPU per camera-second (%.0f%% of a core)",
			n, r.fps, r.dropShare*100, r.cpuPerCamera.Seconds()*1000, r.cpuPerCamera.Seconds()*100)
		if r.fps < 0.95*5 || r.dropShare > 0 {
			break
		}
		best = n
	}
	fmt.Printf("cameras sustained: %d (target 16 with the detector in; %d cores)\n", best, runtime.NumCPU())
	fmt.Printf("decode cost: vigil %.2fx ffmpeg -f null on the same stream (vigil's side includes RTSP)\n", ratio)
	b.ReportMetric(float64(best), "cameras")
	b.ReportMetric(ratio, "x_ffmpeg_decode")
}

type camerasResult struct {
	fps          float64
	dropShare    float64
	cpuPerCamera time.Duration // CPU time per second of one camera's stream
}

func runCameras(b *testing.B, clip string, n int, window time.Duration) camerasResult {
	b.Helper()
	srv, err := replay.New(replay.Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	sups := make([]*ingest.Supervisor, n)
	gated := make([]int64, n)
	mcfg := configs.Default().Pipeline.Motion
	for i := range n {
		r, err := srv.Open(clip, replay.Options{RealTime: true, Loop: true})
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); r.Run(ctx) }()
		url := r.URL()
		sups[i] = ingest.NewSupervisor(ingest.SupervisorConfig{
			Camera:  fmt.Sprint("cam", i),
			Attempt: rtsp.Attempt(rtsp.Config{URL: url, Transport: "tcp", FPS: 5}),
		}, ingest.NewCameraMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
		wg.Add(2)
		go func() { defer wg.Done(); sups[i].Run(ctx) }()
		go func() {
			defer wg.Done()
			g := motion.New(motion.Config{Width: mcfg.Width, History: mcfg.History,
				VarThreshold: mcfg.VarThreshold, MinArea: mcfg.MinArea, Warmup: mcfg.Warmup})
			defer g.Close()
			for {
				f, err := sups[i].Next()
				if err != nil {
					return
				}
				g.Apply(&f)
				gated[i]++
			}
		}()
	}
	// Let every camera connect and reach its first keyframe before measuring.
	time.Sleep(3 * time.Second)
	start, cpu0 := time.Now(), cpuTime(syscall.RUSAGE_SELF)
	in0, drop0 := totals(sups)
	time.Sleep(window)
	in1, drop1 := totals(sups)
	elapsed, cpu := time.Since(start), cpuTime(syscall.RUSAGE_SELF)-cpu0
	cancel()
	wg.Wait()
	res := camerasResult{fps: float64(in1-in0) / float64(n) / elapsed.Seconds()}
	if in1 > in0 {
		res.dropShare = float64(drop1-drop0) / float64(in1-in0)
	}
	res.cpuPerCamera = time.Duration(float64(cpu) / float64(n) / elapsed.Seconds())
	return res
}

func totals(sups []*ingest.Supervisor) (in, dropped int64) {
	for _, s := range sups {
		st := s.State()
		in += st.FramesIn
		dropped += st.Dropped
	}
	return in, dropped
}

// acker takes a lossless replay's frames as fast as they come.
type acker struct {
	rep    *replay.Replay
	units  int64
	frames int
}

func (a *acker) Streaming()         {}
func (a *acker) Frame(ingest.Frame) { a.frames++ }
func (a *acker) AccessUnit()        { a.units++; a.rep.Ack(a.units) }

// decodeRatio reads the file the way vigil reads every source, over RTSP from the replay server
// with every frame decoded and 5 a second converted to BGR, and decodes it with ffmpeg to the
// null muxer; it returns the ratio of their CPU times.
func decodeRatio(b *testing.B, clip string) float64 {
	b.Helper()
	srv, err := replay.New(replay.Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	rep, err := srv.Open(clip, replay.Options{})
	if err != nil {
		b.Fatal(err)
	}
	src, err := rtsp.New(rtsp.Config{URL: rep.URL(), Transport: "tcp", FPS: 5})
	if err != nil {
		b.Fatal(err)
	}
	h := &acker{rep: rep}
	cpu0 := cpuTime(syscall.RUSAGE_SELF)
	go func() {
		if err := rep.Run(context.Background()); err != nil {
			b.Error(err)
		}
		rep.Close() // ends the reader's session
	}()
	src.Run(context.Background(), h)
	vigil := cpuTime(syscall.RUSAGE_SELF) - cpu0
	if h.frames < 290 {
		b.Fatalf("read %d frames of a 60 s clip at 5 fps", h.frames)
	}
	child0 := cpuTime(syscall.RUSAGE_CHILDREN)
	if msg, err := exec.Command("ffmpeg", "-v", "error", "-i", clip, "-f", "null", "-").CombinedOutput(); err != nil {
		b.Fatalf("ffmpeg: %v\n%s", err, msg)
	}
	ffmpeg := cpuTime(syscall.RUSAGE_CHILDREN) - child0
	b.Logf("reading 60 s of 640×360 25 fps: vigil (RTSP replay, decode, 5 fps to BGR) %v CPU, ffmpeg -f null %v CPU",
		vigil.Round(time.Millisecond), ffmpeg.Round(time.Millisecond))
	return vigil.Seconds() / ffmpeg.Seconds()
}
