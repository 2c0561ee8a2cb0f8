-- The revision of the message a moment's row, and its thumbnail, were last written from: a message
-- redelivered or delayed behind a later one of the same moment must not undo it. Captions arrive
-- as later revisions from a worker of their own, so order on the wire is not order of revisions.
ALTER TABLE video_events ADD COLUMN revision integer NOT NULL DEFAULT 0;
ALTER TABLE thumbnails ADD COLUMN revision integer NOT NULL DEFAULT 0;
