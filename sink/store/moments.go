package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"

	"github.com/vigilcam/vigil/pipeline"
	"github.com/vigilcam/vigil/pipeline/track"
)

// WriteMoments upserts a batch of moments in one transaction and returns how many rows it wrote.
// The batch is copied into a temporary table and merged with INSERT ... ON CONFLICT: a plain COPY
// into video_events would fail forever on a redelivered batch, the upsert makes redelivery
// harmless. A moment whose video is gone, or belongs to another tenant, is dropped. A message of a
// later revision replaces a moment's span, objects, tracks and caption, and one of an earlier
// revision changes nothing, whatever order they come in; its thumbnail is replaced only by a
// message of a later revision that carries one, and one whose JPEG header does not parse is left
// out.
func (s *Store) WriteMoments(ctx context.Context, ms []pipeline.Moment) (int64, error) {
	rows := latestByID(ms)
	var written int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `CREATE TEMP TABLE moments_in (
			moment_uid uuid, video_id integer, start_s double precision, end_s double precision,
			caption text, objects jsonb, tracks jsonb, tenant text, started_at timestamptz,
			ended_at timestamptz, best_score real, models jsonb, revision integer,
			jpeg bytea, boxes jsonb, width integer, height integer, embedding vector(384),
			thumb_revision integer) ON COMMIT DROP`)
		if err != nil {
			return err
		}
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"moments_in"},
			[]string{"moment_uid", "video_id", "start_s", "end_s", "caption", "objects", "tracks", "tenant",
				"started_at", "ended_at", "best_score", "models", "revision", "jpeg", "boxes", "width", "height",
				"embedding", "thumb_revision"},
			pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
				m := rows[i].Moment
				row := []any{m.ID, m.VideoID, m.StartS, m.EndS, m.Caption, nonNil(m.Objects), nonNil(m.Tracks),
					m.Tenant, m.StartedAt, m.EndedAt, m.BestScore, nonNil(m.Models), m.Revision, nil, nil, nil, nil, nil,
					rows[i].thumbRevision}
				if len(m.Embedding) > 0 {
					row[17] = pgvector.NewVector(m.Embedding)
				}
				if cfg, err := jpeg.DecodeConfig(bytes.NewReader(m.Thumbnail)); err == nil && cfg.Width > 0 && cfg.Height > 0 {
					boxes := m.Boxes
					if boxes == nil {
						boxes = []track.Box{}
					}
					row[13], row[14], row[15], row[16] = m.Thumbnail, boxes, cfg.Width, cfg.Height
				}
				return row, nil
			}))
		if err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO video_events AS e (moment_uid, video_id, "timestamp", end_s, caption,
				yolo_metadata, tracks, tenant, started_at, ended_at, best_score, models, embedding, revision)
			SELECT i.moment_uid, i.video_id, i.start_s, i.end_s, i.caption, i.objects, i.tracks, i.tenant,
				i.started_at, i.ended_at, i.best_score, i.models, i.embedding, i.revision
			FROM moments_in i JOIN videos v ON v.video_id = i.video_id AND v.tenant = i.tenant
			ON CONFLICT (moment_uid) DO UPDATE SET
				"timestamp" = excluded."timestamp", end_s = excluded.end_s, caption = excluded.caption,
				yolo_metadata = excluded.yolo_metadata, tracks = excluded.tracks,
				started_at = excluded.started_at, ended_at = excluded.ended_at,
				best_score = excluded.best_score, models = excluded.models,
				embedding = coalesce(excluded.embedding, e.embedding), revision = excluded.revision,
				updated_at = now()
			WHERE e.tenant = excluded.tenant AND e.video_id = excluded.video_id
				AND excluded.revision >= e.revision`)
		if err != nil {
			return err
		}
		written = tag.RowsAffected()
		// Joined on the stored moment so that a thumbnail follows only a moment the caller owns.
		// An unchanged thumbnail, as in a redelivered message, is not rewritten.
		_, err = tx.Exec(ctx, `
			INSERT INTO thumbnails AS t (moment_uid, jpeg, boxes, width, height, revision)
			SELECT i.moment_uid, i.jpeg, i.boxes, i.width, i.height, i.thumb_revision
			FROM moments_in i JOIN video_events e ON e.moment_uid = i.moment_uid
				AND e.tenant = i.tenant AND e.video_id = i.video_id
			WHERE i.jpeg IS NOT NULL
			ON CONFLICT (moment_uid) DO UPDATE SET
				jpeg = excluded.jpeg, boxes = excluded.boxes, width = excluded.width,
				height = excluded.height, revision = excluded.revision, updated_at = now()
			WHERE (t.jpeg, t.boxes) IS DISTINCT FROM (excluded.jpeg, excluded.boxes)
				AND excluded.revision >= t.revision`)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("write %d moments: %w", len(rows), err)
	}
	return written, nil
}

// upsert is a moment's latest message in a batch, with the revision its thumbnail came from.
type upsert struct {
	pipeline.Moment
	thumbRevision int
}

// latestByID keeps the latest revision of each moment (the last of equals): ON CONFLICT cannot
// touch one row twice in a statement. A message without a thumbnail takes the latest thumbnail of
// the batch.
func latestByID(ms []pipeline.Moment) []upsert {
	last := make(map[string]int, len(ms))
	thumb := make(map[string]int, len(ms))
	var order []string
	for i, m := range ms {
		j, seen := last[m.ID]
		if !seen {
			order = append(order, m.ID)
		}
		if !seen || m.Revision >= ms[j].Revision {
			last[m.ID] = i
		}
		if k, ok := thumb[m.ID]; m.Thumbnail != nil && (!ok || m.Revision >= ms[k].Revision) {
			thumb[m.ID] = i
		}
	}
	out := make([]upsert, 0, len(order))
	for _, id := range order {
		u := upsert{Moment: ms[last[id]]}
		if j, ok := thumb[id]; ok {
			u.Thumbnail, u.Boxes, u.thumbRevision = ms[j].Thumbnail, ms[j].Boxes, ms[j].Revision
		}
		out = append(out, u)
	}
	return out
}

// nonNil makes a nil map encode as {} rather than SQL NULL.
func nonNil[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}

// CountMoments reports how many of the given moment IDs are committed, each at least at the
// revision at the same index of revisions (none: any revision).
func (s *Store) CountMoments(ctx context.Context, ids []string, revisions []int) (int, error) {
	if revisions == nil {
		revisions = make([]int, len(ids))
	}
	if len(revisions) != len(ids) {
		return 0, fmt.Errorf("count moments: %d revisions for %d ids", len(revisions), len(ids))
	}
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM video_events e
		JOIN unnest($1::uuid[], $2::int[]) AS w(id, revision) ON e.moment_uid = w.id AND e.revision >= w.revision`,
		ids, revisions).Scan(&n)
	return n, err
}

