package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vigilcam/vigil/configs"
	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/ingest/replay"
	"github.com/vigilcam/vigil/pipeline"
	"github.com/vigilcam/vigil/pipeline/caption"
	"github.com/vigilcam/vigil/pipeline/detect"
	"github.com/vigilcam/vigil/pipeline/embed"
	"github.com/vigilcam/vigil/pipeline/motion"
	"github.com/vigilcam/vigil/pipeline/onnx"
	"github.com/vigilcam/vigil/pipeline/track"
	"github.com/vigilcam/vigil/sink"
	"github.com/vigilcam/vigil/sink/bus"
	"github.com/vigilcam/vigil/sink/jobs"
	"github.com/vigilcam/vigil/sink/search"
	"github.com/vigilcam/vigil/sink/store"
)

// app holds the parts a command has opened, and closes them in reverse order.
type app struct {
	cfg     configs.Config
	log     *slog.Logger
	reg     *prometheus.Registry
	cluster *store.Cluster
	store   *store.Store
	bus     *bus.Bus
	det     *detect.Detector
	pipe    *pipeline.Pipeline
	// emb is the caption embedder once loaded (embedderLoaded), nil when none is installed.
	emb            *embed.Embedder
	embedderLoaded bool
	closers        []func() error
}

func newApp(configPath string) (*app, error) {
	cfg, err := configs.Load(configPath)
	if err != nil {
		return nil, err
	}
	level := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[cfg.Log.Level]
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &app{cfg: cfg, log: slog.New(h), reg: reg}, nil
}

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			a.log.Warn("shutdown", "err", err)
		}
	}
	a.closers = nil
}

// databaseURL returns the configured database, starting the private cluster when none is.
func (a *app) databaseURL(ctx context.Context) (string, error) {
	if a.cfg.Database.URL != "" {
		return a.cfg.Database.URL, nil
	}
	c, err := store.StartCluster(ctx, store.ClusterConfig{
		Dir:    filepath.Join(a.cfg.DataDir, "pg"),
		Port:   a.cfg.Database.Embedded.Port,
		BinDir: a.cfg.Database.Embedded.BinDir,
	}, a.log)
	if err != nil {
		return "", err
	}
	a.cluster = c
	a.closers = append(a.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return c.Stop(ctx)
	})
	return c.URL(), nil
}

// openStore connects to PostgreSQL, brings the schema up to date and makes sure the configured
// tenant is known, so that tokens can be made for it.
func (a *app) openStore(ctx context.Context) error {
	url, err := a.databaseURL(ctx)
	if err != nil {
		return err
	}
	if err := store.Migrate(ctx, url); err != nil {
		return err
	}
	st, err := store.Open(ctx, url, a.cfg.Database.MaxConns)
	if err != nil {
		return err
	}
	a.store = st
	a.closers = append(a.closers, func() error { st.Close(); return nil })
	if _, err := st.AddTenant(ctx, a.cfg.Tenant); err != nil && !errors.Is(err, store.ErrTenantExists) {
		return err
	}
	return nil
}

func (a *app) openBus(ctx context.Context) error {
	host, _ := os.Hostname()
	b, err := bus.Open(ctx, bus.Config{
		URL:      a.cfg.NATS.URL,
		Listen:   a.cfg.NATS.Embedded.Listen,
		StoreDir: filepath.Join(a.cfg.DataDir, "nats"),
		Replicas: a.cfg.NATS.Replicas,
		Name:     fmt.Sprintf("vigil %s pid %d", host, os.Getpid()),
	}, a.log)
	if err != nil {
		return err
	}
	a.bus = b
	a.closers = append(a.closers, b.Close)
	return nil
}

// loadONNX loads ONNX Runtime and returns where it came from.
func (a *app) loadONNX() (string, error) {
	lib, err := onnx.Library(a.cfg.ONNX.Library)
	if err != nil {
		return "", err
	}
	return lib, onnx.Init(lib)
}

func (a *app) openDetector() error {
	if _, err := a.loadONNX(); err != nil {
		return err
	}
	model := a.cfg.YOLOModel()
	if _, err := os.Stat(model); err != nil {
		return fmt.Errorf("detector model: %w (set models.yolo, or put the shared models folder beside the checkout)", err)
	}
	sessions := a.cfg.Pipeline.Detect.Sessions
	if sessions == 0 {
		sessions = runtime.NumCPU()
	}
	d, err := detect.New(detect.Config{
		Model:           model,
		Sessions:        sessions,
		Threads:         a.cfg.Pipeline.Detect.Threads,
		Provider:        a.cfg.ONNX.Provider,
		Confidence:      float32(a.cfg.Pipeline.Detect.Confidence),
		ClassConfidence: classConfidence(a.cfg.Pipeline.Detect.ClassConfidence),
		IoU:             float32(a.cfg.Pipeline.Detect.IoU),
		Classes:         a.cfg.Pipeline.Detect.Classes,
	}, a.log)
	if err != nil {
		return err
	}
	a.det = d
	a.closers = append(a.closers, d.Close)
	return nil
}

