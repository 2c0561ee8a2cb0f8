package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vigilcam/vigil/configs"
	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/pipeline/detect"
	"github.com/vigilcam/vigil/pipeline/motion"
	"github.com/vigilcam/vigil/pipeline/track"
)

// Config configures a Pipeline.
type Config struct {
	// QueueSize is the capacity of each queue between stages. It defaults to 4.
	QueueSize int
	// Drain is how long a cancelled run may take to finish the frames already read and publish
	// its open moment before it is stopped hard. It defaults to 5s.
	Drain time.Duration
	// Gate runs the motion gate; without it every frame goes to the detector.
	Gate   bool
	Motion motion.Config
	// Moments configures how detections group into moments.
	Moments track.Config
	// Embedder, when set, embeds each moment's caption for vector search; without one, moments
	// carry no embedding and search is full text only.
	Embedder Embedder
	// Captions configures the captioning of moments' best frames.
	Captions CaptionConfig
}

// Embedder turns captions into sentence embeddings; *embed.Embedder is one.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	Name() string
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
	// Live marks a camera: when the pipeline falls behind, the oldest frame waiting is dropped
	// rather than the source held up. A replay (false) is never dropped from.
	Live bool
	// MotionMask lists the source's areas whose movement the motion gate ignores.
	MotionMask []configs.Polygon
}

// Pipeline analyses sources with one shared detector.
type Pipeline struct {
	cfg     Config
	det     *detect.Detector
	pub     Publisher
	metrics *Metrics
	log     *slog.Logger
	// captions is nil when no captioner is configured.
	captions *captionStage
}

// New returns a pipeline publishing to pub. With captioners configured it starts their workers,
// which Close stops.
func New(cfg Config, det *detect.Detector, pub Publisher, metrics *Metrics, log *slog.Logger) *Pipeline {
	if cfg.QueueSize < 1 {
		cfg.QueueSize = 4
	}
	if cfg.Drain <= 0 {
		cfg.Drain = 5 * time.Second
	}
	return &Pipeline{cfg: cfg, det: det, pub: pub, metrics: metrics, log: log,
		captions: newCaptionStage(cfg.Captions, metrics, log)}
}

// Close stops the caption workers; call it after the last Run has returned.
func (p *Pipeline) Close() { p.captions.close() }

// item is a frame on its way through the stages.
type item struct {
	frame  ingest.Frame
	moving bool
	dets   []detect.Detection
	queued time.Time // when it entered its current queue
}

// Result sums up one run.
type Result struct {
	// Frames were analysed; Moving of them passed the motion gate.
	Frames, Moving int64
	// Moments lists the IDs of the moments published, in order, and Revisions the last revision
	// of each that was published.
	Moments   []string
	Revisions []int
}

// Run analyses src until it ends, publishing moments as they close. Stages run concurrently,
// joined by bounded queues: a replay is lossless (every stage waits for the next), a live source
// loses its oldest waiting frames instead. When ctx ends, Run stops reading, finishes the frames
// already read and publishes the open moment within Config.Drain, then returns ctx's error.
func (p *Pipeline) Run(ctx context.Context, src Source, job Job) (Result, error) {
	finished := make(chan struct{})
	defer close(finished)
	work, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	go func() {
		select {
		case <-ctx.Done():
			select {
			case <-time.After(p.cfg.Drain):
				stop()
			case <-finished:
			}
		case <-finished:
		}
	}()
	g, work := errgroup.WithContext(work)
	ingress := Block
	if job.Live {
		ingress = DropOldest
	}
	frames := newQueue("motion", p.cfg.QueueSize, ingress, p.metrics)
	gated := newQueue("detect", p.cfg.QueueSize, Block, p.metrics)
	detected := newQueue("segment", p.cfg.QueueSize, Block, p.metrics)
	var res Result
	var moving atomic.Int64

	g.Go(func() error {
		defer frames.close()
		for ctx.Err() == nil {
			start := time.Now()
			f, err := src.Next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			p.observe("decode", start)
			if err := frames.put(work, item{frame: f}); err != nil {
				return err
			}
		}
		return nil
	})
	g.Go(func() error {
		defer gated.close()
		return p.gate(work, frames, gated, job.MotionMask, &moving)
	})
	var workers sync.WaitGroup
	for range max(1, p.det.Sessions()) {
		workers.Add(1)
		g.Go(func() error {
			defer workers.Done()
			return p.detect(work, gated, detected)
		})
	}
	g.Go(func() error {
		workers.Wait()
		detected.close()
		return nil
	})
	out := &moments{p: p, job: job, ctx: ctx, state: map[string]*momentState{}, revisions: map[string]int{}}
	g.Go(func() error {
		var err error
		res.Frames, err = p.segment(work, detected, out)
		return err
	})
	err := g.Wait()
	// A replay's moments are all captioned before it ends; a cancelled run's requests give up.
	out.pending.Wait()
	res.Moments = out.ids
	for _, id := range out.ids {
		res.Revisions = append(res.Revisions, out.revisions[id])
	}
	res.Moving = moving.Load()
	if err == nil {
		err = ctx.Err()
	}
	return res, err
}

