-- Events, suppressions and webhooks on PostgreSQL, with what recording an event keeps up
-- to date in the same transaction: the dashboards' rollups and latency histograms, the
-- contacts' last engagement, the campaigns' counters. The same records as the SQLite
-- schema's (migrations 0005, 0007, 0008, 0010, 0013, 0020), with PostgreSQL's types.
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    time_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    message_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    custom_id TEXT,
    tags TEXT,
    detail TEXT
);
CREATE INDEX events_tenant_id ON events (tenant_id, id);
CREATE INDEX events_tenant_time ON events (tenant_id, time_ms);
CREATE INDEX events_tenant_message ON events (tenant_id, message_id);
CREATE INDEX events_tenant_recipient ON events (tenant_id, recipient);
CREATE INDEX events_tenant_custom ON events (tenant_id, custom_id) WHERE custom_id IS NOT NULL;
CREATE INDEX events_time ON events (time_ms);

CREATE TABLE event_tags (
    tenant TEXT NOT NULL,
    tag TEXT NOT NULL,
    event_id BIGINT NOT NULL,
    PRIMARY KEY (tenant, tag, event_id)
);

CREATE TABLE suppressions (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, address)
);

CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    kinds TEXT NOT NULL,
    cursor BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    failing_since_ms BIGINT,
    previous_secret TEXT,
    previous_until_ms BIGINT
);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id);

CREATE TABLE webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    time_ms BIGINT NOT NULL,
    events BIGINT NOT NULL,
    first_event BIGINT NOT NULL,
    last_event BIGINT NOT NULL,
    status BIGINT,
    error TEXT,
    duration_ms BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, id);

CREATE TABLE rollup_minute (
    tenant_id TEXT NOT NULL,
    slot BIGINT NOT NULL,
    kind TEXT NOT NULL,
    domain TEXT NOT NULL,
    provider TEXT NOT NULL,
    category TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, slot, kind, domain, provider, category)
);
CREATE TABLE rollup_hour (LIKE rollup_minute INCLUDING ALL);
CREATE TABLE rollup_day (LIKE rollup_minute INCLUDING ALL);

CREATE TABLE latency_minute (
    tenant_id TEXT NOT NULL,
    slot BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, slot, bucket)
);
CREATE TABLE latency_hour (LIKE latency_minute INCLUDING ALL);
CREATE TABLE latency_day (LIKE latency_minute INCLUDING ALL);

CREATE TABLE contact_engagement (
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    address TEXT NOT NULL,
    last_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind, address)
);

CREATE TABLE campaign_counts (
    campaign_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    dimension TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, metric, dimension)
);

CREATE TABLE campaign_engaged (
    campaign_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    link BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, kind, recipient, link)
);
