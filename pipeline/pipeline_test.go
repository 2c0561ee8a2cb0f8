package pipeline_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gocv.io/x/gocv"

	"github.com/vigilcam/vigil/configs"
	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/pipeline"
	"github.com/vigilcam/vigil/pipeline/detect"
	"github.com/vigilcam/vigil/pipeline/motion"
	"github.com/vigilcam/vigil/pipeline/onnx/onnxtest"
	"github.com/vigilcam/vigil/pipeline/track"
)

// clipFrames reads the first n frames of a shared clip with OpenCV's own reader, a decoder
// independent of vigil's, as packed BGR frames 100 ms apart.
func clipFrames(t *testing.T, name string, n int) []ingest.Frame {
	t.Helper()
	vc, err := gocv.VideoCaptureFile(sharedtest.Clip(t, name))
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	m := gocv.NewMat()
	defer m.Close()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var frames []ingest.Frame
	for len(frames) < n && vc.Read(&m) && !m.Empty() {
		pts := time.Duration(len(frames)) * 100 * time.Millisecond
		frames = append(frames, ingest.Frame{Width: m.Cols(), Height: m.Rows(), BGR: append([]byte(nil), m.ToBytes()...),
			PTS: pts, Wall: start.Add(pts)})
	}
	if len(frames) < n {
		t.Fatalf("read %d frames of %s, want %d", len(frames), name, n)
	}
	return frames
}

// frames is a source that hands out frames, then io.EOF; with loop it starts over, its stream
// time going on, until stopped.
type frames struct {
	mu     sync.Mutex
	list   []ingest.Frame
	i      int
	loop   bool
	period time.Duration
	stop   chan struct{}
}

func (s *frames) Next() (ingest.Frame, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.i == len(s.list) && !s.loop {
		return ingest.Frame{}, io.EOF
	}
	if s.period > 0 {
		select {
		case <-time.After(s.period):
		case <-s.stop:
			return ingest.Frame{}, io.EOF
		}
	}
	f := s.list[s.i%len(s.list)]
	f.PTS += time.Duration(s.i/len(s.list)) * time.Duration(len(s.list)) * 100 * time.Millisecond
	s.i++
	return f, nil
}

// published keeps the moments a pipeline publishes.
type published struct {
	mu      sync.Mutex
	moments []pipeline.Moment
}

func (p *published) Publish(_ context.Context, m *pipeline.Moment) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.moments = append(p.moments, *m)
	return nil
}

func newPipeline(t testing.TB, reg *prometheus.Registry, pub pipeline.Publisher, drain time.Duration) *pipeline.Pipeline {
	t.Helper()
	onnxtest.Init(t)
	cfg := configs.Default().Pipeline
	det, err := detect.New(detect.Config{Model: sharedtest.YOLO(t), Sessions: 2, Classes: cfg.Detect.Classes},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { det.Close() })
	return pipeline.New(pipeline.Config{
		QueueSize: 2, Gate: true, Drain: drain,
		Motion:  motion.Config{Width: cfg.Motion.Width, History: cfg.Motion.History, VarThreshold: cfg.Motion.VarThreshold, MinArea: cfg.Motion.MinArea, Warmup: cfg.Motion.Warmup},
		Moments: track.Config{IdleGap: 3 * time.Second, MaxLength: time.Minute},
	}, det, pub, pipeline.NewMetrics(reg), slog.New(slog.DiscardHandler))
}

