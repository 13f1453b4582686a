-- What happened to every message and recipient of a tenant, newest last (id order is
-- insertion order: webhooks follow it with a cursor).
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    time_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    message_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    custom_id TEXT,
    -- JSON array of the message's tags, or NULL.
    tags TEXT,
    -- JSON object: reply, category, attempt, remote host, metadata...
    detail TEXT
);
CREATE INDEX events_tenant_id ON events(tenant_id, id);
CREATE INDEX events_tenant_time ON events(tenant_id, time_ms);
CREATE INDEX events_tenant_message ON events(tenant_id, message_id);
CREATE INDEX events_tenant_recipient ON events(tenant_id, recipient);
CREATE INDEX events_tenant_custom ON events(tenant_id, custom_id) WHERE custom_id IS NOT NULL;

-- Addresses a tenant never sends to again (lower-cased).
CREATE TABLE suppressions (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, address)
) WITHOUT ROWID;

-- Where a tenant's events are pushed. `cursor` is the last event id delivered (or skipped).
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    kinds TEXT NOT NULL,
    cursor INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    failing_since_ms INTEGER
);
CREATE INDEX webhooks_tenant ON webhooks(tenant_id);

-- Each delivery attempt of a webhook batch, for the tenant to see.
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    time_ms INTEGER NOT NULL,
    events INTEGER NOT NULL,
    first_event INTEGER NOT NULL,
    last_event INTEGER NOT NULL,
    status INTEGER,
    error TEXT,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries(webhook_id, id);
