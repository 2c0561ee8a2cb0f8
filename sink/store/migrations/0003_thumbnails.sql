-- Thumbnails of moments: the best frame as a JPEG and the tracked objects on it. They live in
-- their own table so that scans of video_events stay narrow; a thumbnail goes with its moment.
CREATE TABLE thumbnails (
    moment_uid uuid PRIMARY KEY REFERENCES video_events (moment_uid) ON DELETE CASCADE,
    jpeg       bytea NOT NULL,
    -- [{"class": "person", "track": 1, "score": 0.9, "x1": 10, "y1": 20, "x2": 50, "y2": 120}],
    -- in the thumbnail's pixels.
    boxes      jsonb NOT NULL DEFAULT '[]',
    width      integer NOT NULL CHECK (width > 0),
    height     integer NOT NULL CHECK (height > 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Distinct tracked objects per class, beside yolo_metadata's most seen at once. A constant
-- default does not rewrite the table.
ALTER TABLE video_events ADD COLUMN tracks jsonb NOT NULL DEFAULT '{}';
