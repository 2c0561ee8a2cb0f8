package pipeline_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
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

// stamped remembers each frame's capture time by stream time, as the supervisor hands them on.
type stamped struct {
	src  pipeline.Source
	mu   sync.Mutex
	wall map[time.Duration]time.Time
}

func (s *stamped) Next() (ingest.Frame, error) {
	f, err := s.src.Next()
	if err == nil {
		s.mu.Lock()
		s.wall[f.PTS] = f.Wall
		s.mu.Unlock()
	}
	return f, err
}

// opened records when each moment was first published, against the capture time of the frame
// that opened it.
type opened struct {
	mu   sync.Mutex
	lags []time.Duration
}

func (o *opened) Publish(_ context.Context, m *pipeline.Moment) error {
	if m.Revision == 0 {
		o.mu.Lock()
		o.lags = append(o.lags, time.Since(m.EndedAt))
		o.mu.Unlock()
	}
	return nil
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// BenchmarkLiveLatency watches a simulated live camera (people walking up to a table, looped in
// real time by an RTSP server in this process) through RTSP ingest, the motion gate and the
// detector, and reports capture → segmenter latency per frame and capture → published latency
// for each moment as it opens. Target (DESIGN.md §8): p95 ≤ 2 s. Run with make bench-pipeline.
func BenchmarkLiveLatency(b *testing.B) {
	srv, err := replay.New(replay.Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	r, err := srv.Open(sharedtest.Clip(b, "one-by-one-person-detection.mp4"), replay.Options{RealTime: true, Loop: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	sup := ingest.NewSupervisor(ingest.SupervisorConfig{Camera: "bench",
		Attempt: rtsp.Attempt(rtsp.Config{URL: r.URL(), Transport: "tcp", FPS: 5})},
		ingest.NewCameraMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	go sup.Run(ctx)

	pub := &opened{}
	p := newPipeline(b, prometheus.NewRegistry(), pub, time.Second)
	src := &stamped{src: sup, wall: map[time.Duration]time.Time{}}
	var mu sync.Mutex
	var frames []time.Duration
	const window = 60 * time.Second
	run, stop := context.WithTimeout(ctx, window)
	defer stop()
	p.Run(run, src, pipeline.Job{Tenant: "t", VideoID: 1, Source: "bench", Key: []byte("k"), Live: true,
		Progress: func(pts time.Duration) {
			src.mu.Lock()
			wall, ok := src.wall[pts]
			delete(src.wall, pts)
			src.mu.Unlock()
			if ok {
				mu.Lock()
				frames = append(frames, time.Since(wall))
				mu.Unlock()
			}
		}})
	st := sup.State()
	fmt.Printf("capture -> segmenter, per frame: p50 %v, p95 %v over %d frames (%d dropped by the camera mailbox)\n",
		percentile(frames, 0.5).Round(time.Millisecond), percentile(frames, 0.95).Round(time.Millisecond), len(frames), st.Dropped)
	fmt.Printf("capture -> moment published, as it opens: p50 %v, p95 %v over %d moments (target p95 <= 2s)\n",
		percentile(pub.lags, 0.5).Round(time.Millisecond), percentile(pub.lags, 0.95).Round(time.Millisecond), len(pub.lags))
	b.ReportMetric(percentile(frames, 0.95).Seconds(), "p95_frame_s")
}
