-- The last time each recipient of a tenant had each kind of event, kept as events are
-- recorded, so segments on engagement (`opened(within: 90d)`) read one small row per
-- contact instead of the recipient's events.
CREATE TABLE contact_engagement (
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    address TEXT NOT NULL,
    last_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind, address)
) WITHOUT ROWID;
INSERT INTO contact_engagement (tenant_id, kind, address, last_ms)
    SELECT tenant_id, kind, recipient, MAX(time_ms) FROM events
    WHERE kind IN ('delivered', 'opened', 'clicked', 'bounced', 'complained', 'unsubscribed')
    GROUP BY tenant_id, kind, recipient;
