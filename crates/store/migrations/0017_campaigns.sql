-- Campaigns: a send to lists and segments of a tenant's contacts. The audience, the content
-- and the schedule are JSON documents the campaigns crate reads and checks; the state moves
-- only along the allowed transitions (draft -> scheduled | sending; scheduled -> draft |
-- sending; sending <-> paused; sending -> sent; any but sent -> cancelled), each a
-- conditional update, so two operators acting at once cannot both win.
CREATE TABLE campaigns (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    -- {"lists": [...], "segments": [...], "exclude_lists": [...], "exclude_segments": [...]}
    audience TEXT NOT NULL DEFAULT '{}',
    -- {"from", "reply_to"?, "template_id"?, "template_version"?, "subject"?, "html"?, "text"?}
    content TEXT NOT NULL DEFAULT '{}',
    -- {"at_ms"} or {"local": {"date", "time", "passed"}}; none: send when started.
    schedule TEXT,
    -- Messages per second at most, and a sending window ({"days", "from", "to"}).
    rate_per_sec INTEGER,
    send_window TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    started_ms INTEGER,
    finished_ms INTEGER
);
CREATE INDEX campaigns_tenant ON campaigns(tenant_id, created_ms);
CREATE INDEX campaigns_state ON campaigns(state);
