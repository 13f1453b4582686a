-- Stored message templates with numbered versions, and the numbers and batch-job results
-- of the compatible APIs; the same records as the SQLite schema's (migrations 0015, 0016).
CREATE TABLE templates (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    dialect TEXT NOT NULL,
    active_version BIGINT,
    created_ms BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE TABLE template_versions (
    template_id TEXT NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    subject TEXT NOT NULL,
    html TEXT,
    text TEXT,
    test_data TEXT NOT NULL DEFAULT '{}',
    created_ms BIGINT NOT NULL,
    used_ms BIGINT,
    PRIMARY KEY (template_id, version)
);

CREATE TABLE compat_numbers (
    number BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    UNIQUE (tenant_id, kind, object_id)
);

CREATE TABLE compat_jobs (
    number BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    result TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX compat_jobs_tenant ON compat_jobs (tenant_id, created_ms);
