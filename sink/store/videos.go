package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Processing states of a videos row.
const (
	StatusQueued   = "queued"
	StatusIndexing = "indexing"
	StatusReady    = "ready"
	StatusFailed   = "failed"
)

// ErrNotFound is returned for a row that does not exist for the caller's tenant.
var ErrNotFound = errors.New("not found")

// Video is one uploaded file or camera.
type Video struct {
	ID          int64      `json:"video_id"`
	Tenant      string     `json:"tenant"`
	Kind        string     `json:"kind"`
	Name        string     `json:"name"`
	Path        string     `json:"path"`
	Status      string     `json:"status"`
	Error       string     `json:"error,omitempty"`
	SHA256      string     `json:"sha256,omitempty"`
	FramesTotal int64      `json:"frames_total"`
	FramesDone  int64      `json:"frames_done"`
	RecordedAt  *time.Time `json:"recorded_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

const videoColumns = `video_id, tenant, kind, name, path, processing_status, coalesce(error, ''),
	coalesce(content_sha256, ''), coalesce(frames_total, 0), frames_done, recorded_at, created_at, updated_at`

func scanVideo(row pgx.Row) (Video, error) {
	var v Video
	err := row.Scan(&v.ID, &v.Tenant, &v.Kind, &v.Name, &v.Path, &v.Status, &v.Error, &v.SHA256,
		&v.FramesTotal, &v.FramesDone, &v.RecordedAt, &v.CreatedAt, &v.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, ErrNotFound
	}
	return v, err
}

// QueueUpload records a file to index as queued. A file already known to the tenant by its
// content (sha256, when given) gets its row back, queued again, so its moments are updated in
// place rather than duplicated.
func (s *Store) QueueUpload(ctx context.Context, tenant, path, name, sha256 string) (Video, error) {
	var sha *string
	if sha256 != "" {
		sha = &sha256
	}
	v, err := scanVideo(s.pool.QueryRow(ctx, `
		INSERT INTO videos (tenant, kind, path, name, content_sha256) VALUES ($1, 'upload', $2, $3, $4)
		ON CONFLICT (tenant, content_sha256) WHERE content_sha256 IS NOT NULL DO UPDATE SET
			path = excluded.path, name = excluded.name, processing_status = 'queued', error = NULL,
			frames_done = 0, updated_at = now()
		RETURNING `+videoColumns, tenant, path, name, sha))
	if err != nil {
		return v, fmt.Errorf("queue %s: %w", path, err)
	}
	return v, nil
}

// StartIndexing moves a video to indexing and records what is known about it up front.
func (s *Store) StartIndexing(ctx context.Context, id, framesTotal int64, recordedAt time.Time) error {
	var rec *time.Time
	if !recordedAt.IsZero() {
		rec = &recordedAt
	}
	return s.update(ctx, id, `processing_status = 'indexing', error = NULL, frames_total = $2,
		frames_done = 0, recorded_at = coalesce($3, recorded_at)`, framesTotal, rec)
}

// Progress records how many frames of a video have been decoded.
func (s *Store) Progress(ctx context.Context, id, framesDone int64) error {
	return s.update(ctx, id, "frames_done = $2", framesDone)
}

// Requeue moves a video whose job was interrupted back to queued, for the worker that takes the
// job next.
func (s *Store) Requeue(ctx context.Context, id int64) error {
	return s.update(ctx, id, "processing_status = 'queued', frames_done = 0")
}

// Finish marks a video ready, or failed with the error's text when cause is not nil.
func (s *Store) Finish(ctx context.Context, id int64, cause error) error {
	if cause != nil {
		return s.update(ctx, id, "processing_status = 'failed', error = $2", cause.Error())
	}
	return s.update(ctx, id, "processing_status = 'ready', error = NULL, frames_done = greatest(frames_done, coalesce(frames_total, 0))")
}

func (s *Store) update(ctx context.Context, id int64, set string, args ...any) error {
	tag, err := s.pool.Exec(ctx, "UPDATE videos SET "+set+", updated_at = now() WHERE video_id = $1",
		append([]any{id}, args...)...)
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("video %d: %w", id, err)
	}
	return nil
}

// Video returns one of the tenant's videos.
func (s *Store) Video(ctx context.Context, tenant string, id int64) (Video, error) {
	return scanVideo(s.pool.QueryRow(ctx, "SELECT "+videoColumns+" FROM videos WHERE tenant = $1 AND video_id = $2", tenant, id))
}

// VideoByContent returns the tenant's upload with the given content hash.
func (s *Store) VideoByContent(ctx context.Context, tenant, sha256 string) (Video, error) {
	return scanVideo(s.pool.QueryRow(ctx, "SELECT "+videoColumns+" FROM videos WHERE tenant = $1 AND content_sha256 = $2", tenant, sha256))
}

// Videos lists the tenant's videos, newest first.
func (s *Store) Videos(ctx context.Context, tenant string) ([]Video, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+videoColumns+" FROM videos WHERE tenant = $1 ORDER BY video_id DESC", tenant)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Video, error) { return scanVideo(row) })
}
