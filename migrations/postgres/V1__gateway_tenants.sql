-- The gateway's own tables: tenants, their API tokens (stored hashed only) and quotas.
-- Applied by `chgate migrate up` through refinery (its ledger: refinery_schema_history).

CREATE TABLE IF NOT EXISTS gateway_tenants (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    disabled    BOOLEAN NOT NULL DEFAULT false,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- token_sha256 = SHA-256 of the bearer token's UTF-8 bytes. Tokens are random (>= 128 bits),
-- so a fast hash is enough; the plain token is shown once at creation and never stored.
CREATE TABLE IF NOT EXISTS gateway_tokens (
    id            BIGSERIAL PRIMARY KEY,
    tenant_id     BIGINT NOT NULL REFERENCES gateway_tenants(id) ON DELETE CASCADE,
    token_sha256  BYTEA NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    description   TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS gateway_tokens_tenant ON gateway_tokens (tenant_id);

-- One row per tenant; a tenant without a row gets the gateway's configured defaults.
CREATE TABLE IF NOT EXISTS gateway_quotas (
    tenant_id               BIGINT PRIMARY KEY REFERENCES gateway_tenants(id) ON DELETE CASCADE,
    max_samples_per_second  BIGINT NOT NULL CHECK (max_samples_per_second > 0),
    max_body_bytes          BIGINT NOT NULL CHECK (max_body_bytes > 0),
    max_active_series       BIGINT NOT NULL CHECK (max_active_series > 0),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now()
);
