package jobs

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/ingest/rtsp"
	"github.com/vigilcam/vigil/pipeline"
	"github.com/vigilcam/vigil/sink/store"
)

// CamerasConfig configures Cameras.
type CamerasConfig struct {
	// AnalysisFPS applies to cameras that set no rate of their own. It defaults to 5.
	AnalysisFPS float64
	// Transport is the RTSP transport: auto, udp or tcp. It defaults to "auto".
	Transport string
	// MinBackoff and MaxBackoff bound the pause between attempts at a failing camera.
	// They default to 1s and 30s.
	MinBackoff, MaxBackoff time.Duration
	// Resync is how often the registry is read even without a change notification. It defaults
	// to 30s.
	Resync time.Duration
}

// Cameras keeps one supervisor and one pipeline run per enabled camera in the registry, and
// follows the registry's changes: a camera added, changed or removed is started, restarted or
// stopped without restarting vigil.
type Cameras struct {
	cfg     CamerasConfig
	store   *store.Store
	pipe    *pipeline.Pipeline
	metrics *ingest.CameraMetrics
	log     *slog.Logger

	mu      sync.Mutex
	watches map[int64]*watch
}

// watch is one camera being watched.
type watch struct {
	camera store.Camera
	sup    *ingest.Supervisor
	cancel context.CancelFunc
	done   chan struct{}
}

// NewCameras returns a camera manager that runs cameras' frames through pipe.
func NewCameras(cfg CamerasConfig, st *store.Store, pipe *pipeline.Pipeline, metrics *ingest.CameraMetrics, log *slog.Logger) *Cameras {
	if cfg.AnalysisFPS <= 0 {
		cfg.AnalysisFPS = 5
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 30 * time.Second
	}
	return &Cameras{cfg: cfg, store: st, pipe: pipe, metrics: metrics, log: log, watches: map[int64]*watch{}}
}

// Run watches the registry's cameras until ctx ends, then stops them all.
func (c *Cameras) Run(ctx context.Context) error {
	changes, err := c.store.WatchCameras(ctx, c.log)
	if err != nil {
		return err
	}
	defer c.stopAll()
	tick := time.NewTicker(c.cfg.Resync)
	defer tick.Stop()
	for {
		if err := c.reconcile(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("reading the camera registry failed; cameras keep running as they were", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changes:
		case <-tick.C:
		}
	}
}

// CameraState reports a watched camera's state; false for a camera not being watched.
func (c *Cameras) CameraState(id int64) (ingest.State, bool) {
	c.mu.Lock()
	w, ok := c.watches[id]
	c.mu.Unlock()
	if !ok {
		return ingest.State{}, false
	}
	return w.sup.State(), true
}

// reconcile makes the watched cameras those enabled in the registry, with their current settings.
func (c *Cameras) reconcile(ctx context.Context) error {
	cams, err := c.store.AllCameras(ctx)
	if err != nil {
		return err
	}
	want := map[int64]store.Camera{}
	for _, cam := range cams {
		if cam.Enabled {
			want[cam.ID] = cam
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, w := range c.watches {
		cam, ok := want[id]
		if ok && sameStream(cam, w.camera) {
			delete(want, id)
			continue
		}
		c.stop(w)
		delete(c.watches, id)
	}
	for _, cam := range want {
		c.watches[cam.ID] = c.start(ctx, cam)
	}
	return nil
}

// sameStream reports whether a running watch can keep going for cam's new registry entry.
func sameStream(a, b store.Camera) bool {
	return a.StreamURL() == b.StreamURL() && a.AnalysisFPS == b.AnalysisFPS &&
		a.KeyframesOnly == b.KeyframesOnly && a.Name == b.Name && store.SameMask(a.MotionMask, b.MotionMask)
}

func (c *Cameras) start(ctx context.Context, cam store.Camera) *watch {
	fps := cam.AnalysisFPS
	if fps <= 0 {
		fps = c.cfg.AnalysisFPS
	}
	label := cam.Tenant + "/" + cam.Name
	log := c.log.With("camera", label, "video", cam.ID)
	sup := ingest.NewSupervisor(ingest.SupervisorConfig{
		Camera: label, MinBackoff: c.cfg.MinBackoff, MaxBackoff: c.cfg.MaxBackoff,
		Attempt: rtsp.Attempt(rtsp.Config{URL: cam.StreamURL(), Transport: c.cfg.Transport, FPS: fps,
			KeyframesOnly: cam.KeyframesOnly}),
	}, c.metrics, c.log)
	// Cancelling stops the supervisor and makes the pipeline drain what it holds and publish the
	// open moment before it ends.
	supCtx, cancel := context.WithCancel(ctx)
	w := &watch{camera: cam, sup: sup, cancel: cancel, done: make(chan struct{})}
	go sup.Run(supCtx)
	go func() {
		defer close(w.done)
		job := pipeline.Job{Tenant: cam.Tenant, VideoID: cam.ID, Source: cam.Name, Live: true, MotionMask: cam.MotionMask,
			Key: []byte("camera/" + strconv.FormatInt(cam.ID, 10))}
		for {
			_, err := c.pipe.Run(supCtx, sup, job)
			if supCtx.Err() != nil {
				return
			}
			// The camera keeps streaming meanwhile; its frames are dropped, not queued.
			log.Error("camera pipeline stopped; restarting it", "err", err, "retry_in", "5s")
			select {
			case <-supCtx.Done():
				return
			case <-time.After(5 * time.Second):
			}
		}
	}()
	log.Info("watching camera", "url", cam.URL, "fps", fps, "keyframes_only", cam.KeyframesOnly)
	return w
}

func (c *Cameras) stop(w *watch) {
	w.cancel()
	<-w.done
	c.log.Info("stopped watching camera", "camera", w.camera.Tenant+"/"+w.camera.Name, "video", w.camera.ID)
}

func (c *Cameras) stopAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, w := range c.watches {
		c.stop(w)
		delete(c.watches, id)
	}
}
