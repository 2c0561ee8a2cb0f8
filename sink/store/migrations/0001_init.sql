-- vigil's first schema. videos and video_events keep the seed's column names and types, so an
-- existing SQLAlchemy/pgvector reader still works; the other columns are the product's.
CREATE EXTENSION IF NOT EXISTS vector;

-- One row per uploaded file and one per registered camera.
CREATE TABLE videos (
    video_id          serial PRIMARY KEY,
    path              text NOT NULL,
    processing_status text NOT NULL DEFAULT 'queued'
                      CHECK (processing_status IN ('queued', 'indexing', 'ready', 'failed')),
    tenant            text NOT NULL,
    kind              text NOT NULL DEFAULT 'upload' CHECK (kind IN ('upload', 'camera')),
    name              text NOT NULL,
    -- Identifies an uploaded file by content, so indexing it again reuses the row and its moments.
    content_sha256    text,
    error             text,
    frames_total      bigint,
    frames_done       bigint NOT NULL DEFAULT 0,
    recorded_at       timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX videos_tenant_content ON videos (tenant, content_sha256)
    WHERE content_sha256 IS NOT NULL;
CREATE INDEX videos_tenant ON videos (tenant, video_id);

-- One row per moment. "timestamp" is the moment's start in seconds from the source's start.
CREATE TABLE video_events (
    event_id      bigserial PRIMARY KEY,
    video_id      integer NOT NULL REFERENCES videos (video_id) ON DELETE CASCADE,
    "timestamp"   double precision NOT NULL,
    caption       text NOT NULL DEFAULT '',
    yolo_metadata jsonb NOT NULL DEFAULT '{}',
    embedding     vector(384),
    -- Chosen by the producer and used as Nats-Msg-Id: every write is an idempotent upsert on it.
    moment_uid    uuid NOT NULL UNIQUE,
    tenant        text NOT NULL,
    end_s         double precision NOT NULL,
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz NOT NULL,
    best_score    real NOT NULL DEFAULT 0,
    models        jsonb NOT NULL DEFAULT '{}',
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- Object labels weigh more than caption words. Generated here, in the first migration,
    -- because adding a stored column later rewrites the whole table.
    search        tsvector GENERATED ALWAYS AS (
                      setweight(jsonb_to_tsvector('english', yolo_metadata, '["key"]'), 'A') ||
                      setweight(to_tsvector('english', caption), 'B')) STORED
);
CREATE INDEX video_events_search ON video_events USING gin (search);
CREATE INDEX video_events_tenant_time ON video_events (tenant, started_at);
CREATE INDEX video_events_video ON video_events (video_id, "timestamp");
