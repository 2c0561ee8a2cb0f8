-- Registered cameras. A camera's moments hang off its videos row (kind 'camera', name = camera
-- name, path = URL with the password redacted); this table holds what the RTSP client needs.
-- Credentials live in their own columns so that url can be shown as it is.
CREATE TABLE cameras (
    video_id       integer PRIMARY KEY REFERENCES videos (video_id) ON DELETE CASCADE,
    tenant         text NOT NULL,
    name           text NOT NULL CHECK (name <> '' AND char_length(name) <= 100),
    -- The stream URL without user info.
    url            text NOT NULL,
    username       text NOT NULL DEFAULT '',
    password       text NOT NULL DEFAULT '',
    -- NULL analyses at the configured pipeline.analysis_fps.
    analysis_fps   real CHECK (analysis_fps > 0 AND analysis_fps <= 60),
    keyframes_only boolean NOT NULL DEFAULT false,
    enabled        boolean NOT NULL DEFAULT true,
    -- Where the camera was declared: through the API (or CLI), or in the YAML configuration,
    -- which owns it and removes it when it is no longer listed.
    declared       text NOT NULL DEFAULT 'api' CHECK (declared IN ('api', 'config')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant, name)
);