// startSink runs a sink in the background until ctx ends. Every sink process shares the durable
// consumer "sink", so they split the work.
func (a *app) startSink(ctx context.Context) error {
	c, err := a.bus.Moments(ctx, "sink", 30*time.Second, 4*a.cfg.Sink.BatchSize)
	if err != nil {
		return err
	}
	s := sink.New(sink.Config{BatchSize: a.cfg.Sink.BatchSize, BatchWait: a.cfg.Sink.BatchWait}, c, a.store, a.reg, a.log)
	go func() {
		if err := s.Run(ctx); err != nil {
			a.log.Error("sink stopped; moments wait on the bus for the next sink", "err", err)
		}
	}()
	a.closers = append(a.closers, func() error { c.Close(); return nil })
	return nil
}

// pipeline wires the detector into a pipeline publishing to the bus; index jobs and cameras share
// it, and so its detector sessions.
func (a *app) pipeline() *pipeline.Pipeline {
	if a.pipe != nil {
		return a.pipe
	}
	p := a.cfg.Pipeline
	a.pipe = pipeline.New(pipeline.Config{
		QueueSize: p.QueueSize,
		Gate:      p.Motion.Enabled,
		Motion: motion.Config{
			Width: p.Motion.Width, History: p.Motion.History, VarThreshold: p.Motion.VarThreshold, LearningRate: p.Motion.LearningRate,
			MinArea: p.Motion.MinArea, Warmup: p.Motion.Warmup,
		},
		Moments: track.Config{IdleGap: p.Moments.IdleGap, MaxLength: p.Moments.MaxLength,
			UpdateEvery: p.Moments.UpdateEvery, ThumbnailWidth: p.Moments.ThumbnailWidth,
			ThumbnailQuality: p.Moments.ThumbnailQuality, Tracker: track.TrackerConfig{
				IoU: float32(p.Moments.Tracker.IoU), Hits: p.Moments.Tracker.Hits, MaxMissed: p.Moments.Tracker.MaxMissed}},
		Embedder: a.pipelineEmbedder(),
		Captions: a.captions(),
	}, a.det, a.bus, pipeline.NewMetrics(a.reg), a.log)
	a.closers = append(a.closers, func() error { a.pipe.Close(); return nil })
	return a.pipe
}

// pipelineEmbedder is the embedder as the pipeline takes it: a nil interface when none is
// installed.
func (a *app) pipelineEmbedder() pipeline.Embedder {
	if e := a.embedder(); e != nil {
		return e
	}
	return nil
}

// captions loads Florence-2, once per caption worker, when it is installed; without it moments
// keep the caption composed from their objects, which the log and vigil doctor say.
func (a *app) captions() pipeline.CaptionConfig {
	c := a.cfg.Pipeline.Captions
	cfg := pipeline.CaptionConfig{QueueSize: c.QueueSize, MaxAge: c.MaxAge, PerSecond: c.PerSecond, Every: c.Every}
	if !c.Enabled {
		return cfg
	}
	dir := a.cfg.FlorenceDir()
	if !configs.FlorenceInstalled(dir) {
		a.log.Info("no captioner installed: moments keep the caption composed from their objects (vigil models fetch florence)", "looked_for", dir)
		return cfg
	}
	for range c.Workers {
		cp, err := a.captioner(dir)
		if err != nil {
			a.log.Warn("captioner not loaded: moments keep the caption composed from their objects", "model", dir, "err", err)
			return pipeline.CaptionConfig{}
		}
		a.closers = append(a.closers, cp.Close)
		cfg.Captioners = append(cfg.Captioners, cp)
		cfg.Name = cp.Name()
	}
	return cfg
}

// captioner loads the Florence-2 model in dir as configured.
func (a *app) captioner(dir string) (*caption.Captioner, error) {
	c := a.cfg.Pipeline.Captions
	return caption.New(caption.Config{Dir: dir, Precision: c.Precision, Task: c.Task, Beams: c.Beams,
		MaxNewTokens: c.MaxTokens, Threads: c.Threads, Provider: a.cfg.ONNX.Provider}, a.log)
}

