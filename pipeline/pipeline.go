package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/pipeline/detect"
	"github.com/vigilcam/vigil/pipeline/motion"
	"github.com/vigilcam/vigil/pipeline/track"
)

// Config configures a Pipeline.
type Config struct {
	// QueueSize is the capacity of each queue between stages. It defaults to 4.
	QueueSize int
	// Gate runs the motion gate; without it every frame goes to the detector.
	Gate   bool
	Motion motion.Config
	// Moments configures how detections group into moments.
	Moments track.Config
}

// Source yields a source's frames in stream order and io.EOF at its end.
type Source interface {
	Next() (ingest.Frame, error)
}

// Publisher sends finished moments on.
type Publisher interface {
	Publish(ctx context.Context, m *Moment) error
}

// Job says whose source is analysed and how its moments are named.
type Job struct {
	Tenant  string
	VideoID int64
	// Source names the file or camera in moments.
	Source string
	// Key seeds the moment IDs: the same key and stream times give the same IDs.
	Key []byte
	// Progress, when set, is called with the stream time of each analysed frame.
	Progress func(pts time.Duration)
}

// Pipeline analyses sources with one shared detector.
type Pipeline struct {
	cfg     Config
	det     *detect.Detector
	pub     Publisher
	metrics *Metrics
	log     *slog.Logger
}

// New returns a pipeline publishing to pub.
func New(cfg Config, det *detect.Detector, pub Publisher, metrics *Metrics, log *slog.Logger) *Pipeline {
	if cfg.QueueSize < 1 {
		cfg.QueueSize = 4
	}
	return &Pipeline{cfg: cfg, det: det, pub: pub, metrics: metrics, log: log}
}

// item is a frame on its way through the stages.
type item struct {
	frame  ingest.Frame
	moving bool
	dets   []detect.Detection
}

// Result sums up one run.
type Result struct {
	// Frames were analysed; Moving of them passed the motion gate.
	Frames, Moving int64
	// Moments lists the IDs of the moments published, in order.
	Moments []string
}

// Run analyses src until it ends, publishing each moment as it closes. Replays are lossless:
// every stage blocks on the next, so the source is read as fast as the detector keeps up.
func (p *Pipeline) Run(ctx context.Context, src Source, job Job) (Result, error) {
	g, ctx := errgroup.WithContext(ctx)
	frames := make(chan item, p.cfg.QueueSize)
	gated := make(chan item, p.cfg.QueueSize)
	detected := make(chan item, p.cfg.QueueSize)
	var res Result
	var moving atomic.Int64

	g.Go(func() error {
		defer close(frames)
		// Frames are numbered here, per run: stages work in parallel and segment restores this
		// order, whatever numbering (or gaps from drops) the source had.
		for seq := int64(0); ; seq++ {
			start := time.Now()
			f, err := src.Next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			f.Seq = seq
			p.observe("decode", start)
			if err := send(ctx, frames, item{frame: f}); err != nil {
				return err
			}
		}
	})
	g.Go(func() error {
		defer close(gated)
		return p.gate(ctx, frames, gated, &moving)
	})
	var workers sync.WaitGroup
	for range max(1, p.det.Sessions()) {
		workers.Add(1)
		g.Go(func() error {
			defer workers.Done()
			return p.detect(ctx, gated, detected)
		})
	}
	g.Go(func() error {
		workers.Wait()
		close(detected)
		return nil
	})
	g.Go(func() error {
		var err error
		res.Frames, res.Moments, err = p.segment(ctx, detected, job)
		return err
	})
	err := g.Wait()
	res.Moving = moving.Load()
	return res, err
}

func (p *Pipeline) gate(ctx context.Context, in <-chan item, out chan<- item, moving *atomic.Int64) error {
	var g *motion.Gate
	if p.cfg.Gate {
		g = motion.New(p.cfg.Motion)
		defer g.Close()
	}
	for it := range in {
		it.moving = true
		if g != nil {
			start := time.Now()
			r, err := g.Apply(&it.frame)
			if err != nil {
				// Without a verdict the detector decides: a missed event costs more than a frame.
				p.metrics.errors.WithLabelValues("motion").Inc()
				p.log.Warn("motion gate failed on a frame", "stage", "motion", "err", err)
			} else {
				it.moving = r.Moving
			}
			p.observe("motion", start)
		}
		if it.moving {
			moving.Add(1)
		} else {
			p.metrics.dropped.WithLabelValues("motion").Inc()
			it.frame.BGR = nil // only its time goes on
		}
		if err := send(ctx, out, it); err != nil {
			return err
		}
	}
	return nil
}

func (p *Pipeline) detect(ctx context.Context, in <-chan item, out chan<- item) error {
	for it := range in {
		if it.moving {
			start := time.Now()
			dets, err := p.det.Detect(ctx, &it.frame)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				p.metrics.errors.WithLabelValues("detect").Inc()
				p.log.Warn("detector failed on a frame", "stage", "detect", "err", err)
			}
			it.dets = dets
			p.observe("detect", start)
		}
		it.frame.BGR = nil
		if err := send(ctx, out, it); err != nil {
			return err
		}
	}
	return nil
}

// segment restores stream order (detection runs in parallel), groups detections into moments and
// publishes each moment as it closes.
func (p *Pipeline) segment(ctx context.Context, in <-chan item, job Job) (int64, []string, error) {
	seg := track.NewSegmenter(p.cfg.Moments)
	pending := map[int64]item{}
	var next int64
	var ids []string
	publish := func(segs []track.Segment) error {
		for _, s := range segs {
			m := p.moment(s, job)
			if err := p.pub.Publish(ctx, &m); err != nil {
				return err
			}
			p.metrics.moments.Inc()
			ids = append(ids, m.ID)
		}
		return nil
	}
	for it := range in {
		pending[it.frame.Seq] = it
		for {
			it, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			start := time.Now()
			if err := publish(seg.Observe(it.frame.PTS, it.frame.Wall, it.dets)); err != nil {
				return next, ids, err
			}
			p.observe("segment", start)
			if job.Progress != nil {
				job.Progress(it.frame.PTS)
			}
		}
	}
	if len(pending) > 0 {
		return next, ids, fmt.Errorf("pipeline: %d frames out of sequence after frame %d", len(pending), next)
	}
	if ctx.Err() != nil {
		return next, ids, ctx.Err()
	}
	return next, ids, publish(seg.Flush())
}

func (p *Pipeline) moment(s track.Segment, job Job) Moment {
	return Moment{
		ID:        MomentID(s.StartWall, job.Key, s.Start),
		Tenant:    job.Tenant,
		VideoID:   job.VideoID,
		Source:    job.Source,
		StartS:    s.Start.Seconds(),
		EndS:      s.End.Seconds(),
		StartedAt: s.StartWall,
		EndedAt:   s.EndWall,
		Objects:   s.Objects,
		Caption:   track.Caption(s.Objects),
		BestScore: s.BestScore,
		Models:    map[string]string{"detector": p.det.Name()},
	}
}

func (p *Pipeline) observe(stage string, start time.Time) {
	p.metrics.frames.WithLabelValues(stage).Inc()
	p.metrics.seconds.WithLabelValues(stage).Observe(time.Since(start).Seconds())
}

// send hands v on, or gives up when ctx ends.
func send[T any](ctx context.Context, ch chan<- T, v T) error {
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