// gate numbers the frames that got past the ingress queue, in order (the stages behind restore
// that order), and marks the moving ones for the detector.
func (p *Pipeline) gate(ctx context.Context, in, out *queue, mask []configs.Polygon, moving *atomic.Int64) error {
	var g *motion.Gate
	if p.cfg.Gate {
		cfg := p.cfg.Motion
		cfg.Mask = mask
		g = motion.New(cfg)
		defer g.Close()
	}
	for seq := int64(0); ; seq++ {
		it, ok := in.take()
		if !ok {
			return nil
		}
		it.frame.Seq = seq
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
			p.metrics.gated.Inc()
			it.frame.BGR = nil // only its time goes on
		}
		if err := out.put(ctx, it); err != nil {
			return err
		}
	}
}

func (p *Pipeline) detect(ctx context.Context, in, out *queue) error {
	for {
		it, ok := in.take()
		if !ok {
			return nil
		}
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
		if len(it.dets) == 0 {
			it.frame.BGR = nil // only frames with objects can give the thumbnail
		}
		if err := out.put(ctx, it); err != nil {
			return err
		}
	}
}

// segment restores stream order (detection runs in parallel), groups detections into moments and
// publishes each moment when it opens, as it grows and when it closes, always under one ID.
func (p *Pipeline) segment(ctx context.Context, in *queue, out *moments) (int64, error) {
	seg := track.NewSegmenter(p.cfg.Moments)
	job := out.job
	pending := map[int64]item{}
	var next int64
	// A live source's silence closes its open moment once the idle gap has passed on the wall
	// clock: the stream time it would have reached is the last frame's plus the time since.
	var wait time.Duration
	if job.Live {
		wait = seg.IdleGap()
	}
	var lastPTS time.Duration
	lastAt := time.Now()
	for {
		it, ok, idle := in.takeWithin(wait)
		if !ok {
			break
		}
		if idle {
			if err := out.publish(ctx, seg.Idle(lastPTS+time.Since(lastAt))); err != nil {
				return next, err
			}
			continue
		}
		pending[it.frame.Seq] = it
		for {
			it, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			start := time.Now()
			lastPTS, lastAt = it.frame.PTS, start
			events := seg.Push(&it.frame, it.dets)
			if err := out.publish(ctx, events); err != nil {
				return next, err
			}
			p.observe("segment", start)
			if job.Progress != nil {
				job.Progress(it.frame.PTS)
			}
		}
	}
	if len(pending) > 0 {
		return next, fmt.Errorf("pipeline: %d frames out of sequence after frame %d", len(pending), next)
	}
	return next, out.publish(ctx, seg.Finish())
}

// moments turns one source's segment events into published Moments, and captions into their
// enrichments. The segment stage and the caption workers both publish, under mu, so that each
// moment's revisions go out in order.
type moments struct {
	p   *Pipeline
	job Job
	// ctx is the run's context for caption requests: cancelled with the run, or, for a replay,
	// after the run's moments are all captioned.
	ctx context.Context
	// pending counts caption requests not yet done; the run waits for them.
	pending sync.WaitGroup

	mu sync.Mutex
	// ids lists the moments opened, in order.
	ids []string
	// state holds the moments still open or waiting for a caption.
	state map[string]*momentState
	// revisions has the last revision published of every moment.
	revisions map[string]int
}

// momentState is what a moment's next message builds on.
type momentState struct {
	last     Moment // the latest message, without its thumbnail
	revision int
	closed   bool
	// sent is the thumbnail last published and asked is the one last sent for captioning, so that
	// an unchanged one is not sent again; askedAt is the stream time of that request.
	sent, asked *track.Thumbnail
	askedAt     time.Duration
	// generated is the latest caption from the captioner; it replaces the composed one.
	generated string
	// The caption last embedded, with its embedding.
	caption   string
	embedding []float32
	// inflight counts caption requests not yet done.
	inflight int
}

