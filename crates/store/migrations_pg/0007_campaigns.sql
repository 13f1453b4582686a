-- Campaigns, their fixed recipients and their spooled batches, as on SQLite (migrations
-- 0017 to 0022); the tenant's tracking mode and time zone.
ALTER TABLE tenants ADD COLUMN tracking TEXT NOT NULL DEFAULT 'anonymous';
ALTER TABLE tenants ADD COLUMN timezone TEXT;

CREATE TABLE campaigns (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    audience TEXT NOT NULL DEFAULT '{}',
    content TEXT NOT NULL DEFAULT '{}',
    schedule TEXT,
    rate_per_sec BIGINT,
    send_window TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    started_ms BIGINT,
    finished_ms BIGINT,
    recipients BIGINT,
    cursor BIGINT NOT NULL DEFAULT 0,
    spooled BIGINT NOT NULL DEFAULT 0,
    skipped BIGINT NOT NULL DEFAULT 0,
    ab_test TEXT,
    test_end BIGINT,
    decide_at_ms BIGINT,
    winner BIGINT,
    winner_reason TEXT,
    decided_ms BIGINT
);
CREATE INDEX campaigns_tenant ON campaigns(tenant_id, created_ms);
CREATE INDEX campaigns_state ON campaigns(state);

CREATE TABLE campaign_recipients (
    campaign_id TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    contact_id BIGINT NOT NULL,
    address TEXT NOT NULL,
    PRIMARY KEY (campaign_id, seq)
);

CREATE TABLE campaign_batches (
    campaign_id TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    first_seq BIGINT NOT NULL,
    end_seq BIGINT NOT NULL,
    message_ids BYTEA NOT NULL,
    committed BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, first_seq)
);
CREATE INDEX campaign_batches_open ON campaign_batches(committed) WHERE committed = 0;
