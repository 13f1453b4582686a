-- Operations built in: alerts with their lifecycle and timeline, silences, the reports
-- archive and the server's periodic samples (for the monthly report's trends).
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    labels TEXT NOT NULL,
    summary TEXT NOT NULL,
    members TEXT NOT NULL,
    priority TEXT NOT NULL,
    level INTEGER NOT NULL,
    triggered_ms INTEGER NOT NULL,
    acknowledged_by TEXT,
    acknowledged_ms INTEGER,
    resolved_by TEXT,
    resolved_ms INTEGER,
    cleared_ms INTEGER,
    silenced_by TEXT,
    refired INTEGER NOT NULL DEFAULT 0,
    miss_reason TEXT,
    miss_text TEXT
);
CREATE INDEX alerts_by_resolved ON alerts (resolved_ms);
CREATE INDEX alerts_by_triggered ON alerts (triggered_ms);

CREATE TABLE alert_actions (
    id INTEGER PRIMARY KEY,
    alert_id TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    action TEXT NOT NULL,
    who TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX alert_actions_by_alert ON alert_actions (alert_id, at_ms);

CREATE TABLE silences (
    id TEXT PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts_ms INTEGER NOT NULL,
    ends_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    comment TEXT NOT NULL
);

CREATE TABLE ops_reports (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    period TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (kind, period)
);

CREATE TABLE ops_samples (
    at_ms INTEGER PRIMARY KEY,
    body TEXT NOT NULL
);
