package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"gocv.io/x/gocv"
	"golang.org/x/time/rate"

	"github.com/vigilcam/vigil/pipeline/track"
)

// Captioner describes a picture of packed BGR pixels in words; *caption.Captioner is one.
type Captioner interface {
	Caption(ctx context.Context, width, height int, bgr []byte) (string, error)
}

// CaptionConfig configures the caption stage.
type CaptionConfig struct {
	// Captioners are the stage's workers, one caption at a time each; none turns captioning off,
	// and moments keep the caption composed from their objects.
	Captioners []Captioner
	// Name names the captioning model in moments.
	Name string
	// QueueSize is how many moments may wait for a caption. It defaults to 16.
	QueueSize int
	// MaxAge is how long a live camera's moment may wait for a caption before it is skipped. It
	// defaults to 30s.
	MaxAge time.Duration
	// PerSecond is the most captions started per second (bursts of one second's worth); 0 means
	// no limit. Live moments over it are skipped, replays wait.
	PerSecond float64
	// Every is how often a long moment's best frame is captioned while it lasts, in stream time;
	// every moment's final best frame is captioned when it closes. It defaults to 30s.
	Every time.Duration
}

// captionStage is the pipeline's caption queue and workers, shared by all its runs. It never
// holds up a live camera: a live moment's request is dropped (and counted) when the queue is full,
// too old by the time a worker is free, or over the rate budget, and the moment keeps the caption
// composed from its objects. A replay's requests wait instead, so an indexed file is captioned
// whole.
type captionStage struct {
	cfg     CaptionConfig
	queue   chan *captionRequest
	limit   *rate.Limiter
	metrics *Metrics
	log     *slog.Logger
	stop    context.CancelFunc
	workers sync.WaitGroup
}

// captionRequest asks for a caption of a moment's thumbnail.
type captionRequest struct {
	ctx    context.Context
	ms     *moments
	id     string
	thumb  *track.Thumbnail
	live   bool
	queued time.Time
}

func newCaptionStage(cfg CaptionConfig, metrics *Metrics, log *slog.Logger) *captionStage {
	if len(cfg.Captioners) == 0 {
		return nil
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 16
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 30 * time.Second
	}
	if cfg.Every <= 0 {
		cfg.Every = 30 * time.Second
	}
	s := &captionStage{cfg: cfg, queue: make(chan *captionRequest, cfg.QueueSize), metrics: metrics, log: log,
		limit: rate.NewLimiter(rate.Inf, 0)}
	if cfg.PerSecond > 0 {
		s.limit = rate.NewLimiter(rate.Limit(cfg.PerSecond), max(1, int(cfg.PerSecond)))
	}
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	for _, c := range cfg.Captioners {
		s.workers.Add(1)
		go func() {
			defer s.workers.Done()
			s.work(ctx, c)
		}()
	}
	return s
}

// submit queues a request; for a live source it never waits. The request's run waits for it.
func (s *captionStage) submit(r *captionRequest) {
	r.queued = time.Now()
	r.ms.pending.Add(1)
	if r.live {
		if !s.limit.Allow() {
			s.skip(r, "rate")
			return
		}
		for {
			select {
			case s.queue <- r:
				s.metrics.depth.WithLabelValues("caption").Inc()
				return
			default:
			}
			select {
			case old := <-s.queue:
				s.metrics.depth.WithLabelValues("caption").Dec()
				s.skip(old, "queue_full")
			default:
			}
		}
	}
	if err := s.limit.Wait(r.ctx); err != nil {
		s.skip(r, "cancelled")
		return
	}
	select {
	case s.queue <- r:
		s.metrics.depth.WithLabelValues("caption").Inc()
	case <-r.ctx.Done():
		s.skip(r, "cancelled")
	}
}

func (s *captionStage) skip(r *captionRequest, why string) {
	s.metrics.captionSkips.WithLabelValues(why).Inc()
	r.ms.captionDone(r.id)
}

func (s *captionStage) work(ctx context.Context, c Captioner) {
	for {
		var r *captionRequest
		select {
		case r = <-s.queue:
		case <-ctx.Done():
			return
		}
		s.metrics.depth.WithLabelValues("caption").Dec()
		s.metrics.wait.WithLabelValues("caption").Observe(time.Since(r.queued).Seconds())
		switch {
		case r.ctx.Err() != nil:
			s.skip(r, "cancelled")
		case r.live && time.Since(r.queued) > s.cfg.MaxAge:
			s.skip(r, "stale")
		default:
			s.caption(r, c)
			r.ms.captionDone(r.id)
		}
	}
}

// caption captions r's thumbnail and publishes the moment with it. A failure costs the moment its
// caption, not its place in the index.
func (s *captionStage) caption(r *captionRequest, c Captioner) {
	start := time.Now()
	text, err := captionJPEG(r.ctx, c, r.thumb.JPEG)
	if err == nil && text == "" {
		err = errors.New("empty caption")
	}
	if err != nil {
		if r.ctx.Err() == nil {
			s.metrics.errors.WithLabelValues("caption").Inc()
			s.log.Warn("moment not captioned; it keeps the caption of its objects", "stage", "caption", "moment", r.id, "err", err)
		}
		return
	}
	s.metrics.frames.WithLabelValues("caption").Inc()
	s.metrics.seconds.WithLabelValues("caption").Observe(time.Since(start).Seconds())
	if err := r.ms.enrich(r.ctx, r.id, text, s.cfg.Name); err != nil && r.ctx.Err() == nil {
		s.metrics.errors.WithLabelValues("caption").Inc()
		s.log.Warn("captioned moment not published", "stage", "caption", "moment", r.id, "err", err)
	}
}

// captionJPEG decodes a thumbnail and captions it.
func captionJPEG(ctx context.Context, c Captioner, jpeg []byte) (text string, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("decode thumbnail: opencv panicked: %v", v)
		}
	}()
	img, err := gocv.IMDecode(jpeg, gocv.IMReadColor)
	if err != nil {
		return "", fmt.Errorf("decode thumbnail: %w", err)
	}
	defer img.Close()
	if img.Empty() {
		return "", errors.New("decode thumbnail: not a JPEG")
	}
	return c.Caption(ctx, img.Cols(), img.Rows(), img.ToBytes())
}

// close stops the workers once the runs are done with them.
func (s *captionStage) close() {
	if s == nil {
		return
	}
	s.stop()
	s.workers.Wait()
}