func counter(t testing.TB, reg *prometheus.Registry, name, stage string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" && l.GetValue() == stage {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// TestReplayIsLossless: a replay's frames all get through, however slow the detector.
func TestReplayIsLossless(t *testing.T) {
	reg := prometheus.NewRegistry()
	pub := &published{}
	p := newPipeline(t, reg, pub, time.Second)
	res, err := p.Run(context.Background(), &frames{list: clipFrames(t, "vtest.avi", 40)}, pipeline.Job{Tenant: "t", VideoID: 1, Source: "vtest.avi", Key: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Frames != 40 || counter(t, reg, "vigil_stage_dropped_total", "motion") != 0 {
		t.Errorf("analysed %d of 40 frames, %v dropped", res.Frames, counter(t, reg, "vigil_stage_dropped_total", "motion"))
	}
	if len(pub.moments) == 0 || pub.moments[0].Objects["person"] == 0 {
		t.Errorf("vtest.avi's pedestrians gave moments %+v", pub.moments)
	}
}

// TestLiveDropsOldest: a live source handing frames faster than the detector can take them never
// waits; the frames the pipeline had no room for are dropped and counted, and the rest still
// make moments.
func TestLiveDropsOldest(t *testing.T) {
	reg := prometheus.NewRegistry()
	pub := &published{}
	p := newPipeline(t, reg, pub, time.Second)
	list := clipFrames(t, "vtest.avi", 60)
	res, err := p.Run(context.Background(), &frames{list: list}, pipeline.Job{Tenant: "t", VideoID: 1, Source: "cam", Key: []byte("k"), Live: true})
	if err != nil {
		t.Fatal(err)
	}
	dropped := counter(t, reg, "vigil_stage_dropped_total", "motion")
	if dropped == 0 || res.Frames+int64(dropped) != 60 {
		t.Errorf("analysed %d frames and dropped %v of 60: want drops, and every frame either analysed or dropped", res.Frames, dropped)
	}
	if len(pub.moments) == 0 {
		t.Error("no moment from the frames analysed")
	}
}

// TestCancelDrains: cancelling a live run stops reading at once, finishes what is in flight and
// publishes the open moment within the drain time, and reports the cancel.
func TestCancelDrains(t *testing.T) {
	reg := prometheus.NewRegistry()
	pub := &published{}
	p := newPipeline(t, reg, pub, 3*time.Second)
	src := &frames{list: clipFrames(t, "vtest.avi", 30), loop: true, period: 100 * time.Millisecond, stop: make(chan struct{})}
	defer close(src.stop)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(3*time.Second, cancel)
	start := time.Now()
	res, err := p.Run(ctx, src, pipeline.Job{Tenant: "t", VideoID: 1, Source: "cam", Key: []byte("k"), Live: true})
	took := time.Since(start)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel: %v, want context.Canceled", err)
	}
	if took > 3*time.Second+3*time.Second+500*time.Millisecond {
		t.Errorf("Run took %v after a cancel at 3 s with a 3 s drain", took)
	}
	if res.Frames < 10 || len(pub.moments) == 0 || pub.moments[len(pub.moments)-1].Objects["person"] == 0 {
		t.Errorf("analysed %d frames; moments %+v: the open moment must be published on the way out", res.Frames, pub.moments)
	}
}

// silent hands out frames at a camera's pace, then goes quiet for a while, as a camera whose
// network drops does, then ends.
type silent struct {
	frames  []ingest.Frame
	quiet   time.Duration
	quietAt time.Time
}

func (s *silent) Next() (ingest.Frame, error) {
	if len(s.frames) == 0 {
		if s.quietAt.IsZero() {
			s.quietAt = time.Now()
			time.Sleep(s.quiet)
		}
		return ingest.Frame{}, io.EOF
	}
	time.Sleep(100 * time.Millisecond)
	f := s.frames[0]
	s.frames = s.frames[1:]
	return f, nil
}

// timestamped keeps when each moment message was published.
type timestamped struct {
	published
	at []time.Time
}

func (p *timestamped) Publish(ctx context.Context, m *pipeline.Moment) error {
	p.mu.Lock()
	p.at = append(p.at, time.Now())
	p.mu.Unlock()
	return p.published.Publish(ctx, m)
}

// TestSilentCameraClosesItsMoment: a live camera that stops sending frames has its open moment
// closed once the idle gap passes, not when the camera comes back.
func TestSilentCameraClosesItsMoment(t *testing.T) {
	reg := prometheus.NewRegistry()
	pub := &timestamped{}
	p := newPipeline(t, reg, pub, time.Second)
	src := &silent{frames: clipFrames(t, "vtest.avi", 20), quiet: 6 * time.Second}
	if _, err := p.Run(context.Background(), src, pipeline.Job{Tenant: "t", VideoID: 1, Source: "cam", Key: []byte("k"), Live: true}); err != nil {
		t.Fatal(err)
	}
	if len(pub.moments) == 0 {
		t.Fatal("no moment from vtest.avi's pedestrians")
	}
	// The idle gap is 3 s: the moment's last message goes out during the silence.
	last := pub.at[len(pub.at)-1]
	if !last.After(src.quietAt.Add(2*time.Second)) || !last.Before(src.quietAt.Add(src.quiet)) {
		t.Errorf("last message at %v into a %v silence, want it between the idle gap and the camera's return",
			last.Sub(src.quietAt).Round(10*time.Millisecond), src.quiet)
	}
}
