package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/vigilcam/vigil/pipeline"
)

// WriteMoments upserts a batch of moments in one transaction and returns how many rows it wrote.
// The batch is copied into a temporary table and merged with INSERT ... ON CONFLICT: a plain COPY
// into video_events would fail forever on a redelivered batch, the upsert makes redelivery
// harmless. A moment whose video is gone, or belongs to another tenant, is dropped.
func (s *Store) WriteMoments(ctx context.Context, ms []pipeline.Moment) (int64, error) {
	rows := latestByID(ms)
	var written int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `CREATE TEMP TABLE moments_in (
			moment_uid uuid, video_id integer, start_s double precision, end_s double precision,
			caption text, objects jsonb, tenant text, started_at timestamptz, ended_at timestamptz,
			best_score real, models jsonb) ON COMMIT DROP`)
		if err != nil {
			return err
		}
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"moments_in"},
			[]string{"moment_uid", "video_id", "start_s", "end_s", "caption", "objects", "tenant",
				"started_at", "ended_at", "best_score", "models"},
			pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
				m := rows[i]
				return []any{m.ID, m.VideoID, m.StartS, m.EndS, m.Caption, nonNil(m.Objects), m.Tenant,
					m.StartedAt, m.EndedAt, m.BestScore, nonNil(m.Models)}, nil
			}))
		if err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO video_events AS e (moment_uid, video_id, "timestamp", end_s, caption,
				yolo_metadata, tenant, started_at, ended_at, best_score, models)
			SELECT i.moment_uid, i.video_id, i.start_s, i.end_s, i.caption, i.objects, i.tenant,
				i.started_at, i.ended_at, i.best_score, i.models
			FROM moments_in i JOIN videos v ON v.video_id = i.video_id AND v.tenant = i.tenant
			ON CONFLICT (moment_uid) DO UPDATE SET
				"timestamp" = excluded."timestamp", end_s = excluded.end_s, caption = excluded.caption,
				yolo_metadata = excluded.yolo_metadata, started_at = excluded.started_at,
				ended_at = excluded.ended_at, best_score = excluded.best_score,
				models = excluded.models, updated_at = now()
			WHERE e.tenant = excluded.tenant AND e.video_id = excluded.video_id`)
		written = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("write %d moments: %w", len(rows), err)
	}
	return written, nil
}

// latestByID keeps the last message of each moment: ON CONFLICT cannot touch one row twice in a
// statement, and a later message of a moment supersedes an earlier one.
func latestByID(ms []pipeline.Moment) []pipeline.Moment {
	last := make(map[string]int, len(ms))
	for i, m := range ms {
		last[m.ID] = i
	}
	out := make([]pipeline.Moment, 0, len(last))
	for i, m := range ms {
		if last[m.ID] == i {
			out = append(out, m)
		}
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

// CountMoments reports how many of the given moment IDs are committed.
func (s *Store) CountMoments(ctx context.Context, ids []string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, "SELECT count(*) FROM video_events WHERE moment_uid = ANY($1::uuid[])", ids).Scan(&n)
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
