// Package jobstest gives tests the whole indexing path with real parts: PostgreSQL, JetStream,
// ONNX Runtime and the shared YOLOv8n, wired as `vigil serve` wires them with the shipped
// defaults, with a sink running and workers started on demand.
package jobstest

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilcam/vigil/configs"
	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/ingest/replay"
	"github.com/vigilcam/vigil/pipeline"
	"github.com/vigilcam/vigil/pipeline/detect"
	"github.com/vigilcam/vigil/pipeline/motion"
	"github.com/vigilcam/vigil/pipeline/onnx/onnxtest"
	"github.com/vigilcam/vigil/pipeline/track"
	"github.com/vigilcam/vigil/sink"
	"github.com/vigilcam/vigil/sink/bus"
	"github.com/vigilcam/vigil/sink/bus/bustest"
	"github.com/vigilcam/vigil/sink/jobs"
	"github.com/vigilcam/vigil/sink/store"
	"github.com/vigilcam/vigil/sink/store/storetest"
)

// System is one indexing path; its parts end with the test. The test binary's TestMain must run
// storetest.Main.
type System struct {
	Indexer  *jobs.Indexer
	Store    *store.Store
	Bus      *bus.Bus
	Pipeline *pipeline.Pipeline
}

// Start wires a system and runs its sink. It starts no worker: see StartWorker. It skips the test,
// naming what is missing, without ONNX Runtime or the shared model.
func Start(t testing.TB) System {
	t.Helper()
	onnxtest.Init(t)
	model := sharedtest.YOLO(t)
	cfg := configs.Default()
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.Default()
	}
	st := storetest.Open(t)
	b := bustest.Open(t)
	det, err := detect.New(detect.Config{
		Model: model, Sessions: 2, Threads: 1,
		Confidence: float32(cfg.Pipeline.Detect.Confidence), IoU: float32(cfg.Pipeline.Detect.IoU),
		Classes: cfg.Pipeline.Detect.Classes,
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { det.Close() })
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	consumer, err := b.Moments(ctx, "sink", 30*time.Second, 1024)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sink.New(sink.Config{}, consumer, st, reg, log).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sink: %v", err)
		}
	})
	p := cfg.Pipeline
	pipe := pipeline.New(pipeline.Config{
		QueueSize: p.QueueSize, Gate: true,
		Motion: motion.Config{Width: p.Motion.Width, History: p.Motion.History,
			VarThreshold: p.Motion.VarThreshold, LearningRate: p.Motion.LearningRate, MinArea: p.Motion.MinArea, Warmup: p.Motion.Warmup},
		Moments: track.Config{IdleGap: p.Moments.IdleGap, MaxLength: p.Moments.MaxLength,
			UpdateEvery: p.Moments.UpdateEvery, ThumbnailWidth: p.Moments.ThumbnailWidth,
			ThumbnailQuality: p.Moments.ThumbnailQuality, Tracker: track.TrackerConfig{
				IoU: float32(p.Moments.Tracker.IoU), Hits: p.Moments.Tracker.Hits, MaxMissed: p.Moments.Tracker.MaxMissed}},
	}, det, b, pipeline.NewMetrics(reg), log)
	replays, err := replay.New(replay.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { replays.Close() })
	ix := jobs.NewIndexer(jobs.Config{AnalysisFPS: p.AnalysisFPS, CommitTimeout: 30 * time.Second}, st, b, replays, pipe, log)
	return System{Indexer: ix, Store: st, Bus: b, Pipeline: pipe}
}

// StartWorker runs a worker on the durable consumer "worker" with the given ack wait until stop
// is called or the test ends. stop waits for the worker to return; calling it again does nothing.
func (s System) StartWorker(t testing.TB, ackWait time.Duration) (stop func()) {
	t.Helper()
	c, err := s.Bus.Jobs(context.Background(), "worker", ackWait)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- jobs.NewWorker(s.Indexer, c).Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("worker: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// Index submits the file at path for the tenant "default" and waits for its job to end.
func (s System) Index(t testing.TB, path string, opts jobs.Options) jobs.Outcome {
	t.Helper()
	v, err := s.Indexer.Submit(context.Background(), "default", path, opts)
	if err != nil {
		t.Fatalf("submit %s: %v", path, err)
	}
	return s.Wait(t, v.ID)
}

// Wait waits up to five minutes for the job of the tenant "default"'s video id to end.
func (s System) Wait(t testing.TB, id int64) jobs.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := s.Indexer.Wait(ctx, "default", id, nil)
	if err != nil {
		t.Fatalf("wait for video %d: %v", id, err)
	}
	return out
}
