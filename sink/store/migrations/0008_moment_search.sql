-- The full-text path's own table: what it filters and ranks on, without the 1.5 KB embedding that
-- makes a video_events row 2 KB. Looking through the 10,000 newest moments, or every match of a
-- common word, then reads a seventh of the pages. Triggers keep it, so every writer of
-- video_events (the sink, tests, a restore) keeps it too; rows arrive in time order, as moments do.
CREATE TABLE moment_search (
    moment_uid    uuid PRIMARY KEY REFERENCES video_events (moment_uid) ON DELETE CASCADE,
    tenant        text NOT NULL,
    video_id      integer NOT NULL,
    "timestamp"   double precision NOT NULL,
    end_s         double precision NOT NULL,
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz NOT NULL,
    yolo_metadata jsonb NOT NULL,
    search        tsvector NOT NULL
);

-- Statement triggers: a batch of the sink's becomes one upsert here (row triggers halved COPY's
-- rate). An upsert of video_events fires both, with the rows it inserted and those it updated.
CREATE FUNCTION moment_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO moment_search (moment_uid, tenant, video_id, "timestamp", end_s, started_at, ended_at, yolo_metadata, search)
    SELECT moment_uid, tenant, video_id, "timestamp", end_s, started_at, ended_at, yolo_metadata, search FROM changed
    ON CONFLICT (moment_uid) DO UPDATE SET tenant = EXCLUDED.tenant, video_id = EXCLUDED.video_id,
        "timestamp" = EXCLUDED."timestamp", end_s = EXCLUDED.end_s, started_at = EXCLUDED.started_at,
        ended_at = EXCLUDED.ended_at, yolo_metadata = EXCLUDED.yolo_metadata, search = EXCLUDED.search;
    RETURN NULL;
END $$;

CREATE TRIGGER video_events_inserted AFTER INSERT ON video_events
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION moment_search_sync();
CREATE TRIGGER video_events_updated AFTER UPDATE ON video_events
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION moment_search_sync();

INSERT INTO moment_search (moment_uid, tenant, video_id, "timestamp", end_s, started_at, ended_at, yolo_metadata, search)
SELECT moment_uid, tenant, video_id, "timestamp", end_s, started_at, ended_at, yolo_metadata, search
FROM video_events ORDER BY started_at;

CREATE INDEX moment_search_tenant_time ON moment_search (tenant, started_at);
CREATE INDEX moment_search_tenant_video_time ON moment_search (tenant, video_id, started_at);
CREATE INDEX moment_search_search ON moment_search USING gin (search);
-- Only moment_search is searched by word now.
DROP INDEX video_events_search;
