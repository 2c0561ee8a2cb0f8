// Package jobs owns index jobs: the life of an uploaded file's videos row from queued through
// indexing to ready or failed. Submit records the row and enqueues the job on the bus; a Worker
// takes jobs off the queue and runs the pipeline over each file.
package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/vigilcam/vigil/ingest/replay"
	"github.com/vigilcam/vigil/pipeline"
	"github.com/vigilcam/vigil/sink/bus"
	"github.com/vigilcam/vigil/sink/store"
)

// Config configures an Indexer and its workers.
type Config struct {
	// AnalysisFPS is how many frames per second are analysed. It defaults to 5.
	AnalysisFPS float64
	// CommitTimeout bounds the wait for the sink to commit a job's moments. It defaults to 2m.
	CommitTimeout time.Duration
	// RetryDelay is how long a job waits before redelivery when its outcome could not be
	// recorded, or when the queue cannot be read. It defaults to 5s.
	RetryDelay time.Duration
}

// Progress reports how far a job is.
type Progress struct {
	FramesDone, FramesTotal int64
}

// Options adjusts one submission.
type Options struct {
	// Force indexes a file again that is already ready; otherwise its row is returned as it is.
	Force bool
	// Name is the video's name. It defaults to the file's base name.
	Name string
	// SHA256 is the file's content hash when the caller has it; Submit computes it otherwise.
	SHA256 string
}

// Outcome says how an index job ended.
type Outcome struct {
	Video store.Video
	// Moments is the number of moments the video has, once ready.
	Moments int
}

// Queue carries index jobs to workers; *bus.Bus is one.
type Queue interface {
	PublishJob(ctx context.Context, job bus.Job) error
}

// Indexer submits index jobs and runs them for its workers.
type Indexer struct {
	cfg     Config
	store   *store.Store
	queue   Queue
	replays *replay.Server
	pipe    *pipeline.Pipeline
	log     *slog.Logger
}

// NewIndexer returns an indexer that records jobs in st and enqueues them on q. It runs a job by
// replaying the file from replays and reading it back over RTSP, exactly as a camera is read,
// through pipe.
func NewIndexer(cfg Config, st *store.Store, q Queue, replays *replay.Server, pipe *pipeline.Pipeline, log *slog.Logger) *Indexer {
	if cfg.AnalysisFPS <= 0 {
		cfg.AnalysisFPS = 5
	}
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = 2 * time.Minute
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 5 * time.Second
	}
	return &Indexer{cfg: cfg, store: st, queue: q, replays: replays, pipe: pipe, log: log}
}

// Submit records the file at path as queued for tenant and enqueues its index job. A file already
// ready for the tenant (same content) is returned as it is unless opts.Force is set; a file known
// by its content keeps its row and its moment IDs, so indexing it again adds nothing twice. A file
// that cannot be read is recorded failed with the reason, and returned without error: the error
// is reserved for what could not be recorded or enqueued.
func (ix *Indexer) Submit(ctx context.Context, tenant, path string, opts Options) (store.Video, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	name := opts.Name
	if name == "" {
		name = filepath.Base(abs)
	}
	sum := opts.SHA256
	var hashErr error
	if sum == "" {
		sum, hashErr = fileSHA256(abs)
	}
	if hashErr == nil && !opts.Force {
		v, err := ix.store.VideoByContent(ctx, tenant, sum)
		if err == nil && v.Status == store.StatusReady {
			return v, nil
		}
	}
	v, err := ix.store.QueueUpload(ctx, tenant, abs, name, sum)
	if err != nil {
		return v, err
	}
	if hashErr != nil {
		return ix.fail(ctx, v, hashErr)
	}
	job := bus.Job{Tenant: tenant, VideoID: v.ID, Path: abs, Force: opts.Force, Submission: uuid.NewString()}
	if err := ix.queue.PublishJob(ctx, job); err != nil {
		err = fmt.Errorf("enqueue: %w", err)
		failed, ferr := ix.fail(ctx, v, err)
		return failed, errors.Join(err, ferr)
	}
	return v, nil
}

// fail records that v failed because of cause; it is recorded even when ctx is cancelled, so a
// row does not stay queued with no job behind it.
func (ix *Indexer) fail(ctx context.Context, v store.Video, cause error) (store.Video, error) {
	if err := ix.store.Finish(context.WithoutCancel(ctx), v.ID, cause); err != nil {
		return v, err
	}
	v.Status, v.Error = store.StatusFailed, cause.Error()
	return v, nil
}

