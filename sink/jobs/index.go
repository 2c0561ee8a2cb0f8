// Package jobs owns index jobs: the life of an uploaded file's videos row from queued through
// indexing to ready or failed, around one run of the pipeline over the file.
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

	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/ingest/decode"
	"github.com/vigilcam/vigil/pipeline"
	"github.com/vigilcam/vigil/sink/store"
)

// Config configures an Indexer.
type Config struct {
	// AnalysisFPS is how many frames per second are analysed. It defaults to 5.
	AnalysisFPS float64
	// CommitTimeout bounds the wait for the sink to commit a job's moments. It defaults to 2m.
	CommitTimeout time.Duration
}

// Progress reports how far a job is.
type Progress struct {
	FramesDone, FramesTotal int64
}

// Options adjusts one index job.
type Options struct {
	// Force indexes a file again that is already ready; otherwise it is skipped.
	Force bool
	// Progress, when set, is called as frames are analysed.
	Progress func(Progress)
}

// Outcome says what an index job did.
type Outcome struct {
	Video store.Video
	// Moments is the number of moments the file has now.
	Moments int
	// Skipped is true when the file was already indexed and Force was not set.
	Skipped bool
}

// Indexer runs index jobs.
type Indexer struct {
	cfg   Config
	store *store.Store
	pipe  *pipeline.Pipeline
	log   *slog.Logger
}

// NewIndexer returns an indexer that records jobs in st and runs them through pipe.
func NewIndexer(cfg Config, st *store.Store, pipe *pipeline.Pipeline, log *slog.Logger) *Indexer {
	if cfg.AnalysisFPS <= 0 {
		cfg.AnalysisFPS = 5
	}
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = 2 * time.Minute
	}
	return &Indexer{cfg: cfg, store: st, pipe: pipe, log: log}
}

// Index indexes the file at path for tenant and returns when its moments are committed. The
// videos row moves queued → indexing → ready, or to failed with the error, which Index also
// returns. A file indexed before (same content, same tenant) keeps its row and its moment IDs, so
// indexing it again adds nothing twice.
func (ix *Indexer) Index(ctx context.Context, tenant, path string, opts Options) (Outcome, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	sum, hashErr := fileSHA256(abs)
	if hashErr == nil && !opts.Force {
		v, err := ix.store.VideoByContent(ctx, tenant, sum)
		if err == nil && v.Status == store.StatusReady {
			n, err := ix.store.CountVideoMoments(ctx, v.ID)
			return Outcome{Video: v, Moments: n, Skipped: true}, err
		}
	}
	v, err := ix.store.QueueUpload(ctx, tenant, abs, filepath.Base(abs), sum)
	if err != nil {
		return Outcome{Video: v}, err
	}
	log := ix.log.With("video", v.ID, "path", abs)
	var moments []string
	err = hashErr
	if err == nil {
		moments, err = ix.run(ctx, &v, opts.Progress, log)
	}
	if errors.Is(err, context.Canceled) {
		err = errors.New("indexing interrupted")
	}
	// The outcome is recorded even when ctx is cancelled: a row must not stay "indexing".
	if ferr := ix.store.Finish(context.WithoutCancel(ctx), v.ID, err); ferr != nil {
		return Outcome{Video: v}, errors.Join(err, ferr)
	}
	if err != nil {
		log.Warn("indexing failed", "err", err)
		v.Status, v.Error = store.StatusFailed, err.Error()
		return Outcome{Video: v}, err
	}
	v.Status = store.StatusReady
	return Outcome{Video: v, Moments: len(moments)}, nil
}

// run indexes v's file and returns the IDs of its moments, all committed.
func (ix *Indexer) run(ctx context.Context, v *store.Video, progress func(Progress), log *slog.Logger) ([]string, error) {
	f, err := decode.OpenFile(v.Path, decode.Options{FPS: ix.cfg.AnalysisFPS})
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info := f.Info()
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
	log.Info("indexing", "codec", info.Codec, "size", fmt.Sprintf("%dx%d", info.Width, info.Height),
		"frames", info.Frames, "duration", info.Duration)

	var lastSaved time.Time
	started := time.Now()
	res, err := ix.pipe.Run(ctx, stamped{f, epoch}, pipeline.Job{
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
	if err := ix.awaitCommit(ctx, res.Moments); err != nil {
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

// awaitCommit waits until the sink has committed every moment in ids.
func (ix *Indexer) awaitCommit(ctx context.Context, ids []string) error {
	deadline := time.Now().Add(ix.cfg.CommitTimeout)
	for {
		n, err := ix.store.CountMoments(ctx, ids)
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

// stamped gives a file's frames wall-clock times from the video's epoch.
type stamped struct {
	src   *decode.File
	epoch time.Time
}

func (s stamped) Next() (ingest.Frame, error) {
	f, err := s.src.Next()
	f.Wall = s.epoch.Add(f.PTS)
	return f, err
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
