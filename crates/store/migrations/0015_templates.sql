-- Stored message templates: a named template in one dialect (native minijinja, Mailjet's
-- language, or SendGrid's Handlebars subset) with numbered versions. A version is
-- immutable once a message used it; one version is active (what sending by template uses).
CREATE TABLE templates (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    dialect TEXT NOT NULL,
    active_version INTEGER,
    created_ms INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE TABLE template_versions (
    template_id TEXT NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    subject TEXT NOT NULL,
    html TEXT,
    text TEXT,
    -- JSON object: the data previews use unless given other.
    test_data TEXT NOT NULL DEFAULT '{}',
    created_ms INTEGER NOT NULL,
    -- Set when a message first used it; from then on it cannot change.
    used_ms INTEGER,
    PRIMARY KEY (template_id, version)
) WITHOUT ROWID;
