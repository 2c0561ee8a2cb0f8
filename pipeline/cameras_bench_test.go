package pipeline_test

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/ingest/replay"
	"github.com/vigilcam/vigil/ingest/rtsp"
	"github.com/vigilcam/vigil/pipeline"
)

// BenchmarkCamerasWithDetector runs N simulated cameras (640×360 H.264 at 25 fps, a fifth of the
// time a person walking up to a table, the rest an empty scene) each through its own supervisor
// and live pipeline at 5 fps, all sharing one detector with a session per core, and reports the
// largest N for which no frame is dropped beyond the decimation to 5 fps, with the share of
// frames that reached the detector. Target (DESIGN.md §8): 16 cameras on 2 cores at 20 % motion.
// Run with make bench-pipeline.
func BenchmarkCamerasWithDetector(b *testing.B) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		b.Skip("ffmpeg is not on PATH (deploy/setup.sh installs it)")
	}
	clip := filepath.Join(b.TempDir(), "cam.mp4")
	// 20 % motion duty: 12 s of a woman walking up to the table, then 48 s of the empty table
	// (the clip's first frame held, with sensor-like noise), looped.
	graph := "[0:v]scale=640:360,fps=25,split[a][b];" +
		"[a]trim=start=3:end=15,setpts=PTS-STARTPTS[walk];" +
		"[b]trim=end=0.04,setpts=PTS-STARTPTS,loop=loop=1199:size=1:start=0,setpts=N/25/TB,noise=alls=4:allf=t[still];" +
		"[walk][still]concat=n=2:v=1[out]"
	if msg, err := exec.Command(ffmpeg, "-v", "error", "-i", sharedtest.Clip(b, "one-by-one-person-detection.mp4"),
		"-filter_complex", graph, "-map", "[out]", "-an", "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-bf", "0",
		clip).CombinedOutput(); err != nil {
		b.Fatalf("ffmpeg: %v\n%s", err, msg)
	}
	best := 0
	for _, n := range []int{8, 16, 24} {
		reg := prometheus.NewRegistry()
		p := newPipeline(b, reg, &published{}, time.Second)
		in, dropped, detected := runLive(b, p, reg, clip, n, 30*time.Second)
		share := 0.0
		if in > 0 {
			share = float64(dropped) / float64(in)
		}
		fmt.Printf("%2d cameras: %5.1f fps in per camera, %4.1f%% dropped, %4.1f%% of frames reached the detector\n",
			n, float64(in)/float64(n)/30, 100*share, 100*float64(detected)/float64(max(in, 1)))
		if share > 0.01 {
			break
		}
		best = n
	}
	fmt.Printf("cameras sustained with the detector: %d (target 16)\n", best)
	b.ReportMetric(float64(best), "cameras")
}

// runLive watches n simulated cameras for d and returns the frames the cameras delivered, those
// dropped (by a camera's mailbox or a pipeline's ingress), and those the detector saw.
func runLive(b *testing.B, p *pipeline.Pipeline, reg *prometheus.Registry, clip string, n int, d time.Duration) (in, dropped, detected int64) {
	srv, err := replay.New(replay.Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	sups := make([]*ingest.Supervisor, n)
	camReg := prometheus.NewRegistry()
	metrics := ingest.NewCameraMetrics(camReg)
	// Cameras start spread over the clip's minute, so their moving stretches do not all fall in
	// the same seconds, as they would not on real cameras.
	const loop = 60 * time.Second
	for i := range n {
		r, err := srv.Open(clip, replay.Options{RealTime: true, Loop: true})
		if err != nil {
			b.Fatal(err)
		}
		delay := time.Duration(i) * loop / time.Duration(n)
		go func() {
			select {
			case <-time.After(delay):
				r.Run(ctx)
			case <-ctx.Done():
			}
		}()
		url := r.URL()
		sups[i] = ingest.NewSupervisor(ingest.SupervisorConfig{Camera: fmt.Sprint("cam", i),
			Attempt: rtsp.Attempt(rtsp.Config{URL: url, Transport: "tcp", FPS: 5})}, metrics, slog.New(slog.DiscardHandler))
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			go sups[i].Run(ctx)
			p.Run(ctx, sups[i], pipeline.Job{Tenant: "t", VideoID: int64(i + 1), Source: "cam", Key: []byte{byte(i)}, Live: true})
		}()
	}
	time.Sleep(loop + 3*time.Second) // every camera started, connected, first keyframes decoded
	in0, drop0 := liveCounts(b, sups, reg)
	det0 := counter(b, reg, "vigil_stage_frames_total", "detect")
	time.Sleep(d)
	in1, drop1 := liveCounts(b, sups, reg)
	det1 := counter(b, reg, "vigil_stage_frames_total", "detect")
	cancel()
	wg.Wait()
	return in1 - in0, drop1 - drop0, int64(det1 - det0)
}

func liveCounts(b *testing.B, sups []*ingest.Supervisor, reg *prometheus.Registry) (in, dropped int64) {
	for _, s := range sups {
		st := s.State()
		in += st.FramesIn
		dropped += st.Dropped
	}
	return in, dropped + int64(counter(b, reg, "vigil_stage_dropped_total", "motion"))
}