func (ms *moments) publish(ctx context.Context, events []track.Event) error {
	for _, e := range events {
		s := e.Segment
		if e.Err != nil {
			ms.p.metrics.errors.WithLabelValues("thumbnail").Inc()
			ms.p.log.Warn("thumbnail not made; the moment keeps the one before", "stage", "segment", "err", e.Err)
		}
		m := ms.p.moment(s, ms.job)
		ms.mu.Lock()
		st := ms.state[m.ID]
		if st == nil {
			st = &momentState{askedAt: s.Start}
			ms.state[m.ID] = st
			ms.ids = append(ms.ids, m.ID)
		}
		st.closed = e.Kind == track.Closed
		if st.generated != "" {
			m.Caption = st.generated
			m.Models["captioner"] = ms.p.captions.cfg.Name
		}
		if s.Thumbnail != nil && s.Thumbnail != st.sent {
			m.Thumbnail, m.Boxes = s.Thumbnail.JPEG, s.Thumbnail.Boxes
			st.sent = s.Thumbnail
		}
		err := ms.send(ctx, st, m)
		ask := ms.p.captions != nil && s.Thumbnail != nil && s.Thumbnail != st.asked &&
			(st.closed || s.End-st.askedAt >= ms.p.captions.cfg.Every)
		if ask {
			st.asked, st.askedAt = s.Thumbnail, s.End
			st.inflight++
		} else if st.closed && st.inflight == 0 {
			delete(ms.state, m.ID)
		}
		ms.mu.Unlock()
		if err != nil {
			return err
		}
		if ask {
			ms.p.captions.submit(&captionRequest{ctx: ms.ctx, ms: ms, id: m.ID, thumb: s.Thumbnail, live: ms.job.Live})
		}
	}
	return nil
}

// send embeds and publishes m as st's next revision; the caller holds mu.
func (ms *moments) send(ctx context.Context, st *momentState, m Moment) error {
	m.Revision = st.revision
	st.revision++
	ms.embed(ctx, st, &m)
	if err := ms.p.pub.Publish(ctx, &m); err != nil {
		return err
	}
	ms.revisions[m.ID] = m.Revision
	m.Thumbnail, m.Boxes = nil, nil
	st.last = m
	ms.p.metrics.moments.Inc()
	return nil
}

// enrich publishes moment id again with a generated caption; a caption request is in flight.
func (ms *moments) enrich(ctx context.Context, id, caption, model string) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	st := ms.state[id]
	st.generated = caption
	m := st.last
	m.Caption = caption
	m.Models = maps.Clone(m.Models)
	m.Models["captioner"] = model
	return ms.send(ctx, st, m)
}

// captionDone forgets a closed moment once no caption request for it is left.
func (ms *moments) captionDone(id string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	st := ms.state[id]
	st.inflight--
	if st.closed && st.inflight == 0 {
		delete(ms.state, id)
	}
	ms.pending.Done()
}

// embed gives m the embedding of its caption, computed again only when the caption changed. A
// failure costs the moment its embedding, not its publication.
func (ms *moments) embed(ctx context.Context, st *momentState, m *Moment) {
	emb := ms.p.cfg.Embedder
	if emb == nil {
		return
	}
	if m.Caption != st.caption {
		start := time.Now()
		vecs, err := emb.Embed(ctx, []string{m.Caption})
		if err != nil {
			ms.p.metrics.errors.WithLabelValues("embed").Inc()
			ms.p.log.Warn("caption not embedded", "stage", "embed", "moment", m.ID, "err", err)
			return
		}
		ms.p.observe("embed", start)
		st.caption, st.embedding = m.Caption, vecs[0]
	}
	m.Embedding = st.embedding
	m.Models["embedder"] = emb.Name()
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
		Tracks:    s.Tracks,
		Caption:   track.Caption(s.Objects),
		BestScore: s.BestScore,
		Models:    map[string]string{"detector": p.det.Name()},
	}
}

func (p *Pipeline) observe(stage string, start time.Time) {
	p.metrics.frames.WithLabelValues(stage).Inc()
	p.metrics.seconds.WithLabelValues(stage).Observe(time.Since(start).Seconds())
}