// Wait polls the tenant's video id until its job has ended, ready or failed, calling progress
// (when set) with the frames done so far, and returns the outcome.
func (ix *Indexer) Wait(ctx context.Context, tenant string, id int64, progress func(Progress)) (Outcome, error) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		v, err := ix.store.Video(ctx, tenant, id)
		if err != nil {
			return Outcome{Video: v}, fmt.Errorf("video %d: %w", id, err)
		}
		switch v.Status {
		case store.StatusReady:
			n, err := ix.store.CountVideoMoments(ctx, v.ID)
			return Outcome{Video: v, Moments: n}, err
		case store.StatusFailed:
			return Outcome{Video: v}, nil
		}
		if progress != nil && v.FramesTotal > 0 {
			progress(Progress{FramesDone: v.FramesDone, FramesTotal: v.FramesTotal})
		}
		select {
		case <-ctx.Done():
			return Outcome{Video: v}, ctx.Err()
		case <-tick.C:
		}
	}
}

// run indexes v's file and returns the IDs of its moments, all committed.
func (ix *Indexer) run(ctx context.Context, v *store.Video, progress func(Progress), log *slog.Logger) ([]string, error) {
	rep, err := ix.replays.Open(v.Path, replay.Options{})
	if err != nil {
		return nil, err
	}
	defer rep.Close()
	info := rep.Info()
	// Moment times hang off one instant per video, kept from its first indexing, so the same file
	// gives the same moment IDs every time.
	epoch := info.Created
	if v.RecordedAt != nil {
		epoch = *v.RecordedAt
	} else if epoch.IsZero() {
		epoch = time.Now().UTC().Truncate(time.Second)
	}
	if err := ix.store.StartIndexing(ctx, v.ID, info.Frames, epoch); err != nil {
		return nil, err
	}
	v.FramesTotal = info.Frames
	log.Info("indexing", "codec", info.Source, "sent_as", info.Codec, "transcoded", info.Transcoded,
		"size", fmt.Sprintf("%dx%d", info.Width, info.Height), "frames", info.Frames, "duration", info.Duration)
	src, err := readReplay(ctx, rep, ix.cfg.AnalysisFPS, epoch)
	if err != nil {
		return nil, err
	}
	defer src.close()

	var lastSaved time.Time
	started := time.Now()
	res, err := ix.pipe.Run(ctx, src, pipeline.Job{
		Tenant: v.Tenant, VideoID: v.ID, Source: v.Name,
		Key: []byte("video/" + strconv.FormatInt(v.ID, 10)),
		Progress: func(pts time.Duration) {
			done := min(int64(pts.Seconds()*info.FPS)+1, max(info.Frames, 1))
			if progress != nil {
				progress(Progress{FramesDone: done, FramesTotal: info.Frames})
			}
			if time.Since(lastSaved) >= time.Second {
				lastSaved = time.Now()
				if err := ix.store.Progress(ctx, v.ID, done); err != nil {
					log.Debug("progress not saved", "err", err)
				}
			}
		},
	})
	if err != nil {
		return nil, err
	}
	if err := ix.awaitCommit(ctx, res.Moments, res.Revisions); err != nil {
		return nil, err
	}
	pruned, err := ix.store.PruneMoments(ctx, v.ID, res.Moments)
	if err != nil {
		return nil, fmt.Errorf("prune moments of an earlier run: %w", err)
	}
	log.Info("indexed", "analysed_frames", res.Frames, "moving_frames", res.Moving,
		"moments", len(res.Moments), "pruned", pruned, "took", time.Since(started).Round(time.Millisecond))
	return res.Moments, nil
}

// awaitCommit waits until the sink has committed every moment in ids at its last revision, which
// carries its caption.
func (ix *Indexer) awaitCommit(ctx context.Context, ids []string, revisions []int) error {
	deadline := time.Now().Add(ix.cfg.CommitTimeout)
	for {
		n, err := ix.store.CountMoments(ctx, ids, revisions)
		if err != nil {
			return fmt.Errorf("await commit: %w", err)
		}
		if n == len(ids) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d moments committed after %s: is a sink running?", n, len(ids), ix.cfg.CommitTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
