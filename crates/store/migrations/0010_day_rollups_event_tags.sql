-- Day slots for the long dashboard periods (a month is 30 rows per combination, not 720),
-- filled from the hour slots already kept.
CREATE TABLE rollup_day (
    tenant_id TEXT NOT NULL,
    slot INTEGER NOT NULL,
    kind TEXT NOT NULL,
    domain TEXT NOT NULL,
    provider TEXT NOT NULL,
    category TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, slot, kind, domain, provider, category)
) WITHOUT ROWID;
INSERT INTO rollup_day
    SELECT tenant_id, slot / 24, kind, domain, provider, category, SUM(count)
    FROM rollup_hour GROUP BY 1, 2, 3, 4, 5, 6;
CREATE TABLE latency_day (
    tenant_id TEXT NOT NULL,
    slot INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, slot, bucket)
) WITHOUT ROWID;
INSERT INTO latency_day
    SELECT tenant_id, slot / 24, bucket, SUM(count) FROM latency_hour GROUP BY 1, 2, 3;

-- Events by tag, newest last, so a search for a rare tag does not read every event.
-- (Columns named apart from the events' so the two join without qualifying every name.)
CREATE TABLE event_tags (
    tenant TEXT NOT NULL,
    tag TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    PRIMARY KEY (tenant, tag, event_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO event_tags
    SELECT e.tenant_id, j.value, e.id FROM events e, json_each(e.tags) j
    WHERE e.tags IS NOT NULL AND json_valid(e.tags) AND j.type = 'text';
