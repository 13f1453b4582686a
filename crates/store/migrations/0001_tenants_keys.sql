-- Tenants and their API keys. Keys are stored as SHA-256 of their secret part only.
CREATE TABLE tenants (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    -- Messages per second accepted from this tenant; NULL: no limit.
    rate_per_sec INTEGER,
    -- Messages per UTC day; NULL: no quota.
    daily_quota INTEGER
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_sha256 BLOB NOT NULL,
    scopes TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    revoked_ms INTEGER
);

CREATE INDEX api_keys_tenant ON api_keys(tenant_id);