// embedder loads the caption embedder, once, when its model is installed; without it moments
// carry no embedding and search is full text only, which the log and vigil doctor say.
func (a *app) embedder() *embed.Embedder {
	if a.embedderLoaded {
		return a.emb
	}
	a.embedderLoaded = true
	model := a.cfg.EmbedderModel()
	if _, err := os.Stat(model); err != nil {
		a.log.Info("no embedder installed: moments get no embedding, search is full text only", "looked_for", model)
		return nil
	}
	if _, err := a.loadONNX(); err != nil {
		a.log.Warn("embedder not loaded: moments get no embedding", "model", model, "err", err)
		return nil
	}
	e, err := embed.New(embed.Config{Model: model, Tokenizer: a.cfg.EmbedderTokenizer(), Provider: a.cfg.ONNX.Provider}, a.log)
	if err != nil {
		a.log.Warn("embedder not loaded: moments get no embedding", "model", model, "err", err)
		return nil
	}
	a.closers = append(a.closers, e.Close)
	a.emb = e
	return e
}

// searcher returns a searcher over the store, with the embedder for the vector path when one is
// installed.
func (a *app) searcher() *search.Searcher {
	return search.New(a.store.Pool(), searchEmbedder(a), a.searchConfig(), a.log)
}

// searchEmbedder is the embedder as search takes it: a nil interface when none is installed.
func searchEmbedder(a *app) search.Embedder {
	if e := a.embedder(); e != nil {
		return e
	}
	return nil
}

func (a *app) searchConfig() search.Config {
	c := a.cfg.Search
	return search.Config{Timeout: c.Timeout, Candidates: c.Candidates, RRFK: c.RRFK, RecencyWeight: c.RecencyWeight,
		RecencyHalfLife: c.RecencyHalfLife, PriorityWeight: c.PriorityWeight, ExactBelow: c.ExactBelow, EFSearch: c.EFSearch}
}

// indexer wires the pipeline, a replay server on loopback, the job queue and the store.
func (a *app) indexer() (*jobs.Indexer, error) {
	replays, err := replay.New(replay.Config{}, a.log)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, replays.Close)
	return jobs.NewIndexer(jobs.Config{AnalysisFPS: a.cfg.Pipeline.AnalysisFPS, CommitTimeout: a.cfg.Index.CommitTimeout},
		a.store, a.bus, replays, a.pipeline(), a.log), nil
}

// startWorker runs an index worker in the background until the app closes. Every worker shares
// the durable consumer "worker" on the job queue, so they split the jobs; a job cut short by the
// close goes back to the queue.
func (a *app) startWorker(ctx context.Context, ix *jobs.Indexer) error {
	c, err := a.bus.Jobs(ctx, "worker", 30*time.Second)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- jobs.NewWorker(ix, c).Run(ctx) }()
	a.closers = append(a.closers, func() error {
		cancel()
		return <-done
	})
	return nil
}

// startCameras declares the configured cameras in the registry and watches every enabled camera
// of the registry until the app closes.
func (a *app) startCameras(ctx context.Context) (*jobs.Cameras, error) {
	specs := make([]store.CameraSpec, 0, len(a.cfg.Cameras))
	for _, c := range a.cfg.Cameras {
		specs = append(specs, store.CameraSpec{Name: c.Name, URL: c.URL, AnalysisFPS: c.AnalysisFPS,
			KeyframesOnly: c.KeyframesOnly, Enabled: c.Enabled, MotionMask: c.MotionMask, Priority: c.Priority})
	}
	if err := a.store.SyncConfigCameras(ctx, a.cfg.Tenant, specs); err != nil {
		return nil, fmt.Errorf("cameras in the configuration: %w", err)
	}
	cams := jobs.NewCameras(jobs.CamerasConfig{AnalysisFPS: a.cfg.Pipeline.AnalysisFPS}, a.store, a.pipeline(),
		ingest.NewCameraMetrics(a.reg), a.log)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cams.Run(ctx) }()
	// Cameras stop, and their open moments are published, before the bus closes.
	a.closers = append(a.closers, func() error {
		cancel()
		return <-done
	})
	return cams, nil
}

// openIndexing opens everything index jobs need, with a sink and a worker in this process so that
// indexing works without any other vigil running.
func (a *app) openIndexing(ctx context.Context) (*jobs.Indexer, error) {
	if err := a.openStore(ctx); err != nil {
		return nil, err
	}
	if err := a.openDetector(); err != nil {
		return nil, err
	}
	if err := a.openBus(ctx); err != nil {
		return nil, err
	}
	if err := a.startSink(ctx); err != nil {
		return nil, err
	}
	ix, err := a.indexer()
	if err != nil {
		return nil, err
	}
	if err := a.startWorker(ctx, ix); err != nil {
		return nil, err
	}
	return ix, nil
}

func classConfidence(m map[string]float64) map[string]float32 {
	out := make(map[string]float32, len(m))
	for class, conf := range m {
		out[class] = float32(conf)
	}
	return out
}
