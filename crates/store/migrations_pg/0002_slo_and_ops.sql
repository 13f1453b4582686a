-- The objectives' counters and operations (alerts with their timeline, silences, the
-- reports archive, periodic samples) in the shared control plane: in cluster mode one
-- node at a time evaluates them, and any node shows them.
CREATE TABLE slo_counts (
    slo TEXT NOT NULL,
    grain_ms BIGINT NOT NULL,
    slot BIGINT NOT NULL,
    good BIGINT NOT NULL,
    total BIGINT NOT NULL,
    PRIMARY KEY (slo, grain_ms, slot)
);

CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    labels TEXT NOT NULL,
    summary TEXT NOT NULL,
    members TEXT NOT NULL,
    priority TEXT NOT NULL,
    level BIGINT NOT NULL,
    triggered_ms BIGINT NOT NULL,
    acknowledged_by TEXT,
    acknowledged_ms BIGINT,
    resolved_by TEXT,
    resolved_ms BIGINT,
    cleared_ms BIGINT,
    silenced_by TEXT,
    refired BIGINT NOT NULL DEFAULT 0,
    miss_reason TEXT,
    miss_text TEXT
);
CREATE INDEX alerts_by_resolved ON alerts (resolved_ms);
CREATE INDEX alerts_by_triggered ON alerts (triggered_ms);

CREATE TABLE alert_actions (
    id BIGSERIAL PRIMARY KEY,
    alert_id TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    action TEXT NOT NULL,
    who TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX alert_actions_by_alert ON alert_actions (alert_id, at_ms);

CREATE TABLE silences (
    id TEXT PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts_ms BIGINT NOT NULL,
    ends_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    comment TEXT NOT NULL
);

CREATE TABLE ops_reports (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    period TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (kind, period)
);

CREATE TABLE ops_samples (
    at_ms BIGINT PRIMARY KEY,
    body TEXT NOT NULL
);
