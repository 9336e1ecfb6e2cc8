-- Salted token hashes, per-tenant table grants, optional quota columns.
-- V1 stays as applied (refinery refuses a changed checksum); this migration only adds.
--
-- Tokens look like `chg_<key_id>_<secret>`: `key_id` (16 hex chars) is public and indexed for the
-- lookup; only `secret_hash = SHA-256(salt || secret)` with a random 16-byte `salt` per token is
-- stored. The secret is 256 random bits, so a fast hash is enough against guessing; the salt
-- makes equal secrets hash differently and defeats precomputed tables. The plain token is shown
-- once, by `chgate tenant create|token`, and never stored.
ALTER TABLE gateway_tokens ALTER COLUMN token_sha256 DROP NOT NULL;
ALTER TABLE gateway_tokens ADD COLUMN key_id TEXT UNIQUE CHECK (key_id ~ '^[0-9a-f]{16}$');
ALTER TABLE gateway_tokens ADD COLUMN salt BYTEA CHECK (length(salt) = 16);
ALTER TABLE gateway_tokens ADD COLUMN secret_hash BYTEA CHECK (length(secret_hash) = 32);
ALTER TABLE gateway_tokens ADD CONSTRAINT gateway_tokens_hashed CHECK (
    token_sha256 IS NOT NULL
    OR (key_id IS NOT NULL AND salt IS NOT NULL AND secret_hash IS NOT NULL)
);

-- Which tables a tenant may write: `table_name = '*'` is every table of `database_name`.
-- A tenant without grants can write nothing.
CREATE TABLE IF NOT EXISTS gateway_grants (
    tenant_id      BIGINT NOT NULL REFERENCES gateway_tenants(id) ON DELETE CASCADE,
    database_name  TEXT NOT NULL CHECK (database_name ~ '^[A-Za-z0-9_]{1,128}$'),
    table_name     TEXT NOT NULL CHECK (table_name ~ '^([A-Za-z0-9_]{1,128}|\*)$'),
    PRIMARY KEY (tenant_id, database_name, table_name)
);

-- NULL in a quota column: the gateway's configured default applies.
ALTER TABLE gateway_quotas ALTER COLUMN max_samples_per_second DROP NOT NULL;
ALTER TABLE gateway_quotas ALTER COLUMN max_body_bytes DROP NOT NULL;
ALTER TABLE gateway_quotas ALTER COLUMN max_active_series DROP NOT NULL;