// CountVideoMoments reports how many moments a video has.
func (s *Store) CountVideoMoments(ctx context.Context, videoID int64) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, "SELECT count(*) FROM video_events WHERE video_id = $1", videoID).Scan(&n)
	return n, err
}

// PruneMoments deletes the moments of a video that are not in keep: what an earlier indexing of
// the same file produced and this one did not.
func (s *Store) PruneMoments(ctx context.Context, videoID int64, keep []string) (int64, error) {
	tag, err := s.pool.Exec(ctx, "DELETE FROM video_events WHERE video_id = $1 AND moment_uid <> ALL($2::uuid[])", videoID, keep)
	return tag.RowsAffected(), err
}

// Moment is a stored moment as the API shows it.
type Moment struct {
	ID        string            `json:"moment_id"`
	VideoID   int64             `json:"video_id"`
	Source    string            `json:"source"`
	StartS    float64           `json:"start_s"`
	EndS      float64           `json:"end_s"`
	StartedAt time.Time         `json:"started_at"`
	EndedAt   time.Time         `json:"ended_at"`
	Caption   string            `json:"caption"`
	Objects   map[string]int    `json:"objects"`
	Tracks    map[string]int    `json:"tracks"`
	BestScore float32           `json:"best_score"`
	Models    map[string]string `json:"models"`
	// ThumbnailWidth and ThumbnailHeight are the thumbnail's size, 0 when the moment has none.
	ThumbnailWidth  int `json:"thumbnail_width,omitempty"`
	ThumbnailHeight int `json:"thumbnail_height,omitempty"`
	// Boxes are the objects on the thumbnail, in its pixels.
	Boxes []track.Box `json:"boxes"`
}

// Moment returns a tenant's moment by its ID (a UUID).
func (s *Store) Moment(ctx context.Context, tenant, id string) (Moment, error) {
	var m Moment
	err := s.pool.QueryRow(ctx, `
		SELECT e.moment_uid::text, e.video_id, v.name, e."timestamp", e.end_s, e.started_at,
			e.ended_at, e.caption, e.yolo_metadata, e.tracks, e.best_score, e.models,
			coalesce(t.width, 0), coalesce(t.height, 0), coalesce(t.boxes, '[]')
		FROM video_events e JOIN videos v ON v.video_id = e.video_id AND v.tenant = e.tenant
			LEFT JOIN thumbnails t ON t.moment_uid = e.moment_uid
		WHERE e.tenant = $1 AND e.moment_uid = $2::uuid`, tenant, id).Scan(
		&m.ID, &m.VideoID, &m.Source, &m.StartS, &m.EndS, &m.StartedAt, &m.EndedAt, &m.Caption,
		&m.Objects, &m.Tracks, &m.BestScore, &m.Models, &m.ThumbnailWidth, &m.ThumbnailHeight, &m.Boxes)
	if errors.Is(err, pgx.ErrNoRows) {
		return m, ErrNotFound
	}
	if err != nil {
		return m, fmt.Errorf("moment %s: %w", id, err)
	}
	return m, nil
}

// Thumbnail returns the JPEG of a tenant's moment and when it last changed; ErrNotFound when
// the moment does not exist or has no thumbnail.
func (s *Store) Thumbnail(ctx context.Context, tenant, id string) ([]byte, time.Time, error) {
	var img []byte
	var updated time.Time
	err := s.pool.QueryRow(ctx, `
		SELECT t.jpeg, t.updated_at FROM thumbnails t JOIN video_events e ON e.moment_uid = t.moment_uid
		WHERE e.tenant = $1 AND t.moment_uid = $2::uuid`, tenant, id).Scan(&img, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, time.Time{}, ErrNotFound
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("thumbnail of moment %s: %w", id, err)
	}
	return img, updated, nil
}
