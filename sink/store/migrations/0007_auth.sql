-- Tenants and the API tokens that act for them.
CREATE TABLE tenants (
    id         text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Tenants already holding data become known tenants, so that tokens can be made for them.
INSERT INTO tenants (id)
    SELECT tenant FROM videos UNION SELECT tenant FROM cameras
    ON CONFLICT DO NOTHING;

-- A token's secret is never stored: only its SHA-256, which is what a request's token is looked
-- up by. The secret holds 256 random bits, so a fast unsalted hash is enough.
CREATE TABLE api_tokens (
    id           bigserial PRIMARY KEY,
    tenant       text NOT NULL REFERENCES tenants (id),
    name         text NOT NULL CHECK (name <> '' AND char_length(name) <= 100),
    scope        text NOT NULL CHECK (scope IN ('read', 'admin')),
    hash         bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    -- A revoked token is kept, for the record, and refused.
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_tenant ON api_tokens (tenant, id);
