-- The shared control plane on PostgreSQL (cluster mode): tenants, their API keys (SHA-256
-- of the secret part only), daily usage, idempotency keys and sending domains. The same
-- records as the SQLite schema's, with PostgreSQL's types.
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL,
    rate_per_sec BIGINT,
    daily_quota BIGINT,
    suspended_ms BIGINT,
    suspended_reason TEXT
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_sha256 BYTEA NOT NULL,
    scopes TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE tenant_usage (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    day BIGINT NOT NULL,
    messages BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day)
);

CREATE TABLE idempotency (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    request_sha256 BYTEA NOT NULL,
    status BIGINT,
    headers TEXT,
    body BYTEA,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_created ON idempotency (created_ms);

CREATE TABLE domains (
    domain TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    selector TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    private_key BYTEA NOT NULL,
    public_key TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX domains_tenant ON domains (tenant_id);
