-- Responses to requests sent with an Idempotency-Key, per tenant, kept for a day. A row
-- without a status is a request in progress.
CREATE TABLE idempotency (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    request_sha256 BLOB NOT NULL,
    status INTEGER,
    headers TEXT,
    body BLOB,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

CREATE INDEX idempotency_created ON idempotency(created_ms);
